# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Finance reports benchmark: profit and loss and cash flow of a branch with
10,000 services and a year of moves.

- finance_pnl_ms: search and read the profit and loss of the year;
- finance_cashflow_ms: the cash flow (direct method) of the year;
- backup_restore_s (PostgreSQL only): `scripts/backup run` of that database,
  pg_dump + restore into a scratch database + row counts and accounting
  checksum compared (tools/backup.py).

The year of invoices is bench_reports.py's (one real invoice, the others
copies of its rows in SQL); each invoice is paid in cash ten days after its
date (copies of one real payment move, in SQL); a year of expenses (five
categories a month) is booked with the quick expense entry's code, paid in
cash.

    .venv/bin/python bench/bench_finance.py [--services 10000] [--months 12]

The database is a temporary SQLite file unless TRYTOND_DATABASE_URI points
elsewhere (the figures are PostgreSQL's: postgresql://...).  Prints
`BENCH <metric> <value> <unit>`.
"""
import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from decimal import Decimal
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bulk  # noqa: E402
from bench.bench_reports import (  # noqa: E402
    BATCH,
    populate,
    setup_environment,
    timed,
)

CATEGORIES = [
    ("Upstream Bandwidth", 'BW', 25000000),
    ("Electricity", 'EL', 4000000),
    ("Salaries", 'SAL', 30000000),
    ("Tower Rent", 'TWR', 6000000),
    ("Equipment", 'EQ', 8000000),
    ]


def pay_all(db_name, company_id, months):
    """Pay every invoice in cash ten days after its date (one payment
    through the ORM, copies of its move and lines for the others) and book
    a year of expenses, paid in cash"""
    from trytond.transaction import TransactionError

    extras = {'_lock_tables': ['ir_sequence', 'ir_sequence_strict']}
    while True:
        try:
            return _pay_all(db_name, company_id, months, extras)
        except TransactionError as exception:
            # the locks Tryton asks for (as its own wrappers do)
            exception.fix(extras)


def _pay_all(db_name, company_id, months, extras):
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from trytond.modules.isp_finance.expense import (
        create_expense_invoices,
        pay_invoice,
    )
    started = time.monotonic()
    with Transaction().start(db_name, 0, context={'company': company_id},
            **extras) as transaction:
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Account = pool.get('account.account')
        Category = pool.get('isp.expense.category')
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        PaymentMethod = pool.get('account.invoice.payment.method')
        Line = pool.get('account.move.line')
        company = Company(company_id)
        method, = PaymentMethod.search(
            [('company', '=', company_id)], limit=1)
        first, = Invoice.search([
                ('type', '=', 'out'), ('company', '=', company_id)],
            order=[('id', 'ASC')], limit=1)
        pay_invoice(first, method, first.invoice_date, "Cash")
        first = Invoice(first.id)
        payment, = {line.move for line in first.payment_lines}
        cash_line, = [line for line in payment.lines if line.debit]
        paid_line, = [line for line in payment.lines if line.credit]

        # the other invoices' receivable lines: party, amount, date
        Move = pool.get('account.move')
        line, move = Line.__table__(), Move.__table__()
        cursor = transaction.connection.cursor()
        cursor.execute(*line.join(move, condition=line.move == move.id
                ).select(line.party, line.debit, move.date,
                where=(line.account == first.account.id)
                & (line.debit > 0) & (move.company == company_id)
                & (line.move != first.move.id)))
        receivables = cursor.fetchall()
        for offset in range(0, len(receivables), BATCH):
            batch = receivables[offset:offset + BATCH]
            when = [d + dt.timedelta(days=10) for _, _, d in batch]
            moves = bulk.clone('account_move', payment.id, [
                    {'date': d, 'post_date': d, 'number': None}
                    for d in when])
            bulk.clone('account_move_line', cash_line.id, [
                    {'move': m, 'debit': amount}
                    for m, (_, amount, _) in zip(moves, batch, strict=True)])
            bulk.clone('account_move_line', paid_line.id, [
                    {'move': m, 'party': party, 'credit': amount}
                    for m, (party, amount, _) in zip(
                        moves, batch, strict=True)])

        expense, = Account.search([
                ('company', '=', company_id),
                ('type.expense', '=', True), ('closed', '!=', True),
                ], limit=1)
        categories = Category.create([{
                    'company': company_id, 'name': name, 'code': code,
                    'account': expense.id} for name, code, _ in CATEGORIES])
        supplier, = Party.create([{
                    'name': "PT Supplier", 'addresses': [('create', [{}])]}])
        today = dt.date.today()
        entries = []
        month = today.replace(day=1)
        for _ in range(months):
            date = min(month.replace(day=5), today)
            month = (month - dt.timedelta(days=1)).replace(day=1)
            for category, (name, _, amount) in zip(
                    categories, CATEGORIES, strict=True):
                entries.append(SimpleNamespace(
                        category=category, supplier=supplier, date=date,
                        amount=Decimal(amount), description=name,
                        payment_method=method))
        create_expense_invoices(entries)
        transaction.tasks.clear()
        transaction.commit()
    print("paid %d invoices, booked %d expenses in %.1f s" % (
            len(receivables) + 1, len(entries),
            time.monotonic() - started))
    return company.id


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--services', type=int, default=10000)
    parser.add_argument('--months', type=int, default=12)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench-finance-')
    os.environ.setdefault('DB_NAME', 'bench_finance')
    setup_environment(tmp)

    from trytond.tests.test_tryton import DB_NAME, activate_module

    started = time.monotonic()
    activate_module(['isp_finance'])
    print("database ready in %.1f s" % (time.monotonic() - started))
    company = populate(DB_NAME, args.services, args.months)
    pay_all(DB_NAME, company, args.months)
    analyze(DB_NAME)
    today = dt.date.today()
    year_ago = (today.replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    period = {'from_date': year_ago, 'to_date': today}

    ms, rows = timed(DB_NAME, company, 'isp.report.finance.pnl', period)
    profit, = [r['amount'] for r in rows if r['kind'] == 'profit']
    print("profit and loss: %d lines, net profit %s" % (len(rows), profit))
    print("BENCH finance_pnl_ms %.0f ms" % ms)
    ms, rows = timed(
        DB_NAME, company, 'isp.report.finance.cash_flow', period)
    net, = [r['net'] for r in rows if r['section'] == 'total']
    print("cash flow: %d lines, net change %s" % (len(rows), net))
    print("BENCH finance_cashflow_ms %.0f ms" % ms)
    uri = os.environ.get('TRYTOND_DATABASE_URI', '')
    if uri.startswith('postgresql'):
        backup_restore(uri, DB_NAME)


def analyze(database):
    """Statistics of the new rows, as autovacuum gathers them within a
    minute of a bulk change on a production database"""
    from trytond.transaction import Transaction
    with Transaction().start(database, 0) as transaction:
        transaction.connection.cursor().execute('ANALYZE')


def backup_restore(uri, database):
    "Times the dump, restore and verification of `database`"
    from tools import backup
    with tempfile.TemporaryDirectory() as target:
        started = time.monotonic()
        path = backup.dump(database, target, dsn=uri)
        dumped = time.monotonic() - started
        backup.verify(target, dsn=uri)
        total = time.monotonic() - started
        size_mb = path.stat().st_size / 1e6
    print("backup of %s: dump %.1f s (%.1f MB), dump + restore + check "
        "%.1f s" % (database, dumped, size_mb, total))
    print("BENCH backup_restore_s %.1f s" % total)


if __name__ == '__main__':
    main()
