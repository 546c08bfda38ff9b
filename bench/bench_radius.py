# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of RADIUS authentication: the real FreeRADIUS 3.2 reading the
product's views (isp_network in RADIUS mode) against the same FreeRADIUS
on its stock schema holding the same users, side by side in one run.

Both databases hold 100,000 subscribers (password, Simultaneous-Use 1, the
plan's Mikrotik-Rate-Limit through a group, a static Framed-IP-Address for
one in ten) and the same 1,000,000 radacct rows (2 % of them open
sessions), bulk-loaded with generate_series (not the ORM).  A load
generator sends Access-Requests for random subscribers from several
threads (prebuilt packets, one socket each) and prints::

    BENCH radius_auth_per_s <n> req/s            (product)
    BENCH radius_auth_p99_ms <n> ms              (product)
    BENCH radius_vs_stock_ratio <n> ratio        (product / stock req/s)

plus the stock figures.  It never asserts a time.

    .venv/bin/python bench/bench_radius.py [--subscribers 100000]
        [--sessions 1000000] [--requests 6000] [--threads 8]
        [--uri postgresql://postgres@127.0.0.1:5432/]

Without --uri (nor ISP_TEST_PG_URI) it starts a private PostgreSQL cluster
with scripts/lib.sh and removes it afterwards.  The database with
isp_network activated is kept as a template named after the content of the
modules, so a second run on the same cluster skips the activation.

`RadiusStack` is also the harness of tests/test_radius_freeradius.py.
"""
import argparse
import contextlib
import os
import pathlib
import random
import socket
import statistics
import sys
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import Stack, private_cluster  # noqa: E402
from tools.freeradius import SCHEMA, STOCK_DIR, FreeRadius  # noqa: E402
from tools.radius_peer import load_dictionary  # noqa: E402

SECRET = 'bench-nas-secret'
STOCK_INDEX = ("CREATE INDEX radacct_open_user ON radacct (username) "
    "WHERE acctstoptime IS NULL")
NAS = '127.0.0.2'
RATE = '5M/20M'


class RadiusStack(Stack):
    """A database with isp_network activated, used in this process (queue
    tasks run when `run_tasks` is called, as a worker would)"""

    def __init__(self, uri, name='isp_radius_bench'):
        super().__init__(uri, name=name, workers=0)
        with open(self.config, 'w') as file:
            # tasks run in this process (run_tasks): say so explicitly, an
            # earlier configuration of this process may have turned workers on
            file.write('[database]\nuri = %s\nlanguage = en\n'
                '[queue]\nworker = False\n' % uri)

    def create_database(self):
        "Create the database from the template, activating it if needed"
        started = time.monotonic()
        template = self.module_template('isp_network')
        self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name,
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.name, template))
        return time.monotonic() - started

    def db_params(self, name=None):
        "The connection of FreeRADIUS (tools.freeradius) to the database"
        parts = urllib.parse.urlsplit(self.uri)
        return dict(host=parts.hostname or '127.0.0.1',
            port=parts.port or 5432, user=parts.username or 'postgres',
            password=parts.password, dbname=name or self.name)

    def sql(self, *statements, database=None):
        return self._sql(*statements, database=database or self.name)

    @contextlib.contextmanager
    def transaction(self, **context):
        "A committed transaction; its queued tasks run after the commit"
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, context=context) as t:
            yield t
            tasks = list(t.tasks)
            t.tasks.clear()
        self.run_tasks(tasks)

    def call(self, function, *args, context=None, **kwargs):
        """Run function(*args, **kwargs) in its own transaction, retried
        as the dispatcher does when it asks for locks (Model.lock), then
        run the tasks it queued; return its result"""
        from trytond.transaction import Transaction, TransactionError
        extras = {}
        while True:
            try:
                with Transaction().start(self.name, 0,
                        context=context or {}, **extras) as t:
                    result = function(*args, **kwargs)
                    tasks = list(t.tasks)
                    t.tasks.clear()
                break
            except TransactionError as exception:
                exception.fix(extras)
        self.run_tasks(tasks)
        return result

    def run_tasks(self, task_ids):
        "Run queue tasks as trytond-worker does (each in its transaction)"
        from trytond.pool import Pool

        def run(task_id):
            Pool().get('ir.queue')(task_id).run()
        while task_ids:
            self.call(run, task_ids.pop(0))

    # -- fixtures --------------------------------------------------------

    def create_location(self, code='KCB'):
        from trytond.pool import Pool
        Location = Pool().get('isp.location')
        location, = Location.create([{'code': code, 'name': code.title()}])
        return location.id

    def create_plan(self, name="Home 20M", download=20000, upload=5000,
            **values):
        from decimal import Decimal

        from trytond.pool import Pool
        pool = Pool()
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        unit, = Uom.search([('name', '=', 'Unit')])
        template, = Template.create([{
                    'name': name, 'type': 'service', 'default_uom': unit.id,
                    'isp_plan': True, 'download_rate': download,
                    'upload_rate': upload, 'list_price': Decimal('250000'),
                    **values}])
        return template.id

    def create_router(self, code, address, secret=SECRET, coa_port=3799,
            **values):
        from trytond.pool import Pool
        Router = Pool().get('isp.router')
        router, = Router.create([{
                    'name': code, 'code': code, 'host': address,
                    'api_username': 'admin', 'timeout': 1,
                    'provisioning_mode': 'radius',
                    'radius_address': address, 'radius_secret': secret,
                    'coa_port': coa_port, **values}])
        return router.id

    def register(self, location, plan, router, name="Budi", username=None,
            password=None, **values):
        from trytond.pool import Pool
        Service = Pool().get('isp.service')
        service = Service.register({'name': name, 'location': location,
                'plan': plan, 'router': router, **values})
        changes = {k: v for k, v in [
                ('username', username), ('password', password)] if v}
        if changes:
            Service.write([service], changes)
        return service.id


# bulk data #

def load_product(stack, subscribers, sessions):
    "One branch, router and plan (ORM), then services and radacct (SQL)"
    with stack.transaction():
        company = stack.create_branch()
    with stack.transaction(company=company):
        location = stack.create_location()
        plan = stack.create_plan()
        router = stack.create_router('BNC', NAS)
        service = stack.register(location, plan, router)
    stack.sql(
        "INSERT INTO isp_service (company, subscriber, location, plan, "
        "router, username, password, remote_address, state, router_state, "
        "live_status, router_attempts, radius_throttled, "
        "radius_session_isolated, customer_id, create_uid, create_date) "
        "SELECT s.company, s.subscriber, s.location, s.plan, s.router, "
        "'u' || i, 'pw' || i, CASE WHEN i %% 10 = 0 THEN "
        "'10.%s.' || (i / 250 %% 250) || '.' || (i %% 250 + 1) END, "
        "'active', 'synced', 'unknown', 0, false, false, 'BENCH-' || i, 0, "
        "now() FROM isp_service s, generate_series(1, %d) i "
        "WHERE s.id = %d" % (64, subscribers, service))
    load_radacct(stack, sessions, subscribers)
    stack.sql('ANALYZE')


def load_stock(stack, name, subscribers, sessions):
    "FreeRADIUS's stock schema with the same users and radacct rows"
    stack._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name,
        'CREATE DATABASE "%s" TEMPLATE template0' % name)
    schema = (pathlib.Path(STOCK_DIR) / SCHEMA).read_text()
    stack.sql(schema, database=name)
    stack.sql(
        "INSERT INTO nas (nasname, shortname, type, secret) "
        "VALUES ('%s', 'bench', 'other', '%s')" % (NAS, SECRET),
        "INSERT INTO radcheck (username, attribute, op, value) "
        "SELECT 'u' || i, 'Cleartext-Password', ':=', 'pw' || i "
        "FROM generate_series(1, %d) i" % subscribers,
        "INSERT INTO radcheck (username, attribute, op, value) "
        "SELECT 'u' || i, 'Simultaneous-Use', ':=', '1' "
        "FROM generate_series(1, %d) i" % subscribers,
        "INSERT INTO radreply (username, attribute, op, value) "
        "SELECT 'u' || i, 'Framed-IP-Address', ':=', "
        "'10.64.' || (i / 250 %% 250) || '.' || (i %% 250 + 1) "
        "FROM generate_series(1, %d) i WHERE i %% 10 = 0" % subscribers,
        "INSERT INTO radusergroup (username, groupname, priority) "
        "SELECT 'u' || i, 'plan', 1 FROM generate_series(1, %d) i"
        % subscribers,
        "INSERT INTO radgroupreply (groupname, attribute, op, value) "
        "VALUES ('plan', 'Mikrotik-Rate-Limit', ':=', '%s')" % RATE,
        database=name)
    load_radacct(stack, sessions, subscribers, database=name)
    stack.sql('ANALYZE', database=name)


def load_radacct(stack, sessions, subscribers, database=None):
    "`sessions` rows over the subscribers, 2 % still open"
    stack.sql(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, "
        "nasipaddress, nasporttype, acctstarttime, acctupdatetime, "
        "acctstoptime, acctsessiontime, acctinputoctets, acctoutputoctets, "
        "callingstationid, acctterminatecause, framedipaddress) "
        "SELECT to_hex(i), md5(i::text), 'u' || (i %% %d + 1), '%s', "
        "'Virtual', now() - (i %% 400) * interval '1 day', "
        "now() - (i %% 400) * interval '1 day' + interval '1 hour', "
        "CASE WHEN i %% 50 = 0 THEN NULL "
        "ELSE now() - (i %% 400) * interval '1 day' + interval '2 hours' "
        "END, 7200, i::bigint * 1000, i::bigint * 9000, 'AA:BB:CC:00:00:01', "
        "'User-Request', '10.9.0.1' FROM generate_series(1, %d) i"
        % (subscribers, NAS, sessions), database=database)
    # what the aggregation already counted
    columns = stack.sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'radacct' AND column_name = 'isp_input_counted'",
        database=database)
    if columns:
        stack.sql("UPDATE radacct SET isp_input_counted = acctinputoctets, "
            "isp_output_counted = acctoutputoctets, "
            "isp_time_counted = acctsessiontime", database=database)


# load generator #

def build_packets(usernames, secret=SECRET):
    "Prebuilt raw Access-Requests (id, bytes) for the user names"
    from pyrad.client import Client
    client = Client(server='127.0.0.1', secret=secret.encode(),
        dict=load_dictionary())
    packets = []
    for index, username in enumerate(usernames):
        pkt = client.CreateAuthPacket(User_Name=username,
            NAS_IP_Address=NAS, NAS_Port_Type='Virtual',
            Service_Type='Framed-User')
        pkt.id = index % 256
        pkt['User-Password'] = pkt.PwCrypt('pw' + username[1:])
        packets.append(pkt.RequestPacket())
    return packets


def hammer(port, packets, threads):
    """Send the packets from `threads` sockets bound to the NAS address,
    one in flight per socket; return (elapsed, latencies, rejects, lost)"""
    latencies, counts = [], {'reject': 0, 'lost': 0}
    lock = threading.Lock()
    chunks = [packets[i::threads] for i in range(threads)]

    def worker(chunk):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((NAS, 0))
        sock.settimeout(2)
        mine, rejects, lost = [], 0, 0
        for data in chunk:
            start = time.perf_counter()
            sock.sendto(data, ('127.0.0.1', port))
            try:
                while True:
                    reply = sock.recv(4096)
                    if reply[1] == data[1]:
                        break
            except TimeoutError:
                lost += 1
                continue
            mine.append(time.perf_counter() - start)
            if reply[0] != 2:
                rejects += 1
        sock.close()
        with lock:
            latencies.extend(mine)
            counts['reject'] += rejects
            counts['lost'] += lost
    workers = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return (time.perf_counter() - started, latencies, counts['reject'],
        counts['lost'])


def p99(latencies):
    return statistics.quantiles(latencies, n=100)[98] * 1000


def measure(label, radius, packets, threads, rounds):
    "Warm up, then `rounds` runs; the figures of the best run"
    hammer(radius.auth_port, packets[:300], threads)
    best = None
    for _ in range(rounds):
        elapsed, latencies, rejects, lost = hammer(
            radius.auth_port, packets, threads)
        rate = len(latencies) / elapsed
        print('%s: %d requests in %.2f s: %.0f req/s, p50 %.2f ms, '
            'p99 %.2f ms, %d rejects, %d lost' % (
                label, len(packets), elapsed, rate,
                statistics.median(latencies) * 1000, p99(latencies),
                rejects, lost), flush=True)
        if best is None or rate > best[0]:
            best = (rate, p99(latencies), rejects, lost)
    return best


def run(uri, subscribers, sessions, requests, threads, rounds):
    stack = RadiusStack(uri)
    stock_name = 'isp_radius_bench_stock'
    started = time.monotonic()
    print('database ready in %.1f s' % stack.create_database(), flush=True)
    stack.init_pool()
    try:
        started = time.monotonic()
        load_product(stack, subscribers, sessions)
        load_stock(stack, stock_name, subscribers, sessions)
        print('%d subscribers and %d radacct rows loaded in both databases '
            'in %.1f s' % (subscribers, sessions,
                time.monotonic() - started), flush=True)
        rng = random.Random(42)
        users = ['u%d' % rng.randint(1, subscribers)
            for _ in range(requests)]
        packets = build_packets(users)
        product = FreeRadius.create(stack.db_params(), product=True)
        stock = FreeRadius.create(stack.db_params(stock_name))
        with product, stock:
            results = {'product': [], 'stock': []}
            for _ in range(rounds):
                # alternate, so both see the same machine load
                results['product'].append(measure(
                        'product', product, packets, threads, 1))
                results['stock'].append(measure(
                        'stock', stock, packets, threads, 1))
            # the stock schema has no index for its own Simultaneous-Use
            # query: the same with the product's, for the record
            stack.sql(STOCK_INDEX, database=stock_name)
            indexed = measure('stock+index', stock, packets, threads, 1)
    finally:
        stack._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % stock_name)
        stack.drop_database()
    mine = max(results['product'])
    theirs = max(results['stock'])
    print('rejects: subscribers already online (Simultaneous-Use 1, '
        'the same in every run)')
    if mine[3] or theirs[3] or mine[2] != theirs[2]:
        print('warning: lost requests or different answers (see above)')
    print('stock schema: %.0f req/s, p99 %.2f ms' % (theirs[0], theirs[1]))
    print('stock schema + an index on open sessions by user: %.0f req/s, '
        'p99 %.2f ms, product ratio %.2f' % (
            indexed[0], indexed[1], mine[0] / indexed[0]))
    print('BENCH radius_auth_per_s %.0f req/s' % mine[0])
    print('BENCH radius_auth_p99_ms %.2f ms' % mine[1])
    print('BENCH radius_vs_stock_ratio %.2f ratio' % (mine[0] / theirs[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subscribers', type=int, default=100000)
    parser.add_argument('--sessions', type=int, default=1000000)
    parser.add_argument('--requests', type=int, default=6000)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    args = parser.parse_args(argv)
    options = (args.subscribers, args.sessions, args.requests, args.threads,
        args.rounds)
    if args.uri:
        run(args.uri, *options)
    else:
        with private_cluster() as uri:
            run(uri, *options)
    return 0


if __name__ == '__main__':
    sys.exit(main())
