# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Router sync and isolation benchmarks against the RouterOS simulator.

- router_sync_5000_s: one router holding 5,000 secrets and 3,000 active
  sessions, the 5,000 services in the database; the time of `Router.sync`
  (read back, drift check, live status of every service, health).  The
  first sync records every live status (3,000 online, 2,000 offline); the
  second is the steady state the 5-minute cron sees.
- isolate_to_router_s: from the isolate button (an RPC-like call that
  commits) to the change read back on the router, with a `trytond-worker`
  process draining the queue (PostgreSQL; on SQLite, which the worker does
  not support, the queued task runs in this process after the commit).

    .venv/bin/python bench/bench_router_sync.py [--secrets 5000]
        [--active 3000] [--no-worker]

The database is a temporary SQLite file unless TRYTOND_DATABASE_URI points
elsewhere (e.g. postgresql://...).  Prints `BENCH <metric> <value> <unit>`.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PASSWORD = 'Bench-Pa55'


def setup_environment(tmp):
    os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
    if os.environ['TRYTOND_DATABASE_URI'].startswith('sqlite'):
        os.environ['TRYTOND_DATABASE__PATH'] = tmp
        os.environ.setdefault('DB_NAME', 'bench_router_sync')
        open(os.path.join(tmp, os.environ['DB_NAME'] + '.sqlite'),
            'w').close()
    else:
        os.environ.setdefault('DB_NAME', 'bench_router_sync')
    if os.environ['TRYTOND_DATABASE_URI'].startswith('postgresql'):
        os.environ['TRYTOND_QUEUE__WORKER'] = 'True'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--secrets', type=int, default=5000)
    parser.add_argument('--active', type=int, default=3000)
    parser.add_argument('--no-worker', action='store_true',
        help="run the isolation task in this process instead of a worker")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench-router-')
    setup_environment(tmp)

    from trytond.tests.test_tryton import DB_NAME, activate_module

    from tools.routeros_sim import Router as SimRouter

    started = time.monotonic()
    activate_module(['isp_network'])
    print("database ready in %.1f s" % (time.monotonic() - started))

    sim = SimRouter(name='bench', password=PASSWORD, version='7.16.2')
    sim.start()
    try:
        ids = populate(DB_NAME, sim, args.secrets, args.active)
        bench_sync(DB_NAME, ids)
        # trytond-worker needs PostgreSQL's LISTEN/NOTIFY: on SQLite the
        # task runs in this process, in its own transaction, as a worker
        worker = (not args.no_worker
            and os.environ['TRYTOND_DATABASE_URI'].startswith('postgresql'))
        bench_isolate(DB_NAME, ids, sim, tmp, worker=worker)
    finally:
        sim.stop()


def populate(db_name, sim, count, active):
    "A branch, a plan, a router and `count` services already on it"
    from trytond.modules.company.tests import create_company, set_company
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    started = time.monotonic()
    with Transaction().start(db_name, 0, context={}) as transaction:
        pool = Pool()
        Location = pool.get('isp.location')
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        Router = pool.get('isp.router')
        Party = pool.get('party.party')
        Service = pool.get('isp.service')
        company = create_company()
        with set_company(company):
            location, = Location.create([{'code': 'KCB', 'name': "Kcb"}])
            unit, = Uom.search([('name', '=', 'Unit')])
            plan, = Template.create([{
                        'name': "Home 20M", 'type': 'service',
                        'default_uom': unit.id, 'isp_plan': True,
                        'download_rate': 20000, 'upload_rate': 5000,
                        'list_price': Decimal('250000')}])
            router, = Router.create([{
                        'name': "Bench", 'code': 'BEN', 'host': sim.host,
                        'port': sim.port, 'api_password': PASSWORD,
                        'timeout': 30}])
            sim.menu('/ppp/profile').add(
                name=plan.ppp_profile_name, **{'rate-limit': '5M/20M'})
            names = ['BEN%05d' % i for i in range(count)]
            parties = Party.create([{
                        'name': name, 'is_subscriber': True,
                        'location': location.id} for name in names])
            services = Service.create([{
                        'subscriber': p.id, 'location': location.id,
                        'plan': plan.id, 'router': router.id,
                        'username': name, 'password': 'pw%d' % i,
                        'customer_id': 'KCB-BEN010125-%05d' % i,
                        'state': 'active', 'router_state': 'synced',
                        } for i, (name, p) in enumerate(
                        zip(names, parties, strict=True))])
            transaction.tasks.clear()
        profile = plan.ppp_profile_name
        result = {
            'company': company.id, 'router': router.id,
            'service': services[-1].id, 'username': names[-1]}
        transaction.commit()
    secrets = sim.menu('/ppp/secret')
    for i, name in enumerate(names):
        secrets.add(name=name, password='pw%d' % i,
            profile=profile, service='pppoe',
            comment='KCB-BEN010125-%05d' % i)
    for name in names[:active]:
        sim.ppp_login(name)
    print("populated %d services, %d sessions in %.1f s" % (
            count, active, time.monotonic() - started))
    return result


def bench_sync(db_name, ids):
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    timings = []
    for _ in range(2):
        with Transaction().start(
                db_name, 0, context={'company': ids['company']},
                _lock_records={'isp_router': [ids['router']]}) \
                as transaction:
            Router = Pool().get('isp.router')
            Service = Pool().get('isp.service')
            started = time.monotonic()
            Router.sync([Router(ids['router'])])
            transaction.commit()
            timings.append(time.monotonic() - started)
            router = Router(ids['router'])
            online = Service.search_count([('live_status', '=', 'online')])
            print("sync: %.2f s (router %.2f s), %s secrets, %s sessions, "
                "%d online" % (timings[-1], router.last_sync_duration,
                    router.secret_count, router.active_count, online))
    print("BENCH router_sync_5000_s %.2f s" % timings[0])
    print("BENCH router_sync_5000_steady_s %.2f s" % timings[1])


def bench_isolate(db_name, ids, sim, tmp, worker=True):
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.worker import run_task

    process = None
    log_name = os.path.join(tmp, 'worker.log')
    log = open(log_name, 'w')
    if worker:
        process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), 'trytond-worker'),
                '-d', db_name, '-n', '1', '-t', '1'],
            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        time.sleep(3)  # let the worker load the pool
    try:
        secrets = sim.menu('/ppp/secret')
        sim.ppp_login(ids['username']) if not sim.menu(
            '/ppp/active').find(name=ids['username']) else None
        started = time.monotonic()
        with Transaction().start(
                db_name, 1, context={'company': ids['company']}) \
                as transaction:
            Service = Pool().get('isp.service')
            Service.isolate([Service(ids['service'])])
            transaction.commit()
        tasks = list(transaction.tasks)
        transaction.tasks.clear()
        if not worker:
            for task_id in tasks:
                run_task(db_name, task_id)
        deadline = started + 60
        while time.monotonic() < deadline:
            secret = secrets.find(name=ids['username'])
            if secret and secret['profile'] == 'isolir':
                break
            time.sleep(0.01)
        else:
            print("the isolation did not reach the router in 60 s")
            with open(log_name) as worker_log:
                print(worker_log.read()[-3000:])
        elapsed = time.monotonic() - started
        # wait for the read back to be recorded
        while time.monotonic() < deadline:
            with Transaction().start(db_name, 0, readonly=True):
                service = Pool().get('isp.service')(ids['service'])
                if service.router_state == 'synced':
                    break
            time.sleep(0.02)
        confirmed = time.monotonic() - started
        print("isolate: on the router after %.3f s, read back and "
            "recorded after %.3f s (%s)" % (
                elapsed, confirmed, 'worker' if worker else 'in process'))
        print("BENCH isolate_to_router_s %.3f s" % confirmed)
    finally:
        if process:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)


if __name__ == '__main__':
    main()
