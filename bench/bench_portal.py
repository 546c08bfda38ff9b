# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the customer portal on PostgreSQL.

A database with isp_billing activated holds one branch with 10,000
subscribers and their active services (`--subscribers`, populated in bulk
as bench/bench_billing.py does), 10,000 more customers with a posted
invoice each (bench/bench_webhook.py's bulk invoices: the invoice tables
are not empty), a Midtrans account, and for the first `--pool`
subscribers (200) a portal login, three posted invoices (one overdue) and
this cycle's usage.

`--users` (50) virtual subscribers, each with its own cookies and HTTP
connection, log in (login page, then the form) and browse for
`--duration` seconds (60): dashboard, invoices, one of their invoices, its
PDF, again, pausing `--think` seconds (3.0, varied by +-50 %) between two
pages as a person reading them does (with 1.0 the 50 subscribers ask
about 45 pages a second: more than 2 cores serve).  The server is
trytond's WSGI application in `--servers` processes (2: one per core;
bench/wsgi_server.py).

Prints:

- ``BENCH portal_p95_ms``: the 95th percentile of the answer time of the
  pages (login page, dashboard, invoices, invoice), measured by the
  client, from the request sent to the whole answer read (the
  subscribers arrive over `--ramp` seconds, 10);
- ``BENCH portal_login_p95_ms``: the same for the login form (its
  password hash checked: a deliberate cost, about 0.13 s of wall and
  0.19 s of CPU with Tryton's argon2; 50 of them in the 10 s ramp take a
  core), apart; the p95 of the pages with it is printed too;
- ``BENCH portal_pdf_p95_ms``: the same for the invoice PDF;
- ``BENCH portal_requests_per_s``: requests answered per second over the
  run.

Errors (any answer but the expected one) are counted and printed; the
figures are printed anyway.  The populated database is kept as a template
(keyed by the modules' content and the sizes): a second run skips the
population.

    .venv/bin/python bench/bench_portal.py [--duration 60] [--users 50]
        [--think 3.0] [--ramp 10] [--servers 2] [--subscribers 10000]
        [--pool 200] [--reuse] [--uri postgresql://postgres@127.0.0.1:5432/]
"""
import argparse
import datetime as dt
import html
import http.client
import http.cookies
import os
import pathlib
import random
import re
import sys
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    Stack,
    addons_hash,
    bulk_open_invoices,
    create_customers,
    create_gateway,
    create_open_invoices,
    percentile,
)

HOST = 'portal.bench.localhost'
# the modules' content hash, read once when the run starts (template name)
KEY = {'hash': addons_hash()}
REUSE = False
PASSWORD = 'Portal-Bench-2026'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
INVOICE_LINK = re.compile(r'/isp_billing/portal/invoice/(\d+)"')
GB = 10 ** 9


# -- population ---------------------------------------------------------------

def _portal_data(company, pool_size):
    """Portal logins, three posted invoices (the first overdue) and this
    cycle's usage for the first `pool_size` subscribers; return the
    logins"""
    from trytond.pool import Pool

    from trytond.modules.isp_billing.tests.payment_setup import (
        set_due_date,
    )
    pool = Pool()
    Company = pool.get('company.company')
    Service = pool.get('isp.service')
    Usage = pool.get('isp.service.usage')
    WebUser = pool.get('web.user')
    Invoice = pool.get('account.invoice')
    branch = Company(company)
    branch.isp_web_domain = HOST
    branch.save()
    services = Service.search([('company', '=', company)],
        order=[('id', 'ASC')], limit=pool_size)
    parties = [s.subscriber.id for s in services]
    logins = ['portal%05d@example.com' % i for i in range(len(parties))]
    WebUser.create([{'email': login, 'party': party,
                'isp_company': company, 'password': PASSWORD}
            for login, party in zip(logins, parties, strict=True)])
    today = dt.date.today()
    Usage.create([{'company': company, 'service': s.id,
                'date': s.get_usage_cycle_start(today),
                'bytes_in': (i % 7) * GB, 'bytes_out': (i % 40) * GB}
            for i, s in enumerate(services)])
    first = create_open_invoices(company, parties, payments=False)
    for _ in range(2):
        create_open_invoices(company, parties, payments=False)
    set_due_date(Invoice.browse(first), today - dt.timedelta(days=15))
    return logins


def populate(stack, subscribers, pool_size):
    """The populated database (from its template when kept); the portal
    logins"""
    from bench.bench_billing import bulk_services, clear_queue, setup_branch
    from tools.fake_gateways import FakeMidtrans
    template = 'isp_portal_%d_%d_%s' % (subscribers, pool_size,
        KEY['hash'])
    if not stack._exists(template) and REUSE:
        # --reuse: the latest kept template of these sizes (developing)
        names = stack._sql("SELECT datname FROM pg_database WHERE datname "
            "LIKE 'isp_portal_%d_%d_%%' ORDER BY oid DESC" % (
                subscribers, pool_size))
        if names:
            template = names[0][0]
    if stack._exists(template):
        _copy(stack, template)
        with stack.transaction():
            from trytond.pool import Pool
            WebUser = Pool().get('web.user')
            logins = sorted(u.email for u in WebUser.search([]))
        print('database copied from the kept template %s' % template,
            flush=True)
        return logins
    activation = stack.create_database()
    stack.init_pool()
    started = time.monotonic()
    today = dt.date.today()
    company, plans, router, location = stack.run_locked(
        setup_branch, tables=SEQUENCES)
    stack.run_locked(lambda: bulk_services(company, plans, router,
            location, 0, subscribers, today), company=company)
    print('  %d subscribers and services (%.1f s)' % (
            subscribers, time.monotonic() - started), flush=True)
    fake = FakeMidtrans()   # not started: no payment is opened
    with stack.transaction(company=company):
        create_gateway('midtrans', fake, company, stack.url)
        party, = create_customers(1, prefix='Customer')
    stack.run_locked(lambda: bulk_open_invoices(company, party,
            subscribers), tables=SEQUENCES, company=company)
    print('  %d other customers with an invoice (%.1f s)' % (
            subscribers, time.monotonic() - started), flush=True)
    logins = stack.run_locked(lambda: _portal_data(company, pool_size),
        tables=SEQUENCES, company=company)
    with stack.transaction():
        clear_queue()
    print('populated in %.1f s (the modules\' database: %.1f s)' % (
            time.monotonic() - started, activation), flush=True)
    stack.save_as_template(template)
    _copy(stack, template)
    return logins


def _copy(stack, template):
    "The benchmark's database, a copy of `template`, used in this process"
    stack._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % stack.name,
        'CREATE DATABASE "%s" TEMPLATE "%s"' % (stack.name, template))
    stack.init_pool()


# -- the virtual subscribers --------------------------------------------------

class Subscriber(threading.Thread):
    "A virtual subscriber: its own connection and cookies"

    def __init__(self, port, database, login, deadline, think, results):
        super().__init__(daemon=True)
        self.port = port
        self.database = database
        self.login = login
        self.deadline = deadline
        self.think = think
        self.results = results
        self.cookies = {}
        self.connection = None
        self.token = None
        self.random = random.Random(login)
        #: browse each page once (warming the server)
        self.once = False

    def request(self, method, path, kind, body=None, expect=200):
        "Send, read the whole answer, record (kind, seconds, ok)"
        headers = {'Host': HOST, 'Connection': 'keep-alive'}
        if self.cookies:
            headers['Cookie'] = '; '.join(
                '%s=%s' % item for item in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        path = '/%s%s' % (self.database, path)
        started = time.perf_counter()
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    '127.0.0.1', self.port, timeout=30)
            try:
                self.connection.request(method, path, body=body,
                    headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt:
                    self.results.append((kind, time.perf_counter()
                            - started, False))
                    return None, b''
        elapsed = time.perf_counter() - started
        if response.getheader('Connection', '').lower() == 'close':
            self.connection.close()
            self.connection = None
        for header in response.headers.get_all('Set-Cookie') or []:
            cookie = http.cookies.SimpleCookie(header)
            for name, morsel in cookie.items():
                if morsel['max-age'] == '0':
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        self.results.append((kind, elapsed, response.status == expect))
        if response.getheader('Content-Type', '').startswith('text/html'):
            found = CSRF.search(data.decode('utf-8', 'replace'))
            if found:
                self.token = html.unescape(found.group(1))
        return response, data

    def pause(self):
        time.sleep(self.think * self.random.uniform(0.5, 1.5))

    def run(self):
        self.request('GET', '/isp_base/portal/login', 'page')
        self.pause()
        response, _ = self.request('POST', '/isp_base/portal/login', 'login',
            body={'login': self.login, 'password': PASSWORD,
                'csrf_token': self.token or ''}, expect=303)
        invoices = []
        while time.monotonic() < self.deadline:
            self.pause()
            self.request('GET', '/isp_billing/portal/dashboard', 'page')
            self.pause()
            _, data = self.request('GET', '/isp_billing/portal/invoices',
                'page')
            invoices = INVOICE_LINK.findall(data.decode('utf-8',
                    'replace')) or invoices
            if not invoices:
                continue
            invoice = self.random.choice(invoices)
            self.pause()
            self.request('GET', '/isp_billing/portal/invoice/%s' % invoice,
                'page')
            self.pause()
            self.request('GET', '/isp_billing/portal/invoice/%s/pdf'
                % invoice, 'pdf')
            if self.once:
                break


def run(uri, duration, users, think, servers, subscribers, pool_size,
        ramp):
    stack = Stack(uri, name='isp_portal_bench', workers=0, servers=servers)
    with open(stack.config, 'a') as file:
        # 50 subscribers log in from one address within a second
        file.write('[session]\nmax_attempt_ip_network = 100000\n')
    try:
        logins = populate(stack, subscribers, max(pool_size, users))
        stack.start_server()
        # warm every server process (imports, caches, its PDF conversion
        # process): subscribers browsing each page once
        warm = []
        for login in logins[:servers * 3]:
            subscriber = Subscriber(stack.port, stack.name, login,
                time.monotonic() + 120, 0, warm)
            subscriber.once = True
            subscriber.start()
            subscriber.join()
        results = []
        deadline = time.monotonic() + duration
        chosen = random.Random(1).sample(logins, users)
        started = time.monotonic()
        threads = [Subscriber(stack.port, stack.name, login, deadline,
                think, results) for login in chosen]
        for thread in threads:
            thread.start()
            time.sleep(ramp / users)   # arrivals spread over the ramp
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        for kind in ['login', 'page', 'pdf']:
            times = [s * 1000 for k, s, _ in results if k == kind]
            if times:
                print('%s: %d, median %.0f ms, p95 %.0f ms, max %.0f ms' % (
                        kind, len(times), percentile(times, 50),
                        percentile(times, 95), max(times)))
        pages = [s * 1000 for kind, s, ok in results if kind == 'page']
        logins = [s * 1000 for kind, s, ok in results if kind == 'login']
        pdfs = [s * 1000 for kind, s, ok in results if kind == 'pdf']
        errors = sum(1 for _, _, ok in results if not ok)
        print('%d virtual subscribers for %.0f s (think %.1f s, ramp %.0f '
            's), %d server processes: %d pages, %d PDFs, %d errors' % (
                users, elapsed, think, ramp, servers, len(pages), len(pdfs),
                errors), flush=True)
        if pages and logins:
            print('p95 of the pages and login forms together: %.0f ms' % (
                    percentile(pages + logins, 95)))
        print('BENCH portal_p95_ms %.0f ms' % (
                percentile(pages, 95) if pages else -1), flush=True)
        print('BENCH portal_login_p95_ms %.0f ms' % (
                percentile(logins, 95) if logins else -1), flush=True)
        print('BENCH portal_pdf_p95_ms %.0f ms' % (
                percentile(pdfs, 95) if pdfs else -1), flush=True)
        print('BENCH portal_requests_per_s %.1f req/s' % (
                len(results) / elapsed), flush=True)
        if errors:
            print(stack.server_log()[-3000:], file=sys.stderr)
    finally:
        stack.stop_server()
        stack.close()
        stack.drop_database()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--duration', type=float, default=60,
        help="seconds of browsing (default 60)")
    parser.add_argument('--users', type=int, default=50,
        help="concurrent virtual subscribers (default 50)")
    parser.add_argument('--think', type=float, default=3.0,
        help="seconds between two pages of a subscriber, +-50%% "
        "(default 3.0)")
    parser.add_argument('--ramp', type=float, default=10.0,
        help="seconds over which the subscribers arrive and log in "
        "(default 10)")
    parser.add_argument('--servers', type=int, default=2,
        help="server processes (default 2, bench/wsgi_server.py)")
    parser.add_argument('--subscribers', type=int, default=10000,
        help="subscribers in the database (default 10000)")
    parser.add_argument('--pool', type=int, default=200,
        help="subscribers with a portal login and invoices (default 200)")
    parser.add_argument('--reuse', action='store_true',
        help="use the latest kept populated database of these sizes even "
        "when made from other module sources (developing)")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    global REUSE
    REUSE = options.reuse
    args = (options.duration, options.users, options.think,
        options.servers, options.subscribers, options.pool, options.ramp)
    if options.uri:
        run(options.uri, *args)
    else:
        with private_cluster() as uri:
            run(uri, *args)


if __name__ == '__main__':
    main()
