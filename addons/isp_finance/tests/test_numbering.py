# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Customer invoice numbers are never taken by supplier invoices: a branch's
fiscal year (isp_billing's branch_setup, as the onboarding makes it) numbers
expenses in a sequence of their own."""
import datetime as dt
import unittest
from decimal import Decimal
from types import SimpleNamespace

from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    create_customer,
    create_invoices,
)
from trytond.modules.isp_finance.expense import create_expense_invoices
from trytond.modules.isp_finance.tests.test_finance import (
    create_expense_setup,
)

TODAY = dt.date.today()


class NumberingTestCase(ClassSetupMixin, unittest.TestCase):
    "Customer and supplier invoices numbered apart"
    setup_modules = ['isp_finance']

    @classmethod
    def setup_class_data(cls):
        data = create_expense_setup(create_branch("Bogor", 'IDR'), 'BG')
        Transaction().tasks.clear()
        return data

    @with_transaction()
    def test_supplier_invoices_own_sequence(self):
        """Two customer invoices around a booked expense follow each other;
        the expense has its supplier number"""
        data = self.class_data()
        company = data['company']
        first = data['invoice']
        with Transaction().set_context(company=company.id):
            expense, = create_expense_invoices([SimpleNamespace(**{
                        'company': company, 'date': TODAY,
                        'category': data['categories'][0],
                        'supplier': data['supplier'],
                        'description': "Upstream", 'amount': Decimal(80),
                        'payment_method': data['method'],
                        })])
            second, = create_invoices(
                company, create_customer("Second customer"), 200)
        self.assertTrue(first.number)
        self.assertEqual(int(second.number), int(first.number) + 1)
        self.assertTrue(expense.number.startswith('IN-'), expense.number)
        fiscalyear = Pool().get('account.fiscalyear').find(
            company.id, date=TODAY)
        sequences, = fiscalyear.invoice_sequences
        self.assertNotEqual(
            sequences.in_invoice_sequence, sequences.out_invoice_sequence)
        self.assertEqual(
            sequences.in_credit_note_sequence, sequences.in_invoice_sequence)
