# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The billing run's queue tasks: a batch of services of two branches is
built and validated by `isp.service|isp_bill_batch`, then posted by the
`account.invoice|isp_post_batch` task it queues; both are idempotent.

Like the payment tests, these commit (the tasks run in transactions of
their own, restarted with the locks they ask for, as a worker runs them).
"""
import datetime as dt
import unittest
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction

from .payment_setup import (
    SETUP_TABLES,
    create_branch,
    create_plan_and_router,
    create_sales_tax,
    create_services,
    run_locked,
)


class BillingBatchTestCase(unittest.TestCase):
    "Test the billing run's batch and posting tasks"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_billing')
        cls.branches, _, _ = run_locked(cls.setup_branches,
            tables=SETUP_TABLES)

    @classmethod
    def setup_branches(cls):
        "Two branches with 3 active services each, billed until last month"
        Date = Pool().get('ir.date')
        result = {}
        for name, code, rate in [
                ("Batch Jakarta", 'IDR', '0.11'),
                ("Batch Nairobi", 'KES', '0.16')]:
            company = create_branch(name, code)
            with Transaction().set_context(company=company.id):
                today = Date.today()
                create_sales_tax(company, rate)
                plan, router = create_plan_and_router(
                    company, "Home %s" % code, '300000', code)
                billed_until = today.replace(day=1) - dt.timedelta(days=1)
                services = create_services(company, plan, router,
                    ["Subscriber %s %d" % (code, i) for i in range(3)], code,
                    activation_date=billed_until.replace(day=1)
                    - relativedelta(months=2),
                    billed_until=billed_until)
            result[company.id] = ([s.id for s in services], today)
        return result

    def bill(self, service_ids):
        "The billing batch task over `service_ids` (of both branches)"
        today = max(t for _, t in self.branches.values())

        def batch():
            Service = Pool().get('isp.service')
            Service.isp_bill_batch(Service.browse(service_ids), today)
        return run_locked(batch)

    def invoices(self):
        "{company id: [(number, state, untaxed, tax, message count)]}"
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Message = pool.get('isp.message')
            result = {}
            for company in self.branches:
                result[company] = [(i.number, i.state, i.untaxed_amount,
                        i.tax_amount, Message.search_count([
                                ('origin', '=', str(i)),
                                ('event', '=', 'invoice_issued')]))
                    for i in Invoice.search([('company', '=', company)],
                        order=[('id', 'ASC')])]
            return result

    def test_batch_of_two_branches(self):
        "A batch over two branches bills each service once, posted"
        service_ids = [i for ids, _ in self.branches.values() for i in ids]
        _, restarts, tasks = self.bill(service_ids)
        # restarted for the services' and the journal periods' locks only,
        # before building; posting is a task of its own
        self.assertLessEqual(restarts, 2)
        self.assertEqual(tasks, 1)
        invoices = self.invoices()
        for company, rate in zip(sorted(self.branches),
                [Decimal('0.11'), Decimal('0.16')], strict=True):
            rows = invoices[company]
            self.assertEqual(len(rows), 3)
            self.assertEqual({r[1] for r in rows}, {'posted'})
            self.assertEqual(len({r[0] for r in rows}), 3)
            self.assertTrue(all(r[0] for r in rows))
            for _, _, untaxed, tax, messages in rows:
                self.assertEqual(untaxed, Decimal('300000'))
                self.assertEqual(tax, untaxed * rate)
                self.assertEqual(messages, 1)
        with Transaction().start(DB_NAME, 0):
            Service = Pool().get('isp.service')
            for _, (ids, today) in self.branches.items():
                end = (today.replace(day=1) + relativedelta(months=1)
                    - dt.timedelta(days=1))
                self.assertEqual(
                    {s.billed_until for s in Service.browse(ids)}, {end})

        # again: nothing more is billed, posting again changes nothing
        self.bill(service_ids)

        def post_again():
            Invoice = Pool().get('account.invoice')
            Invoice.isp_post_batch(Invoice.search([]))
        run_locked(post_again)
        self.assertEqual(self.invoices(), invoices)
