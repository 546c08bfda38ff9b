# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The balance sheet per branch (Bandung, Nairobi) after invoices,
payments, expenses and assets: assets equal liabilities and equity in each
branch's block; the finance user of one branch sees it only, the head
office both; the PDF export of the finance reports."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import create_branch
from trytond.modules.isp_finance.tests.test_assets import (
    MARCH_END,
    create_asset,
    setup_finance,
)
from trytond.modules.isp_finance.tests.test_finance import (
    create_expense_setup,
)
from trytond.modules.isp_multicompany.tests.test_records_security import (
    create_user,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import (
    run_wizard,
)

TODAY = dt.date.today()
NAME = 'isp.report.finance.balance_sheet'


class BalanceSheetTestCase(ClassSetupMixin, unittest.TestCase):
    "The balance sheet per branch and consolidated, the PDF export"
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
        for key in ['bdg', 'nbo']:
            company = data[key]['company']
            assets = setup_finance(company)['assets']
            data[key]['asset'] = create_asset(
                company, assets['router'], 12000, 1200)
        Transaction().tasks.clear()
        return data

    def report(self, user, company, to_date=TODAY):
        """The rows of the balance sheet as `user` for `company` (None:
        every branch of the user) at `to_date`"""
        Model = Pool().get(NAME)
        transaction = Transaction()
        with transaction.set_user(user.id), transaction.set_context(
                _check_access=True, company=company.id if company else None,
                from_date=TODAY.replace(day=1), to_date=to_date):
            return Model.search([])

    def assertBalances(self, rows, company):
        "The block of `company` in `rows` balances, its totals are its lines"
        block = [r for r in rows if r.company == company]
        self.assertTrue(block)
        currency = company.currency
        lines = [r for r in block if r.kind != 'total']
        total_assets, = [r.amount for r in block
            if r.kind == 'total' and r.section == 'assets']
        total, = [r.amount for r in block
            if r.kind == 'total' and r.section == 'total']
        self.assertEqual(currency.round(total_assets), currency.round(
                sum(r.amount for r in lines if r.section == 'assets')))
        self.assertEqual(currency.round(total), currency.round(
                sum(r.amount for r in lines if r.section != 'assets')))
        self.assertNotEqual(total_assets, 0)
        self.assertEqual(
            currency.round(total_assets), currency.round(total))
        return block

    @with_transaction()
    def test_balance_sheet(self):
        """After a paid invoice, a paid expense and an asset's depreciation
        the balance sheet of each branch balances: cash and the asset on the
        assets side, the year's profit as current year earnings in equity;
        the finance user of Bandung sees Bandung only, the head office both
        blocks"""
        pool = Pool()
        Account = pool.get('account.account')
        Asset = pool.get('account.asset')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company, user = bdg['company'], data['finance']
        run_wizard(user, 'isp.expense.enter', [('start', {}), ('book', {
                        'start': {
                            'company': company.id,
                            'currency': company.currency.id,
                            'date': TODAY, 'description': "Upstream",
                            'amount': Decimal(120),
                            'category': bdg['categories'][0].id,
                            'supplier': bdg['supplier'].id,
                            'payment_method': bdg['method'].id}})],
            {'company': company.id})
        if TODAY >= MARCH_END:
            # (one branch at a time: account's post of several companies'
            # moves fails)
            for branch in [bdg, nbo]:
                with Transaction().set_context(company=branch['company'].id):
                    Asset.create_moves([branch['asset']], MARCH_END)

        rows = self.report(user, company)
        self.assertEqual({r.company for r in rows}, {company})
        block = self.assertBalances(rows, company)
        by_kind = {}
        for row in block:
            by_kind.setdefault((row.section, row.kind), []).append(row)
        # the year's profit: 500 invoiced, 120 spent, the depreciation
        earnings, = by_kind[('equity', 'earnings')]
        depreciation = Decimal(2700) if TODAY >= MARCH_END else 0
        self.assertEqual(company.currency.round(earnings.amount),
            Decimal(380) - depreciation)
        self.assertNotIn(('equity', 'retained'), by_kind)
        with Transaction().set_context(company=company.id):
            cash = Account.search([
                    ('company', '=', company.id), ('code', '=', '1.1.1')])
        assets = {r.account: r.amount
            for r in by_kind[('assets', 'account')]}
        for account in cash:
            self.assertIn(account, assets)
        self.assertTrue(all(r.account.company == company
                for r in block if r.account))

        # another branch asked for: nothing; before the moves: nothing
        self.assertEqual(self.report(user, nbo['company']), [])
        self.assertEqual(self.report(
                user, company, TODAY - dt.timedelta(days=400)), [])

        # the head office: one balanced block per branch, not added up
        rows = self.report(data['head'], None)
        self.assertEqual({r.company for r in rows},
            {company, nbo['company']})
        self.assertBalances(rows, company)
        self.assertBalances(rows, nbo['company'])
        self.assertEqual({r.currency.code for r in rows
                if r.company == nbo['company']}, {'KES'})

    @with_transaction()
    def test_export_pdf(self):
        """The export wizard's PDF of a finance report: a PDF file; its HTML
        has a block per branch with the figures and totals"""
        Model = Pool().get(NAME)
        data = self.class_data()
        company = data['bdg']['company']
        context = {'company': company.id,
            'from_date': TODAY.replace(day=1), 'to_date': TODAY}
        rows = self.report(data['finance'], company)
        ids = [r.id for r in rows]
        result = run_wizard(data['finance'], 'isp.report.export', [
                ('start', {}), ('export', {'start': {'format': 'pdf'}})],
            {**context, 'active_model': NAME, 'active_id': ids[0],
                'active_ids': ids})
        defaults = result['view']['defaults']
        self.assertEqual(defaults['filename'], 'finance_balance_sheet.pdf')
        self.assertTrue(defaults['file'].startswith(b'%PDF'))

        with Transaction().set_context(context):
            header, lines = Model.isp_export_rows(rows)
            page = Model.isp_export_html(header, lines)
        self.assertIn('<h2>Bandung</h2>', page)
        self.assertIn('Current Year Earnings', page)
        self.assertIn('Liabilities and Equity', page)
        self.assertIn('500.00', page)  # the cash of the paid invoice
