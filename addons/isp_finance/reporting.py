# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Profit and loss and cash flow (direct method) of a period and the
balance sheet at its "to" date, computed in SQL from the posted moves of
Tryton's accounting, per branch and for the head office every branch of
the user (one block per branch: amounts are never added across branches,
their currencies may differ).  They are `table_query` models like
isp_billing's reports: the `company in companies` rule, the report
context (branch, from and to date) and the CSV/XLSX/PDF export wizard."""
from sql import Literal, Union, With
from sql.aggregate import Sum
from sql.conditionals import Case
from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.isp_billing.reporting import ReportMixin, _context_dates

#: the sequence of a branch's total line
TOTAL_SEQUENCE = 9


def account_row_id(account):
    "The row id of an account's line: even (a negative id is a new record)"
    return account * 2


def total_row_id(company):
    "The row id of a branch's total line: odd"
    return company * 2 + 1


class FinanceReportMixin(ReportMixin):
    __slots__ = ()

    sequence = fields.Integer("Sequence", readonly=True)
    account = fields.Many2One(
        'account.account', "Account", readonly=True,
        help="Empty on the branch's total line.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('company', 'ASC'), ('sequence', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _tables(cls):
        pool = Pool()
        tables = {}
        for key, name in [
                ('line', 'account.move.line'),
                ('move', 'account.move'),
                ('account', 'account.account'),
                ('type', 'account.account.type'),
                ('company', 'company.company'),
                ]:
            tables[key] = pool.get(name).__table__()
        return tables

    @classmethod
    def _period_where(cls, tables):
        move = tables['move']
        from_date, to_date, _ = _context_dates()
        return ((move.state == 'posted')
            & (move.date >= from_date) & (move.date <= to_date)
            & cls._company_where(move.company))


class PnL(FinanceReportMixin, ModelSQL, ModelView):
    """The income and expense accounts' movements of the period per branch
    (posted moves), and a total line per branch: the net profit"""
    __name__ = 'isp.report.finance.pnl'

    kind = fields.Selection([
            ('income', "Income"),
            ('expense', "Expense"),
            ('profit', "Net Profit"),
            ], "Kind", readonly=True)
    amount = Monetary(
        "Amount", currency='currency', digits='currency', readonly=True,
        help="Income: credit minus debit; expense: debit minus credit; "
        "net profit: income minus expense.")

    _isp_export_fields = ['company', 'kind', 'account', 'amount']

    @classmethod
    def table_query(cls):
        tables = cls._tables()
        line, move, account = tables['line'], tables['move'], tables['account']
        type_, company = tables['type'], tables['company']
        income = type_.revenue == Literal(True)
        expense = (type_.expense == Literal(True)) & ~income
        balance = line.credit - line.debit
        from_ = (line
            .join(move, condition=line.move == move.id)
            .join(account, condition=line.account == account.id)
            .join(type_, condition=account.type == type_.id)
            .join(company, condition=move.company == company.id))
        where = cls._period_where(tables) & (income | expense)
        kind = Case((income, 'income'), else_='expense')
        accounts = from_.select(
            account_row_id(line.account).as_('id'),
            move.company.as_('company'),
            company.currency.as_('currency'),
            Case((income, 1), else_=2).as_('sequence'),
            kind.as_('kind'),
            line.account.as_('account'),
            cls.amount.sql_cast(Sum(Case(
                        (income, balance), else_=-balance))).as_('amount'),
            where=where,
            group_by=[move.company, company.currency, line.account,
                type_.revenue, type_.expense])
        totals = from_.select(
            total_row_id(move.company).as_('id'),
            move.company.as_('company'),
            company.currency.as_('currency'),
            Literal(TOTAL_SEQUENCE).as_('sequence'),
            Literal('profit').as_('kind'),
            Literal(None).as_('account'),
            cls.amount.sql_cast(Sum(balance)).as_('amount'),
            where=where,
            group_by=[move.company, company.currency])
        return Union(accounts, totals, all_=True)


class CashFlow(FinanceReportMixin, ModelSQL, ModelView):
    """Cash flow of the period by the direct method: the moves touching a
    cash or bank account of the branch (its invoice payment methods' and
    statement journals' accounts), by their other accounts (receipts from
    customers, payments to suppliers...), and the net change of cash per
    branch; transfers between cash accounts are left out"""
    __name__ = 'isp.report.finance.cash_flow'

    section = fields.Selection([
            ('customers', "Receipts from Customers"),
            ('suppliers', "Payments to Suppliers"),
            ('income', "Other Income"),
            ('expenses', "Expenses Paid Directly"),
            ('other', "Other"),
            ('total', "Net Change in Cash"),
            ], "Section", readonly=True)
    inflow = Monetary(
        "Inflow", currency='currency', digits='currency', readonly=True)
    outflow = Monetary(
        "Outflow", currency='currency', digits='currency', readonly=True)
    net = Monetary(
        "Net", currency='currency', digits='currency', readonly=True)

    _isp_export_fields = [
        'company', 'section', 'account', 'inflow', 'outflow', 'net']

    @classmethod
    def cash_accounts(cls):
        """The ids of the cash and bank accounts (a few: given to the query
        as values, the planner then uses the accounts' index)"""
        pool = Pool()
        method = pool.get('account.invoice.payment.method').__table__()
        journal = pool.get('account.statement.journal').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*Union(
                method.select(method.debit_account.as_('account')),
                method.select(method.credit_account.as_('account')),
                journal.select(journal.account.as_('account'))))
        return sorted({a for a, in cursor if a is not None})

    @classmethod
    def table_query(cls):
        tables = cls._tables()
        line, move, account = tables['line'], tables['move'], tables['account']
        type_, company = tables['type'], tables['company']
        cash_line = Pool().get('account.move.line').__table__()
        cash = cls.cash_accounts() or [None]
        amount = line.credit - line.debit
        sections = [
            (type_.receivable == Literal(True), 'customers', 1),
            (type_.payable == Literal(True), 'suppliers', 2),
            (type_.revenue == Literal(True), 'income', 3),
            (type_.expense == Literal(True), 'expenses', 4),
            ]
        section = Case(*((c, s) for c, s, _ in sections), else_='other')
        sequence = Case(*((c, n) for c, _, n in sections), else_=5)
        from_ = (line
            .join(move, condition=line.move == move.id)
            .join(account, condition=line.account == account.id)
            .join(type_, condition=account.type == type_.id)
            .join(company, condition=move.company == company.id))
        where = (cls._period_where(tables)
            & ~line.account.in_(cash)
            & line.move.in_(cash_line.select(cash_line.move,
                    where=cash_line.account.in_(cash))))

        accounts = With(query=from_.select(
                account_row_id(line.account).as_('id'),
                move.company.as_('company'),
                company.currency.as_('currency'),
                sequence.as_('sequence'), section.as_('section'),
                line.account.as_('account'),
                cls.inflow.sql_cast(Sum(Case(
                            (amount > 0, amount), else_=0))).as_('inflow'),
                cls.outflow.sql_cast(Sum(Case(
                            (amount < 0, -amount), else_=0))).as_('outflow'),
                cls.net.sql_cast(Sum(amount)).as_('net'),
                where=where,
                group_by=[move.company, company.currency, line.account,
                    type_.receivable, type_.payable, type_.revenue,
                    type_.expense]))
        # a branch's total from its accounts' lines: the moves are read
        # once, not again for the totals
        totals = accounts.select(
            total_row_id(accounts.company).as_('id'),
            accounts.company, accounts.currency,
            Literal(TOTAL_SEQUENCE).as_('sequence'),
            Literal('total').as_('section'),
            Literal(None).as_('account'),
            cls.inflow.sql_cast(Sum(accounts.inflow)).as_('inflow'),
            cls.outflow.sql_cast(Sum(accounts.outflow)).as_('outflow'),
            cls.net.sql_cast(Sum(accounts.net)).as_('net'),
            group_by=[accounts.company, accounts.currency])
        return Union(accounts.select(
                accounts.id, accounts.company, accounts.currency,
                accounts.sequence, accounts.section, accounts.account,
                accounts.inflow, accounts.outflow, accounts.net),
            totals, all_=True, with_=[accounts])


class BalanceSheet(FinanceReportMixin, ModelSQL, ModelView):
    """The balances at the report's "to" date of the balance sheet accounts
    per branch (posted moves): assets, liabilities and equity, the year's
    net profit (income minus expense since the start of the fiscal year of
    the date) as current year earnings and the earlier years' not closed to
    an equity account as retained earnings, so that assets equal
    liabilities and equity in each branch's block"""
    __name__ = 'isp.report.finance.balance_sheet'

    section = fields.Selection([
            ('assets', "Assets"),
            ('liabilities', "Liabilities"),
            ('equity', "Equity"),
            ('total', "Liabilities and Equity"),
            ], "Section", readonly=True)
    kind = fields.Selection([
            ('account', "Account"),
            ('retained', "Retained Earnings"),
            ('earnings', "Current Year Earnings"),
            ('total', "Total"),
            ], "Kind", readonly=True)
    amount = Monetary(
        "Amount", currency='currency', digits='currency', readonly=True,
        help="Assets: debit minus credit; liabilities and equity: credit "
        "minus debit.")

    _isp_export_fields = ['company', 'section', 'kind', 'account', 'amount']

    #: row ids: account * ROW_KEY, company * ROW_KEY + 1..4 for the others
    ROW_KEY = 8

    @classmethod
    def type_sections(cls):
        """The ids of the balance account types of the assets and of the
        equity: a type belongs to the section of its top balance type (the
        child of the chart's root), assets when a type of that top one is
        flagged assets, equity when its name says equity or capital (the
        account module's charts), else liabilities"""
        type_ = Pool().get('account.account.type').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*type_.select(type_.id, type_.parent,
                type_.statement, type_.assets, type_.name))
        types = {i: (p, s, a, n) for i, p, s, a, n in cursor}

        def top(id_):
            while True:
                parent = types[id_][0]
                if parent is None or types[parent][1] != 'balance':
                    return id_
                id_ = parent
        tops = {i: top(i) for i, t in types.items() if t[1] == 'balance'}
        asset_tops = {tops[i] for i, t in types.items()
            if i in tops and t[2]}
        equity_tops = {t for t in set(tops.values()) - asset_tops
            if any(w in (types[t][3] or '').lower()
                for w in ['equity', 'capital', 'ekuitas', 'modal'])}
        assets = sorted(i for i, t in tops.items() if t in asset_tops)
        equity = sorted(i for i, t in tops.items() if t in equity_tops)
        return assets or [None], equity or [None]

    @classmethod
    def table_query(cls):
        pool = Pool()
        tables = cls._tables()
        line, move, account = tables['line'], tables['move'], tables['account']
        type_, company = tables['type'], tables['company']
        period = pool.get('account.period').__table__()
        year = pool.get('account.fiscalyear').__table__()
        _, to_date, _ = _context_dates()
        asset_types, equity_types = cls.type_sections()
        key = cls.ROW_KEY
        from_ = (line
            .join(move, condition=line.move == move.id)
            .join(account, condition=line.account == account.id)
            .join(type_, condition=account.type == type_.id)
            .join(company, condition=move.company == company.id))
        where = ((move.state == 'posted') & (move.date <= to_date)
            & cls._company_where(move.company))
        is_asset = type_.id.in_(asset_types)
        section = Case((is_asset, 'assets'),
            (type_.id.in_(equity_types), 'equity'), else_='liabilities')
        sequence = Case((is_asset, 1),
            (type_.id.in_(equity_types), 4), else_=3)
        balances = from_.select(
            (line.account * key).as_('id'),
            move.company.as_('company'),
            company.currency.as_('currency'),
            sequence.as_('sequence'), section.as_('section'),
            Literal('account').as_('kind'),
            line.account.as_('account'),
            cls.amount.sql_cast(Sum(Case((is_asset, line.debit - line.credit),
                        else_=line.credit - line.debit))).as_('amount'),
            where=where & (type_.statement == 'balance'),
            group_by=[move.company, company.currency, line.account,
                type_.id])
        current = ((year.start_date <= to_date) & (year.end_date >= to_date))
        from_years = (from_
            .join(period, condition=move.period == period.id)
            .join(year, condition=period.fiscalyear == year.id))

        def earnings(kind, number, sequence, condition):
            return from_years.select(
                (move.company * key + number).as_('id'),
                move.company.as_('company'),
                company.currency.as_('currency'),
                Literal(sequence).as_('sequence'),
                Literal('equity').as_('section'),
                Literal(kind).as_('kind'),
                Literal(None).as_('account'),
                cls.amount.sql_cast(Sum(line.credit - line.debit)
                    ).as_('amount'),
                where=(where & (type_.statement == 'income') & condition),
                group_by=[move.company, company.currency])
        rows = With(query=Union(balances,
                earnings('retained', 1, 5, ~current),
                earnings('earnings', 2, 6, current), all_=True))
        columns = [rows.id, rows.company, rows.currency, rows.sequence,
            rows.section, rows.kind, rows.account, rows.amount]
        total_assets = rows.select(
            (rows.company * key + 3).as_('id'),
            rows.company, rows.currency,
            Literal(2).as_('sequence'), Literal('assets').as_('section'),
            Literal('total').as_('kind'), Literal(None).as_('account'),
            cls.amount.sql_cast(Sum(Case(
                        (rows.section == 'assets', rows.amount), else_=0))
                ).as_('amount'),
            group_by=[rows.company, rows.currency])
        total = rows.select(
            (rows.company * key + 4).as_('id'),
            rows.company, rows.currency,
            Literal(TOTAL_SEQUENCE).as_('sequence'),
            Literal('total').as_('section'),
            Literal('total').as_('kind'), Literal(None).as_('account'),
            cls.amount.sql_cast(Sum(Case(
                        (rows.section != 'assets', rows.amount), else_=0))
                ).as_('amount'),
            group_by=[rows.company, rows.currency])
        return Union(rows.select(*columns), total_assets, total,
            all_=True, with_=[rows])


#: the reports of the export wizard (isp_billing's isp.report.export)
REPORTS = [
    'isp.report.finance.pnl',
    'isp.report.finance.cash_flow',
    'isp.report.finance.balance_sheet',
    ]
