# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the e-voucher shop on PostgreSQL: a `trytond` server, queue
workers, the fake Midtrans and the RouterOS simulator (docs/shop.md).

`--buyers` concurrent buyers (HTTP sessions on the shop's host) each open
the buy page and post the form `--orders` / `--buyers` times; then each
order is paid at the fake gateway (which posts its notification to the
server) and its buyer reads the order page until the code shows.  Prints::

    BENCH shop_orders_per_s <n> /s          orders placed per second
    BENCH shop_paid_to_code_p95_s <s> s     notification sent -> code shown

Needs a PostgreSQL cluster: --uri or ISP_TEST_PG_URI, else a private one
is started (scripts/lib.sh).  The database is copied from the isp_voucher
template of tests/test_voucher_radius.py (made when missing)."""
import argparse
import os
import pathlib
import re
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_radius import RadiusStack  # noqa: E402
from bench.bench_voucher import Stack as VoucherStack  # noqa: E402
from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    create_branch,
    create_gateway,
    percentile,
    wait_until,
)

HOST = 'shop.localhost'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class ShopStack(VoucherStack):
    """isp_voucher activated, a `trytond` server and queue workers; the
    database copied from the template of tests/test_voucher_radius.py
    (isp_voucher activated, made once per content of the modules, under
    the same lock)"""
    db_params = RadiusStack.db_params

    def __init__(self, uri, name, workers=1, profile=None):
        super().__init__(uri, name=name)
        self.workers = workers
        self.profile = profile

    def create_database(self, template=None):
        base = self.module_template('isp_voucher')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, base))

    def start_workers(self):
        """The workers; with `profile` (a directory) each task profiled
        there (bench/profiled_worker.py)"""
        if not self.profile:
            return super().start_workers()
        import subprocess
        os.makedirs(self.profile, exist_ok=True)
        env = self._env()
        env['ISP_PROFILE_DIR'] = self.profile
        self.process = subprocess.Popen([sys.executable, '-m',
                'bench.profiled_worker', '-c', self.config, '-d', self.name,
                '-n', str(self.workers), '-t', '1'], env=env, cwd=ROOT,
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.directory, 'worker.log'), 'w'))

    def queue_summary(self):
        """Print, per task of the queue, how many ran, their wait (queued
        to started) and run times: where the time went"""
        rows = self._sql(
            "SELECT data->>'model' || '.' || (data->>'method'), COUNT(*), "
            "COUNT(*) FILTER (WHERE scheduled_at IS NOT NULL), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY "
            "EXTRACT(EPOCH FROM dequeued_at - enqueued_at)), "
            "MAX(EXTRACT(EPOCH FROM dequeued_at - enqueued_at)), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY "
            "EXTRACT(EPOCH FROM finished_at - dequeued_at)), "
            "SUM(EXTRACT(EPOCH FROM finished_at - dequeued_at)), "
            "COUNT(*) FILTER (WHERE finished_at IS NULL) "
            "FROM ir_queue GROUP BY 1 ORDER BY 7 DESC NULLS LAST",
            database=self.name)
        print('QUEUE task: count (rescheduled) wait median/max s, '
            'run median/total s, unfinished')
        for name, count, later, wait, wait_max, run, total, left in rows:
            print('QUEUE %s: %d (%d) %.2f/%.2f s, %.2f/%.1f s, %d' % (
                    name, count, later, wait or 0, wait_max or 0, run or 0,
                    total or 0, left))


def setup_shop(sim, restock=3):
    """A branch on HOST with its 11 % tax and a profile sold online
    (`restock`) on the simulated router `sim`; the ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from trytond.modules.isp_billing.tests.payment_setup import (
        create_sales_tax,
    )
    from trytond.modules.isp_voucher.tests.voucher_setup import (
        create_voucher_product,
    )
    pool = Pool()
    Company = pool.get('company.company')
    Router = pool.get('isp.router')
    Profile = pool.get('isp.voucher.profile')
    company = Company(create_branch("NetKita Shop"))
    company.isp_web_domain = HOST
    company.save()
    with Transaction().set_context(company=company.id):
        create_sales_tax(company, '0.11')
        router, = Router.create([{
                    'name': "Hotspot", 'code': 'HS',
                    'host': sim.address[0], 'port': sim.address[1],
                    'use_ssl': False, 'api_password': 'shop'}])
        profile, = Profile.create([{
                    'company': company.id, 'name': "1 hari 5M",
                    'product': create_voucher_product(company).id,
                    'router': router.id, 'validity': 1,
                    'validity_unit': 'days', 'rate_limit': '2M/5M',
                    'data_quota': 2000, 'shop': True,
                    'shop_restock': restock,
                    'hotspot_dns_name': 'hotspot.netkita.test'}])
    return {'company': company.id, 'profile': profile.id}


def start_shop(uri, name, midtrans, sim, workers=1, restock=3,
        profile=None):
    "The stack with its shop, gateway, workers and server started"
    stack = ShopStack(uri, name=name, workers=workers, profile=profile)
    stack.create_database()
    stack.init_pool()
    stack.ids = stack.run_locked(lambda: setup_shop(sim, restock),
        tables=SEQUENCES)
    with stack.transaction(company=stack.ids['company']):
        stack.ids['gateway'] = create_gateway('midtrans', midtrans,
            stack.ids['company'], stack.url)
    stack.start_workers()
    stack.start_server()
    return stack


class Buyer:
    "One buyer's HTTP session on the shop's host"

    def __init__(self, stack):
        import requests
        self.stack = stack
        self.session = requests.Session()
        self.session.headers['Host'] = '%s:%d' % (HOST, stack.port)
        self.base = '%s/%s' % (stack.url, stack.name)

    def order(self, phone):
        "Place an order; the gateway's redirect URL"
        path = '/isp_voucher/shop/buy/%d' % self.stack.ids['profile']
        page = self.session.get(self.base + path, timeout=30)
        token = CSRF.search(page.text).group(1)
        amount = re.search(r'name="amount" value="([^"]+)"',
            page.text).group(1)
        answer = self.session.post(self.base + path, data={
                'csrf_token': token, 'phone': phone, 'amount': amount,
                'gateway': str(self.stack.ids['gateway'])},
            allow_redirects=False, timeout=30)
        assert answer.status_code == 303, (answer.status_code,
            answer.text[:500])
        return answer.headers['Location']

    def code_shown(self, order_url):
        "Whether the order page shows the code"
        path = order_url.split('//', 1)[1].split('/', 1)[1]
        page = self.session.get(self.stack.url + '/' + path, timeout=30)
        return 'id="voucher-code"' in page.text


def run(uri, orders, buyers, workers, profile=None):
    from tools.fake_gateways import FakeMidtrans
    from tools.routeros_sim import Router as SimRouter
    midtrans = FakeMidtrans().start()
    sim = SimRouter(name='shop', version='7.16.2', password='shop')
    sim.start()
    stack = None
    try:
        stack = start_shop(uri, 'isp_shop_bench', midtrans, sim,
            workers=workers, restock=max(10, orders), profile=profile)
        sessions = [Buyer(stack) for _ in range(buyers)]
        placed = [[] for _ in range(buyers)]

        def place(index):
            for n in range(index, orders, buyers):
                placed[index].append(sessions[index].order(
                    '0812%08d' % n))
        started = time.monotonic()
        threads = [threading.Thread(target=place, args=(i,))
            for i in range(buyers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        total = sum(len(p) for p in placed)
        print('BENCH shop_orders_per_s %.1f /s (%d orders, %d buyers, '
            '%.1f s)' % (total / elapsed, total, buyers, elapsed))

        latencies = [[] for _ in range(buyers)]

        def pay(index):
            buyer = sessions[index]
            for redirect in placed[index]:
                txn = midtrans.find(redirect.rsplit('/', 1)[1])
                sent = time.monotonic()
                midtrans.pay(txn.reference)
                url = txn.return_url
                assert wait_until(lambda url=url: buyer.code_shown(url),
                    timeout=120, interval=0.25), txn.reference
                latencies[index].append(time.monotonic() - sent)
        threads = [threading.Thread(target=pay, args=(i,))
            for i in range(buyers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        values = [v for values in latencies for v in values]
        print('BENCH shop_paid_to_code_p95_s %.2f s (median %.2f s, %d '
            'orders paid by %d buyers at once, %d worker(s))' % (
                percentile(values, 95), percentile(values, 50),
                len(values), buyers, workers))
        if profile:
            stack.queue_summary()
    finally:
        if stack is not None:
            stack.stop_server()
            stack.stop_workers()
            stack.drop_database()
        sim.stop()
        midtrans.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--orders', type=int, default=100,
        help="orders placed and paid (default 100)")
    parser.add_argument('--buyers', type=int, default=20,
        help="concurrent buyers (default 20)")
    parser.add_argument('--workers', type=int, default=1,
        help="trytond-worker processes (default 1)")
    parser.add_argument('--profile', metavar='DIR',
        help="profile each task of the workers into DIR (read it with "
        "bench/profiled_worker.py --report DIR) and print the queue's "
        "tasks: counts, waits, run times")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    args = (options.orders, options.buyers, options.workers,
        options.profile and os.path.abspath(options.profile))
    if options.uri:
        run(options.uri, *args)
    else:
        with private_cluster() as uri:
            run(uri, *args)


if __name__ == '__main__':
    main()
