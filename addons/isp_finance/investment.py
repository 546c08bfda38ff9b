# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Investments: a project of a branch (a tower, a router's expansion, a new
location) whose cost, its assets and supplier invoices, is set against the
revenue of the services it serves (those of a router or of a location) since
it started, with the return on investment and the payback time."""
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from sql import Null, Union
from sql.aggregate import Sum
from sql.operators import Exists
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchValuesMixin,
    check_companies,
)
from trytond.modules.isp_billing.reporting import INVOICE_STATES

from .exceptions import InvestmentError

#: the assets counted in a cost: running or closed (a draft asset is not
#: in the books yet)
ASSET_STATES = ['running', 'closed']
#: the scopes of an investment: the field of the service it is matched on
SCOPES = ['router', 'location']
#: casts the invoice lines' quantity (a float) for exact amounts
_NUMERIC = fields.Numeric("Amount")
_in = fields.SQL_OPERATORS['in']
#: investments per query
IN_MAX = 1000


def whole_months(start, end):
    "The whole months from `start` to `end` (0 when `end` is before)"
    if end < start:
        return 0
    delta = relativedelta(end, start)
    return delta.years * 12 + delta.months


class Investment(
        BranchValuesMixin, BranchOnChangeMixin, ModelSQL, ModelView):
    """ISP Investment: the cost of a project (assets, supplier invoices)
    against the revenue of the services of the router or location it
    serves"""
    __name__ = 'isp.investment'

    _branch_fields = ('company', 'router', 'location')

    name = fields.Char("Name", required=True)
    company = fields.Many2One(
        'company.company', "Branch", required=True, ondelete='CASCADE')
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"), 'get_currency')
    start_date = fields.Date(
        "Start Date", required=True,
        help="The day the project started to serve: the revenue is counted "
        "from it.")
    scope = fields.Selection([
            ('router', "Router"),
            ('location', "Location"),
            ], "Serves", required=True, sort=False,
        help="Whose services' revenue pays the investment back: those of "
        "a router or those of a location.")
    router = fields.Many2One(
        'isp.router', "Router", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={
            'invisible': Eval('scope') != 'router',
            'required': Eval('scope') == 'router',
            })
    location = fields.Many2One(
        'isp.location', "Location", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={
            'invisible': Eval('scope') != 'location',
            'required': Eval('scope') == 'location',
            })
    assets = fields.Many2Many(
        'isp.investment-account.asset', 'investment', 'asset', "Assets",
        domain=[('company', '=', Eval('company', -1))],
        help="The assets bought for the project: their value counts once "
        "they run (or are closed).")
    invoices = fields.Many2Many(
        'isp.investment-account.invoice', 'investment', 'invoice',
        "Supplier Invoices",
        domain=[
            ('company', '=', Eval('company', -1)),
            ('type', '=', 'in'),
            ],
        help="The project's expenses: the untaxed amount of the posted and "
        "paid ones counts, less the lines that bought one of its assets.")
    notes = fields.Text("Notes")

    cost = fields.Function(Monetary(
            "Cost", currency='currency', digits='currency',
            help="The value of the running and closed assets plus the "
            "untaxed amount of the posted and paid supplier invoices."),
        'get_figures')
    revenue = fields.Function(Monetary(
            "Revenue", currency='currency', digits='currency',
            help="Untaxed, of the posted and paid invoices of the services "
            "of the router or location, dated from the start date to "
            "today (credit notes count negative)."),
        'get_figures')
    months = fields.Function(fields.Integer(
            "Months", help="The whole months from the start date to today."),
        'get_figures')
    monthly_revenue = fields.Function(Monetary(
            "Monthly Revenue", currency='currency', digits='currency',
            help="The revenue per month elapsed (at least one)."),
        'get_figures')
    roi = fields.Function(fields.Numeric(
            "ROI (%)", digits=(16, 2),
            help="Return on investment: (revenue - cost) / cost x 100; "
            "empty without cost."),
        'get_figures')
    payback_months = fields.Function(fields.Numeric(
            "Payback (Months)", digits=(16, 1),
            help="The months the revenue takes to pay the cost at the "
            "monthly revenue so far; empty without revenue."),
        'get_figures')
    paid_back = fields.Function(fields.Boolean(
            "Paid Back", help="The revenue has reached the cost."),
        'get_figures')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('start_date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_start_date(cls):
        return Pool().get('ir.date').today()

    @classmethod
    def default_scope(cls):
        return 'router'

    def get_currency(self, name):
        return self.company.currency.id

    @fields.depends('scope', 'router', 'location')
    def on_change_scope(self):
        if self.scope != 'router':
            self.router = None
        if self.scope != 'location':
            self.location = None

    @classmethod
    def _check_branch_values(cls, vlist):
        """The assets and invoices added by a client are checked as the
        branch fields are (BranchAccessError, naming none of them)"""
        super()._check_branch_values(vlist)
        transaction = Transaction()
        if not (transaction.user and transaction.check_access):
            return
        records = []
        for values in vlist:
            for name in ['assets', 'invoices']:
                Target = cls._fields[name].get_target()
                for action in values.get(name) or []:
                    if action[0] in {'add', 'set'}:
                        records.extend(Target(i) for i in action[1])
        check_companies(records)

    @classmethod
    def _validate(cls, investments, field_names=None):
        # before the fields' domains and required states: the message says
        # what is wrong with the investment, naming no other branch's record
        cls.check_investments(investments)
        super()._validate(investments, field_names=field_names)

    @classmethod
    def check_investments(cls, investments):
        """Refuse (InvestmentError) an investment starting in the future,
        without the router or location it serves, or with a router,
        location, asset or invoice of another branch (or a customer
        invoice)"""
        Date = Pool().get('ir.date')
        for investment in investments:
            company = investment.company
            with Transaction().set_context(company=company.id):
                today = Date.today()
            if investment.start_date and investment.start_date > today:
                raise InvestmentError(gettext(
                        'isp_finance.msg_investment_start_future',
                        investment=investment.rec_name,
                        date=investment.start_date))
            scope = investment.scope
            target = getattr(investment, scope, None) if scope else None
            if scope and not target:
                raise InvestmentError(gettext(
                        'isp_finance.msg_investment_%s_required' % scope,
                        investment=investment.rec_name))
            if target and target.company != company:
                raise InvestmentError(gettext(
                        'isp_finance.msg_investment_%s_other_branch' % scope,
                        investment=investment.rec_name,
                        company=company.rec_name))
            if any(a.company != company for a in investment.assets):
                raise InvestmentError(gettext(
                        'isp_finance.msg_investment_asset_other_branch',
                        investment=investment.rec_name,
                        company=company.rec_name))
            for invoice in investment.invoices:
                if invoice.company != company or invoice.type != 'in':
                    raise InvestmentError(gettext(
                            'isp_finance.msg_investment_invoice_invalid',
                            investment=investment.rec_name,
                            company=company.rec_name))

    @classmethod
    def _costs(cls, ids):
        """{investment id: cost}: its running and closed assets' value and
        its posted and paid supplier invoices' untaxed lines, less the lines
        that bought one of those assets (counted once, as the asset)"""
        pool = Pool()
        AssetRel = pool.get('isp.investment-account.asset')
        InvoiceRel = pool.get('isp.investment-account.invoice')
        Asset = pool.get('account.asset')
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.invoice.line')
        asset_rel, asset = AssetRel.__table__(), Asset.__table__()
        bought_rel, bought = AssetRel.__table__(), Asset.__table__()
        invoice_rel, invoice = InvoiceRel.__table__(), Invoice.__table__()
        line = Line.__table__()
        cursor = Transaction().connection.cursor()
        amount = _NUMERIC.sql_cast(line.quantity) * line.unit_price
        counted_assets = asset.state.in_(ASSET_STATES)
        costs = {}
        for sub_ids in grouped_slice(ids, IN_MAX):
            sub_ids = list(sub_ids)
            assets = (asset_rel
                .join(asset, condition=asset_rel.asset == asset.id)
                .select(asset_rel.investment.as_('investment'),
                    asset.value.as_('amount'),
                    where=_in(asset_rel.investment, sub_ids)
                    & counted_assets))
            bought_lines = (bought_rel
                .join(bought, condition=bought_rel.asset == bought.id)
                .select(bought.id,
                    where=(bought_rel.investment == invoice_rel.investment)
                    & (bought.supplier_invoice_line == line.id)
                    & bought.state.in_(ASSET_STATES)))
            lines = (invoice_rel
                .join(invoice, condition=invoice_rel.invoice == invoice.id)
                .join(line, condition=line.invoice == invoice.id)
                .select(invoice_rel.investment.as_('investment'),
                    amount.as_('amount'),
                    where=_in(invoice_rel.investment, sub_ids)
                    & (invoice.type == 'in')
                    & invoice.state.in_(INVOICE_STATES)
                    & (line.type == 'line')
                    & ~Exists(bought_lines)))
            union = Union(assets, lines, all_=True)
            cursor.execute(*union.select(union.investment,
                    Sum(union.amount), group_by=[union.investment]))
            costs.update(cursor)
        return costs

    @classmethod
    def _revenues(cls, ids, today):
        """{investment id: revenue}: the untaxed service lines of posted
        and paid customer invoices of the branch dated from the investment's
        start to `today`, of the services of its router or location"""
        pool = Pool()
        Service = pool.get('isp.service')
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.invoice.line')
        investment, service = cls.__table__(), Service.__table__()
        invoice, line = Invoice.__table__(), Line.__table__()
        cursor = Transaction().connection.cursor()
        amount = _NUMERIC.sql_cast(line.quantity) * line.unit_price

        def served(scope, sub_ids):
            return (investment
                .join(service, condition=getattr(service, scope)
                    == getattr(investment, scope))
                .join(line, condition=line.isp_service == service.id)
                .join(invoice, condition=line.invoice == invoice.id)
                .select(investment.id.as_('investment'),
                    amount.as_('amount'),
                    where=_in(investment.id, sub_ids)
                    & (investment.scope == scope)
                    & (getattr(investment, scope) != Null)
                    & (invoice.company == investment.company)
                    & (invoice.type == 'out')
                    & invoice.state.in_(INVOICE_STATES)
                    & (line.type == 'line')
                    & (invoice.invoice_date >= investment.start_date)
                    & (invoice.invoice_date <= today)))
        revenues = {}
        for sub_ids in grouped_slice(ids, IN_MAX):
            sub_ids = list(sub_ids)
            union = Union(*(served(s, sub_ids) for s in SCOPES), all_=True)
            cursor.execute(*union.select(union.investment,
                    Sum(union.amount), group_by=[union.investment]))
            revenues.update(cursor)
        return revenues

    @classmethod
    def get_figures(cls, investments, names):
        """The figures of `investments` from two queries for them all: the
        costs and the revenues"""
        Date = Pool().get('ir.date')
        ids = [i.id for i in investments]
        costs = cls._costs(ids)
        todays = {}
        for investment in investments:
            company = investment.company.id
            if company not in todays:
                with Transaction().set_context(company=company):
                    todays[company] = Date.today()
        # the revenue up to the latest today of the branches (a branch's
        # invoices are not dated after its today)
        revenues = cls._revenues(ids, max(todays.values(), default=None)
            or Date.today())
        result = {name: {} for name in names}
        for investment in investments:
            figures = investment._figures(
                Decimal(str(costs.get(investment.id) or 0)),
                Decimal(str(revenues.get(investment.id) or 0)),
                todays[investment.company.id])
            for name in names:
                result[name][investment.id] = figures[name]
        return result

    def _figures(self, cost, revenue, today):
        "{name: value} of the figures from `cost` and `revenue` to `today`"
        currency = self.company.currency
        cost, revenue = currency.round(cost), currency.round(revenue)
        months = whole_months(self.start_date, today)
        monthly = currency.round(revenue / max(months, 1))
        return {
            'cost': cost,
            'revenue': revenue,
            'months': months,
            'monthly_revenue': monthly,
            'roi': ((revenue - cost) / cost * 100).quantize(Decimal('0.01'))
            if cost else None,
            'payback_months': (cost / monthly).quantize(Decimal('0.1'))
            if monthly > 0 else None,
            'paid_back': bool(cost) and revenue >= cost,
            }


class InvestmentAsset(ModelSQL):
    "ISP Investment - Asset"
    __name__ = 'isp.investment-account.asset'

    investment = fields.Many2One(
        'isp.investment', "Investment", required=True, ondelete='CASCADE')
    asset = fields.Many2One(
        'account.asset', "Asset", required=True, ondelete='CASCADE')


class InvestmentInvoice(ModelSQL):
    "ISP Investment - Supplier Invoice"
    __name__ = 'isp.investment-account.invoice'

    investment = fields.Many2One(
        'isp.investment', "Investment", required=True, ondelete='CASCADE')
    invoice = fields.Many2One(
        'account.invoice', "Invoice", required=True, ondelete='CASCADE')
