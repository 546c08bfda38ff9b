# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Where a portal page's time goes: the database of bench/bench_portal.py
(10,000 subscribers, the pool of portal subscribers with their invoices),
one subscriber's pages requested in this process through trytond's WSGI
application, one at a time (no concurrency, no HTTP).

For each page (login page and form, dashboard, invoices, an invoice, its
PDF) prints the SQL queries of one request, and over `--repeat` requests
the median wall time and CPU time (`time.process_time`: what the page
costs a core on a quiet machine); `--profile PAGE` prints the cProfile of
one request of that page (cumulative, the `--top` first functions).

    .venv/bin/python bench/profile_portal.py [--repeat 20]
        [--profile dashboard] [--uri postgresql://...] [--reuse]
"""
import argparse
import cProfile
import os
import pathlib
import pstats
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_portal  # noqa: E402
from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_webhook import Stack  # noqa: E402

QUERIES = {'count': 0, 'log': None}


def _count_queries():
    "Count the SQL statements trytond sends (its cursor class)"
    from trytond.backend.postgresql import database
    execute = database.LoggingCursor.execute

    def counted(self, *args, **kwargs):
        QUERIES['count'] += 1
        if QUERIES['log'] is not None:
            QUERIES['log'].append(str(args[0])[:300])
        return execute(self, *args, **kwargs)
    database.LoggingCursor.execute = counted


class Browser:
    "One subscriber's cookies on trytond's WSGI application, in process"

    def __init__(self, database):
        from trytond.wsgi import app
        from werkzeug.test import Client
        self.client = Client(app)
        self.database = database
        self.token = None

    def request(self, method, path, body=None, expect=200):
        import html
        kwargs = {'headers': {'Host': bench_portal.HOST}}
        if body is not None:
            kwargs['data'] = body
        response = self.client.open('/%s%s' % (self.database, path),
            method=method, **kwargs)
        data = response.get_data()
        if response.status_code != expect:
            raise RuntimeError('%s %s: %s %s' % (method, path,
                    response.status_code, data[:300]))
        if response.content_type.startswith('text/html'):
            found = bench_portal.CSRF.search(data.decode())
            if found:
                self.token = html.unescape(found.group(1))
        return data


def measure(name, call, repeat, profile, top, sql=()):
    "Print the queries, median wall and CPU time of `call`"
    call()   # warm (caches of this process)
    QUERIES['count'] = 0
    QUERIES['log'] = [] if name in sql else None
    call()
    queries = QUERIES['count']
    for statement in QUERIES['log'] or []:
        print('    SQL', statement)
    QUERIES['log'] = None
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print('%-10s %3d queries, wall median %6.1f ms, CPU median %6.1f ms'
        ' (min %.1f ms)' % (name, queries,
            statistics.median(walls) * 1000, statistics.median(cpus) * 1000,
            min(cpus) * 1000), flush=True)
    if name in profile:
        profiler = cProfile.Profile()
        profiler.enable()
        call()
        profiler.disable()
        pstats.Stats(profiler).sort_stats('cumulative').print_stats(top)


def run(uri, repeat, profile, top, sql, subscribers, pool_size):
    # the PDF converted in this process: its CPU time counted here
    os.environ.setdefault('TRYTOND_ISP_BILLING__PDF_PROCESSES', '0')
    stack = Stack(uri, name='isp_portal_profile', workers=0, servers=1)
    try:
        logins = bench_portal.populate(stack, subscribers, pool_size)
        os.environ['TRYTOND_CONFIG'] = stack.config
        _count_queries()
        browser = Browser(stack.name)
        login = logins[0]

        def login_page(visitor=None):
            visitor = visitor or Browser(stack.name)
            visitor.request('GET', '/isp_base/portal/login')
            return visitor

        def login_form(visitor=None):
            visitor = login_page(visitor)
            visitor.request('POST', '/isp_base/portal/login', body={
                    'login': login, 'password': bench_portal.PASSWORD,
                    'csrf_token': visitor.token}, expect=303)
        login_form(browser)
        invoices = bench_portal.INVOICE_LINK.findall(browser.request('GET',
                '/isp_billing/portal/invoices').decode())
        invoice = invoices[0]
        pages = [
            ('login', login_page),
            ('dashboard', lambda: browser.request('GET',
                    '/isp_billing/portal/dashboard')),
            ('invoices', lambda: browser.request('GET',
                    '/isp_billing/portal/invoices')),
            ('invoice', lambda: browser.request('GET',
                    '/isp_billing/portal/invoice/%s' % invoice)),
            ('pdf', lambda: browser.request('GET',
                    '/isp_billing/portal/invoice/%s/pdf' % invoice)),
            # rendered anew: the kept PDFs forgotten
            ('pdfrender', lambda: (stack._sql('DELETE FROM isp_invoice_pdf',
                        database=stack.name), browser.request('GET',
                    '/isp_billing/portal/invoice/%s/pdf' % invoice))),
            ]
        for name, call in pages:
            measure(name, call, repeat, profile, top, sql)
        measure('loginform', login_form, max(3, repeat // 4), profile, top,
            sql)
    finally:
        stack.close()
        stack.drop_database()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--profile', action='append', default=[],
        help="page to profile: login, loginform, dashboard, invoices, "
        "invoice, pdf (repeatable)")
    parser.add_argument('--top', type=int, default=30)
    parser.add_argument('--sql', action='append', default=[],
        help="page whose SQL statements to print (repeatable)")
    parser.add_argument('--subscribers', type=int, default=10000)
    parser.add_argument('--pool', type=int, default=200)
    parser.add_argument('--reuse', action='store_true',
        help="the latest kept populated database of these sizes")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    bench_portal.REUSE = options.reuse
    args = (options.repeat, options.profile, options.top, options.sql,
        options.subscribers, options.pool)
    if options.uri:
        run(options.uri, *args)
    else:
        with private_cluster() as uri:
            run(uri, *args)


if __name__ == '__main__':
    main()
