# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Budgets (Tryton's account_budget) for an ISP's branch: a budget per
fiscal year, a line per income statement account with the year's amount
spread over the months, actual against budget and the variance per line and
per month; a closed month's (or year's) budget cannot change any more."""
from collections import defaultdict
from decimal import ROUND_DOWN, Decimal

from trytond import backend
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.account_budget.exceptions import BudgetValidationError
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from trytond.modules.isp_base.tenancy import BranchWizardMixin

from .exceptions import BudgetClosedError


def _check_fiscalyear(fiscalyear, budget):
    if fiscalyear and fiscalyear.state != 'open':
        raise BudgetClosedError(gettext(
                'isp_finance.msg_budget_fiscalyear_closed',
                budget=budget, fiscalyear=fiscalyear.rec_name))


def _check_period(period, line):
    if period and period.state != 'open':
        raise BudgetClosedError(gettext(
                'isp_finance.msg_budget_period_closed',
                line=line, period=period.rec_name))


def _monthly(count):
    """The ratios of `count` months sharing a year's amount evenly, as
    account_budget's Create Periods does (four decimals, rounded down) but
    the last month takes what rounding left: the months add up to the
    year"""
    share = (Decimal(1) / count).quantize(Decimal('0.0001'), ROUND_DOWN)
    return [share] * (count - 1) + [Decimal(1) - share * (count - 1)]


class VarianceMixin:
    "The variance (actual - budget) of budget lines and their months"
    __slots__ = ()
    variance = fields.Function(Monetary(
            "Variance", currency='currency', digits='currency',
            help="The actual amount less the budget: below zero, less "
            "revenue or more expense than planned."),
        'get_variance')

    @classmethod
    def get_variance(cls, records, name):
        actual = cls.get_amount(records, ['actual_amount'])['actual_amount']
        budget = cls.get_total_amount(records, 'total_amount')
        return {r.id: (actual[r.id] - budget[r.id])
            if budget.get(r.id) is not None else None for r in records}


class Budget(metaclass=PoolMeta):
    __name__ = 'account.budget'

    @classmethod
    def check_modification(cls, mode, budgets, values=None, external=False):
        pool = Pool()
        FiscalYear = pool.get('account.fiscalyear')
        super().check_modification(
            mode, budgets, values=values, external=external)
        if mode == 'write' and not (values.keys() - {'name'}):
            return
        for budget in budgets:
            _check_fiscalyear(budget.fiscalyear, budget.name)
        if values and values.get('fiscalyear'):
            _check_fiscalyear(
                FiscalYear(values['fiscalyear']), budgets[0].name)

    @classmethod
    def setup_monthly(cls, company, fiscalyear, name, amounts):
        """The budget `name` of `company` for `fiscalyear`: a line per
        income statement account (under its account type, as Update Lines
        makes them), `amounts` ({account: the year's amount; revenue above
        zero, expenses below}) spread evenly over the year's months (as
        Create Periods does: `distribute_evenly`); the existing budget of
        that name and year when there is one"""
        pool = Pool()
        Line = pool.get('account.budget.line')
        LinePeriod = pool.get('account.budget.line.period')
        Period = pool.get('account.period')
        budgets = cls.search([
                ('company', '=', company.id),
                ('fiscalyear', '=', fiscalyear.id), ('name', '=', name),
                ], limit=1)
        if budgets:
            return budgets[0]
        with Transaction().set_context(company=company.id):
            budget, = cls.create([{
                        'name': name, 'company': company.id,
                        'fiscalyear': fiscalyear.id}])
            cls.update_lines([budget])
            lines = Line.search([('budget', '=', budget.id)])
            by_account = {line.account: line for line in lines
                if line.account}
            to_write = []
            for account, amount in amounts.items():
                to_write.extend(([by_account[account]], {'amount': amount}))
            if to_write:
                Line.write(*to_write)
            periods = Period.search([
                    ('fiscalyear', '=', fiscalyear.id),
                    ('type', '=', 'standard')], order=[('start_date', 'ASC')])
            roots = Line.search([
                    ('budget', '=', budget.id), ('parent', '=', None)])
            LinePeriod.save([p for root in roots
                    for p in root.create_period('evenly', periods)])
        return budget


class BudgetLine(VarianceMixin, metaclass=PoolMeta):
    __name__ = 'account.budget.line'

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        pool = Pool()
        Budget = pool.get('account.budget')
        super().check_modification(
            mode, lines, values=values, external=external)
        if mode == 'write' and not (values.keys() - {'sequence', 'name'}):
            return
        for line in lines:
            _check_fiscalyear(line.budget.fiscalyear, line.current_name)
            if mode == 'create':
                continue
            if mode == 'delete' or 'amount' in values:
                for period in line.periods:
                    _check_period(period.period, line.current_name)
        if values and values.get('budget'):
            budget = Budget(values['budget'])
            _check_fiscalyear(budget.fiscalyear, budget.name)


    def distribute_evenly(self, period, periods):
        "The last month takes what the others' rounding left (`_monthly`)"
        ratios = _monthly(len(periods))
        if period.period == max(periods, key=lambda p: p.start_date):
            return ratios[-1]
        return ratios[0]


class BudgetLinePeriod(VarianceMixin, metaclass=PoolMeta):
    __name__ = 'account.budget.line.period'

    @classmethod
    def check_ratio(cls, periods, field_names=None):
        """account_budget's check sums the ratios in SQL: SQLite sums them
        as floats, and twelve months sharing exactly 100% make
        1.0000000000000002: there, the sum is made of decimals"""
        if backend.name != 'sqlite':
            return super().check_ratio(periods, field_names)
        if field_names and not (field_names & {'ratio', 'budget_line'}):
            return
        pool = Pool()
        Line = pool.get('account.budget.line')
        cursor = Transaction().connection.cursor()
        table = cls.__table__()
        totals = defaultdict(Decimal)
        for sub_ids in grouped_slice(
                sorted({p.budget_line.id for p in periods}), 1000):
            cursor.execute(*table.select(table.budget_line, table.ratio,
                    where=fields.SQL_OPERATORS['in'](
                        table.budget_line, sub_ids)))
            for line_id, ratio in cursor:
                totals[line_id] += Decimal(str(ratio or 0))
        for line_id, total in totals.items():
            if total > 1:
                raise BudgetValidationError(gettext(
                        'account_budget.msg_budget_line_period_ratio',
                        budget_line=Line(line_id).rec_name))

    @classmethod
    def check_modification(cls, mode, periods, values=None, external=False):
        pool = Pool()
        Period = pool.get('account.period')
        super().check_modification(
            mode, periods, values=values, external=external)
        for period in periods:
            _check_period(period.period, period.budget_line.current_name)
        if values and values.get('period'):
            _check_period(Period(values['period']),
                periods[0].budget_line.current_name)



class CopyBudget(BranchWizardMixin, metaclass=PoolMeta):
    """Copy Budget: Tryton's access check refuses another branch's budget;
    the copy's fiscal year (a form field) is checked too"""
    __name__ = 'account.budget.copy'


class CreatePeriods(BranchWizardMixin, metaclass=PoolMeta):
    "Create Periods of a budget line of the user's branches only"
    __name__ = 'account.budget.line.create_periods'
