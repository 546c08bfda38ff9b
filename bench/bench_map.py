# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the network map's GeoJSON (docs/map.md) on PostgreSQL.

One branch, a router and a plan (ORM), then 10,000 subscribers with
coordinates and their services (copies of the ORM's rows, bench/bulk.py),
a third online, a third offline, one in ten isolated.  A branch
administrator opens the map (the menu's token, the session cookie) and
the GeoJSON route is requested through trytond's WSGI application, as the
staff user (record rules and access rights applied):

    BENCH map_geojson_p95_ms <n> ms       (all 10,000 subscribers)
    BENCH map_filtered_p95_ms <n> ms      (status=online)

It never asserts a time.

    .venv/bin/python bench/bench_map.py [--subscribers 10000]
        [--requests 30] [--uri postgresql://postgres@127.0.0.1:5432/]

Without --uri (nor ISP_TEST_PG_URI) it starts a private PostgreSQL
cluster and removes it afterwards (bench/bench_radius.py's RadiusStack:
the activated database is kept as a template on a given cluster).
"""
import argparse
import datetime as dt
import json
import os
import pathlib
import random
import statistics
import sys
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bulk  # noqa: E402
from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_radius import RadiusStack  # noqa: E402


def populate(stack, subscribers):
    "The branch, its staff user and `subscribers` services (bulk)"
    from trytond.pool import Pool
    with stack.transaction():
        company = stack.create_branch()
    with stack.transaction(company=company):
        location = stack.create_location()
        plan = stack.create_plan()
        router = stack.create_router('BNC', '192.0.2.1')
        service_id = stack.register(location, plan, router)
        pool = Pool()
        Router = pool.get('isp.router')
        Router.write([Router(router)], {'latitude': -6.9,
                'longitude': 107.6, 'reachable': True,
                'last_sync': dt.datetime.now()})
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user, = User.create([{'name': 'Bench Admin', 'login': 'bench_admin',
                    'groups': [('add', [ModelData.get_id('isp_base',
                                    'group_isp_branch_admin')])],
                    'companies': [('add', [company])], 'company': company}])
        Service = pool.get('isp.service')
        pattern = Service(service_id)
        party_id = pattern.subscriber.id
        rng = random.Random(42)
        count = subscribers - 1
        party_ids, _ = bulk.clone_parties(party_id, [{
                    'name': 'Subscriber %d' % i,
                    'subscriber_code': 'B%06d' % i,
                    'latitude': round(-6.9 + rng.uniform(-0.3, 0.3), 6),
                    'longitude': round(107.6 + rng.uniform(-0.3, 0.3), 6),
                    } for i in range(count)])
        now = dt.datetime.now()
        row, = bulk.read_rows('isp_service', 'id', service_id)
        bulk.insert_copies('isp_service', row, [{
                    'subscriber': p, 'username': 'b%06d' % i,
                    'customer_id': 'BENCH-%06d' % i,
                    'state': 'isolated' if i % 10 == 0 else 'active',
                    'live_status': ('online', 'offline', 'unknown')[i % 3],
                    'live_since': now - dt.timedelta(minutes=i % 600),
                    'last_online': now - dt.timedelta(hours=i % 48),
                    } for i, p in enumerate(party_ids)])
        Party = pool.get('party.party')
        Party.write([pattern.subscriber], {'latitude': -6.9,
                'longitude': 107.6})
    stack.sql('ANALYZE')
    return user.id


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


def measure(client, path, requests):
    "Latencies (ms) of `requests` GETs of `path` and the last answer"
    latencies, body = [], None
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return latencies, json.loads(body)


def run(uri, subscribers, requests):
    stack = RadiusStack(uri, name='isp_map_bench')
    print('database ready in %.1f s' % stack.create_database(), flush=True)
    # trytond's modules after the configuration (the backend)
    stack.init_pool()
    from trytond.pool import Pool
    from trytond.protocols.wrappers import Response
    from trytond.transaction import Transaction
    from werkzeug.test import Client
    try:
        started = time.monotonic()
        user = populate(stack, subscribers)
        print('%d subscribers loaded in %.1f s' % (
                subscribers, time.monotonic() - started), flush=True)
        from trytond.wsgi import app
        with Transaction().start(stack.name, user,
                context={'_check_access': True}) as transaction:
            Wizard = Pool().get('isp.network.map.open', type='wizard')
            session_id, _, _ = Wizard.create()
            (action, _), = Wizard.execute(session_id, {}, 'open_')[
                'actions']
            transaction.commit()
        client = Client(app, Response)
        url = urllib.parse.urlsplit(action['url'])
        response = client.get('%s?%s' % (url.path, url.query))
        assert response.status_code == 303, response.status_code
        data = '/%s/isp_network/map/data' % stack.name
        measure(client, data, 2)  # warm the caches
        latencies, collection = measure(client, data, requests)
        shown = sum(1 for f in collection['features']
            if f['properties']['kind'] == 'service')
        filtered, _ = measure(client, data + '?status=online', requests)
        if os.environ.get('BENCH_MAP_PROFILE'):
            import cProfile
            import pstats
            profile = cProfile.Profile()
            profile.runcall(client.get, data)
            pstats.Stats(profile).sort_stats('cumulative').print_stats(25)
        size = len(json.dumps(collection))
    finally:
        stack.drop_database()
    print('%d services on the map, %.1f MB of GeoJSON, median %.0f ms' % (
            shown, size / 1e6, statistics.median(latencies)))
    print('load average: %s' % ' '.join(
            '%.2f' % v for v in os.getloadavg()))
    print('BENCH map_geojson_p95_ms %.0f ms' % percentile(latencies, 0.95))
    print('BENCH map_filtered_p95_ms %.0f ms' % percentile(filtered, 0.95))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subscribers', type=int, default=10000)
    parser.add_argument('--requests', type=int, default=30)
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    args = parser.parse_args(argv)
    if args.uri:
        run(args.uri, args.subscribers, args.requests)
    else:
        with private_cluster() as uri:
            run(uri, args.subscribers, args.requests)
    return 0


if __name__ == '__main__':
    sys.exit(main())
