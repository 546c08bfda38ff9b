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
    BENCH map_first_render_ms <n> ms      (Chromium: the menu's URL opened
                                           to the clustered map painted,
                                           median of --renders cold loads)

The first render serves trytond's WSGI application on a loopback port (a
threaded werkzeug server in this process) to headless Chromium (Debian's,
through Playwright), each load in a new browser context (empty cache) with
a new token; the map has no tiles (the tile URL emptied: nothing leaves
the machine, and requests to any other host are aborted).

It never asserts a time.

    .venv/bin/python bench/bench_map.py [--subscribers 10000]
        [--requests 30] [--renders 5] [--uri postgresql://...]

Without --uri (nor ISP_TEST_PG_URI) it starts a private PostgreSQL
cluster and removes it afterwards (bench/bench_radius.py's RadiusStack:
the activated database is kept as a template on a given cluster).
"""
import argparse
import datetime as dt
import json
import logging
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
from tools.chromium import CHROMIUM, CHROMIUM_ARGS, loopback_only  # noqa: E402


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

    def no_tiles():
        # no tile server: the bench stays offline
        Configuration = Pool().get('isp.configuration')
        Configuration.write([Configuration(1)], {'map_tiles_url': None})
    stack.call(no_tiles, context={'company': company})
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


def launch_url(stack, user):
    "The URL the ISP > Network Map menu opens for `user` (a new token)"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(stack.name, user,
            context={'_check_access': True}) as transaction:
        Wizard = Pool().get('isp.network.map.open', type='wizard')
        session_id, _, _ = Wizard.create()
        (action, _), = Wizard.execute(session_id, {}, 'open_')['actions']
        transaction.commit()
    return action['url']


def measure_render(stack, user, renders, expected):
    """Milliseconds from opening the menu's URL in a new browser context to
    the clustered map of the `expected` subscribers painted, `renders`
    times"""
    import threading

    from playwright.sync_api import sync_playwright
    from trytond.wsgi import app
    from werkzeug.serving import make_server
    # the access log would show the tokens
    logging.getLogger('werkzeug').setLevel(logging.WARNING)
    server = make_server('127.0.0.1', 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = 'http://127.0.0.1:%d' % server.server_port
    times, steps = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(renders):
                    url = launch_url(stack, user)
                    context = browser.new_context(
                        viewport={'width': 1400, 'height': 1000})
                    context.route('**/*', loopback_only)
                    page = context.new_page()
                    errors = []
                    page.on('pageerror',
                        lambda e, errors=errors: errors.append(str(e)))
                    page.on('console',
                        lambda m, errors=errors: errors.append(m.text)
                        if m.type == 'error' else None)
                    started = time.perf_counter()
                    page.goto(base + url)
                    try:
                        page.wait_for_selector('body[data-map-ready]',
                            state='attached', timeout=120000)
                    except Exception:
                        print('the map did not show: %s' % errors)
                        raise
                    # the frame that shows it
                    page.evaluate('() => new Promise(resolve => '
                        'requestAnimationFrame(() => resolve()))')
                    times.append((time.perf_counter() - started) * 1000)
                    steps.append(page.evaluate('() => [Math.round(performance'
                        '.getEntriesByType("navigation")[0].domContentLoaded'
                        'EventEnd), Number(document.body.dataset.mapMs)]'))
                    ready = page.get_attribute('body', 'data-map-ready')
                    assert ready == str(expected), ready
                    assert page.locator('.marker-cluster').count() > 0
                    context.close()
            finally:
                browser.close()
    finally:
        server.shutdown()
    print('first renders: page ready (DOMContentLoaded) / data fetched and '
        'clustered in: %s ms' % ', '.join('%d / %d' % tuple(s) for s in steps))
    return times


def run(uri, subscribers, requests, renders=5):
    stack = RadiusStack(uri, name='isp_map_bench')
    print('database ready in %.1f s' % stack.create_database(), flush=True)
    # trytond's modules after the configuration (the backend)
    stack.init_pool()
    from trytond.protocols.wrappers import Response
    from werkzeug.test import Client
    try:
        started = time.monotonic()
        user = populate(stack, subscribers)
        print('%d subscribers loaded in %.1f s' % (
                subscribers, time.monotonic() - started), flush=True)
        from trytond.wsgi import app
        client = Client(app, Response)
        url = urllib.parse.urlsplit(launch_url(stack, user))
        response = client.get('%s?%s' % (url.path, url.query))
        assert response.status_code == 303, response.status_code
        data = '/%s/isp_network/map/data' % stack.name
        measure(client, data, 2)  # warm the caches
        latencies, collection = measure(client, data, requests)
        shown = sum(1 for f in collection['features']
            if f['properties']['kind'] == 'service')
        filtered, _ = measure(client, data + '?status=online', requests)
        renders_ms = measure_render(stack, user, renders, shown) \
            if renders else []
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
    if renders_ms:
        print('first renders: %s ms' % ' '.join(
                '%.0f' % v for v in renders_ms))
        print('BENCH map_first_render_ms %.0f ms'
            % statistics.median(renders_ms))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subscribers', type=int, default=10000)
    parser.add_argument('--requests', type=int, default=30)
    parser.add_argument('--renders', type=int, default=5,
        help="cold loads in Chromium (0: no first render measure)")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    args = parser.parse_args(argv)
    if args.uri:
        run(args.uri, args.subscribers, args.requests, args.renders)
    else:
        with private_cluster() as uri:
            run(uri, args.subscribers, args.requests, args.renders)
    return 0


if __name__ == '__main__':
    sys.exit(main())
