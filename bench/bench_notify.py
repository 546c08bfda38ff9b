# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of notifications through the real ir.queue and trytond-worker.

Queues N messages with `isp.message.send_events` (rendering included) in a
PostgreSQL database where isp_base is activated, lets real `trytond-worker`
processes send them to a fake WhatsApp Cloud API on loopback, and prints::

    BENCH notify_messages_per_s <n> msg/s

(messages rendered and handed to the fake provider per second, from the
first render to the last provider answer stored), plus details.  It never
asserts a time.

    .venv/bin/python bench/bench_notify.py [--messages 2000] [--workers 2]
        [--uri postgresql://postgres@127.0.0.1:5432/]

Without --uri (nor ISP_TEST_PG_URI) it starts a private PostgreSQL cluster
with scripts/lib.sh and removes it afterwards.  The activated database is
kept as a template named after the content of addons/isp_base
(`Stack.module_template`), so a second run on the same cluster skips the
activation.

The `Stack` class is also the harness of tests/test_notify_worker.py.
"""
import argparse
import contextlib
import datetime as dt
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV = pathlib.Path(os.environ.get('ISP_VENV', ROOT / '.venv'))
BIN = VENV / 'bin'

from tools.fake_messaging import FakeMeta  # noqa: E402


@contextlib.contextmanager
def private_cluster():
    "A private PostgreSQL cluster from scripts/lib.sh; yields its URI"
    script = ('. "%s/scripts/lib.sh"; pg_start >&2; '
        'echo "$PG_URI $PG_DIR"' % ROOT)
    output = subprocess.run(['bash', '-c', script], check=True,
        stdout=subprocess.PIPE, text=True).stdout.split()
    uri, directory = output[-2], output[-1]
    try:
        yield uri
    finally:
        subprocess.run(['bash', '-c',
                '. "%s/scripts/lib.sh"; PG_DIR=%s pg_stop' % (
                    ROOT, directory)], check=False)


class Stack:
    """A database with isp_base activated, its trytond configuration (queue
    workers on) and `trytond-worker` processes."""

    def __init__(self, uri, name='isp_notify_bench', workers=2):
        self.uri = uri
        self.name = name
        self.workers = workers
        self.directory = tempfile.mkdtemp(prefix='isp-notify-')
        self.config = os.path.join(self.directory, 'trytond.conf')
        self.process = None
        with open(self.config, 'w') as file:
            file.write('[database]\nuri = %s\nlanguage = en\n'
                '[queue]\nworker = True\n'
                '[cache]\nclean_timeout = 0\n' % uri)

    def _sql(self, *statements, database='postgres'):
        import psycopg
        parts = urllib.parse.urlsplit(self.uri)
        with psycopg.connect(host=parts.hostname, port=parts.port or 5432,
                user=parts.username or 'postgres', password=parts.password,
                dbname=database, autocommit=True) as connection:
            result = None
            for statement in statements:
                cursor = connection.execute(statement)
                if cursor.description:
                    result = cursor.fetchall()
            return result

    def _env(self):
        env = dict(os.environ)
        for name in ['TRYTOND_DATABASE_URI', 'DB_NAME', 'DB_CACHE']:
            env.pop(name, None)
        env['TRYTONPASSFILE'] = os.path.join(self.directory, 'password')
        with open(env['TRYTONPASSFILE'], 'w') as file:
            file.write('admin\n')
        return env

    def create_database(self):
        "Create the database from the template, activating it if needed"
        started = time.monotonic()
        template = self.module_template('isp_base')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))
        return time.monotonic() - started

    def module_template(self, module):
        """The template database where trytond-admin activated `module`,
        made when missing (under a cluster-wide lock: the integration test
        files run side by side on one cluster): a copy of the template of
        its largest product dependency on which `trytond-admin -u module
        --activate-dependencies` activates what is missing, as an
        administrator activates a module on a production database
        (isp_base's: `--all` on a new database).  Each product module is
        activated once per cluster and content, not again below each
        stack's module (isp_base and isp_billing's accounting are most of
        any activation).  Named after the content of the module and its
        product dependencies."""
        from tools.test_db_cache import closure, dependencies
        depends = dependencies()
        deps = closure(module, depends)
        digest = hashlib.sha1()
        for name in sorted(deps | {module}):
            for path in sorted((ROOT / 'addons' / name).rglob('*')):
                if (path.is_file() and 'tests' not in path.parts
                        and path.suffix in {'.py', '.xml', '.cfg'}):
                    digest.update(path.read_bytes())
        template = 'isp_tpl_%s_%s' % (module, digest.hexdigest()[:10])
        exists = "SELECT 1 FROM pg_database WHERE datname = '%s'" % template
        if self._sql(exists):
            return template
        parent = max(sorted(deps), key=lambda m: len(closure(m, depends)),
            default=None)
        with self._template_lock(template):
            if self._sql(exists):
                return template
            building = template + '_new'
            if parent:
                source = self.module_template(parent)
                args = [['-u', module, '--activate-dependencies']]
            else:
                source = 'template0'
                args = [['--all', '-u', module, '--activate-dependencies',
                        '--email', 'admin@example.com']]
            self._sql('DROP DATABASE IF EXISTS "%s"' % building,
                'CREATE DATABASE "%s" TEMPLATE "%s" ENCODING \'UTF8\'' % (
                    building, source))
            try:
                for arg in args:
                    subprocess.run([str(BIN / 'trytond-admin'), '-c',
                            self.config, '-d', building, *arg], check=True,
                        env=self._env(), stdout=subprocess.DEVNULL)
                # complete or absent under its name
                self._sql('ALTER DATABASE "%s" RENAME TO "%s"' % (
                        building, template))
            except BaseException:
                self._sql('DROP DATABASE IF EXISTS "%s"' % building)
                raise
        return template

    @contextlib.contextmanager
    def _template_lock(self, name):
        "A cluster-wide advisory lock on making the template `name`"
        import psycopg
        parts = urllib.parse.urlsplit(self.uri)
        with psycopg.connect(host=parts.hostname, port=parts.port or 5432,
                user=parts.username or 'postgres', password=parts.password,
                dbname='postgres', autocommit=True) as connection:
            connection.execute('SELECT pg_advisory_lock(hashtext(%s))',
                (name,))
            yield

    def init_pool(self):
        "Use the database in this process (queue workers on)"
        import trytond.config as config
        config.update_etc(self.config)
        from trytond.pool import Pool
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, readonly=True):
            Pool(self.name).init()

    @contextlib.contextmanager
    def transaction(self, **context):
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, context=context) as t:
            yield t

    def start_workers(self):
        self.process = subprocess.Popen([str(BIN / 'trytond-worker'),
                '-c', self.config, '-d', self.name, '-n', str(self.workers),
                '-t', '1'], env=self._env(), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(
                os.path.join(self.directory, 'worker.log'), 'w'))

    def stop_workers(self):
        "Stop the worker manager and its children (the process group)"
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def drop_database(self):
        from trytond import backend
        from trytond.cache import Cache
        from trytond.pool import Pool
        Cache.drop(self.name)
        backend.Database(self.name).close()
        Pool.stop(self.name)
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)

    def worker_log(self):
        with open(os.path.join(self.directory, 'worker.log')) as file:
            return file.read()

    # -- fixtures --------------------------------------------------------

    def create_branch(self, name="Bench Branch"):
        "Return the id of a new Indonesian branch"
        from trytond.pool import Pool
        pool = Pool()
        Currency = pool.get('currency.currency')
        Company = pool.get('company.company')
        Country = pool.get('country.country')
        Party = pool.get('party.party')
        currencies = Currency.search([('code', '=', 'IDR')])
        if not currencies:
            currencies = Currency.create([{'name': 'Rupiah', 'code': 'IDR',
                        'symbol': 'Rp', 'digits': 0, 'rounding': 1}])
        countries = Country.search([('code', '=', 'ID')])
        if not countries:
            countries = Country.create([{'name': 'Indonesia', 'code': 'ID'}])
        party, = Party.create([{'name': name}])
        company, = Company.create([{'party': party.id,
                    'currency': currencies[0].id,
                    'isp_country': countries[0].id}])
        return company.id

    def create_subscribers(self, company, count):
        from trytond.pool import Pool
        Party = Pool().get('party.party')
        return [p.id for p in Party.create([{
                        'name': 'Subscriber %d' % i, 'is_subscriber': True,
                        'isp_company': company,
                        'whatsapp': '+62813%08d' % i,
                        } for i in range(count)])]

    def create_meta_provider(self, fake, company=None, capacity=100000,
            priority=10):
        from trytond.pool import Pool
        Provider = Pool().get('isp.message.provider')
        provider, = Provider.create([{
                    'name': 'Meta %s' % fake.phone_number_id,
                    'type': 'whatsapp_meta', 'company': company,
                    'base_url': fake.url + '/v21.0',
                    'account': fake.phone_number_id, 'token': fake.token,
                    'capacity': capacity, 'priority': priority,
                    'timeout': 5}])
        return provider.id

    def queue_invoices(self, parties, per_party=1):
        "send_events of invoice_issued for each party; return message ids"
        from trytond.pool import Pool
        pool = Pool()
        Message = pool.get('isp.message')
        Party = pool.get('party.party')
        requests = []
        for party in Party.browse(parties):
            for n in range(per_party):
                requests.append({
                        'event': 'invoice_issued', 'party': party,
                        'values': {
                            'invoice_number': 'INV/%d/%d' % (party.id, n),
                            'amount': 'Rp 150.000', 'due_date': '10/12/2026',
                            'pay_url': 'https://pay.example.com/%d' % n,
                            }})
        return [m.id for m in Message.send_events(requests)]

    def states(self, ids):
        "Return {state: count} of the messages (one cheap query)"
        from sql.aggregate import Count
        from trytond.pool import Pool
        from trytond.transaction import Transaction
        Message = Pool().get('isp.message')
        message = Message.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*message.select(message.state, Count(message.id),
                where=message.id.in_(list(ids)) if ids else message.id < 0,
                group_by=[message.state]))
        return dict(cursor)

    def pending_tasks(self):
        "Unfinished queue tasks that are due now"
        from trytond.pool import Pool
        Queue = Pool().get('ir.queue')
        return Queue.search_count([
                ('finished_at', '=', None),
                ['OR', ('scheduled_at', '=', None),
                    ('scheduled_at', '<=', dt.datetime.now())],
                ])


def wait_until(predicate, timeout=300, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def run(uri, messages, workers, parties):
    stack = Stack(uri, workers=workers)
    activation = stack.create_database()
    print('database ready in %.1f s (%d worker processes)' % (
            activation, workers))
    stack.init_pool()
    fake = FakeMeta(token='bench-token', phone_number_id='1055').start()
    try:
        with stack.transaction():
            company = stack.create_branch()
        with stack.transaction(company=company):
            stack.create_meta_provider(fake, company)
            party_ids = stack.create_subscribers(company, parties)
        stack.start_workers()
        time.sleep(1.0)   # let the worker processes load the pool
        started = time.monotonic()
        with stack.transaction(company=company):
            ids = stack.queue_invoices(
                party_ids, per_party=max(1, messages // parties))
        queued = time.monotonic() - started

        def done():
            with stack.transaction():
                return stack.states(ids).get('sent', 0) >= len(ids)
        finished = wait_until(done, timeout=900, interval=0.2)
        elapsed = time.monotonic() - started
        with stack.transaction():
            states = stack.states(ids)
    finally:
        stack.stop_workers()
        fake.stop()
        stack.drop_database()
    rate = len(ids) / elapsed
    print('%d messages: %.2f s to render and queue, %.2f s until every one '
        'was handed to the provider; states %s; provider received %d' % (
            len(ids), queued, elapsed, states, len(fake.messages)))
    if not finished:
        print('warning: not every message was sent before the time-out')
    print('BENCH notify_messages_per_s %.1f msg/s' % rate)
    return rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--messages', type=int, default=2000)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--parties', type=int, default=200)
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    if options.uri:
        run(options.uri, options.messages, options.workers, options.parties)
    else:
        with private_cluster() as uri:
            run(uri, options.messages, options.workers, options.parties)


if __name__ == '__main__':
    main()
