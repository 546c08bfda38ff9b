# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Assets (straight-line monthly depreciation, disposal), bank statements
settling the gateways' payments, and other income, as the finance user of a
branch (Bandung) against another branch (Nairobi)."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
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
from trytond.modules.isp_multicompany.tests.test_records_security import (
    as_user,
    create_user,
    refused_call,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import (
    rpc,
    run_wizard,
)

YEAR_START = dt.date.today().replace(month=1, day=1)
YEAR_END = YEAR_START.replace(month=12, day=31)
MARCH_END = YEAR_START.replace(month=3, day=31)


def setup_finance(company):
    """The asset products, other income products and statement journals of
    `company` (the classmethods the onboarding and the demo call)"""
    pool = Pool()
    Asset = pool.get('account.asset')
    Template = pool.get('product.template')
    Statement = pool.get('account.statement')
    with Transaction().set_context(company=company.id):
        return {'company': company,
            'assets': Asset.setup_asset_categories(company),
            'income': Template.setup_other_income_products(company),
            'journals': Statement.setup_statement_journals(company)}


def create_asset(company, product, value, residual, run=True):
    "A running asset of `company` depreciated over this year"
    pool = Pool()
    Asset = pool.get('account.asset')
    Journal = pool.get('account.journal')
    journal, = Journal.search([('type', '=', 'asset')], limit=1)
    with Transaction().set_context(company=company.id):
        asset, = Asset.create([{
                    'company': company.id, 'product': product.id,
                    'value': Decimal(value),
                    'residual_value': Decimal(residual),
                    'purchase_date': YEAR_START,
                    'start_date': YEAR_START, 'end_date': YEAR_END,
                    'account_journal': journal.id,
                    'depreciation_method': 'linear', 'frequency': 'monthly',
                    }])
        if run:
            Asset.run([asset])
    return asset


class AssetsTestCase(ClassSetupMixin, unittest.TestCase):
    "Assets, statements and other income of a branch"
    setup_modules = ['isp_finance']

    @classmethod
    def setup_class_data(cls):
        bandung = create_branch("Bandung", 'IDR')
        nairobi = create_branch("Nairobi", 'KES')
        data = {
            'bdg': setup_finance(bandung),
            'nbo': setup_finance(nairobi),
            'finance': create_user(
                'finance', 'group_isp_finance', [bandung]),
            }
        nbo = data['nbo']
        nbo['asset'] = create_asset(
            nairobi, nbo['assets']['tower'], 24000, 0)
        Transaction().tasks.clear()
        return data

    def pnl(self, company, from_date, to_date):
        "{(kind, account): amount} of the profit and loss as the finance user"
        PnL = Pool().get('isp.report.finance.pnl')
        user = self.class_data()['finance']
        with Transaction().set_user(user.id), Transaction().set_context(
                _check_access=True, company=company.id,
                from_date=from_date, to_date=to_date):
            return {(r.kind, r.account): r.amount for r in PnL.search([])}

    @with_transaction()
    def test_setup_idempotent(self):
        """The setup classmethods run again find what they made: the same
        products, categories and journals, nothing added"""
        pool = Pool()
        Template = pool.get('product.template')
        StatementJournal = pool.get('account.statement.journal')
        data = self.class_data()
        bdg = data['bdg']
        templates = Template.search([], count=True)
        journals = StatementJournal.search([], count=True)
        again = setup_finance(bdg['company'])
        self.assertEqual(again, bdg)
        self.assertEqual(Template.search([], count=True), templates)
        self.assertEqual(StatementJournal.search([], count=True), journals)
        router = bdg['assets']['router']
        with Transaction().set_context(company=bdg['company'].id):
            self.assertEqual(router.account_asset_used.code, '1.5.3')
            self.assertTrue(router.account_depreciation_used.type.fixed_asset)
            self.assertTrue(router.account_expense_used.type.expense)
            self.assertTrue(
                bdg['income']['installation'].account_revenue_used
                .type.revenue)
            self.assertEqual(router.template.depreciation_duration, 60)
            # the gateways collect on the reconcilable clearing account, the
            # bank statements on the bank account
            method = pool.get('isp.billing.configuration').get_value(
                bdg['company'], 'payment_method_gateway')
            self.assertEqual(method.debit_account.code, '1.1.6')
            self.assertTrue(method.debit_account.reconcile)
            self.assertEqual(bdg['journals']['bank'].account.code, '1.1.5')
        # Nairobi's products are Nairobi's, on Nairobi's accounts
        with Transaction().set_context(company=data['nbo']['company'].id):
            tower = data['nbo']['assets']['tower']
            self.assertEqual(tower.template.isp_company,
                data['nbo']['company'])
            self.assertEqual(tower.account_asset_used.company,
                data['nbo']['company'])

    @with_transaction()
    def test_asset_depreciation_disposal(self):
        """The finance user creates and runs an asset: twelve monthly lines
        of (value - residual) / 12; Create Assets Moves posts those due,
        only of the user's branch; profit and loss shows the depreciation as
        an expense; closing posts the disposal move"""
        pool = Pool()
        Asset = pool.get('account.asset')
        Move = pool.get('account.move')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company, user = bdg['company'], data['finance']
        context = {'company': company.id}
        router = bdg['assets']['router']
        journal, = pool.get('account.journal').search(
            [('type', '=', 'asset')], limit=1)

        asset_id, = rpc(user, Asset, 'create', [{
                    'company': company.id, 'product': router.id,
                    'value': Decimal(12000), 'residual_value': Decimal(1200),
                    'purchase_date': YEAR_START,
                    'start_date': YEAR_START, 'end_date': YEAR_END,
                    'account_journal': journal.id,
                    'depreciation_method': 'linear',
                    'frequency': 'monthly'}], context=context)
        rpc(user, Asset, 'run', [asset_id], context=context)
        asset = Asset(asset_id)
        self.assertEqual(asset.state, 'running')
        self.assertEqual([line.depreciation for line in asset.lines],
            [Decimal(900)] * 12)
        self.assertEqual(asset.lines[0].date, YEAR_START.replace(day=31))

        run_wizard(user, 'account.asset.create_moves', [
                ('start', {}),
                ('create_moves', {'start': {'date': MARCH_END}})],
            {**context, 'company_filter': 'one'})
        asset = Asset(asset_id)
        moves = [line.move for line in asset.lines if line.move]
        self.assertEqual(len(moves), 3)
        self.assertEqual({m.state for m in moves}, {'posted'})
        self.assertEqual({m.date for m in moves}, {
                YEAR_START.replace(day=31),
                YEAR_START.replace(month=2, day=28 if YEAR_START.year % 4
                    else 29), MARCH_END})
        # Nairobi's running asset: untouched by Bandung's run
        self.assertEqual(
            [line for line in Asset(nbo['asset'].id).lines if line.move], [])

        with Transaction().set_context(company=company.id):
            expense = router.account_expense_used
        pnl = self.pnl(company, YEAR_START, MARCH_END)
        self.assertEqual(pnl[('expense', expense)], Decimal(2700))

        # disposal: the asset's value out, its depreciation back, the rest
        # (12000 - 2700) an expense
        with as_user(user, company):
            Asset.close([Asset(asset_id)], date=MARCH_END)
        asset = Asset(asset_id)
        self.assertEqual(asset.state, 'closed')
        self.assertEqual(asset.move.state, 'posted')
        lines = {(line.account, line.debit, line.credit)
            for line in asset.move.lines}
        with Transaction().set_context(company=company.id):
            self.assertEqual(lines, {
                    (router.account_asset_used, 0, Decimal(12000)),
                    (router.account_depreciation_used, Decimal(2700), 0),
                    (expense, Decimal(9300), 0)})
        # the lines not yet posted are dropped
        self.assertEqual(len(asset.lines), 3)
        pnl = self.pnl(company, YEAR_START, MARCH_END)
        self.assertEqual(pnl[('expense', expense)], Decimal(12000))
        self.assertEqual(pnl[('profit', None)], Decimal(-12000))
        self.assertEqual(Move.search([('company', '=', nbo['company'].id),
                    ('journal', '=', journal.id)]), [])

    @with_transaction()
    def test_asset_other_branch(self):
        """Nairobi's asset is not found, read, written, run, closed nor
        updated by Bandung's finance user"""
        pool = Pool()
        Asset = pool.get('account.asset')
        data = self.class_data()
        company, user = data['bdg']['company'], data['finance']
        nbo_company = data['nbo']['company']
        asset = data['nbo']['asset']
        context = {'company': company.id}
        self.assertEqual(
            rpc(user, Asset, 'search', [], context=context), [])
        for method, args in [
                ('read', ([asset.id], ['value'])),
                ('write', ([asset.id], {'value': Decimal(1)})),
                ('close', ([asset.id],)),
                ('clear_lines', ([asset.id],)),
                ]:
            with self.subTest(method=method), \
                    self.assertRaises(AccessError):
                rpc(user, Asset, method, *args, context=context)
        with self.assertRaises(AccessError):
            run_wizard(user, 'account.asset.update', [('start', {})], {
                    **context, 'active_model': 'account.asset',
                    'active_id': asset.id, 'active_ids': [asset.id]})
        self.assertEqual(Asset(asset.id).state, 'running')

        # Update Asset on Bandung's own asset with Nairobi's accounts for
        # the revaluation move: refused before anything is booked, naming
        # none of them (Tryton's domain refused them at the save, named)
        Move = pool.get('account.move')
        own = create_asset(company, data['bdg']['assets']['ont'], 3600, 0)
        with Transaction().set_context(company=nbo_company.id):
            theirs = data['nbo']['assets']['tower'].account_asset_used
        moves = Move.search([], count=True)

        def steps(accounts):
            "The wizard's steps: a revaluation of 400 on `accounts`"
            start = {'asset': own.id, 'value': Decimal(4000),
                'residual_value': Decimal(0), 'end_date': YEAR_END}
            return [('start', {}), ('update_asset', {'start': start}),
                ('create_move', {'start': start, 'show_move': {
                            'amount': Decimal(400), 'date': YEAR_START,
                            'latest_move_date': YEAR_START,
                            'next_depreciation_date': YEAR_END,
                            'depreciation_account': accounts[0].id,
                            'counterpart_account': accounts[1].id}})]
        on_own = {**context, 'active_model': 'account.asset',
            'active_id': own.id, 'active_ids': [own.id]}
        with refused_call(), self.assertRaises(BranchAccessError) as cm:
            run_wizard(user, 'account.asset.update',
                steps([theirs, theirs]), on_own)
        self.assertNotIn(theirs.rec_name, str(cm.exception))
        self.assertEqual(Move.search([], count=True), moves)
        self.assertEqual(Asset(own.id).value, Decimal(3600))
        # the same with Bandung's own accounts goes through
        with Transaction().set_context(company=company.id):
            ont = data['bdg']['assets']['ont']
            ours = [ont.account_asset_used, ont.account_revenue_used]
        run_wizard(user, 'account.asset.update', steps(ours), on_own)
        self.assertEqual(Asset(own.id).value, Decimal(4000))
        self.assertEqual(Move.search([], count=True), moves + 1)

    @with_transaction()
    def test_statement_gateway_settlement(self):
        """A bank statement of the gateway's settlement, with a line per
        payment made through the gateway (and the counter's cash banked),
        validated and posted by the finance user, reconciles the clearing
        account; Nairobi's statements are not Bandung's"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Statement = pool.get('account.statement')
        Line = pool.get('account.statement.line')
        MoveLine = pool.get('account.move.line')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company, user = bdg['company'], data['finance']
        context = {'company': company.id}
        journal = bdg['journals']['bank']

        invoices = create_invoices(
            company, create_customer("Customer BD"), 100000, 2)
        with Transaction().set_context(company=company.id):
            for invoice in invoices:
                Invoice.isp_record_payment(
                    invoice, invoice.amount_to_pay, date=YEAR_START,
                    method='gateway', reference="Midtrans")
        # a payment on Nairobi's clearing account
        Move = pool.get('account.move')
        Period = pool.get('account.period')
        Journal = pool.get('account.journal')
        cash_journal, = Journal.search([('type', '=', 'cash')], limit=1)
        nbo_clearing, = MoveLine.account.get_target().search([
                ('company', '=', nbo['company'].id), ('code', '=', '1.1.6')])
        with Transaction().set_context(company=nbo['company'].id):
            nbo_move, = Move.create([{
                        'company': nbo['company'].id,
                        'journal': cash_journal.id, 'date': YEAR_START,
                        'period': Period.find(nbo['company'], YEAR_START).id,
                        'lines': [('create', [{
                                        'account': nbo_clearing.id,
                                        'debit': Decimal(1000),
                                        'credit': 0}, {
                                        'account': nbo['journals']['cash']
                                        .account.id,
                                        'debit': 0,
                                        'credit': Decimal(1000)}])]}])
            Move.post([nbo_move])
        clearing = bdg['journals']['bank'].account.search([
                ('company', '=', company.id), ('code', '=', '1.1.6')])[0]
        open_lines = MoveLine.search([('account', '=', clearing.id)])
        self.assertEqual(len(open_lines), 2)
        self.assertEqual({m.reconciliation for m in open_lines}, {None})

        with as_user(user, company):
            statement, = Statement.create([{
                        'name': "Midtrans settlement", 'company': company.id,
                        'journal': journal.id, 'date': MARCH_END,
                        'start_balance': Decimal(0),
                        'end_balance': Decimal(230000)}])
            lines = Statement.clearing_lines(statement, date=MARCH_END)
            self.assertEqual(len(lines), 2)
            Line.save(lines)
            # the counter's cash brought to the bank (no reconciliation)
            Line.create([{'statement': statement.id, 'date': MARCH_END,
                        'amount': Decimal(30000),
                        'account': bdg['journals']['cash'].account.id,
                        'description': "Counter cash"}])
        rpc(user, Statement, 'validate_statement', [statement.id],
            context=context)
        rpc(user, Statement, 'post', [statement.id], context=context)
        statement = Statement(statement.id)
        self.assertEqual(statement.state, 'posted')
        open_lines = MoveLine.search([('account', '=', clearing.id)])
        self.assertEqual(len(open_lines), 4)
        self.assertEqual(len({m.reconciliation for m in open_lines}), 2)
        self.assertNotIn(None, {m.reconciliation for m in open_lines})
        self.assertEqual(sum(m.debit - m.credit for m in open_lines), 0)
        moves = {line.move for line in statement.lines}
        self.assertEqual({m.state for m in moves}, {'posted'})
        self.assertEqual(sum(m.debit - m.credit for move in moves
                for m in move.lines if m.account == journal.account),
            Decimal(230000))
        # settled once: no more clearing lines to add
        with as_user(user, company):
            self.assertEqual(Statement.clearing_lines(statement), [])
        for invoice in invoices:
            self.assertEqual(Invoice(invoice.id).amount_to_pay, 0)

        # Nairobi's statement: invisible to Bandung's finance user
        nbo_journal = nbo['journals']['bank']
        with Transaction().set_context(company=nbo['company'].id):
            theirs, = Statement.create([{
                        'name': "Nairobi settlement",
                        'company': nbo['company'].id,
                        'journal': nbo_journal.id, 'date': MARCH_END,
                        'start_balance': Decimal(0),
                        'end_balance': Decimal(0)}])
        self.assertEqual(rpc(user, Statement, 'search',
                [('id', '=', theirs.id)], context=context), [])
        for method, args in [('read', ([theirs.id], ['name'])),
                ('validate_statement', ([theirs.id],))]:
            with self.subTest(method=method), \
                    self.assertRaises(AccessError):
                rpc(user, Statement, method, *args, context=context)
        self.assertEqual(rpc(user, nbo_journal.__class__, 'search',
                [('id', '=', nbo_journal.id)], context=context), [])
        # a Nairobi payment cannot be settled in Bandung's statement
        nbo_line, = [m for m in nbo_move.lines if m.account == nbo_clearing]
        with as_user(user, company), self.assertRaises(UserError):
            Line.create([{'statement': statement.id, 'date': MARCH_END,
                        'amount': Decimal(1), 'account': clearing.id,
                        'related_to': str(nbo_line)}])

    @with_transaction()
    def test_other_income_pnl(self):
        """Customer invoices of installation and equipment count as income
        on the other income account in the branch's profit and loss (the
        other branch's figures are left out: test_finance)"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.invoice.line')
        data = self.class_data()
        bdg = data['bdg']
        for branch, amount in [(bdg, 250000)]:
            company = branch['company']
            customer = create_customer("Buyer %s" % company.rec_name)
            with Transaction().set_context(company=company.id):
                invoice = Invoice(type='out', company=company,
                    party=customer, invoice_date=YEAR_START,
                    currency=company.currency)
                invoice.on_change_type()
                invoice.on_change_party()
                lines = []
                for key, price in [('installation', amount),
                        ('equipment', amount * 2)]:
                    line = Line(type='line', quantity=1, invoice=invoice,
                        company=company, currency=company.currency,
                        product=branch['income'][key])
                    line.on_change_product()
                    line.unit_price = Decimal(price)
                    lines.append(line)
                invoice.lines = lines
                invoice.save()
                Invoice.post([invoice])
            branch['other_income'] = invoice.lines[0].account
        company = bdg['company']
        self.assertTrue(bdg['other_income'].type.revenue)
        pnl = self.pnl(company, YEAR_START, YEAR_END)
        self.assertEqual(pnl[('income', bdg['other_income'])],
            Decimal(750000))
        self.assertEqual(pnl[('profit', None)], Decimal(750000))
