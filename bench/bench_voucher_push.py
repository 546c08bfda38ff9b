# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of vouchers pushed to a router (PostgreSQL, one RouterOS
simulator in its own process, over TCP):

- voucher_push_10000_s: a batch of 10,000 vouchers of an API profile is
  generated and committed; the time of the router's queued provisioning
  task (run as the worker runs it) that adds the hotspot user profile and
  the 10,000 hotspot users and reads them back;
- voucher_push_steady_s: the same task again, nothing to change (one full
  read and read-back, as each sync does);
- voucher_expire_push_1000_s: 1,000 of them used up: the expiry cron, then
  the one queued push that removes them.

Each step also prints its peak Python memory (tracemalloc, measured in a
second run of the step so that the time is not slowed by it).

    .venv/bin/python bench/bench_voucher_push.py [--vouchers 10000]
        [--uri postgresql://postgres@127.0.0.1:5432/]

Without --uri (nor ISP_TEST_PG_URI) it starts a private PostgreSQL cluster
with scripts/lib.sh and removes it afterwards.  The database with
isp_voucher activated is kept as a template named after the modules'
content.  `VoucherStack` is also the harness of tests/test_voucher_radius.py.
Prints `BENCH <metric> <value> <unit>`; it never asserts a time.
"""
import argparse
import contextlib
import datetime as dt
import os
import pathlib
import socket
import subprocess
import sys
import time
import tracemalloc

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_radius import RadiusStack  # noqa: E402
from bench.bench_webhook import free_port  # noqa: E402

PASSWORD = 'Bench-Pa55'


class VoucherStack(RadiusStack):
    "RadiusStack with isp_voucher activated"

    def create_database(self):
        started = time.monotonic()
        template = self.module_template('isp_voucher')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))
        return time.monotonic() - started

    def create_voucher_profile(self, company, router=None, **values):
        from trytond.pool import Pool

        from trytond.modules.isp_voucher.tests.voucher_setup import (
            create_voucher_product,
        )
        pool = Pool()
        Company = pool.get('company.company')
        Profile = pool.get('isp.voucher.profile')
        product = create_voucher_product(Company(company))
        profile, = Profile.create([{
                    'company': company, 'name': "2 hours",
                    'product': product.id, 'router': router,
                    'validity': 1, 'validity_unit': 'days',
                    'rate_limit': '2M/5M',
                    'uptime_limit': dt.timedelta(hours=2),
                    'data_quota': 1, 'shared_users': 1, **values}])
        return profile.id

    def create_vouchers(self, profile, quantity=6):
        "Generate a batch; [(id, code, password)] of its vouchers"
        from trytond.pool import Pool
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        Voucher = pool.get('isp.voucher')
        batch, = Batch.create([{'name': "Batch", 'profile': profile,
                    'quantity': quantity}])
        Batch.generate([batch])
        return [(v.id, v.code, v.password) for v in Voucher.search(
                [('batch', '=', batch.id)], order=[('id', 'ASC')])]


@contextlib.contextmanager
def simulator():
    "One RouterOS simulator in its own process; yields its port"
    port = free_port()
    process = subprocess.Popen([sys.executable, '-m', 'tools.routeros_sim',
            '--count', '1', '--base-port', str(port),
            '--password', PASSWORD], cwd=str(ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(
                    ('127.0.0.1', port), timeout=0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def hotspot_users(port):
    from trytond.modules.isp_network.routeros import connect
    with connect('127.0.0.1', 'admin', PASSWORD, port=port) as client:
        return len(client.print('/ip/hotspot/user', ('.id',)))


def measured(label, function, memory_run=None):
    "Time `function`, then the peak memory of `memory_run` (or none)"
    started = time.monotonic()
    result = function()
    elapsed = time.monotonic() - started
    print('BENCH %s %.2f s' % (label, elapsed), flush=True)
    if memory_run is not None:
        tracemalloc.start()
        memory_run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print('BENCH %s_peak_mb %.1f MB' % (label, peak / 1e6), flush=True)
    return result


def run(uri, vouchers):
    from trytond.pool import Pool
    stack = VoucherStack(uri, name='isp_voucher_push_bench')
    stack.create_database()
    stack.init_pool()
    try:
        with simulator() as port:
            with stack.transaction():
                company = stack.create_branch("Hotspot Branch")
            with stack.transaction(company=company):
                Router = Pool().get('isp.router')
                router, = Router.create([{
                            'name': "Hotspot", 'code': 'HS',
                            'host': '127.0.0.1', 'port': port,
                            'api_username': 'admin',
                            'api_password': PASSWORD, 'timeout': 30}])
                router = router.id
                profile = stack.create_voucher_profile(company, router)

            def push():
                def task():
                    Router = Pool().get('isp.router')
                    Router.provision([Router(router)])
                stack.call(task, context={'company': company})

            def generate():
                with stack.transaction(company=company) as transaction:
                    stack.create_vouchers(profile, vouchers)
                    # the push is measured on its own
                    transaction.tasks.clear()
            generate()
            measured('voucher_push_%d_s' % vouchers, push)
            assert hotspot_users(port) == vouchers, hotspot_users(port)
            with stack.transaction():
                router_record = Pool().get('isp.router')(router)
                assert router_record.voucher_state == 'synced', (
                    router_record.voucher_error)

            def mark_pending():
                from trytond.modules.isp_network.router import update_rows
                with stack.transaction():
                    update_rows(Pool().get('isp.router'), {
                            router: {'voucher_state': 'pending'}})

            def steady():
                mark_pending()
                push()
            measured('voucher_push_steady_s', steady, steady)

            def expire():
                def cron():
                    Voucher = Pool().get('isp.voucher')
                    used = Voucher.search([('state', '=', 'new')],
                        limit=1000, order=[('id', 'ASC')])
                    Voucher.activate(used, first_login=dt.datetime.now()
                        - dt.timedelta(days=2))
                    return Voucher.expire_due()
                expired = stack.call(cron, context={'company': company})
                return len(expired)
            count = measured('voucher_expire_push_1000_s', expire)
            assert count == 1000, count
            assert hotspot_users(port) == vouchers - 1000

            # peak memory of the 10,000 push: the users removed, again
            with stack.transaction():
                Voucher = Pool().get('isp.voucher')
                Voucher.write(Voucher.search([('state', '=', 'expired')]),
                    {'state': 'new', 'first_login': None, 'expiry': None})
            from trytond.modules.isp_network.routeros import connect
            with connect('127.0.0.1', 'admin', PASSWORD,
                    port=port) as client:
                ids = [r['.id'] for r in client.print(
                        '/ip/hotspot/user', ('.id',))]
                for start in range(0, len(ids), 500):
                    client.remove('/ip/hotspot/user', *ids[start:start + 500])
            mark_pending()
            tracemalloc.start()
            push()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print('BENCH voucher_push_%d_peak_mb %.1f MB' % (
                    vouchers, peak / 1e6), flush=True)
            assert hotspot_users(port) == vouchers
    finally:
        stack.drop_database()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vouchers', type=int, default=10_000)
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    args = parser.parse_args(argv)
    if args.uri:
        run(args.uri, args.vouchers)
    else:
        with private_cluster() as uri:
            run(uri, args.vouchers)


if __name__ == '__main__':
    main()
