# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Router sync and isolation benchmarks against the RouterOS simulator.

- router_sync_5000_s: one router holding 5,000 secrets and 3,000 active
  sessions, the 5,000 services in the database; the time of `Router.sync`
  (read back, drift check, live status of every service, health).  The
  first sync records every live status (3,000 online, 2,000 offline); the
  second is the steady state the 5-minute cron sees.
- router_sync_with_dead_router_s: 5 routers of 1,000 secrets (and 600
  sessions) each, one of them not answering (it accepts the connection and
  never replies, so only its 10-second timeout ends its sync): from the
  commit of the sync cron (`Router.sync_all`, one queued task per router)
  to the moment the 4 healthy routers' results are committed.  With
  `trytond-worker` (PostgreSQL, 5 processes) the dead router is a fresh one
  (worst case); on SQLite the tasks run one after the other in this
  process as trytond-cron runs them, and the dead router is the one that
  failed at the previous run (its next attempt due), which runs last.
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
import datetime as dt
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
        help="run the queued tasks in this process instead of workers")
    parser.add_argument('--only-dead-router', action='store_true',
        help="run only router_sync_with_dead_router_s")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench-router-')
    setup_environment(tmp)

    from trytond.tests.test_tryton import DB_NAME, activate_module

    from tools.routeros_sim import Router as SimRouter

    started = time.monotonic()
    activate_module(['isp_network'])
    print("database ready in %.1f s" % (time.monotonic() - started))

    # trytond-worker needs PostgreSQL's LISTEN/NOTIFY: on SQLite the
    # tasks run in this process, each in its own transaction, as trytond-cron
    # or a worker would
    worker = (not args.no_worker
        and os.environ['TRYTOND_DATABASE_URI'].startswith('postgresql'))
    if not args.only_dead_router:
        sim = SimRouter(name='bench', password=PASSWORD, version='7.16.2')
        sim.start()
        try:
            ids = populate(DB_NAME, sim, args.secrets, args.active)
            bench_sync(DB_NAME, ids)
            bench_isolate(DB_NAME, ids, sim, tmp, worker=worker)
        finally:
            sim.stop()
    bench_dead_router(DB_NAME, worker=worker)


def dead_listener():
    "A socket that accepts connections and never answers"
    import socket
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(16)
    return sock


def serve_sims(codes, secrets, active, profile, ports, stop):
    """Run the healthy routers in their own process (real routers do not
    share the benchmark's interpreter): `ports` gets (code, host, port)"""
    from tools.routeros_sim import Router as SimRouter
    sims = []
    for code in codes:
        sim = SimRouter(name=code, password=PASSWORD)
        sim.start()
        sim.menu('/ppp/profile').add(name=profile, rate_limit='5M/10M')
        menu = sim.menu('/ppp/secret')
        for i in range(secrets):
            menu.add(name='%s%04d' % (code, i), password='pw%d' % i,
                profile=profile, service='pppoe',
                comment='DRB-%s010125-%04d' % (code, i))
        for i in range(active):
            sim.ppp_login('%s%04d' % (code, i))
        sims.append(sim)
        ports.put((code, sim.host, sim.port))
    stop.wait()
    for sim in sims:
        sim.stop()


def bench_dead_router(db_name, worker, routers=5, secrets=1000,
        active=600, timeout=10):
    import multiprocessing

    from trytond.modules.company.tests import create_company, set_company
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.worker import run_task

    context = multiprocessing.get_context('spawn')
    ports, stop = context.Queue(), context.Event()
    codes = ['R%s' % 'ABCDEFGH'[index] for index in range(routers)]
    profile = 'Home-10M'
    server = context.Process(target=serve_sims, args=(
            codes[1:], secrets, active, profile, ports, stop))
    server.start()
    addresses = {}
    for _ in codes[1:]:
        code, host, port = ports.get(timeout=300)
        addresses[code] = (host, port)
    dead = dead_listener()
    addresses[codes[0]] = dead.getsockname()
    started = time.monotonic()
    try:
        with Transaction().start(db_name, 0, context={}) as transaction:
            pool = Pool()
            Router = pool.get('isp.router')
            Location = pool.get('isp.location')
            Template = pool.get('product.template')
            Uom = pool.get('product.uom')
            Party = pool.get('party.party')
            Service = pool.get('isp.service')
            company = create_company(name="Dead Router Branch")
            with set_company(company):
                location, = Location.create([{'code': 'DRB', 'name': "Drb"}])
                unit, = Uom.search([('name', '=', 'Unit')])
                plan, = Template.create([{
                            'name': "Home 10M", 'type': 'service',
                            'default_uom': unit.id, 'isp_plan': True,
                            'download_rate': 10000, 'upload_rate': 5000,
                            'list_price': Decimal('200000')}])
                assert plan.ppp_profile_name == profile
                records = []
                for index, code in enumerate(codes):
                    host, port = addresses[code]
                    router, = Router.create([{
                                'name': code, 'code': code, 'host': host,
                                'port': port, 'api_password': PASSWORD,
                                'timeout': timeout}])
                    records.append(router)
                    if index == 0:
                        continue
                    names = ['%s%04d' % (code, i) for i in range(secrets)]
                    parties = Party.create([{
                                'name': name, 'is_subscriber': True,
                                'location': location.id} for name in names])
                    Service.create([{
                                'subscriber': p.id, 'location': location.id,
                                'plan': plan.id, 'router': router.id,
                                'username': name, 'password': 'pw%d' % i,
                                'customer_id': 'DRB-%s010125-%04d' % (
                                    code, i),
                                'state': 'active', 'router_state': 'synced',
                                } for i, (name, p) in enumerate(
                                zip(names, parties, strict=True))])
                transaction.tasks.clear()
                # the steady state the 5-minute cron sees
                Router.sync(records[1:])
                if not worker:
                    # found dead at the previous run, due again now
                    Router.write(records[:1], {'failures': 1,
                            'reachable': False,
                            'next_attempt': dt.datetime.now()
                            - dt.timedelta(seconds=1)})
            ids = [r.id for r in records]
            company_id = company.id
            transaction.commit()
        print("dead router: %d routers of %d secrets ready in %.1f s" % (
                routers, secrets, time.monotonic() - started))

        def healthy_committed(since):
            with Transaction().start(db_name, 0, readonly=True):
                Router = Pool().get('isp.router')
                return all(r.last_sync and r.last_sync >= since
                    for r in Router.browse(ids[1:]))

        process = None
        if worker:
            process = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable),
                        'trytond-worker'),
                    '-d', db_name, '-n', str(routers), '-t', '1'],
                env=dict(os.environ), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(5)  # let the workers load the pool
        try:
            since = dt.datetime.now().replace(microsecond=0)
            started = time.monotonic()
            with Transaction().start(db_name, 0,
                    context={'company': company_id}) as transaction:
                Pool().get('isp.router').sync_all()
                transaction.commit()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
            elapsed = None
            if worker:
                while time.monotonic() - started < 60:
                    if healthy_committed(since):
                        elapsed = time.monotonic() - started
                        break
                    time.sleep(0.05)
            else:
                # as trytond-cron runs them: the last queued first
                while tasks:
                    run_task(db_name, tasks.pop())
                    if elapsed is None and healthy_committed(since):
                        elapsed = time.monotonic() - started
            total = time.monotonic() - started
        finally:
            if process:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
        with Transaction().start(db_name, 0, readonly=True):
            for router in Pool().get('isp.router').browse(ids):
                print("  %s: reachable %s, last sync %s, %s" % (
                        router.code, router.reachable, router.last_sync,
                        router.last_error or ''))
        print("dead router: 4 healthy routers committed after %s s, every "
            "task done after %.2f s (%s)" % (
                '%.2f' % elapsed if elapsed is not None else 'never',
                total, 'workers' if worker else 'in process'))
        print("BENCH router_sync_with_dead_router_s %.2f s" % (
                elapsed if elapsed is not None else float('inf')))
    finally:
        stop.set()
        server.join(30)
        dead.close()


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
