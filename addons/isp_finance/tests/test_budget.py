# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Budgets per account and month (Tryton's account_budget) as the finance
user of a branch (Bandung) against another branch (Nairobi) and the head
office: actual against budget and the variance by line and by month, no
change of a closed month's or year's budget."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.branch_setup import (
    create_fiscal_year,
    revenue_account,
)
from trytond.modules.isp_billing.tests.payment_setup import create_branch
from trytond.modules.isp_finance.exceptions import BudgetClosedError
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
FEBRUARY = YEAR_START.replace(month=2)


def accounts(company):
    "(revenue, expense, cash) accounts of `company`"
    Account = Pool().get('account.account')
    expense, = Account.search([('company', '=', company.id),
            ('type.expense', '=', True), ('closed', '!=', True)],
        order=[('code', 'ASC')], limit=1)
    cash, = Account.search([('company', '=', company.id),
            ('code', '=', '1.1.1'), ('closed', '!=', True)], limit=1)
    return revenue_account(company), expense, cash


def post(company, date, account, amount, cash):
    """A posted move of `company` on `date`: `amount` credited to `account`
    (below zero: debited), the other side on `cash`"""
    pool = Pool()
    Journal = pool.get('account.journal')
    Move = pool.get('account.move')
    Period = pool.get('account.period')
    journal, = Journal.search([('type', '=', 'general')], limit=1)
    credit, debit = (amount, 0) if amount > 0 else (0, -amount)
    move = Move(company=company, journal=journal, date=date,
        period=Period.find(company, date=date))
    move.lines = [
        {'account': account.id, 'credit': credit, 'debit': debit},
        {'account': cash.id, 'credit': debit, 'debit': credit},
        ]
    move.save()
    Move.post([move])


def fiscalyear(company, date=YEAR_START):
    return Pool().get('account.fiscalyear').find(company, date=date)


class BudgetTestCase(ClassSetupMixin, unittest.TestCase):
    "Budgets of a branch"
    setup_modules = ['isp_finance']

    @classmethod
    def setup_class_data(cls):
        bandung = create_branch("Bandung", 'IDR')
        nairobi = create_branch("Nairobi", 'KES')
        data = {
            'bandung': bandung, 'nairobi': nairobi,
            'finance': create_user('finance', 'group_isp_finance', [bandung]),
            'nbo_finance': create_user(
                'nbo_finance', 'group_isp_finance', [nairobi]),
            'head': create_user('head', 'group_isp_head_admin',
                [bandung, nairobi], 'all'),
            }
        for key, company in [('bdg', bandung), ('nbo', nairobi)]:
            revenue, expense, cash = accounts(company)
            with Transaction().set_context(company=company.id):
                post(company, YEAR_START.replace(day=10), revenue,
                    Decimal(1100), cash)
                post(company, YEAR_START.replace(day=20), expense,
                    Decimal(-700), cash)
                post(company, FEBRUARY.replace(day=5), expense,
                    Decimal(-400), cash)
            data[key] = {'revenue': revenue, 'expense': expense}
        Transaction().tasks.clear()
        return data

    def setup_budget(self, key, company, user):
        "The year's budget of `company` made as `user`"
        Budget = Pool().get('account.budget')
        data = self.class_data()
        with as_user(user, company):
            return Budget.setup_monthly(company, fiscalyear(company), "Plan",
                {data[key]['revenue']: Decimal(12000),
                    data[key]['expense']: Decimal(-6000)})

    def month_lines(self, user, company, budget):
        """{(account, period start): (budget, actual, variance)} of the
        Budget per Month list of `budget` as `user`"""
        pool = Pool()
        LinePeriod = pool.get('account.budget.line.period')
        with as_user(user, company):
            periods = LinePeriod.search([
                    ('budget_line.budget', '=', budget.id),
                    ('budget_line.account', '!=', None)])
            return {(p.budget_line.account, p.period.start_date): (
                    p.total_amount, p.actual_amount, p.variance)
                for p in periods}

    @with_transaction()
    def test_actual_against_budget(self):
        """The finance user's budget: a line per income statement account
        with its year spread over twelve months; actual, variance (actual -
        budget) and percentage per line and per month, from the branch's
        posted moves only"""
        pool = Pool()
        Line = pool.get('account.budget.line')
        data = self.class_data()
        company, user = data['bandung'], data['finance']
        revenue, expense = data['bdg']['revenue'], data['bdg']['expense']
        budget = self.setup_budget('bdg', company, user)
        self.assertEqual(budget.company, company)
        # the same call again finds it
        self.assertEqual(self.setup_budget('bdg', company, user), budget)

        with as_user(user, company):
            lines = {line.account: line for line in Line.search([
                        ('budget', '=', budget.id),
                        ('account', 'in', [revenue.id, expense.id])])}
            self.assertEqual(
                (lines[revenue].total_amount, lines[revenue].actual_amount,
                    lines[revenue].variance),
                (Decimal(12000), Decimal(1100), Decimal(-10900)))
            self.assertEqual(
                (lines[expense].total_amount, lines[expense].actual_amount,
                    lines[expense].variance),
                (Decimal(-6000), Decimal(-1100), Decimal(4900)))
            self.assertEqual(lines[expense].percentage, Decimal('0.1833'))
            # the root (profit and loss) line sums its children
            root, = Line.search([
                    ('budget', '=', budget.id), ('parent', '=', None)])
            self.assertEqual((root.total_amount, root.actual_amount),
                (Decimal(6000), Decimal(0)))

        months = self.month_lines(user, company, budget)
        self.assertEqual(len({d for _, d in months}), 12)
        # the months share the whole year (the last takes what the four
        # decimals of the others left), in whole rupiahs
        with as_user(user, company):
            ratios = [p.ratio for p in Line.search([
                        ('budget', '=', budget.id),
                        ('account', '=', revenue.id)])[0].periods]
        self.assertEqual(sum(ratios), 1)
        self.assertEqual(ratios[-1], Decimal('0.0837'))
        self.assertEqual(months[revenue, YEAR_START],
            (Decimal(1000), Decimal(1100), Decimal(100)))
        self.assertEqual(months[expense, YEAR_START],
            (Decimal(-500), Decimal(-700), Decimal(-200)))
        self.assertEqual(months[expense, FEBRUARY],
            (Decimal(-500), Decimal(-400), Decimal(100)))
        self.assertEqual(months[revenue, FEBRUARY],
            (Decimal(1000), Decimal(0), Decimal(-1000)))

    @with_transaction()
    def test_copy_and_create_periods(self):
        """The finance user copies the budget (amounts x 1.25, no months)
        and spreads the copy's lines over the months with Create Periods:
        twelve months sharing the whole year"""
        pool = Pool()
        Budget = pool.get('account.budget')
        Line = pool.get('account.budget.line')
        data = self.class_data()
        company, user = data['bandung'], data['finance']
        revenue = data['bdg']['revenue']
        budget = self.setup_budget('bdg', company, user)
        context = {'company': company.id}
        result = run_wizard(user, 'account.budget.copy', [
                ('start', {}), ('copy', {'start': {
                            'name': "Plan B", 'factor': Decimal('1.25'),
                            'company': company.id,
                            'fiscalyear': fiscalyear(company).id}})],
            {**context, 'active_model': 'account.budget',
                'active_id': budget.id, 'active_ids': [budget.id]})
        self.assertTrue(result['actions'])
        copy, = Budget.search([('name', '=', "Plan B")])
        root, = Line.search([('budget', '=', copy.id), ('parent', '=', None)])
        self.assertEqual(root.periods, ())
        run_wizard(user, 'account.budget.line.create_periods', [
                ('start', {}),
                ('create_periods', {'start': {'method': 'evenly'}})],
            {**context, 'active_model': 'account.budget.line',
                'active_id': root.id, 'active_ids': [root.id]})
        line, = Line.search([('budget', '=', copy.id),
                ('account', '=', revenue.id)])
        self.assertEqual(line.amount, Decimal(15000))
        self.assertEqual(len(line.periods), 12)
        self.assertEqual(sum(p.ratio for p in line.periods), 1)
        self.assertEqual([p.total_amount for p in line.periods[:2]],
            [Decimal(1250)] * 2)

    @with_transaction()
    def test_branches(self):
        """Nairobi's budget and its months are not Bandung's finance user's
        to read or change; the head office reads both; a budget is made in
        the user's branch only"""
        pool = Pool()
        Budget = pool.get('account.budget')
        Line = pool.get('account.budget.line')
        LinePeriod = pool.get('account.budget.line.period')
        data = self.class_data()
        bandung, nairobi = data['bandung'], data['nairobi']
        user = data['finance']
        bdg = self.setup_budget('bdg', bandung, user)
        nbo = self.setup_budget('nbo', nairobi, data['nbo_finance'])

        with as_user(user, bandung):
            self.assertEqual(Budget.search([]), [bdg])
            self.assertEqual(
                Line.search([('budget', '=', nbo.id)], count=True), 0)
            self.assertEqual(LinePeriod.search(
                    [('budget_line.budget', '=', nbo.id)], count=True), 0)
        nbo_line, = Line.search([('budget', '=', nbo.id),
                ('account', '=', data['nbo']['revenue'].id)])
        nbo_period = nbo_line.periods[0]
        context = {'company': bandung.id}
        for Model, record, values in [
                (Budget, nbo, {'name': "Mine"}),
                (Line, nbo_line, {'amount': Decimal(1)}),
                (LinePeriod, nbo_period, {'ratio': Decimal('0.05')})]:
            with self.subTest(model=Model.__name__), refused_call():
                with self.assertRaises(AccessError):
                    rpc(user, Model, 'write', [record.id], values,
                        context=context)
        with refused_call(), self.assertRaises(AccessError):
            rpc(user, Budget, 'create', [{
                        'name': "Theirs", 'company': nairobi.id,
                        'fiscalyear': fiscalyear(nairobi).id}],
                context=context)
        self.assertEqual(Budget(nbo.id).name, "Plan")
        self.assertEqual(
            Line(nbo_line.id).amount, Decimal(12000))

        # the head office, all branches
        with Transaction().set_user(data['head'].id), \
                Transaction().set_context(_check_access=True,
                    company=bandung.id, company_filter='all'):
            self.assertEqual(set(Budget.search([])), {bdg, nbo})
        # Nairobi's months compare Nairobi's moves, in whole shillings
        months = self.month_lines(data['nbo_finance'], nairobi, nbo)
        self.assertEqual(months[data['nbo']['revenue'], YEAR_START],
            (Decimal(1000), Decimal(1100), Decimal(100)))

    @with_transaction()
    def test_closed_period_refused(self):
        """Once January is closed its budget is kept as it was: its month
        cannot change, nor the line amounts that spread over it, nor be
        deleted (nor the budget); open months still can; a closed fiscal
        year takes no budget"""
        pool = Pool()
        Budget = pool.get('account.budget')
        FiscalYear = pool.get('account.fiscalyear')
        Line = pool.get('account.budget.line')
        LinePeriod = pool.get('account.budget.line.period')
        Period = pool.get('account.period')
        data = self.class_data()
        company, user = data['bandung'], data['finance']
        revenue = data['bdg']['revenue']
        budget = self.setup_budget('bdg', company, user)
        january = Period.find(company, date=YEAR_START)
        Period.close([january])
        line, = Line.search([('budget', '=', budget.id),
                ('account', '=', revenue.id)])
        jan, = [p for p in line.periods if p.period == january]
        feb, = [p for p in line.periods if p.period.start_date == FEBRUARY]
        context = {'company': company.id}

        for Model, method, args in [
                (LinePeriod, 'write', ([jan.id], {'ratio': Decimal('0.05')})),
                (LinePeriod, 'delete', ([jan.id],)),
                (LinePeriod, 'write', ([feb.id], {'period': january.id})),
                (Line, 'write', ([line.id], {'amount': Decimal(24000)})),
                (Line, 'delete', ([line.id],)),
                (Budget, 'delete', ([budget.id],)),
                ]:
            with self.subTest(model=Model.__name__, method=method, args=args):
                with refused_call(), \
                        self.assertRaises(BudgetClosedError) as cm:
                    rpc(user, Model, method, *args, context=context)
                self.assertIn(january.rec_name, cm.exception.message)
        self.assertEqual(LinePeriod(jan.id).ratio, Decimal('0.0833'))
        self.assertEqual(Line(line.id).amount, Decimal(12000))
        # February is open: its share can go down
        rpc(user, LinePeriod, 'write', [feb.id], {'ratio': Decimal('0.05')},
            context=context)
        self.assertEqual(LinePeriod(feb.id).ratio, Decimal('0.05'))
        self.assertEqual(LinePeriod(feb.id).total_amount, Decimal(600))

        # last year, closed: no budget on it, nothing written
        last = YEAR_START.replace(year=YEAR_START.year - 1)
        with Transaction().set_context(company=company.id):
            closed = create_fiscal_year(company, last,
                last.replace(month=12, day=31), prefix='L')
        Period.close(closed.periods)
        FiscalYear.close([closed])
        budgets = Budget.search([], count=True)
        with refused_call(), self.assertRaises(BudgetClosedError) as cm:
            rpc(user, Budget, 'create', [{'name': "Late",
                        'company': company.id, 'fiscalyear': closed.id}],
                context=context)
        self.assertIn(closed.rec_name, cm.exception.message)
        with refused_call(), self.assertRaises(BudgetClosedError):
            rpc(user, Budget, 'write', [budget.id],
                {'fiscalyear': closed.id}, context=context)
        self.assertEqual(Budget.search([], count=True), budgets)
        self.assertEqual(Budget(budget.id).fiscalyear, fiscalyear(company))
