# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Expenses, profit and loss and cash flow as the finance user of a branch
(Bandung) against another branch (Nairobi), and as the head office."""
import csv
import datetime as dt
import io
import unittest
from decimal import Decimal

from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.exceptions import BranchAccessError
from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    create_customer,
    create_invoices,
)
from trytond.modules.isp_finance.exceptions import (
    AssetValueError,
    ExpenseError,
)
from trytond.modules.isp_finance.expense import pay_invoice
from trytond.modules.isp_multicompany.tests.test_records_security import (
    create_user,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import (
    run_wizard,
)

TODAY = dt.date.today()


def create_expense_setup(company, code):
    """The expense categories of `company` (bandwidth, electricity) on its
    expense account, a supplier, its payment method, and a customer invoice
    of 500 paid in cash"""
    pool = Pool()
    Account = pool.get('account.account')
    Category = pool.get('isp.expense.category')
    Party = pool.get('party.party')
    PaymentMethod = pool.get('account.invoice.payment.method')
    with Transaction().set_context(company=company.id):
        expense, = Account.search([
                ('company', '=', company.id),
                ('type.expense', '=', True), ('closed', '!=', True),
                ], limit=1)
        categories = Category.create([{
                    'company': company.id, 'name': name, 'code': short,
                    'account': expense.id,
                    } for name, short in [
                    ("Upstream Bandwidth", 'BW'), ("Electricity", 'EL')]])
        supplier, = Party.create([{'name': "Supplier %s" % code,
                    'addresses': [('create', [{}])]}])
        method, = PaymentMethod.search(
            [('company', '=', company.id)], limit=1)
        invoice, = create_invoices(
            company, create_customer("Customer %s" % code), 500)
        pay_invoice(invoice, method, TODAY, "Cash")
    return {'company': company, 'categories': categories,
        'expense_account': expense, 'supplier': supplier,
        'method': method, 'invoice': invoice}


class FinanceTestCase(ClassSetupMixin, unittest.TestCase):
    "Expenses and finance reports, per branch and consolidated"
    setup_modules = ['isp_finance']

    @classmethod
    def setup_class_data(cls):
        bandung = create_branch("Bandung", 'IDR')
        nairobi = create_branch("Nairobi", 'KES')
        data = {
            'bdg': create_expense_setup(bandung, 'BD'),
            'nbo': create_expense_setup(nairobi, 'NB'),
            'finance': create_user(
                'finance', 'group_isp_finance', [bandung]),
            'head': create_user('head', 'group_isp_head_admin',
                [bandung, nairobi], 'all'),
            }
        Transaction().tasks.clear()
        return data

    def enter(self, user, company, **values):
        "Run the quick expense entry as `user` in `company`"
        start = {
            'company': company.id, 'currency': company.currency.id,
            'date': TODAY, 'description': "Upstream May",
            'amount': Decimal(120), **values}
        return run_wizard(user, 'isp.expense.enter',
            [('start', {}), ('book', {'start': start})],
            {'company': company.id})

    def report(self, user, company, name):
        """The rows of the report `name` as `user` for `company` (None: every
        branch of the user, as the report context sends it)"""
        Model = Pool().get(name)
        transaction = Transaction()
        with transaction.set_user(user.id), transaction.set_context(
                _check_access=True, company=company.id if company else None,
                from_date=TODAY.replace(day=1), to_date=TODAY):
            return Model.search([])

    @with_transaction()
    def test_expense_enter_reports(self):
        """The finance user books a paid expense with its receipt; profit
        and loss and cash flow of the branch show it, the other branch's
        figures are not among them; the head office sees both branches"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Attachment = pool.get('ir.attachment')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company = bdg['company']
        category = bdg['categories'][0]

        self.enter(data['finance'], company,
            category=category.id, supplier=bdg['supplier'].id,
            payment_method=bdg['method'].id,
            receipt=b'%PDF receipt', receipt_name='receipt.pdf')

        invoice, = Invoice.search([('type', '=', 'in')])
        self.assertEqual(invoice.company, company)
        self.assertEqual(invoice.state, 'posted')
        self.assertTrue(invoice.reconciled)
        self.assertEqual(invoice.amount_to_pay, 0)
        self.assertEqual(invoice.isp_expense_category, category)
        self.assertEqual(invoice.total_amount, Decimal(120))
        self.assertEqual(invoice.lines[0].account, category.account)
        attachment, = Attachment.search(
            [('resource', '=', str(invoice))])
        self.assertEqual(attachment.data, b'%PDF receipt')

        pnl = {(r.kind, r.account): r.amount for r in self.report(
                data['finance'], company, 'isp.report.finance.pnl')}
        revenue = bdg['invoice'].lines[0].account
        self.assertEqual(pnl, {
                ('income', revenue): Decimal(500),
                ('expense', bdg['expense_account']): Decimal(120),
                ('profit', None): Decimal(380),
                })

        flows = {(r.section, r.account): (r.inflow, r.outflow, r.net)
            for r in self.report(data['finance'], company,
                'isp.report.finance.cash_flow')}
        receivable = bdg['invoice'].account
        self.assertEqual(flows, {
                ('customers', receivable): (500, 0, 500),
                ('suppliers', invoice.account): (0, 120, -120),
                ('total', None): (500, 120, 380),
                })

        # another branch asked for: no rows (the rule)
        for name in ['isp.report.finance.pnl',
                'isp.report.finance.cash_flow']:
            self.assertEqual(
                self.report(data['finance'], nbo['company'], name), [])
            self.assertLessEqual({r.company for r in self.report(
                        data['finance'], None, name)}, {company})

        # the head office: one block per branch (amounts not added up)
        rows = self.report(data['head'], None, 'isp.report.finance.pnl')
        profits = {r.company: r.amount for r in rows if r.kind == 'profit'}
        self.assertEqual(profits, {
                company: Decimal(380), nbo['company']: Decimal(500)})

    @with_transaction()
    def test_report_export(self):
        "Profit and loss and cash flow export to CSV as the finance user"
        data = self.class_data()
        company = data['bdg']['company']
        context = {'company': company.id,
            'from_date': TODAY.replace(day=1), 'to_date': TODAY}
        for name in ['isp.report.finance.pnl',
                'isp.report.finance.cash_flow']:
            ids = [r.id for r in self.report(data['finance'], company, name)]
            result = run_wizard(data['finance'], 'isp.report.export', [
                    ('start', {}), ('export', {'start': {'format': 'csv'}})],
                {**context, 'active_model': name, 'active_id': ids[0],
                    'active_ids': ids})
            content = result['view']['defaults']['file']
            rows = list(csv.reader(io.StringIO(content.decode('utf-8'))))
            self.assertEqual(len(rows), len(ids) + 1, msg=name)
            self.assertEqual(rows[-1][0], "Bandung", msg=name)

    @with_transaction()
    def test_expense_refused(self):
        """No category, an amount of zero, another branch's category or
        payment method, a supplier invoice posted without a category:
        refused with their message, nothing booked"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company, user = bdg['company'], data['finance']
        values = {'category': bdg['categories'][0].id,
            'supplier': bdg['supplier'].id}
        for changes, error, message in [
                ({'category': None}, ExpenseError,
                    'isp_finance.msg_expense_category_missing'),
                ({'amount': Decimal(0)}, ExpenseError,
                    'isp_finance.msg_expense_amount_positive'),
                ({'category': nbo['categories'][0].id},
                    BranchAccessError, None),
                ({'payment_method': nbo['method'].id},
                    BranchAccessError, None),
                ]:
            with self.subTest(changes=changes):
                with self.assertRaises(error) as cm:
                    self.enter(user, company, **{**values, **changes})
                if message:
                    self.assertEqual(cm.exception.message, gettext(message))
        self.assertEqual(Invoice.search([('type', '=', 'in')]), [])

        with Transaction().set_context(company=company.id):
            invoice = Invoice(type='in', company=company,
                party=bdg['supplier'], invoice_date=TODAY,
                currency=company.currency)
            invoice.on_change_type()
            invoice.on_change_party()
            invoice.lines = [{'type': 'line', 'quantity': 1,
                    'unit_price': Decimal(10), 'description': "Fuel",
                    'account': bdg['expense_account']}]
            invoice.save()
            with self.assertRaises(ExpenseError) as cm:
                Invoice.post([invoice])
        self.assertEqual(cm.exception.message, gettext(
                'isp_finance.msg_expense_category_required',
                invoice=invoice.rec_name))
        self.assertEqual(invoice.state, 'draft')

    @with_transaction()
    def test_asset_negative_value(self):
        "An asset with a negative value is refused"
        pool = Pool()
        Asset = pool.get('account.asset')
        data = self.class_data()
        company = data['bdg']['company']
        asset = Asset(company=company, value=Decimal(-100),
            residual_value=Decimal(0), depreciation_method='linear',
            frequency='monthly', start_date=TODAY,
            end_date=TODAY.replace(year=TODAY.year + 3))
        with self.assertRaises(AssetValueError) as cm:
            Asset.validate_fields([asset], {'value'})
        self.assertEqual(cm.exception.message, gettext(
                'isp_finance.msg_asset_value_negative',
                field=Asset.value.string, value=Decimal(-100)))

