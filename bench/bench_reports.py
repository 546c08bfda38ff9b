# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Reporting benchmark: the dashboard and the revenue per plan of a branch
with 10,000 services and a few months of invoices.

- reports_dashboard_ms: search and read every figure of the dashboard (all
  branches of the user);
- reports_revenue_by_plan_ms: the revenue per plan and month over twelve
  months;
- also printed: the monthly figures and the aged receivables.

Subscribers and services are created with the ORM.  One real invoice is
posted the stock way; the others are copies of its rows (invoice, line,
move, move lines) inserted in SQL with their own party, service, dates and
amounts, left unpaid: posting 30,000 invoices through the ORM would take
most of an hour and measures billing, not reporting.

    .venv/bin/python bench/bench_reports.py [--services 10000] [--months 3]

The database is a temporary SQLite file unless TRYTOND_DATABASE_URI points
elsewhere (e.g. postgresql://...).  Prints `BENCH <metric> <value> <unit>`.
"""
import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bulk  # noqa: E402

BATCH = 2000


def setup_environment(tmp):
    os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
    os.environ.setdefault('DB_NAME', 'bench_reports')
    if os.environ['TRYTOND_DATABASE_URI'].startswith('sqlite'):
        os.environ['TRYTOND_DATABASE__PATH'] = tmp
        open(os.path.join(tmp, os.environ['DB_NAME'] + '.sqlite'),
            'w').close()


def populate(db_name, count, months):
    from trytond.transaction import TransactionError

    started = time.monotonic()
    today = dt.date.today()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    starts = []
    start = today.replace(day=1)
    for _ in range(months):
        starts.insert(0, start)
        start = (start - dt.timedelta(days=1)).replace(day=1)
    extras = {'_lock_tables': ['ir_sequence', 'ir_sequence_strict']}
    while True:
        try:
            company = _populate(db_name, count, starts, first, today, extras)
        except TransactionError as exception:
            # the locks Tryton asks for (as its own wrappers do)
            exception.fix(extras)
            continue
        break
    print("populated %d services and %d invoices in %.1f s" % (
            count, count * len(starts) + 1, time.monotonic() - started))
    return company


def _populate(db_name, count, starts, first, today, extras):
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from trytond.modules.isp_billing.tests.payment_setup import create_branch
    from trytond.modules.isp_billing.tests.reporting_tools import (
        create_location,
        create_plan,
        create_router,
        create_service_invoices,
    )
    with Transaction().start(db_name, 0, context={}, **extras
            ) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Service = pool.get('isp.service')
        company = create_branch("Bench", 'IDR', today=today)
        with Transaction().set_context(company=company.id):
            plans = [create_plan(company, "Home %d" % s, p, 'home-%d' % s)
                for s, p in [(10, 200000), (20, 300000), (50, 450000)]]
            locations = [create_location(company, code, code)
                for code in ['KCB', 'BDG', 'CMH', 'DPK', 'BKS']]
            routers = [create_router(company, code, code)
                for code in ['CKP', 'BDR', 'CMR', 'DPR']]
            services = []
            for offset in range(0, count, BATCH):
                numbers = range(offset, min(offset + BATCH, count))
                parties = Party.create([{
                            'name': "Subscriber %05d" % i,
                            'is_subscriber': True,
                            'isp_company': company.id,
                            'location': locations[i % 5].id,
                            # the address of the one real invoice
                            **({'addresses': [('create', [{}])]}
                                if i == 0 else {}),
                            } for i in numbers])
                services.extend(Service.create([{
                                'company': company.id,
                                'subscriber': party.id,
                                'location': locations[i % 5].id,
                                'router': routers[i % 4].id,
                                'plan': plans[i % 3].id,
                                'username': 'U%05d' % i,
                                'customer_id': 'C%05d' % i,
                                } for i, party in zip(
                                numbers, parties, strict=True)]))
            table = Service.__table__()
            cursor = transaction.connection.cursor()
            # a year of activations, 5 % terminated, 3 % isolated
            for state, termination, where in [
                    ('active', None, table.id % 100 >= 8),
                    ('terminated', today, table.id % 100 < 5),
                    ('isolated', None, (table.id % 100 >= 5)
                        & (table.id % 100 < 8)),
                    ]:
                cursor.execute(*table.update(
                        [table.state, table.activation_date,
                            table.termination_date],
                        [state, first - dt.timedelta(days=200),
                            termination],
                        where=where))
            invoice, = create_service_invoices(company, [
                    (services[0], starts[0], 200000,
                        starts[0] + dt.timedelta(days=10))])
        transaction.tasks.clear()
        line, = invoice.lines
        receivable, revenue = sorted(
            invoice.move.lines, key=lambda m: m.credit)
        prices = {p.id: Decimal(p.list_price) for p in plans}
        for month in starts:
            for offset in range(0, len(services), BATCH):
                batch = services[offset:offset + BATCH]
                if month == starts[0] and offset == 0:
                    # the first service's was posted for real
                    batch = batch[1:]
                moves = bulk.clone('account_move', invoice.move.id, [
                        {'date': month, 'post_date': month,
                            'number': None}
                        for _ in batch])
                invoices = bulk.clone('account_invoice', invoice.id, [{
                            'party': s.subscriber.id, 'move': m,
                            'invoice_date': month, 'number': None,
                            'reference': None,
                            'payment_term_date': month
                            + dt.timedelta(days=10),
                            } for s, m in zip(batch, moves, strict=True)])
                bulk.clone('account_invoice_line', line.id, [{
                            'invoice': i, 'isp_service': s.id,
                            'party': s.subscriber.id,
                            'product': s.plan.products[0].id,
                            'unit_price': prices[s.plan.id],
                            'isp_period_start': month,
                            'isp_period_key': month,
                            } for s, i in zip(batch, invoices, strict=True)])
                bulk.clone('account_move_line', receivable.id, [{
                            'move': m, 'party': s.subscriber.id,
                            'debit': prices[s.plan.id],
                            'maturity_date': month + dt.timedelta(days=10),
                            } for s, m in zip(batch, moves, strict=True)])
                bulk.clone('account_move_line', revenue.id, [{
                            'move': m, 'credit': prices[s.plan.id],
                            } for s, m in zip(batch, moves, strict=True)])
        transaction.commit()
        return company.id


def timed(db_name, company_id, model, context, repeat=3):
    "The best time (ms) to search and read every field of `model`"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    best = None
    for _ in range(repeat):
        with Transaction().start(db_name, 0, readonly=True,
                context={'company': company_id, **context}):
            Model = Pool().get(model)
            names = [n for n in Model._fields if n not in {
                    'create_uid', 'write_uid', 'create_date',
                    'write_date', 'rec_name'}]
            started = time.perf_counter()
            records = Model.search([])
            rows = Model.read([r.id for r in records], names)
            elapsed = (time.perf_counter() - started) * 1000
        best = elapsed if best is None else min(best, elapsed)
    return best, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--services', type=int, default=10000)
    parser.add_argument('--months', type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench-reports-')
    setup_environment(tmp)

    from trytond.tests.test_tryton import DB_NAME, activate_module

    started = time.monotonic()
    activate_module(['isp_billing'])
    print("database ready in %.1f s" % (time.monotonic() - started))
    company = populate(DB_NAME, args.services, args.months)
    today = dt.date.today()
    year_ago = (today.replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    period = {'from_date': year_ago, 'to_date': today}

    ms, rows = timed(DB_NAME, company, 'isp.report.dashboard', {})
    row = rows[0]
    print("dashboard: MRR %s, revenue %s, overdue %s, active %s, "
        "isolated %s" % (row['mrr'], row['revenue'], row['overdue'],
            row['active_services'], row['isolated']))
    print("BENCH reports_dashboard_ms %.0f ms" % ms)
    ms, rows = timed(DB_NAME, company, 'isp.report.revenue.plan', period)
    print("revenue per plan: %d lines" % len(rows))
    print("BENCH reports_revenue_by_plan_ms %.0f ms" % ms)
    ms, rows = timed(DB_NAME, company, 'isp.report.monthly', period)
    print("BENCH reports_monthly_ms %.0f ms (%d months)" % (ms, len(rows)))
    ms, rows = timed(DB_NAME, company, 'isp.report.aged_receivable',
        {'date': today})
    print("BENCH reports_aged_receivables_ms %.0f ms (%d subscribers)" % (
            ms, len(rows)))


if __name__ == '__main__':
    main()
