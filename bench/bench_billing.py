# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the monthly billing run on PostgreSQL, with queue workers.

For each size N (1,000, 5,000 and 10,000 by default) a database holds one
branch (chart of accounts, fiscal year, PPN 11 % on the plans), four plans,
a router and N active services of as many subscribers (names, NIKs and
phones from tools/demo_data's deterministic generator), billing day 1,
billed up to the end of the previous month.  The bench runs the billing the
way production does: the cron method `isp.service.isp_bill_due` for the
branch and today, then `trytond-worker` processes (`--workers`, 2 by
default) execute the queued `isp_bill_batch` tasks.  It measures the wall
time from the cron call to the last batch finished, and the peak resident
memory (VmHWM) of the worker processes, then checks the result: N posted
invoices with numbers and taxes, N `invoice_issued` notices, every
`billed_until` moved to the end of this month.

The stock path is measured in the same run on the 1,000 services of the
first size, in a copy of the same database: each service becomes a
`sale.subscription` (sale_subscription) with a monthly line of the plan's
product, its consumption is generated (timed apart, not counted), then
`sale.subscription.generate_invoice(date)` and `account.invoice.post` in
batches of 200 (each in its own transaction, restarted on the lock
requests as the worker does) are timed.

Prints::

    BENCH billing_10000_s <s> s
    BENCH billing_invoices_per_s <n> inv/s          (at the largest size)
    BENCH billing_peak_mb_<N> <mb> MB               (for each size)
    BENCH billing_speedup_vs_stock <x>               (stock time / product
                                                      time on 1,000)

    .venv/bin/python bench/bench_billing.py [--sizes 1000,5000,10000]
        [--workers 2] [--optimize] [--no-stock] [--keep]
        [--profile N] [--setup-only]
        [--uri postgresql://postgres@127.0.0.1:5432/]

The services are populated in bulk (bench/bulk.py: the first with the ORM,
the others copies of its rows), timed as `BENCH billing_setup_s <s> s` at
10,000; `--setup-only` only populates (again, even with a kept template).
Populated databases are kept as templates named after N, the month and the
modules' content (`isp_bill_<N>_<YYYYMM>_<hash>`), so a second run skips
the population (`--reuse` takes one made from other module sources).
`--keep` keeps the billed databases (`isp_bill_run_<N>`).
`--optimize` runs the workers with `python -O` (production images do not).
`--profile N` bills the first batch of N services in this process under
cProfile and prints the profile instead of running the benchmark.
Never asserts a time.
"""
import argparse
import contextlib
import cProfile
import datetime as dt
import io
import os
import pathlib
import pstats
import subprocess
import sys
import time
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV = pathlib.Path(os.environ.get('ISP_VENV', ROOT / '.venv'))
BIN = VENV / 'bin'

from bench.bench_notify import private_cluster, wait_until  # noqa: E402
from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    addons_hash,
    create_branch,
)
from bench.bench_webhook import Stack as _Stack  # noqa: E402

PLANS = [
    # name, download, upload kbit/s, price (IDR)
    ("Home 10 Mbps", 10000, 3000, '166500'),
    ("Home 20 Mbps", 20000, 5000, '250000'),
    ("Family 50 Mbps", 50000, 10000, '400000'),
    ("Business 100 Mbps", 100000, 30000, '1100000'),
    ]
BILLING = {'isp_bill_batch', 'isp_post_batch'}
REUSE = False
# the modules' content hash, read once when the run starts (template names)
KEY = {'hash': addons_hash()}
STOCK_BATCH = 200


def month_start(date):
    return date.replace(day=1)


def month_end(date):
    following = (date.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


class Stack(_Stack):
    "The webhook bench's stack, workers optionally under `python -O`"

    def __init__(self, uri, name, workers=2, optimize=False):
        super().__init__(uri, name=name, workers=workers)
        self.optimize = optimize

    def start_workers(self):
        command = [str(BIN / 'trytond-worker'), '-c', self.config,
            '-d', self.name, '-n', str(self.workers), '-t', '1']
        if self.optimize:
            command = [str(BIN / 'python'), '-O'] + command
        self.process = subprocess.Popen(command, env=self._env(),
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.directory, 'worker.log'), 'w'))

    def create_database(self, template=None):
        """Create the database from `template`, or from the template with
        isp_billing activated (made first when missing:
        `module_template`)"""
        started = time.monotonic()
        if not (template and self._exists(template)):
            template = self.module_template('isp_billing')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))
        return time.monotonic() - started

    def run_locked(self, func, tables=(), user=0, **context):
        """Run `func` in a committed transaction, restarted with the locks
        it asks for (as the worker does); the requests are in
        `self.lock_requests`"""
        from trytond.transaction import Transaction, TransactionError
        extras = {'_lock_tables': list(tables)} if tables else {}
        self.lock_requests = []
        while True:
            with Transaction().start(self.name, user, context=context,
                    **extras) as transaction:
                try:
                    return func()
                except TransactionError as exception:
                    transaction.rollback()
                    self.lock_requests.append('%s %s' % (
                            type(exception).__name__,
                            getattr(exception, '_table', '')))
                    exception.fix(extras)
                    continue

    def worker_pids(self):
        "The worker manager and its children (its process group)"
        pids = []
        if self.process is None:
            return pids
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as file:
                    fields = file.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:   # process group
                pids.append(int(entry))
        return pids

    def peak_rss_mb(self):
        "{pid: VmHWM in MB} of the worker processes"
        result = {}
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                with open('/proc/%d/status' % pid) as file:
                    for line in file:
                        if line.startswith('VmHWM:'):
                            result[pid] = int(line.split()[1]) / 1024
        return result


# -- population (inside transactions of the stack) ---------------------------

def setup_branch():
    """A branch (chart, fiscal year, payment methods), PPN 11 % on the
    plans, four plans, a router and a WhatsApp provider: the ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Account = pool.get('account.account')
    Tax = pool.get('account.tax')
    Configuration = pool.get('isp.billing.configuration')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    Router = pool.get('isp.router')
    Location = pool.get('isp.location')
    Provider = pool.get('isp.message.provider')
    company = create_branch("NetKita Billing Bench")
    with Transaction().set_context(company=company):
        tax_account, = Account.search([
                ('company', '=', company), ('code', '=', '6.3.6')], limit=1)
        tax, = Tax.create([{
                    'name': "PPN 11%", 'description': "PPN 11%",
                    'type': 'percentage', 'rate': Decimal('0.11'),
                    'company': company,
                    'invoice_account': tax_account.id,
                    'credit_note_account': tax_account.id}])
        Configuration.write([Configuration(1)], {
                'tax': tax.id,
                'pay_url': 'https://pay.example.net/{number}'})
        unit, = Uom.search([('name', '=', 'Unit')])
        plans = Template.create([{
                    'name': name, 'isp_plan': True, 'type': 'service',
                    'isp_company': company, 'default_uom': unit.id,
                    'list_price': Decimal(price),
                    'download_rate': down, 'upload_rate': up,
                    'products': [('create', [{}])],
                    } for name, down, up, price in PLANS])
        location, = Location.create([{'code': 'BNC', 'name': "Bench"}])
        router, = Router.create([{
                    'name': "Bench", 'code': 'BNC', 'host': '127.0.0.1',
                    'port': 1, 'use_ssl': False, 'api_password': 'bench'}])
        Provider.create([{
                    'name': "Meta bench", 'type': 'whatsapp_meta',
                    'company': company,
                    'base_url': 'http://127.0.0.1:1/v21.0',
                    'account': '1055', 'token': 'bench-token',
                    'capacity': 100000, 'priority': 10, 'timeout': 5}])
    return company, [p.id for p in plans], router.id, location.id


def create_services(company, plans, router, location, start, count, today):
    """`count` subscribers (from tools/demo_data's generator, from index
    `start`) and an active service each, billed until the end of the
    previous month"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from tools.demo_data import generate_subscribers
    pool = Pool()
    Party = pool.get('party.party')
    Service = pool.get('isp.service')
    rows = list(generate_subscribers(count, 'ID', start=start))
    billed_until = month_start(today) - dt.timedelta(days=1)
    activation = month_start(billed_until) - dt.timedelta(days=61)
    with Transaction().set_context(company=company):
        parties = Party.create([{
                    'name': row['name'], 'is_subscriber': True,
                    'isp_company': company,
                    'national_id': row['national_id'],
                    'whatsapp': row['whatsapp'],
                    'addresses': [('create', [{'street': "Jl. Bench %d" % (
                                        start + i)}])],
                    } for i, row in enumerate(rows)])
        Service.create([{
                    'company': company, 'subscriber': party.id,
                    'plan': plans[row['plan_index']], 'router': router,
                    'location': location,
                    'username': 'BNC%06d' % (start + i),
                    'password': 'pw%06d' % (start + i),
                    'customer_id': 'BNC-BNC010126-%06d' % (start + i),
                    'state': 'active', 'activation_date': activation,
                    'billing_day': 1, 'billed_until': billed_until,
                    } for i, (party, row) in enumerate(
                        zip(parties, rows, strict=True))])


def bulk_services(company, plans, router, location, start, count, today):
    """What create_services makes, the first subscriber and service with
    the ORM and the others copies of their rows (bench/bulk.py) with their
    own names, NIKs, phones, codes (from the same sequences), address,
    plan, user name, password and customer ID"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from bench import bulk
    from tools.demo_data import generate_subscribers
    pool = Pool()
    Configuration = pool.get('isp.configuration')
    Service = pool.get('isp.service')
    create_services(company, plans, router, location, start, 1, today)
    if count == 1:
        return
    service, = Service.search([('username', '=', 'BNC%06d' % start)])
    numbers = range(start + 1, start + count)
    rows = list(generate_subscribers(count, 'ID', start=start))[1:]
    with Transaction().set_context(company=company):
        sequence = Configuration(1).get_multivalue(
            'subscriber_sequence', company=company)
        codes = list(sequence.get_many(len(rows)))
    parties, _ = bulk.clone_parties(service.subscriber.id, [{
                'name': row['name'], 'national_id': row['national_id'],
                'whatsapp': row['whatsapp'], 'subscriber_code': code,
                } for row, code in zip(rows, codes, strict=True)],
        addresses=[{'street_unstructured': "Jl. Bench %d" % i}
            for i in numbers])
    bulk.clone('isp_service', service.id, [{
                'subscriber': party, 'plan': plans[row['plan_index']],
                'username': 'BNC%06d' % i, 'password': 'pw%06d' % i,
                'customer_id': 'BNC-BNC010126-%06d' % i,
                } for i, party, row in zip(numbers, parties, rows,
                strict=True)])


def clear_queue():
    from trytond.pool import Pool
    Queue = Pool().get('ir.queue')
    Queue.delete(Queue.search([]))


def populate(stack, size, today, cold=False):
    """Create the database of `size` services (from its template if kept
    and not `cold`); print the setup time when it populates"""
    prefix = 'isp_bill_%d_%s_' % (size, today.strftime('%Y%m'))
    template = prefix + KEY['hash']
    if REUSE and not cold and not stack._exists(template):
        # --reuse: any kept template of this size and month (developing)
        names = stack._sql("SELECT datname FROM pg_database WHERE datname "
            "LIKE '%s%%' ORDER BY oid DESC" % prefix)
        if names:
            template = names[0][0]
    if stack._exists(template) and not cold:
        stack.create_database(template=template)
        stack.init_pool()
        return template
    activation = stack.create_database()
    stack.init_pool()
    started = time.monotonic()
    company, plans, router, location = stack.run_locked(
        setup_branch, tables=SEQUENCES)
    stack.run_locked(lambda: bulk_services(
            company, plans, router, location, 0, size, today),
        company=company)
    with stack.transaction():
        clear_queue()
    elapsed = time.monotonic() - started
    print('populated %d services in %.1f s (the modules\' database: %.1f '
        's, made once per module content)' % (size, elapsed, activation),
        flush=True)
    if size == 10000:
        print('BENCH billing_setup_s %.1f s' % elapsed, flush=True)
    stack.save_as_template(template)
    stack.create_database(template=template)
    stack.init_pool()
    return template


def branch_id():
    from trytond.pool import Pool
    Company = Pool().get('company.company')
    company, = Company.search([('party.name', '=', "NetKita Billing Bench")])
    return company.id


# -- the product's billing run ------------------------------------------------

def posted_count(company, today):
    "The posted invoices of the run (one cheap query)"
    from trytond.pool import Pool
    Invoice = Pool().get('account.invoice')
    return Invoice.search_count([
            ('company', '=', company), ('type', '=', 'out'),
            ('invoice_date', '=', today), ('state', '=', 'posted')])


def queue_state():
    """(tasks not started yet, tasks started and never finished): a task
    that failed on a lock stays started and the worker queues a copy"""
    from trytond.pool import Pool
    Queue = Pool().get('ir.queue')
    waiting = Queue.search_count([('dequeued_at', '=', None)])
    dropped = sorted('%s|%s' % (task.data.get('model'),
            task.data.get('method')) for task in Queue.search([
                ('dequeued_at', '!=', None), ('finished_at', '=', None)]))
    return waiting, dropped


def batch_durations(since):
    "{task: (count, mean run s, max run s)} of the billing tasks"
    from trytond.pool import Pool
    Queue = Pool().get('ir.queue')
    runs = {}
    for task in Queue.search([
                ('enqueued_at', '>=', since),
                ('finished_at', '!=', None)]):
        if task.data.get('method') in BILLING:
            runs.setdefault(task.data['method'], []).append(
                (task.finished_at - task.dequeued_at).total_seconds())
    return {m: (len(r), sum(r) / len(r), max(r)) for m, r in runs.items()}


def check_billed(company, size, today):
    """Assert the run's result: `size` posted invoices with numbers and
    taxes, as many notices, billed_until moved; return a summary"""
    from trytond.pool import Pool
    pool = Pool()
    Invoice = pool.get('account.invoice')
    InvoiceTax = pool.get('account.invoice.tax')
    Message = pool.get('isp.message')
    Service = pool.get('isp.service')
    invoices = Invoice.search([
            ('company', '=', company), ('type', '=', 'out'),
            ('invoice_date', '=', today)])
    posted = [i for i in invoices if i.state == 'posted' and i.number
        and i.move and i.move.state == 'posted']
    assert len(invoices) == size, (len(invoices), size)
    assert len(posted) == size, (len(posted), size)
    assert len({i.number for i in posted}) == size
    taxed = InvoiceTax.search_count(
        [('invoice', 'in', [i.id for i in posted])])
    assert taxed == size, (taxed, size)
    assert all(i.tax_amount > 0 for i in posted)
    notices = Message.search_count([
            ('event', '=', 'invoice_issued'), ('company', '=', company)])
    assert notices == size, (notices, size)
    moved = Service.search_count([
            ('company', '=', company),
            ('billed_until', '=', month_end(today))])
    assert moved == size, (moved, size)
    return '%d posted invoices (%s..%s), %d tax lines, %d notices, ' \
        '%d services billed until %s' % (len(posted),
            min((i.number for i in posted), key=lambda n: (len(n), n)),
            max((i.number for i in posted), key=lambda n: (len(n), n)),
            taxed, notices, moved, month_end(today))


def run_product(uri, size, workers, today, optimize, keep, fake):
    stack = Stack(uri, 'isp_bill_run_%d' % size, workers=workers,
        optimize=optimize)
    populate(stack, size, today)
    try:
        with stack.transaction() as transaction:
            from trytond.pool import Pool
            Provider = Pool().get('isp.message.provider')
            Provider.write(Provider.search([]), {
                    'base_url': fake.url + '/v21.0'})
            company = branch_id()
            clear_queue()
            transaction.commit()
        stack.start_workers()
        time.sleep(3)    # let the worker processes load the pool
        load = os.getloadavg()[0]
        since = dt.datetime.now()
        started = time.monotonic()
        # as the cron runs it: restarted with the locks it asks for
        queued = stack.run_locked(
            lambda: Pool().get('isp.service').isp_bill_due(today),
            company=company)
        cron = time.monotonic() - started

        def billed():
            with stack.transaction():
                return posted_count(company, today) >= queued
        wait_until(billed, timeout=3600, interval=0.25)
        elapsed = time.monotonic() - started
        peak = stack.peak_rss_mb()

        def drained():
            with stack.transaction():
                return queue_state()[0] == 0
        wait_until(drained, timeout=900, interval=0.5)
        drained_after = time.monotonic() - started
        with stack.transaction():
            batches = batch_durations(since)
            dropped = queue_state()[1]
            summary = check_billed(company, size, today)
    finally:
        stack.stop_workers()
        if keep:
            stack.close()
        else:
            with contextlib.suppress(Exception):
                stack.drop_database()
    print('N=%d: %d services queued in %.1f s by the cron, billed in '
        '%.1f s (%.1f inv/s) by %d workers; queue drained (notices sent) '
        'after %.1f s; load at start %.2f; %d tasks failed on a lock and '
        'were queued again by the worker%s' % (size, queued, cron, elapsed,
            size / elapsed, workers, drained_after, load, len(dropped),
            ' (%s)' % ', '.join(dropped) if dropped else ''),
        flush=True)
    for method, (count, mean, longest) in sorted(batches.items()):
        print('  %s: %d tasks, mean %.1f s, max %.1f s' % (
                method, count, mean, longest))
    print('  %s' % summary)
    print('  worker peak RSS (VmHWM) MB: %s' % ', '.join(
            '%.0f' % v for v in sorted(peak.values())), flush=True)
    return elapsed, max(peak.values()) if peak else float('nan')


# -- the stock path -----------------------------------------------------------

def create_subscriptions(company, today):
    """A running sale.subscription of each service's subscriber, a monthly
    line of the plan's product at the plan's price, invoiced from the
    first of this month; return the subscription ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Service = pool.get('isp.service')
    RuleSet = pool.get('sale.subscription.recurrence.rule.set')
    SubService = pool.get('sale.subscription.service')
    Subscription = pool.get('sale.subscription')
    with Transaction().set_context(company=company):
        monthly, = RuleSet.create([{'name': "Monthly",
                    'rules': [('create', [{'freq': 'monthly',
                                    'interval': 1}])]}])
        services = Service.search([('company', '=', company)],
            order=[('id', 'ASC')])
        sub_services = {}
        for plan in {s.plan for s in services}:
            sub_services[plan.id], = SubService.create([{
                        'product': plan.products[0].id,
                        'consumption_recurrence': monthly.id}])
        first = month_start(today)
        subscriptions = Subscription.create([{
                    'company': company, 'party': s.subscriber.id,
                    'invoice_address': s.subscriber.addresses[0].id,
                    'currency': s.company.currency.id,
                    'start_date': first, 'invoice_start_date': first,
                    'invoice_recurrence': monthly.id,
                    'lines': [('create', [{
                                    'service': sub_services[s.plan.id].id,
                                    # on_change_service's copy
                                    'consumption_recurrence': monthly.id,
                                    'quantity': 1,
                                    'unit': s.plan.default_uom.id,
                                    'unit_price': s.plan.list_price,
                                    'start_date': first,
                                    }])],
                    } for s in services])
        Subscription.quote(subscriptions)
        Subscription.run(subscriptions)
    return [s.id for s in subscriptions]


def run_stock(uri, template, today):
    """Time sale_subscription's generate_invoice then account.invoice.post
    in batches on a copy of the 1,000-service database"""
    from trytond.pool import Pool
    stack = Stack(uri, 'isp_bill_stock')
    stack.create_database(template=template)
    stack.init_pool()
    date = month_start(today)
    try:
        with stack.transaction():
            company = branch_id()
        stack.run_locked(lambda: create_subscriptions(company, today),
            tables=SEQUENCES, company=company)

        def consume():
            Line = Pool().get('sale.subscription.line')
            Line.generate_consumption(date=date)
        started = time.monotonic()
        stack.run_locked(consume, company=company)
        consumption = time.monotonic() - started

        def generate():
            Subscription = Pool().get('sale.subscription')
            Invoice = Pool().get('account.invoice')
            Subscription.generate_invoice(date=date)
            return [i.id for i in Invoice.search([
                        ('state', '=', 'draft'), ('type', '=', 'out')],
                    order=[('id', 'ASC')])]
        load = os.getloadavg()[0]
        started = time.monotonic()
        invoice_ids = stack.run_locked(generate, company=company)
        created = time.monotonic() - started

        def post(ids):
            Invoice = Pool().get('account.invoice')
            Invoice.post(Invoice.browse(ids))
        started = time.monotonic()
        for i in range(0, len(invoice_ids), STOCK_BATCH):
            stack.run_locked(lambda i=i: post(
                    invoice_ids[i:i + STOCK_BATCH]), company=company)
        posted = time.monotonic() - started
        with stack.transaction():
            Invoice = Pool().get('account.invoice')
            count = Invoice.search_count([
                    ('state', '=', 'posted'), ('number', '!=', None),
                    ('tax_amount', '>', 0)])
    finally:
        with contextlib.suppress(Exception):
            stack.drop_database()
    total = created + posted
    n = len(invoice_ids)
    print('stock path on %d subscriptions (load at start %.2f): consumptions'
        ' %.1f s (not counted), generate_invoice %.1f s (%.1f inv/s), post '
        'in batches of %d %.1f s (%.1f inv/s): %.1f s, %.1f inv/s; %d posted'
        ' invoices with taxes' % (n, load, consumption, created, n / created,
            STOCK_BATCH, posted, n / posted, total, n / total, count),
        flush=True)
    assert n and count == n, (count, n)
    return total


# -- profile of one batch -----------------------------------------------------

def run_profile(uri, size, today):
    "Bill the first `size` services in this process under cProfile"
    from trytond.pool import Pool
    stack = Stack(uri, 'isp_bill_profile')
    populate(stack, max(size, 1000), today)
    try:
        with stack.transaction():
            company = branch_id()
            Service = Pool().get('isp.service')
            ids = [s.id for s in Service.search([], order=[('id', 'ASC')],
                    limit=size)]
        profile = cProfile.Profile()
        attempts = []

        def bill():
            attempts.append(1)
            Service = Pool().get('isp.service')
            profile.enable()
            try:
                Service._isp_bill(Service.browse(ids), today, post=False)
            finally:
                profile.disable()

        def post():
            attempts.append(1)
            Invoice = Pool().get('account.invoice')
            profile.enable()
            try:
                Invoice.isp_post_batch(Invoice.search([
                            ('state', '=', 'validated')]))
            finally:
                profile.disable()
        started = time.monotonic()
        stack.run_locked(bill, company=company)
        requests = stack.lock_requests
        stack.run_locked(post, company=company)
        stack.lock_requests = requests + stack.lock_requests
        elapsed = time.monotonic() - started
        with stack.transaction():
            print(check_billed(company, size, today))
    finally:
        with contextlib.suppress(Exception):
            stack.drop_database()
    print('%d services billed in %.2f s (%.1f inv/s), %d attempts (%s)' % (
            size, elapsed, size / elapsed, len(attempts),
            ', '.join(stack.lock_requests)))
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.dump_stats('/tmp/isp_bill_profile.pstats')
    stats.sort_stats('cumulative').print_stats(45)
    stats.sort_stats('tottime').print_stats(25)
    print(out.getvalue())


def setup_only(uri, sizes):
    "Populate each size (cold: without the kept templates), time only"
    today = dt.date.today()
    for size in sizes:
        stack = Stack(uri, 'isp_bill_run_%d' % size)
        try:
            populate(stack, size, today, cold=True)
        finally:
            with contextlib.suppress(Exception):
                stack.drop_database()


def run(uri, sizes, workers, optimize, stock, keep, profile):
    from tools.fake_messaging import FakeMeta
    today = dt.date.today()
    if profile:
        run_profile(uri, profile, today)
        return
    fake = FakeMeta(token='bench-token', phone_number_id='1055').start()
    results = {}
    stock_time = None
    try:
        for size in sizes:
            if stock and stock_time is None and size == 1000:
                # the same 1,000 services, in the same run
                holder = Stack(uri, 'isp_bill_run_%d' % size)
                template = populate(holder, size, today)
                holder.close()
                holder._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                    % holder.name)
                stock_time = run_stock(uri, template, today)
            results[size] = run_product(
                uri, size, workers, today, optimize, keep, fake)
    finally:
        fake.stop()
    largest = max(results)
    if 10000 in results:
        print('BENCH billing_10000_s %.1f s' % results[10000][0])
    print('BENCH billing_invoices_per_s %.1f inv/s' % (
            largest / results[largest][0]))
    for size in sorted(results):
        print('BENCH billing_peak_mb_%d %.0f MB' % (size, results[size][1]))
    if stock_time is not None and 1000 in results:
        print('BENCH billing_speedup_vs_stock %.2f' % (
                stock_time / results[1000][0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1000,5000,10000',
        help="comma-separated numbers of services (default 1000,5000,10000)")
    parser.add_argument('--workers', type=int, default=2,
        help="trytond-worker processes (default 2)")
    parser.add_argument('--optimize', action='store_true',
        help="run the workers with python -O")
    parser.add_argument('--no-stock', dest='stock', action='store_false',
        help="skip the stock sale_subscription path")
    parser.add_argument('--keep', action='store_true',
        help="keep the billed databases")
    parser.add_argument('--profile', type=int, default=0, metavar='N',
        help="profile the billing of N services in this process instead")
    parser.add_argument('--reuse', action='store_true',
        help="reuse a kept template of the same size and month made from "
        "other module sources (when developing the billing code)")
    parser.add_argument('--setup-only', action='store_true',
        help="only populate the databases (again, even when templates are "
        "kept) and print the times")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    sizes = [int(s) for s in options.sizes.split(',') if s]
    global REUSE
    REUSE = options.reuse
    if options.setup_only:
        func, args = setup_only, (sizes,)
    else:
        func, args = run, (sizes, options.workers, options.optimize,
            options.stock, options.keep, options.profile)
    if options.uri:
        func(options.uri, *args)
    else:
        with private_cluster() as uri:
            func(uri, *args)


if __name__ == '__main__':
    main()
