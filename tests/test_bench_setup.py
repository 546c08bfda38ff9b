# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The benchmarks' bulk setup (bench/bulk.py) makes the rows the ORM makes.

For the open invoices of bench/bench_webhook.py and the services of
bench/bench_billing.py, two databases made from the same template are
populated, one through the ORM (the functions the tests and the old setup
use), one in bulk; the rows each population added must be the same in
every table (ids renumbered by order, links followed, timestamps compared
by presence), but for the values drawn at random (payment references, pay
tokens).  A module that starts computing or creating something more when a
party, a service or an invoice is created makes this fail until bulk.py
copies it too.

Needs PostgreSQL, as tests/test_payment_webhooks.py.
"""
import datetime as dt
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_billing, bench_webhook  # noqa: E402
from bench.bench_webhook import SEQUENCES, Stack  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
        'postgresql'),
    reason="needs TRYTOND_DATABASE_URI on PostgreSQL (as scripts/test "
    "sets it)")

COUNT = 25
STAMPS = {'create_date', 'write_date'}
# drawn at random for each record
RANDOM = {
    'account_invoice': {'isp_pay_token'},
    'isp_payment_transaction': {'reference'},
    }


def _cursor():
    from trytond.transaction import Transaction
    return Transaction().connection.cursor()


def _last_ids():
    "{table: its largest id} of the tables with an id"
    cursor = _cursor()
    cursor.execute("SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'id'")
    result = {}
    for table, in cursor.fetchall():
        cursor.execute('SELECT max(id) FROM "%s"' % table)
        result[table] = cursor.fetchone()[0] or 0
    return result


def _foreign_keys():
    "{(table, column): referenced table}"
    cursor = _cursor()
    cursor.execute("SELECT c.conrelid::regclass::text, a.attname, "
        "c.confrelid::regclass::text FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = c.conkey[1] WHERE c.contype = 'f'")
    return {(t.strip('"'), c): r.strip('"') for t, c, r in cursor}


def _added_rows(before):
    """The rows added since `before` (_last_ids), table by table, with the
    ids of added rows replaced by their rank, in the rows' own id and in
    the columns and references ('model,id') that point to them"""
    cursor = _cursor()
    added = {}
    for table, last in before.items():
        cursor.execute('SELECT * FROM "%s" WHERE id > %%s ORDER BY id'
            % table, (last,))
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor]
        if rows:
            added[table] = rows
    rank = {t: {r['id']: i for i, r in enumerate(rows)}
        for t, rows in added.items()}
    keys = _foreign_keys()

    def renumbered(table, name, value):
        target = keys.get((table, name))
        if target and value in rank.get(target, {}):
            return ('added', target, rank[target][value])
        if isinstance(value, str) and value.count(',') == 1:
            model, id_ = value.split(',')
            target = model.replace('.', '_')
            if id_.isdigit() and int(id_) in rank.get(target, {}):
                return ('added', target, rank[target][int(id_)])
        return value
    result = {}
    for table, rows in added.items():
        result[table] = [{
                name: (value is not None if name in STAMPS
                    else renumbered(table, name, value))
                for name, value in row.items()
                if name != 'id' and name not in RANDOM.get(table, ())}
            for row in rows]
    return result, added


def _populate(pg_uri, name, setup, populate):
    """Populate a new database (`setup` then `populate(values of setup)`);
    return what `populate` added (_added_rows)"""
    stack = Stack(pg_uri, name=name)
    stack.create_database()
    stack.init_pool()
    try:
        values = stack.run_locked(setup, tables=SEQUENCES)
        with stack.transaction():
            before = _last_ids()
        populate(stack, values)
        with stack.transaction():
            bench_webhook.clear_queue()
        with stack.transaction():
            return _added_rows(before)
    finally:
        stack.drop_database()


def _assert_same(orm, bulk):
    assert sorted(orm) == sorted(bulk)
    for table in orm:
        assert len(orm[table]) == len(bulk[table]), table
        for i, (expected, row) in enumerate(
                zip(orm[table], bulk[table], strict=True)):
            assert row == expected, (table, i, {
                    n: (v, row.get(n)) for n, v in expected.items()
                    if row.get(n) != v})


def _webhook_setup():
    from tools.fake_gateways import FakeMidtrans
    company = bench_webhook.create_branch()
    bench_webhook.create_gateway(
        'midtrans', FakeMidtrans(), company, 'http://127.0.0.1:1')
    return company


def test_open_invoices(pg_uri):
    "bulk_open_invoices adds what create_customers + create_open_invoices do"
    def orm(stack, company):
        with stack.transaction(company=company):
            parties = bench_webhook.create_customers(COUNT)
        stack.run_locked(lambda: bench_webhook.create_open_invoices(
                company, parties), tables=SEQUENCES, company=company)

    def bulk(stack, company):
        with stack.transaction(company=company):
            party, = bench_webhook.create_customers(1)
        stack.run_locked(lambda: bench_webhook.bulk_open_invoices(
                company, party, COUNT), tables=SEQUENCES, company=company)
    expected, _ = _populate(pg_uri, 'isp_bench_setup_orm', _webhook_setup,
        orm)
    added, raw = _populate(pg_uri, 'isp_bench_setup_bulk', _webhook_setup,
        bulk)
    assert len(expected['account_invoice']) == COUNT
    assert {r['state'] for r in expected['account_invoice']} == {'posted'}
    _assert_same(expected, added)
    for table, names in RANDOM.items():
        for name in names:
            assert len({r[name] for r in raw[table]}) == COUNT, name


def test_services(pg_uri):
    "bulk_services adds what create_services does"
    today = dt.date.today()

    def populate(create):
        def populate(stack, values):
            company, plans, router, location = values
            stack.run_locked(lambda: create(company, plans, router,
                    location, 0, COUNT, today), company=company)
        return populate
    expected, _ = _populate(pg_uri, 'isp_bench_setup_orm',
        bench_billing.setup_branch,
        populate(bench_billing.create_services))
    added, _ = _populate(pg_uri, 'isp_bench_setup_bulk',
        bench_billing.setup_branch, populate(bench_billing.bulk_services))
    assert len(expected['isp_service']) == COUNT
    assert len(expected['party_party']) == COUNT
    _assert_same(expected, added)
