# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the payment webhooks on PostgreSQL with a worker running.

A database with isp_billing activated holds a branch with `--invoices`
open invoices (10,000 by default, each with a pending online payment), a
simulated RouterOS router and `--isolated` subscribers whose service is
isolated for non-payment.  A real `trytond` server receives the callbacks
the fake Midtrans sends (over HTTP, as Midtrans would), one `trytond-worker`
runs the queued tasks (invoice processing, reactivation, router changes);
`--servers N` serves the callbacks with N processes of trytond's WSGI
application instead of one `trytond` (bench/wsgi_server.py).

Prints:

- ``BENCH webhook_p95_ms``: the 95th percentile of the time Midtrans waits
  for the answer of a paid notification of one branch, `--rate` (30) a
  second offered through `--senders` (20) concurrent connections (an open
  loop, as a gateway delivers; measured from the planned send, so a
  notification waiting for a free connection counts its wait);
- ``BENCH webhook_saturated_p95_ms``: the same percentile with the
  `--senders` sending each as soon as answered (a closed loop: the server
  saturated, p95 about senders / throughput); the latency one at a time
  is printed too;
- ``BENCH webhook_per_s``: paid notifications answered per second by them
  (the most the server answers);
- ``BENCH webhook_to_router_p95_s``: from the paid notification of an
  isolated subscriber to its secret back on its plan's profile on the
  simulated router (95th percentile), one payment every `--interval`
  (0.05 s: 20 payments/s);
- ``BENCH webhook_unanswered``: notifications not answered within the
  fake gateway's callback timeout (5 s), counted rather than asserted.

The invoices are populated in bulk (bench/bulk.py: the first with the ORM,
the others copies of its rows), timed as ``BENCH webhook_setup_s``;
`--setup-only` only populates.  The populated database is kept as a
template (keyed by the modules' content and the invoice count), so a
second run skips the population.  The `Stack`
class and the fixtures are also the harness of
tests/test_payment_webhooks.py.
"""
import argparse
import contextlib
import datetime as dt
import hashlib
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV = pathlib.Path(os.environ.get('ISP_VENV', ROOT / '.venv'))
BIN = VENV / 'bin'

from bench.bench_notify import Stack as _Stack  # noqa: E402
from bench.bench_notify import private_cluster, wait_until  # noqa: E402

MODULES = ['isp_base', 'isp_network', 'isp_billing']
SEQUENCES = ['ir_sequence', 'ir_sequence_strict']
AMOUNT = Decimal('250000')


def addons_hash(*extra):
    "The content hash of the modules (and `extra`): template databases' key"
    digest = hashlib.sha1()
    for module in MODULES:
        base = ROOT / 'addons' / module
        for path in sorted(base.rglob('*')):
            if (path.is_file() and 'tests' not in path.parts
                    and path.suffix in {'.py', '.xml', '.cfg'}):
                digest.update(path.read_bytes())
    for value in extra:
        digest.update(str(value).encode())
    return digest.hexdigest()[:10]


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float('nan')
    index = min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))
    return values[index]


class Stack(_Stack):
    """A database with isp_billing activated, its trytond configuration
    (queue workers on, a web listener), a `trytond` server and
    `trytond-worker` processes."""

    def __init__(self, uri, name='isp_webhook_bench', workers=1, servers=1):
        self.uri = uri
        self.name = name
        self.workers = workers
        self.servers = servers
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix='isp-webhook-')
        self.config = os.path.join(self.directory, 'trytond.conf')
        self.process = None
        self.server = None
        with open(self.config, 'w') as file:
            file.write('[database]\nuri = %s\nlanguage = en\n'
                '[queue]\nworker = True\n'
                '[cache]\nclean_timeout = 0\n'
                '[web]\nlisten = 127.0.0.1:%d\n' % (uri, self.port))

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def _exists(self, database):
        return bool(self._sql(
                "SELECT 1 FROM pg_database WHERE datname = '%s'" % database))

    def create_database(self, template=None):
        """Create the database from `template`, or from the template with
        isp_billing activated (made first when missing)"""
        started = time.monotonic()
        base = self.module_template('isp_billing')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (
                self.name, template or base))
        return time.monotonic() - started

    def template_lock(self, name):
        """Hold a cluster-wide lock on making the template `name`: the
        integration test files run side by side on one cluster and share
        it"""
        return self._template_lock(name)

    def save_as_template(self, template):
        "Keep the present database as `template` (closes the pool)"
        self.close()
        self._sql('DROP DATABASE IF EXISTS "%s"' % template,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (template, self.name))

    def close(self):
        from trytond import backend
        from trytond.cache import Cache
        from trytond.pool import Pool
        Cache.drop(self.name)
        backend.Database(self.name).close()
        Pool.stop(self.name)

    def run_locked(self, func, tables=(), user=0, **context):
        """Run `func` in a committed transaction, restarted with the locks
        it asks for (as Tryton's wrappers do); `tables` locked at once"""
        from trytond.transaction import Transaction, TransactionError
        extras = {'_lock_tables': list(tables)} if tables else {}
        while True:
            with Transaction().start(self.name, user, context=context,
                    **extras) as transaction:
                try:
                    return func()
                except TransactionError as exception:
                    transaction.rollback()
                    exception.fix(extras)
                    continue

    def start_server(self):
        """A `trytond` server (threaded WSGI) on the configured port, or
        `servers` processes of trytond's WSGI application sharing it
        (bench/wsgi_server.py)"""
        if self.servers > 1:
            command = [sys.executable, '-m', 'bench.wsgi_server',
                '-c', self.config, '-d', self.name,
                '-n', str(self.servers),
                '--listen', '127.0.0.1:%d' % self.port]
        else:
            command = [str(BIN / 'trytond'), '-c', self.config,
                '-d', self.name]
        self.server = subprocess.Popen(command, env=self._env(), cwd=ROOT,
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.directory, 'server.log'), 'w'))

        def up():
            try:
                urllib.request.urlopen(self.url + '/', timeout=1).read()
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True
        if not wait_until(up, timeout=60, interval=0.2):
            raise RuntimeError('trytond did not start: %s'
                % self.server_log()[-2000:])

    def stop_server(self):
        if self.server is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.pid, signal.SIGTERM)
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(10)
        self.server = None

    def server_log(self):
        with open(os.path.join(self.directory, 'server.log')) as file:
            return file.read()

    def webhook_path(self, provider):
        return '/%s/isp_billing/webhook/%s' % (self.name, provider)


# -- fixtures (run inside a transaction of the stack) -------------------------

def create_branch(name="NetKita Bench"):
    """A branch with its accounting and the billing configuration's
    'gateway' payment method; return its id"""
    from trytond.pool import Pool

    from trytond.modules.isp_billing.tests.payment_setup import (
        create_branch as create,
    )
    pool = Pool()
    Country = pool.get('country.country')
    company = create(name, 'IDR')
    countries = Country.search([('code', '=', 'ID')])
    if not countries:
        countries = Country.create([{'name': 'Indonesia', 'code': 'ID'}])
    company.isp_country = countries[0]
    company.save()
    return company.id


def create_gateway(provider, fake, company, public_url):
    from trytond.pool import Pool

    from trytond.modules.isp_billing.tests.payment_setup import (
        create_gateway as create,
    )
    Company = Pool().get('company.company')
    return create(provider, fake.url, company=Company(company),
        public_url=public_url).id


def create_customers(count, prefix='Customer'):
    from trytond.pool import Pool
    Party = Pool().get('party.party')
    return [p.id for p in Party.create([{
                    'name': '%s %d' % (prefix, i),
                    'addresses': [('create', [{}])],
                    'contact_mechanisms': [('create', [
                                {'type': 'email',
                                    'value': 'c%d@example.com' % i}])],
                    } for i in range(count)])]


def create_open_invoices(company, parties, amount=AMOUNT, payments=True):
    """A posted invoice per party (created and posted in bulk), and
    (`payments`) a pending online payment record of each (without calling
    the provider); return the invoice ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from trytond.modules.isp_billing.gateway import new_reference
    pool = Pool()
    Company = pool.get('company.company')
    Party = pool.get('party.party')
    Invoice = pool.get('account.invoice')
    Account = pool.get('account.account')
    Journal = pool.get('account.journal')
    Gateway = pool.get('isp.payment.gateway')
    PaymentTransaction = pool.get('isp.payment.transaction')
    company = Company(company)
    with Transaction().set_context(company=company.id):
        receivable, = Account.search([
                ('company', '=', company.id),
                ('type.receivable', '=', True),
                ('party_required', '=', True),
                ('closed', '!=', True),
                ], limit=1)
        revenue, = Account.search([
                ('company', '=', company.id),
                ('type.revenue', '=', True),
                ('closed', '!=', True),
                ], limit=1)
        journal, = Journal.search([('type', '=', 'revenue')], limit=1)
        invoices = Invoice.create([{
                    'type': 'out',
                    'company': company.id,
                    'party': party.id,
                    'invoice_address': party.addresses[0].id,
                    'currency': company.currency.id,
                    'journal': journal.id,
                    'account': receivable.id,
                    'invoice_date': dt.date.today(),
                    'lines': [('create', [{
                                    'type': 'line',
                                    'company': company.id,
                                    'currency': company.currency.id,
                                    'quantity': 1,
                                    'unit_price': amount,
                                    'account': revenue.id,
                                    'description': "Internet 20 Mbps",
                                    }])],
                    } for party in Party.browse(parties)])
        Invoice.post(invoices)
    if payments:
        gateway = Gateway.for_company(company)[0]
        PaymentTransaction.create([{
                    'reference': new_reference(),
                    'gateway': gateway.id,
                    'company': company.id,
                    'document': str(i),
                    'party': i.party.id,
                    'amount': amount,
                    'currency': company.currency.id,
                    } for i in invoices])
    return [i.id for i in invoices]


def bulk_open_invoices(company, party, count):
    """`count` customers with a posted invoice and a pending online payment
    each, as create_customers and create_open_invoices make them: `party`
    ('Customer 0' of create_customers(1)) and its invoice with the ORM,
    the others ('Customer 1'...) copies of their rows (bench/bulk.py) with
    their own party, address, e-mail, numbers (from the same sequences),
    move, payment reference and pay token; return the invoice ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from bench import bulk
    from trytond.modules.isp_billing.gateway import (
        new_pay_token,
        new_reference,
    )
    pool = Pool()
    Invoice = pool.get('account.invoice')
    invoice_id, = create_open_invoices(company, [party])
    invoice = Invoice(invoice_id)
    others = range(1, count)
    if not others:
        return [invoice_id]
    parties, children = bulk.clone_parties(invoice.party.id,
        [{'name': 'Customer %d' % i} for i in others],
        contacts=[{'value': 'c%d@example.com' % i} for i in others])
    addresses = children['party_address'][invoice.invoice_address.id]
    sequence, date = invoice._number_sequence()
    with Transaction().set_context(date=date, company=company):
        numbers = list(sequence.get_many(len(parties)))
    move = invoice.move
    move_numbers = list(move.period.move_sequence_used.get_many(
            len(parties)))
    invoice_ids = bulk.new_ids('account_invoice', len(parties))
    move_ids = bulk.clone('account_move', move.id, [{
                'number': number, 'origin': 'account.invoice,%d' % i}
            for i, number in zip(invoice_ids, move_numbers, strict=True)])
    bulk.insert_copies('account_invoice',
        *bulk.read_rows('account_invoice', 'id', invoice_id), [
            bulk.computed(Invoice, {'number': number}) | {
                'party': party, 'invoice_address': address, 'move': move_,
                'isp_pay_token': new_pay_token()}
            for party, address, move_, number in zip(parties, addresses,
                move_ids, numbers, strict=True)],
        ids=invoice_ids)
    line_ids = bulk.clone_children('account_invoice_line', 'invoice',
        invoice_id, invoice_ids)
    origins = {'account.invoice.line,%d' % old: [
            'account.invoice.line,%d' % i for i in ids]
        for old, ids in line_ids.items()}
    lines = bulk.read_rows('account_move_line', 'move', move.id)
    # each move's lines together, as the ORM creates them
    bulk.insert_rows('account_move_line', [{**line,
                'move': move_,
                'party': party if line['party'] else None,
                'origin': origins[line['origin']][n]
                if line['origin'] in origins else line['origin'],
                } for n, (move_, party) in enumerate(
                zip(move_ids, parties, strict=True)) for line in lines])
    payment, = bulk.read_rows(
        'isp_payment_transaction', 'document', str(invoice))
    bulk.insert_copies('isp_payment_transaction', payment, [{
                'reference': new_reference(), 'party': party,
                'document': 'account.invoice,%d' % i}
            for party, i in zip(parties, invoice_ids, strict=True)])
    return [invoice_id] + invoice_ids


def clear_queue():
    "Drop the queued tasks (the invoice reports posting queued)"
    from trytond.pool import Pool
    Queue = Pool().get('ir.queue')
    Queue.delete(Queue.search([]))


def open_payments(invoice_ids, provider=None):
    "Open an online payment of each invoice at the provider: references"
    from trytond.pool import Pool
    Invoice = Pool().get('account.invoice')
    return [Invoice.isp_open_payment(i, provider=provider,
            reuse=False).reference for i in Invoice.browse(invoice_ids)]


def payment_states(references):
    "{reference: (transaction state, invoice state, review)}"
    from trytond.pool import Pool
    PaymentTransaction = Pool().get('isp.payment.transaction')
    return {t.reference: (t.state, t.document.state, t.review)
        for t in PaymentTransaction.search(
            [('reference', 'in', list(references))])}


def payment_moves(invoice_id):
    "The payment moves recorded for an invoice (its payment lines' moves)"
    from trytond.pool import Pool
    pool = Pool()
    Invoice = pool.get('account.invoice')
    MoveLine = pool.get('account.move.line')
    invoice = Invoice(invoice_id)
    lines = MoveLine.search([
            ('party', '=', invoice.party.id),
            ('account', '=', invoice.account.id),
            ('move.origin', '=', str(invoice)),
            ('credit', '>', 0),
            ])
    return len({line.move.id for line in lines})


def create_isolated_subscribers(company, sim_host, sim_port, password,
        count):
    """A router (the simulator), a plan, and `count` subscribers registered
    on it whose service is then isolated for non-payment; return the
    service ids"""
    from trytond.pool import Pool
    pool = Pool()
    Location = pool.get('isp.location')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    Router = pool.get('isp.router')
    Service = pool.get('isp.service')
    unit, = Uom.search([('name', '=', 'Unit')])
    location, = Location.create([{'code': 'BNC', 'name': "Bench"}])
    plan, = Template.create([{
                'name': "Home 20 Mbps", 'isp_plan': True, 'type': 'service',
                'products': [('create', [{}])],
                'default_uom': unit.id, 'list_price': AMOUNT,
                'download_rate': 20000, 'upload_rate': 5000,
                'ppp_profile': 'home-20'}])
    router, = Router.create([{
                'name': "Bench", 'code': 'BNC', 'host': sim_host,
                'port': sim_port, 'use_ssl': False,
                'api_password': password}])
    services = []
    for i in range(count):
        services.append(Service.register({
                    'company': company,
                    'name': "Subscriber %d" % i,
                    'national_id': '320101%s%04d' % (
                        ('170890', '170891', '170892')[i // 9999],
                        i % 9999 + 1),
                    'whatsapp': '+62813%08d' % i,
                    'street': "Jl. Bench %d" % i,
                    'location': location.id,
                    'plan': plan.id,
                    'router': router.id,
                    }))
    Service.write(services, {'isolated_by_billing': True})
    Service.isolate(services)
    return [s.id for s in services]


def service_usernames(service_ids):
    from trytond.pool import Pool
    Service = Pool().get('isp.service')
    return {s.id: (s.username, s.subscriber.id)
        for s in Service.browse(service_ids)}


# -- the benchmark ------------------------------------------------------------

def populate(stack, invoices, isolated, sim, cold=False):
    """The populated database (from its template when there is one and not
    `cold`); print the setup time when it populates"""
    from tools.fake_gateways import FakeMidtrans
    template = 'isp_pay_bench_%s' % addons_hash(invoices, isolated)
    if stack._exists(template) and not cold:
        elapsed = stack.create_database(template=template)
        stack.init_pool()
        print('database copied from the kept template %s in %.1f s (drop '
            'it or use --setup-only for the setup figure)' % (
                template, elapsed), flush=True)
        return False
    activation = stack.create_database()
    stack.init_pool()
    fake = FakeMidtrans()   # not started: the URL is set per run
    started = time.monotonic()
    company = stack.run_locked(create_branch, tables=SEQUENCES)
    with stack.transaction(company=company):
        create_gateway('midtrans', fake, company, stack.url)
        party, = create_customers(1)
    stack.run_locked(lambda: bulk_open_invoices(company, party, invoices),
        tables=SEQUENCES, company=company)
    print('  %d open invoices (%.1f s)' % (
            invoices, time.monotonic() - started), flush=True)
    stack.run_locked(lambda: create_isolated_subscribers(company,
            *sim.address, 'bench', isolated), company=company)
    with stack.transaction():
        clear_queue()
    elapsed = time.monotonic() - started
    print('populated in %.1f s (the modules\' database: %.1f s, made once '
        'per module content)' % (elapsed, activation), flush=True)
    print('BENCH webhook_setup_s %.1f s' % elapsed, flush=True)
    stack.save_as_template(template)
    stack.create_database(template=template)
    stack.init_pool()
    return True


def queue_durations(since):
    "{task name: (count, mean seconds run, mean seconds waited)}"
    from trytond.pool import Pool
    Queue = Pool().get('ir.queue')
    result = {}
    for task in Queue.search([
                ('enqueued_at', '>=', since),
                ('finished_at', '!=', None)]):
        name = '%s.%s' % (task.data.get('model'), task.data.get('method'))
        count, run, wait = result.get(name, (0, 0, 0))
        result[name] = (count + 1,
            run + (task.finished_at - task.dequeued_at).total_seconds(),
            wait + (task.dequeued_at - task.enqueued_at).total_seconds())
    return {n: (c, r / c, w / c) for n, (c, r, w) in result.items()}


def setup_only(uri, invoices, isolated):
    "Populate (cold: without the kept template) and print the time only"
    from tools.routeros_sim import Router as SimRouter
    stack = Stack(uri)
    sim = SimRouter(name='bench', version='7.16.2', password='bench')
    sim.start()
    try:
        populate(stack, invoices, isolated, sim, cold=True)
    finally:
        sim.stop()
        with contextlib.suppress(Exception):
            stack.drop_database()


def _timed_pay(fake, reference, since=None):
    """(seconds until answered, the deliveries) of `reference`'s payment,
    from `since` (perf_counter; default: when sent)"""
    started = time.perf_counter() if since is None else since
    deliveries = fake.pay(reference)
    return time.perf_counter() - started, deliveries


def _paced(fake, references, rate, connections):
    """Send the paid notifications of `references` at `rate` per second
    through `connections` concurrent senders (an open loop, as a gateway
    delivers): [(seconds from the planned send to the answer, the
    deliveries)]; a notification waiting for a free sender counts its
    wait"""
    started = time.perf_counter() + 0.1
    with ThreadPoolExecutor(connections) as executor:
        futures = []
        for index, reference in enumerate(references):
            planned = started + index / rate
            time.sleep(max(0, planned - time.perf_counter()))
            futures.append(executor.submit(_timed_pay, fake, reference,
                    planned))
        return [future.result() for future in futures]


def run(uri, invoices, isolated, sample, senders, interval=0.05,
        workers=1, servers=1, rate=30.0):
    from tools.fake_gateways import FakeMidtrans
    from tools.routeros_sim import Router as SimRouter
    stack = Stack(uri, workers=workers, servers=servers)
    sim = SimRouter(name='bench', version='7.16.2', password='bench')
    sim.start()
    fake = FakeMidtrans().start()
    try:
        populate(stack, invoices, isolated, sim)
        with stack.transaction():
            from trytond.pool import Pool
            pool = Pool()
            Gateway = pool.get('isp.payment.gateway')
            Router = pool.get('isp.router')
            Service = pool.get('isp.service')
            Invoice = pool.get('account.invoice')
            Gateway.write(Gateway.search([]), {
                    'base_url': fake.url, 'public_url': stack.url})
            Router.write(Router.search([]), {
                    'host': sim.address[0], 'port': sim.address[1]})
            company = Gateway.search([])[0].company.id
            services = Service.search([('state', '=', 'isolated')])
            service_ids = [s.id for s in services]
            Service.push(services)   # the router is a fresh simulator
            isolated_parties = [s.subscriber.id for s in services]
            open_ids = [i.id for i in Invoice.search([
                        ('state', '=', 'posted'),
                        ('party', 'not in', isolated_parties),
                        ], limit=sample * 3)]
            isolated_invoices = [i.id for i in Invoice.search([
                        ('state', '=', 'posted'),
                        ('party', 'in', isolated_parties)])]
        stack.start_workers()
        stack.start_server()
        usernames = stack.run_locked(lambda: service_usernames(service_ids))
        secrets_menu = sim.menu('/ppp/secret')

        def profiles():
            return {u: (secrets_menu.find(name=u) or {}).get('profile')
                for u, _ in usernames.values()}
        assert wait_until(lambda: set(profiles().values()) == {'isolir'},
            timeout=300), profiles()
        print('%d invoices open, %d subscribers isolated on the router' % (
                invoices + len(isolated_invoices), len(service_ids)))

        # latency, one at a time
        references = stack.run_locked(lambda: open_payments(
                open_ids[:sample]), company=company)
        latencies, deliveries = [], []
        for reference in references:
            latency, delivered = _timed_pay(fake, reference)
            latencies.append(latency)
            deliveries += delivered
        # latency and throughput, `senders` of the branch at once
        references = stack.run_locked(lambda: open_payments(
                open_ids[sample:2 * sample]), company=company)
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as executor:
            timed = list(executor.map(
                    lambda r: _timed_pay(fake, r), references))
        elapsed = time.perf_counter() - started
        concurrent = [latency for latency, _ in timed]
        deliveries += [d for _, ds in timed for d in ds]
        statuses = [d.status for _, ds in timed for d in ds]
        # `rate` per second offered through `senders` connections
        references = stack.run_locked(lambda: open_payments(
                open_ids[2 * sample:3 * sample]), company=company)
        paced = _paced(fake, references, rate, senders)
        at_rate = [latency for latency, _ in paced]
        deliveries += [d for _, ds in paced for d in ds]
        # not answered within the fake gateway's callback timeout
        unanswered = sum(1 for d in deliveries if d.status is None)
        refused = sum(1 for d in deliveries
            if d.status is not None and d.status != 200)
        # paid to reconnected, once the worker is done with the tasks of
        # the payments above (invoice processing, notices)
        def drained():
            with stack.transaction():
                return not stack.pending_tasks()
        wait_until(drained, timeout=300, interval=0.5)
        references = stack.run_locked(lambda: open_payments(
                isolated_invoices), company=company)
        by_reference = {}
        with stack.transaction():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            parties = {p: u for u, p in usernames.values()}
            for payment in PaymentTransaction.search(
                    [('reference', 'in', references)]):
                by_reference[payment.reference] = parties[payment.party.id]
        sent, reconnected = {}, {}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                now = time.perf_counter()
                for username, profile in profiles().items():
                    if profile == 'home-20' and username not in reconnected:
                        reconnected[username] = now
                time.sleep(0.01)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        router_started = dt.datetime.now()
        for reference in references:
            sent[by_reference[reference]] = time.perf_counter()
            fake.pay(reference, wait=False)
            time.sleep(interval)
        wait_until(lambda: len(reconnected) == len(sent), timeout=300)
        stop.set()
        watcher.join()
        with stack.transaction():
            tasks = queue_durations(router_started)
        delays = [reconnected[u] - t for u, t in sent.items()
            if u in reconnected]
        with stack.transaction():
            Invoice = Pool().get('account.invoice')
            paid = Invoice.search_count([('state', '=', 'paid')])
    finally:
        stack.stop_server()
        stack.stop_workers()
        fake.stop()
        sim.stop()
        with contextlib.suppress(Exception):
            stack.drop_database()
    print('%d worker process(es), %d server process(es)' % (
            workers, servers))
    print('%d paid invoices; latency one at a time min %.1f / median %.1f /'
        ' p95 %.1f / max %.1f ms' % (paid, min(latencies) * 1000,
            statistics.median(latencies) * 1000,
            percentile(latencies, 95) * 1000, max(latencies) * 1000))
    print('%d senders at once, each sending as soon as answered (closed '
        'loop: the most the server answers): latency median %.1f / p95 '
        '%.1f / max %.1f ms; %d notifications, %d not answered 200' % (
            senders, statistics.median(concurrent) * 1000,
            percentile(concurrent, 95) * 1000, max(concurrent) * 1000,
            len(deliveries), refused))
    print('%.0f notifications/s offered through %d connections (open '
        'loop, from the planned send): latency median %.1f / p95 %.1f / '
        'max %.1f ms' % (rate, senders, statistics.median(at_rate) * 1000,
            percentile(at_rate, 95) * 1000, max(at_rate) * 1000))
    print('%d of %d isolated subscribers reconnected; delays median %.2f s,'
        ' max %.2f s' % (len(delays), len(sent),
            statistics.median(delays) if delays else float('nan'),
            max(delays) if delays else float('nan')))
    print('paid notifications of isolated subscribers every %.2f s; queue '
        'tasks meanwhile (count, mean run s, mean wait s):' % interval)
    for name, (count, ran, waited) in sorted(tasks.items()):
        print('  %-45s %4d %6.3f %6.3f' % (name, count, ran, waited))
    print('BENCH webhook_p95_ms %.1f ms' % (
            percentile(at_rate, 95) * 1000))
    print('BENCH webhook_saturated_p95_ms %.1f ms' % (
            percentile(concurrent, 95) * 1000))
    print('BENCH webhook_per_s %.1f /s' % (len(statuses) / elapsed))
    print('BENCH webhook_to_router_p95_s %.2f s' % (
            percentile(delays, 95) if delays else float('nan')))
    print('BENCH webhook_unanswered %d count' % unanswered)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--invoices', type=int, default=10000,
        help="open invoices in the database (default 10000)")
    parser.add_argument('--isolated', type=int, default=40,
        help="isolated subscribers paying (default 40)")
    parser.add_argument('--sample', type=int, default=200,
        help="notifications per measure (default 200)")
    parser.add_argument('--senders', type=int, default=20,
        help="concurrent senders of one branch (default 20)")
    parser.add_argument('--interval', type=float, default=0.05,
        help="seconds between the payments of isolated subscribers "
        "(default 0.05: 20 payments/s)")
    parser.add_argument('--workers', type=int, default=1,
        help="trytond-worker processes (default 1)")
    parser.add_argument('--servers', type=int, default=1,
        help="server processes (default 1: one `trytond`; more: trytond's "
        "WSGI application in that many processes, bench/wsgi_server.py)")
    parser.add_argument('--rate', type=float, default=30.0,
        help="notifications per second offered through the --senders "
        "connections for webhook_p95_ms (default 30)")
    parser.add_argument('--setup-only', action='store_true',
        help="only populate the database (again, even when a template is "
        "kept) and print its time")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    if options.setup_only:
        func, args = setup_only, (options.invoices, options.isolated)
    else:
        func, args = run, (options.invoices, options.isolated,
            options.sample, options.senders, options.interval,
            options.workers, options.servers, options.rate)
    if options.uri:
        func(options.uri, *args)
    else:
        with private_cluster() as uri:
            func(uri, *args)


if __name__ == '__main__':
    main()

