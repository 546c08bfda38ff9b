# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of hotspot vouchers on PostgreSQL.

A database with isp_voucher activated holds one branch (chart of accounts,
fiscal year, PPN 11 %) with a voucher product, a router and a voucher
profile (hotspot DNS name, 48 cards a page).  Each step runs in its own
Python process (the pool is loaded before the clock starts) and reports its
figures and the peak resident memory of that process (VmHWM, which includes
the loaded pool: compare with `voucher_idle_peak_mb`)::

    BENCH voucher_batch_10000_s <s> s      a batch of 10,000 created,
                                           generated and committed
    BENCH voucher_pdf_10000_s <s> s        the cards of a 10,000 batch as a
                                           PDF attached to it (the queue
                                           task's path), committed
    BENCH voucher_duplicates <n> count     1,000,000 codes drawn by the
                                           generator (its chunks of 1,000,
                                           each checked against the codes
                                           drawn before as against the
                                           stored ones): codes given twice
    BENCH voucher_redraws <n> count        draws the generator threw away
                                           (drawn twice) on the way
    BENCH voucher_push_10000_s <s> s       the hotspot users of the
                                           profile's vouchers pushed to a
                                           RouterOS simulator (its own
                                           process, over TCP) by the
                                           router's queued task, and read
                                           back (bench_voucher_push.py has
                                           the steady push and the expiry)
    BENCH voucher_<step>_peak_mb <n> MB    for each step

    .venv/bin/python bench/bench_voucher.py [--steps batch,pdf,duplicates,push]
        [--size 10000] [--draws 1000000] [--uri postgresql://...]

Steps are functions registered in STEPS (name -> function(stack, options)
returning [(bench name, value, unit)]); another step is added with
`@step('name')`.  The pdf step uses the batch made by the batch step when
it ran before it, else makes one (not timed).  Without --uri a private
cluster is started (scripts/lib.sh).  Never asserts a time.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV = pathlib.Path(os.environ.get('ISP_VENV', ROOT / '.venv'))
BIN = VENV / 'bin'

from bench.bench_notify import private_cluster  # noqa: E402
from bench.bench_webhook import Stack as _Stack  # noqa: E402
from bench.bench_webhook import addons_hash, create_branch  # noqa: E402

MODULES = ['isp_base', 'isp_network', 'isp_billing', 'isp_voucher']
DATABASE = 'isp_voucher_bench'
STEPS = {}
DEFAULT_STEPS = 'batch,pdf,duplicates,push'


def step(name):
    "Register a step function(stack, options) -> [(name, value, unit)]"
    def register(func):
        STEPS[name] = func
        return func
    return register


def voucher_hash():
    import hashlib
    digest = hashlib.sha1(addons_hash().encode())
    base = ROOT / 'addons' / 'isp_voucher'
    for path in sorted(base.rglob('*')):
        if (path.is_file() and 'tests' not in path.parts
                and path.suffix in {'.py', '.xml', '.cfg', '.html'}):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Stack(_Stack):
    "A database with isp_voucher activated and a branch's voucher profile"

    def __init__(self, uri, name=DATABASE, config=None):
        super().__init__(uri, name=name, workers=0)
        if config:
            self.config = config

    def prepare(self):
        """Create the bench database from its template (the modules
        activated and the branch set up, made when missing); the ids"""
        template = 'isp_voucher_tpl_%s' % voucher_hash()
        with self.template_lock(template):
            if not self._exists(template):
                base = self.module_template('isp_voucher')
                self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                    % self.name, 'CREATE DATABASE "%s" TEMPLATE "%s"' % (
                        self.name, base))
                self.init_pool()
                ids = self.run_locked(setup_branch)
                self.save_as_template(template)
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))
        self.init_pool()
        with self.transaction():
            ids = find_setup()
        return ids


def setup_branch():
    "A branch, its voucher product (PPN 11 %), router and profile: ids"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Account = pool.get('account.account')
    Tax = pool.get('account.tax')
    Configuration = pool.get('isp.billing.configuration')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    Router = pool.get('isp.router')
    Profile = pool.get('isp.voucher.profile')
    company = create_branch("NetKita Voucher Bench")
    with Transaction().set_context(company=company):
        tax_account, = Account.search([
                ('company', '=', company), ('code', '=', '6.3.6')], limit=1)
        tax, = Tax.create([{
                    'name': "PPN 11%", 'description': "PPN 11%",
                    'type': 'percentage', 'rate': Decimal('0.11'),
                    'company': company,
                    'invoice_account': tax_account.id,
                    'credit_note_account': tax_account.id}])
        Configuration.write([Configuration(1)], {'tax': tax.id})
        unit, = Uom.search([('name', '=', 'Unit')])
        template, = Template.create([{
                    'name': "Hotspot 1 day", 'type': 'service',
                    'isp_company': company, 'default_uom': unit.id,
                    'list_price': Decimal('5000'),
                    'products': [('create', [{}])]}])
        router, = Router.create([{
                    'name': "Bench", 'code': 'BNC', 'host': '127.0.0.1',
                    'port': 1, 'use_ssl': False, 'api_password': 'bench'}])
        profile, = Profile.create([{
                    'company': company, 'name': "1 day 5 Mbps",
                    'product': template.products[0].id,
                    'router': router.id, 'validity': 1,
                    'validity_unit': 'days', 'rate_limit': '2M/5M',
                    'hotspot_dns_name': 'hotspot.netkita.example',
                    'cards_per_page': 48}])
    return {'company': company, 'profile': profile.id}


def find_setup():
    from trytond.pool import Pool
    Profile = Pool().get('isp.voucher.profile')
    profile, = Profile.search([], limit=1)
    return {'company': profile.company.id, 'profile': profile.id}


def peak_mb():
    "The peak resident memory of this process (VmHWM) in MB"
    with open('/proc/self/status') as file:
        for line in file:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def make_batch(stack, ids, size, name):
    "Create and generate a batch of `size` (committed): id, seconds"
    from trytond.pool import Pool

    def generate():
        Batch = Pool().get('isp.voucher.batch')
        batch, = Batch.create([{
                    'company': ids['company'], 'name': name,
                    'profile': ids['profile'], 'quantity': size,
                    'prefix': 'HS', 'code_length': 6}])
        Batch.generate([batch])
        return batch.id
    started = time.monotonic()
    batch_id = stack.run_locked(generate, company=ids['company'])
    return batch_id, time.monotonic() - started


def last_batch(stack, ids, size):
    from trytond.pool import Pool
    with stack.transaction(company=ids['company']):
        Batch = Pool().get('isp.voucher.batch')
        batches = Batch.search([
                ('quantity', '=', size), ('state', '=', 'generated')],
            order=[('id', 'DESC')], limit=1)
        return batches[0].id if batches else None


@step('batch')
def step_batch(stack, options):
    ids = stack.ids
    batch_id, elapsed = make_batch(
        stack, ids, options.size, "Bench %d" % options.size)
    from trytond.pool import Pool
    with stack.transaction(company=ids['company']):
        Voucher = Pool().get('isp.voucher')
        count = Voucher.search_count([('batch', '=', batch_id)])
    if count != options.size:
        raise SystemExit('%d vouchers made, not %d' % (count, options.size))
    return [('voucher_batch_%d_s' % options.size, '%.2f' % elapsed, 's')]


@step('pdf')
def step_pdf(stack, options):
    from trytond.pool import Pool
    ids = stack.ids
    batch_id = last_batch(stack, ids, options.size)
    if batch_id is None:
        batch_id, _ = make_batch(stack, ids, options.size, "Bench PDF")

    def render():
        Batch = Pool().get('isp.voucher.batch')
        Batch.attach_cards([Batch(batch_id)])
    started = time.monotonic()
    stack.run_locked(render, company=ids['company'])
    elapsed = time.monotonic() - started
    with stack.transaction(company=ids['company']):
        Attachment = Pool().get('ir.attachment')
        attachment, = Attachment.search([
                ('resource', '=', 'isp.voucher.batch,%d' % batch_id)],
            order=[('id', 'DESC')], limit=1)
        data = attachment.data
    import io

    import pypdf
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    print('pdf: %d pages, %.1f MB' % (pages, len(data) / 1e6),
        file=sys.stderr)
    return [('voucher_pdf_%d_s' % options.size, '%.2f' % elapsed, 's')]


@step('duplicates')
def step_duplicates(stack, options):
    """The generator's draw of `options.draws` codes (8 characters, the
    default length), chunk by chunk as `generate` does, each chunk checked
    against the codes drawn before as against the stored codes"""
    from unittest import mock

    from trytond.pool import Pool

    from trytond.modules.isp_voucher import voucher as voucher_module
    drawn = set()
    redraws = [0]
    all_codes = []
    random_code = voucher_module.random_code

    def existing_codes(codes):
        return codes & drawn

    def counting_code(length, *args):
        redraws[0] += 1
        return random_code(length, *args)
    with stack.transaction(company=stack.ids['company']):
        Voucher = Pool().get('isp.voucher')
        chunk = voucher_module.CHUNK_SIZE
        with mock.patch.object(Voucher, 'existing_codes', existing_codes), \
                mock.patch.object(
                    voucher_module, 'random_code', counting_code):
            remaining = options.draws
            while remaining > 0:
                size = min(chunk, remaining)
                codes = Voucher.draw_codes('', 8, size)
                all_codes.extend(codes)
                drawn.update(codes)
                remaining -= size
    duplicates = len(all_codes) - len(set(all_codes))
    return [
        ('voucher_duplicates', duplicates, 'count'),
        ('voucher_redraws', redraws[0] - options.draws, 'count'),
        ]


@step('push')
def step_push(stack, options):
    """The profile's router on a simulator: the time of its provisioning
    task pushing every voucher of the profile (the batch step's 10,000, else
    a batch made here, not timed) and reading them back"""
    from trytond.pool import Pool

    from bench.bench_voucher_push import PASSWORD, hotspot_users, simulator
    from trytond.modules.isp_network.router import update_rows
    ids = stack.ids
    if last_batch(stack, ids, options.size) is None:
        make_batch(stack, ids, options.size, "Bench push")
    with simulator() as port:
        with stack.transaction(company=ids['company']):
            pool = Pool()
            Profile = pool.get('isp.voucher.profile')
            Router = pool.get('isp.router')
            Voucher = pool.get('isp.voucher')
            router = Profile(ids['profile']).router
            Router.write([router], {'port': port, 'api_password': PASSWORD,
                    'timeout': 30})
            update_rows(Router, {router.id: {'voucher_state': 'pending'}})
            wanted = Voucher.search_count([
                    ('profile', '=', ids['profile']),
                    ('state', 'in', ['new', 'sold', 'active', 'disabled'])])
            router_id = router.id

        def push():
            Router = Pool().get('isp.router')
            Router.provision([Router(router_id)])
        started = time.monotonic()
        stack.run_locked(push, company=ids['company'])
        elapsed = time.monotonic() - started
        users = hotspot_users(port)
    with stack.transaction(company=ids['company']):
        router = Pool().get('isp.router')(router_id)
        if users != wanted or router.voucher_state != 'synced':
            raise SystemExit('%d hotspot users, %d wanted: %s' % (
                    users, wanted, router.voucher_error))
    print('push: %d hotspot users' % users, file=sys.stderr)
    return [('voucher_push_%d_s' % options.size, '%.2f' % elapsed, 's')]


def run_child(options):
    "Run one step in this process and print its figures as JSON"
    stack = Stack(options.uri, name=options.database, config=options.config)
    stack.init_pool()
    stack.ids = json.loads(options.ids)
    results = STEPS[options.child](stack, options)
    results.append(
        ('voucher_%s_peak_mb' % options.child, '%.0f' % peak_mb(), 'MB'))
    print('RESULT ' + json.dumps(results), flush=True)


def run(uri, options):
    stack = Stack(uri)
    ids = stack.prepare()
    stack.close()
    idle = subprocess.run([str(BIN / 'python'), __file__, '--child', 'idle',
            '--uri', uri, '--database', stack.name, '--config', stack.config,
            '--ids', json.dumps(ids)], env=stack._env(),
        stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in idle.splitlines():
        if line.startswith('RESULT '):
            for name, value, unit in json.loads(line[7:]):
                print('BENCH %s %s %s' % (name, value, unit), flush=True)
    for name in options.steps.split(','):
        if name not in STEPS:
            raise SystemExit('unknown step %r (%s)' % (
                    name, ', '.join(STEPS)))
        output = subprocess.run([str(BIN / 'python'), __file__,
                '--child', name, '--uri', uri, '--database', stack.name,
                '--config', stack.config, '--ids', json.dumps(ids),
                '--size', str(options.size), '--draws', str(options.draws)],
            env=stack._env(), stdout=subprocess.PIPE, text=True,
            check=True).stdout
        for line in output.splitlines():
            if line.startswith('RESULT '):
                for bench, value, unit in json.loads(line[7:]):
                    print('BENCH %s %s %s' % (bench, value, unit),
                        flush=True)
            else:
                print(line, flush=True)


@step('idle')
def step_idle(stack, options):
    "Nothing: the memory of a process with the pool loaded"
    return []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', default=DEFAULT_STEPS,
        help="comma-separated steps (default %s; registered: %s)" % (
            DEFAULT_STEPS, ', '.join(STEPS)))
    parser.add_argument('--size', type=int, default=10000,
        help="vouchers of the batch and PDF steps (default 10000)")
    parser.add_argument('--draws', type=int, default=1000000,
        help="codes drawn by the duplicates step (default 1000000)")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--database', help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)
    parser.add_argument('--ids', help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        run_child(options)
    elif options.uri:
        run(options.uri, options)
    else:
        with private_cluster() as uri:
            run(uri, options)


if __name__ == '__main__':
    main()
