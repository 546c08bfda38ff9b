# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Reports and dashboard figures computed in SQL from Tryton's accounting:
aged receivables, revenue by plan, location and router, monthly figures
(MRR, ARPU, growth, churn, overdue, isolated) and the branch dashboard, with
a CSV/XLSX export.

Every report is a `table_query` model with a `company` column: the record
rule `company in companies` keeps a branch user to their branch, a head
office user with every branch sees one row per branch (amounts are never
added across branches: they may be in different currencies)."""
import csv
import datetime as dt
import html
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from lxml import etree
from sql import Literal, Null, Select, Union
from sql.aggregate import Count, Min, Sum
from sql.conditionals import Case, Coalesce
from sql.functions import DateTrunc
from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool
from trytond.pyson import Equal, Eval, PYSONEncoder
from trytond.transaction import Transaction, check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.isp_base.tenancy import BranchWizardMixin

INVOICE_STATES = ['posted', 'paid']
# row ids of the monthly report: company * MONTH_KEY + year * 12 + month
MONTH_KEY = 100000


def month_start(date):
    return date.replace(day=1)


def month_end(date):
    return date.replace(day=1) + relativedelta(months=1, days=-1)


def months(from_date, to_date):
    "The (start, end) of every month from `from_date` to `to_date`"
    start = month_start(from_date)
    while start <= to_date:
        yield start, month_end(start)
        start += relativedelta(months=1)


def _context_dates():
    """The context's (from_date, to_date, date): the last twelve months up
    to today by default"""
    pool = Pool()
    Date = pool.get('ir.date')
    context = Transaction().context
    today = context.get('date') or Date.today()
    to_date = context.get('to_date') or today
    from_date = context.get('from_date') or (
        month_start(to_date) - relativedelta(months=11))
    return from_date, to_date, today


class ReportContext(ModelView):
    "ISP Report Context"
    __name__ = 'isp.report.context'

    company = fields.Many2One(
        'company.company', "Branch",
        help="Empty for every branch of the user (one line per branch).")
    from_date = fields.Date(
        "From Date",
        domain=['OR',
            ('from_date', '<=', Eval('to_date', None)),
            ('from_date', '=', None),
            ],
        help="Empty: twelve months back.")
    to_date = fields.Date(
        "To Date",
        domain=['OR',
            ('to_date', '>=', Eval('from_date', None)),
            ('to_date', '=', None),
            ],
        help="Empty: today.")
    date = fields.Date(
        "As of", help="The date receivables are aged at; empty: today.")

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_date(cls):
        return Pool().get('ir.date').today()

    @classmethod
    def default_from_date(cls):
        today = Pool().get('ir.date').today()
        return month_start(today) - relativedelta(months=11)

    @classmethod
    def default_to_date(cls):
        return Pool().get('ir.date').today()


class ReportMixin:
    "Company, currency and the export of a report"
    __slots__ = ()

    company = fields.Many2One('company.company', "Branch", readonly=True)
    # a column of the query, not a function field: reading a function
    # field of a table query instantiates the rows (the query again)
    currency = fields.Many2One(
        'currency.currency', "Currency", readonly=True)

    #: the exported columns, in order
    _isp_export_fields = []

    @classmethod
    def _company_where(cls, column):
        "The context's branch (else every branch, the rules decide)"
        company = Transaction().context.get('company')
        if company:
            return column == company
        return Literal(True)

    @classmethod
    def isp_export_rows(cls, records):
        "The header and rows of `records` for an export"
        names = cls._isp_export_fields
        fields_ = cls.fields_get(names)
        header = [fields_[n]['string'] for n in names]
        rows = []
        for record in records:
            row = []
            for name in names:
                value = getattr(record, name)
                if isinstance(value, ModelSQL):
                    value = value.rec_name
                elif (isinstance(value, Decimal)
                        and isinstance(cls._fields[name], Monetary)
                        and record.currency):
                    # SQLite sums give floats: round to the currency
                    value = record.currency.round(value)
                row.append(value)
            rows.append(row)
        return header, rows

    @classmethod
    def isp_export_html(cls, header, rows):
        """A simple HTML page of the report's `header` and `rows`: a title,
        the period, a table per branch (the first column when it is the
        branch) with its selections' labels; the branches' total lines are
        rows of the report"""
        pool = Pool()
        Model = pool.get('ir.model')
        names = cls._isp_export_fields
        from_date, to_date, date = _context_dates()
        labels = {}
        for name in names:
            field = cls._fields[name]
            if isinstance(field, fields.Selection) and isinstance(
                    field.selection, list):
                selection = cls.fields_get([name])[name]['selection']
                labels[name] = dict(selection)
        by_branch = names[:1] == ['company']

        def cell(value):
            if value is None:
                return ''
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, (Decimal, float)):
                return '{:,.2f}'.format(value)
            return str(value)

        blocks = {}
        for row in rows:
            row = [labels[n].get(v, v) if n in labels else v
                for n, v in zip(names, row, strict=True)]
            key = row[0] if by_branch else None
            blocks.setdefault(key, []).append(row[1:] if by_branch else row)
        columns = header[1:] if by_branch else header
        title = html.escape(Model.get_name(cls.__name__))
        parts = ['<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<title>%s</title><style>'
            'body{font-family:sans-serif;font-size:9pt}'
            'table{border-collapse:collapse;width:100%%;margin-bottom:1em}'
            'th,td{border:1px solid #999;padding:2px 4px}'
            'td.n{text-align:right}</style></head><body>' % title,
            '<h1>%s</h1>' % title,
            '<p>%s \u2013 %s</p>' % (from_date.isoformat(),
                to_date.isoformat())]
        for branch, lines in blocks.items():
            if branch is not None:
                parts.append('<h2>%s</h2>' % html.escape(str(branch)))
            parts.append('<table><thead><tr>%s</tr></thead><tbody>' % ''.join(
                    '<th>%s</th>' % html.escape(str(c)) for c in columns))
            for line in lines:
                parts.append('<tr>%s</tr>' % ''.join(
                        '<td class="n">%s</td>' % html.escape(cell(v))
                        if isinstance(v, (Decimal, float, int))
                        and not isinstance(v, bool)
                        else '<td>%s</td>' % html.escape(cell(v))
                        for v in line))
            parts.append('</tbody></table>')
        parts.append('</body></html>')
        return ''.join(parts)

    @classmethod
    def isp_export(cls, records, format_='csv'):
        "Return (file name, content) of `records` as CSV, XLSX or PDF"
        header, rows = cls.isp_export_rows(records)
        name = cls.__name__.replace('isp.report.', '').replace('.', '_')
        if format_ == 'pdf':
            from .invoice_report import html_to_pdf
            return '%s.pdf' % name, html_to_pdf(
                cls.isp_export_html(header, rows))
        if format_ == 'xlsx':
            from openpyxl import Workbook
            workbook = Workbook()
            sheet = workbook.active
            sheet.title = name[:31]
            sheet.append(header)
            for row in rows:
                sheet.append(row)
            data = io.BytesIO()
            workbook.save(data)
            return '%s.xlsx' % name, data.getvalue()
        data = io.StringIO()
        writer = csv.writer(data, lineterminator='\n')
        writer.writerow(header)
        for row in rows:
            writer.writerow(['' if v is None else (
                        v.isoformat() if isinstance(v, dt.date) else v)
                    for v in row])
        return '%s.csv' % name, data.getvalue().encode('utf-8')


# -- aged receivables ---------------------------------------------------------

class AgedReceivable(ReportMixin, ModelSQL, ModelView):
    "ISP Aged Receivable"
    __name__ = 'isp.report.aged_receivable'

    party = fields.Many2One(
        'party.party', "Subscriber", readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    customer_id = fields.Char(
        "Customer ID", readonly=True,
        help="The subscriber's (first) service in the branch.")
    not_due = Monetary(
        "Not Yet Due", currency='currency', digits='currency', readonly=True)
    days_1_30 = Monetary(
        "1-30 Days", currency='currency', digits='currency', readonly=True)
    days_31_60 = Monetary(
        "31-60 Days", currency='currency', digits='currency', readonly=True)
    days_61_90 = Monetary(
        "61-90 Days", currency='currency', digits='currency', readonly=True)
    days_over_90 = Monetary(
        "Over 90 Days", currency='currency', digits='currency',
        readonly=True)
    overdue = Monetary(
        "Overdue", currency='currency', digits='currency', readonly=True)
    total = Monetary(
        "Total", currency='currency', digits='currency', readonly=True)

    _isp_export_fields = [
        'company', 'customer_id', 'party', 'not_due', 'days_1_30',
        'days_31_60', 'days_61_90', 'days_over_90', 'total']

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('total', 'DESC'), ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        pool = Pool()
        MoveLine = pool.get('account.move.line')
        Move = pool.get('account.move')
        Reconciliation = pool.get('account.move.reconciliation')
        Account = pool.get('account.account')
        Type = pool.get('account.account.type')
        Service = pool.get('isp.service')
        line = MoveLine.__table__()
        move = Move.__table__()
        reconciliation = Reconciliation.__table__()
        account = Account.__table__()
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        type_ = Type.__table__()
        service = Service.__table__()
        party = Party.__table__()
        company = Company.__table__()
        _, _, date = _context_dates()

        amount = line.debit - line.credit
        due = Coalesce(line.maturity_date, move.date)

        def bucket(condition):
            return cls.total.sql_cast(
                Sum(Case((condition, amount), else_=0)))
        d30, d60, d90 = (date - dt.timedelta(days=n) for n in (30, 60, 90))
        customer_id = service.select(Min(service.customer_id),
            where=(service.subscriber == line.party)
            & (service.company == move.company))
        return (line
            .join(move, condition=line.move == move.id)
            .join(account, condition=line.account == account.id)
            .join(type_, condition=account.type == type_.id)
            .join(party, condition=(line.party == party.id)
                & (party.is_subscriber == Literal(True))
                & (party.isp_company == move.company))
            .join(company, condition=move.company == company.id)
            .join(reconciliation, 'LEFT',
                condition=line.reconciliation == reconciliation.id)
            .select(
                # a subscriber belongs to one branch; an id the databases
                # can filter on before grouping (reads go by id)
                line.party.as_('id'),
                move.company.as_('company'),
                company.currency.as_('currency'),
                line.party.as_('party'),
                customer_id.as_('customer_id'),
                bucket(due >= date).as_('not_due'),
                bucket((due < date) & (due >= d30)).as_('days_1_30'),
                bucket((due < d30) & (due >= d60)).as_('days_31_60'),
                bucket((due < d60) & (due >= d90)).as_('days_61_90'),
                bucket(due < d90).as_('days_over_90'),
                bucket(due < date).as_('overdue'),
                cls.total.sql_cast(Sum(amount)).as_('total'),
                where=(line.party != Null)
                & (type_.receivable == Literal(True))
                & (move.state == 'posted')
                & (move.date <= date)
                & ((line.reconciliation == Null)
                    | (reconciliation.date > date))
                & cls._company_where(move.company),
                group_by=[move.company, company.currency, line.party]))


# -- revenue by plan, location and router -----------------------------------

class RevenueMixin(ReportMixin):
    """Untaxed revenue per month of the service lines of posted and paid
    customer invoices (credit notes count negative), by `_group`"""
    __slots__ = ()
    _group = None

    month = fields.Date("Month", readonly=True)
    revenue = Monetary(
        "Revenue", currency='currency', digits='currency', readonly=True,
        help="Untaxed, of posted and paid invoices dated in the month.")
    services = fields.Integer(
        "Services", readonly=True, help="The services invoiced.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('month', 'DESC'), ('revenue', 'DESC'), ('id', 'ASC')]

    @classmethod
    def _revenue_tables(cls):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        InvoiceLine = pool.get('account.invoice.line')
        Service = pool.get('isp.service')
        Product = pool.get('product.product')
        Company = pool.get('company.company')
        tables = {
            'company': Company.__table__(),
            'line': InvoiceLine.__table__(),
            'invoice': Invoice.__table__(),
            'service': Service.__table__(),
            'product': Product.__table__(),
            }
        return tables

    @classmethod
    def _group_column(cls, tables):
        service = tables['service']
        if cls._group == 'plan':
            # the plan invoiced (its product), else the service's plan
            return Coalesce(tables['product'].template, service.plan)
        return getattr(service, cls._group)

    @classmethod
    def table_query(cls):
        tables = cls._revenue_tables()
        line, invoice = tables['line'], tables['invoice']
        service, product = tables['service'], tables['product']
        company = tables['company']
        from_date, to_date, _ = _context_dates()
        group = cls._group_column(tables)
        month = cls.month.sql_cast(DateTrunc('month', invoice.invoice_date))
        return (line
            .join(invoice, condition=line.invoice == invoice.id)
            .join(service, condition=line.isp_service == service.id)
            .join(product, 'LEFT', condition=line.product == product.id)
            .join(company, condition=invoice.company == company.id)
            .select(
                Min(line.id).as_('id'),
                invoice.company.as_('company'),
                company.currency.as_('currency'),
                month.as_('month'),
                group.as_(cls._group),
                cls.revenue.sql_cast(
                    Sum(line.quantity * line.unit_price)).as_('revenue'),
                Count(line.isp_service, distinct=True).as_('services'),
                where=(invoice.type == 'out')
                & invoice.state.in_(INVOICE_STATES)
                & (line.type == 'line')
                & (invoice.invoice_date >= from_date)
                & (invoice.invoice_date <= to_date)
                & cls._company_where(invoice.company),
                group_by=[invoice.company, company.currency,
                    month.as_('month'), group]))


class RevenuePlan(RevenueMixin, ModelSQL, ModelView):
    "ISP Revenue per Plan"
    __name__ = 'isp.report.revenue.plan'
    _group = 'plan'

    plan = fields.Many2One(
        'product.template', "Plan", readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})

    _isp_export_fields = ['company', 'month', 'plan', 'revenue', 'services']


class RevenueLocation(RevenueMixin, ModelSQL, ModelView):
    "ISP Revenue per Location"
    __name__ = 'isp.report.revenue.location'
    _group = 'location'

    location = fields.Many2One('isp.location', "Location", readonly=True)

    _isp_export_fields = [
        'company', 'month', 'location', 'revenue', 'services']


class RevenueRouter(RevenueMixin, ModelSQL, ModelView):
    "ISP Revenue per Router"
    __name__ = 'isp.report.revenue.router'
    _group = 'router'

    router = fields.Many2One('isp.router', "Router", readonly=True)

    _isp_export_fields = ['company', 'month', 'router', 'revenue', 'services']


# -- monthly figures and the dashboard --------------------------------------

class FiguresMixin(ReportMixin):
    "The subqueries of the figures of a branch over a period"
    __slots__ = ()

    mrr = Monetary(
        "MRR", currency='currency', digits='currency', readonly=True,
        help="Monthly recurring revenue: the list prices of the plans of "
        "the services active or isolated at the end (before discounts).")
    revenue = Monetary(
        "Revenue", currency='currency', digits='currency', readonly=True,
        help="Untaxed revenue of the service lines of posted and paid "
        "invoices dated in the month (credit notes negative).")
    subscribers = fields.Integer(
        "Subscribers", readonly=True,
        help="Subscribers with a service active or isolated at the end.")
    paying_subscribers = fields.Integer(
        "Paying Subscribers", readonly=True,
        help="Subscribers with a service active or isolated at the end "
        "whose plan has a list price above zero.")
    arpu = fields.Function(Monetary(
            "ARPU", currency='currency', digits='currency',
            help="Average revenue per user: the MRR divided by the paying "
            "subscribers."), 'get_arpu')
    overdue = Monetary(
        "Overdue", currency='currency', digits='currency', readonly=True,
        help="Subscribers' receivables past their due date at the end, "
        "not paid by then.")
    new = fields.Integer(
        "New", readonly=True, help="Services activated in the month.")
    terminated = fields.Integer(
        "Terminated", readonly=True,
        help="Services terminated in the month (churn).")
    isolated = fields.Integer(
        "Isolated", readonly=True, help="Services isolated now.")

    def get_arpu(self, name):
        "MRR / paying subscribers, rounded to the currency"
        if not self.paying_subscribers or self.mrr is None:
            return None
        return self.currency.round(
            Decimal(self.mrr) / self.paying_subscribers)

    @classmethod
    def _figures(cls, company, start, end, point):
        """The figures of `company` (a column) for the month from `start` to
        `end` (columns or values), measured at `point` (the month end, or
        the date of the report when sooner)"""
        pool = Pool()
        Service = pool.get('isp.service')
        ListPrice = pool.get('product.list_price')
        Invoice = pool.get('account.invoice')
        InvoiceLine = pool.get('account.invoice.line')
        MoveLine = pool.get('account.move.line')
        Move = pool.get('account.move')
        Reconciliation = pool.get('account.move.reconciliation')
        Account = pool.get('account.account')
        Type = pool.get('account.account.type')
        Party = pool.get('party.party')

        def present(service, date):
            return ((service.company == company)
                & (service.activation_date != Null)
                & (service.activation_date <= date)
                & ((service.termination_date == Null)
                    | (service.termination_date > date)))

        figures = {}
        service = Service.__table__()
        price = ListPrice.__table__()
        figures['mrr'] = (service
            .join(price, 'LEFT', condition=(price.template == service.plan)
                & (price.company == service.company)
                & (price.product == Null))
            .select(cls.mrr.sql_cast(
                    Coalesce(Sum(price.list_price), 0)),
                where=present(service, point)))
        service = Service.__table__()
        figures['subscribers'] = service.select(
            Count(service.subscriber, distinct=True),
            where=present(service, point))
        service = Service.__table__()
        price = ListPrice.__table__()
        figures['paying_subscribers'] = (service
            .join(price, condition=(price.template == service.plan)
                & (price.company == service.company)
                & (price.product == Null))
            .select(Count(service.subscriber, distinct=True),
                # cast: SQLite compares its stored text above any number
                where=present(service, point)
                & (cls.mrr.sql_cast(price.list_price) > 0)))
        service = Service.__table__()
        figures['new'] = service.select(Count(service.id),
            where=(service.company == company)
            & (service.activation_date >= start)
            & (service.activation_date <= end))
        service = Service.__table__()
        figures['terminated'] = service.select(Count(service.id),
            where=(service.company == company)
            & (service.activation_date != Null)
            & (service.termination_date >= start)
            & (service.termination_date <= end))

        invoice = Invoice.__table__()
        line = InvoiceLine.__table__()
        figures['revenue'] = (line
            .join(invoice, condition=line.invoice == invoice.id)
            .select(cls.revenue.sql_cast(Coalesce(
                        Sum(line.quantity * line.unit_price), 0)),
                where=(invoice.company == company)
                & (invoice.type == 'out')
                & invoice.state.in_(INVOICE_STATES)
                & (line.isp_service != Null)
                & (line.type == 'line')
                & (invoice.invoice_date >= start)
                & (invoice.invoice_date <= end)))

        move_line = MoveLine.__table__()
        move = Move.__table__()
        reconciliation = Reconciliation.__table__()
        account = Account.__table__()
        type_ = Type.__table__()
        party = Party.__table__()
        figures['overdue'] = (move_line
            .join(move, condition=move_line.move == move.id)
            .join(account, condition=move_line.account == account.id)
            .join(type_, condition=account.type == type_.id)
            .join(party, condition=(move_line.party == party.id)
                & (party.is_subscriber == Literal(True))
                & (party.isp_company == move.company))
            .join(reconciliation, 'LEFT',
                condition=move_line.reconciliation == reconciliation.id)
            .select(cls.overdue.sql_cast(Coalesce(
                        Sum(move_line.debit - move_line.credit), 0)),
                where=(move.company == company)
                & (move_line.party != Null)
                & (type_.receivable == Literal(True))
                & (move.state == 'posted')
                & (move.date <= point)
                & (Coalesce(move_line.maturity_date, move.date) < point)
                & ((move_line.reconciliation == Null)
                    | (reconciliation.date > point))))
        return figures

    @classmethod
    def _now_figures(cls, company):
        "Counts of the services of `company` (a column) by current state"
        pool = Pool()
        Service = pool.get('isp.service')
        figures = {}
        for name, state in [
                ('active_services', 'active'), ('isolated', 'isolated')]:
            service = Service.__table__()
            figures[name] = service.select(Count(service.id),
                where=(service.company == company)
                & (service.state == state))
        return figures


class Monthly(FiguresMixin, ModelSQL, ModelView):
    "ISP Monthly Figures"
    __name__ = 'isp.report.monthly'

    month = fields.Date("Month", readonly=True)
    services_start = fields.Integer(
        "Services at Start", readonly=True,
        help="Services active or isolated on the first day (activated "
        "before, not terminated before).")
    services_end = fields.Integer(
        "Services at End", readonly=True,
        help="Services active or isolated at the end of the month (or of "
        "the report's date): start + new - terminated.")
    churn_rate = fields.Function(fields.Numeric(
            "Churn Rate", digits=(16, 4),
            help="Terminated services over the services at the start."),
        'get_churn_rate')

    _isp_export_fields = [
        'company', 'month', 'mrr', 'revenue', 'subscribers',
        'paying_subscribers', 'arpu',
        'services_start', 'new', 'terminated', 'churn_rate',
        'services_end', 'overdue', 'isolated']

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('month', 'DESC'), ('company', 'ASC'), ('id', 'ASC')]
        cls.isolated.help = ("Services isolated now: given for the month "
            "of the report's date only (isolations are not dated).")

    def get_churn_rate(self, name):
        if not self.services_start:
            return None
        return (Decimal(self.terminated or 0) / self.services_start
            ).quantize(Decimal('0.0001'))

    @classmethod
    def _months_table(cls, from_date, to_date, today):
        "A table of the months: key, start, end, point, current"
        selects = []
        for start, end in months(from_date, to_date):
            point = min(end, today)
            selects.append(Select([
                        Literal(start.year * 12 + start.month).as_('key'),
                        Literal(start).as_('start'),
                        Literal(end).as_('end'),
                        Literal(point).as_('point'),
                        Literal(int(start <= today <= end)).as_('current'),
                        ]))
        if not selects:
            return None
        if len(selects) == 1:
            return selects[0]
        return Union(*selects, all_=True)

    @classmethod
    def table_query(cls):
        pool = Pool()
        Company = pool.get('company.company')
        Service = pool.get('isp.service')
        company = Company.__table__()
        from_date, to_date, today = _context_dates()
        months_ = cls._months_table(from_date, to_date, today)
        if months_ is None:
            months_ = cls._months_table(today, today, today)
            empty = Literal(False)
        else:
            empty = Literal(True)
        figures = cls._figures(
            company.id, months_.start, months_.end, months_.point)
        service = Service.__table__()
        start_count = service.select(Count(service.id),
            where=(service.company == company.id)
            & (service.activation_date != Null)
            & (service.activation_date < months_.start)
            & ((service.termination_date == Null)
                | (service.termination_date >= months_.start)))
        service = Service.__table__()
        end_count = service.select(Count(service.id),
            where=(service.company == company.id)
            & (service.activation_date != Null)
            & (service.activation_date <= months_.point)
            & ((service.termination_date == Null)
                | (service.termination_date > months_.point)))
        isolated = cls._now_figures(company.id)['isolated']
        return company.join(months_, type_='CROSS').select(
            (company.id * MONTH_KEY + months_.key).as_('id'),
            company.id.as_('company'),
            company.currency.as_('currency'),
            cls.month.sql_cast(months_.start).as_('month'),
            *(query.as_(name) for name, query in figures.items()),
            start_count.as_('services_start'),
            end_count.as_('services_end'),
            Case((months_.current == 1, isolated),
                else_=Null).as_('isolated'),
            where=empty & cls._company_where(company.id))


class Dashboard(FiguresMixin, ModelSQL, ModelView):
    "ISP Dashboard"
    __name__ = 'isp.report.dashboard'

    date = fields.Date("Date", readonly=True)
    active_services = fields.Integer(
        "Active Services", readonly=True, help="Services active now.")
    revenue_today = Monetary(
        "Revenue Today", currency='currency', digits='currency',
        readonly=True)
    revenue_year = Monetary(
        "Revenue This Year", currency='currency', digits='currency',
        readonly=True)
    online = fields.Integer(
        "Online Now", readonly=True,
        help="Active or isolated services seen online at the last sync "
        "(API) or with an open accounting session (RADIUS).")
    routers_down = fields.Integer(
        "Routers Down", readonly=True,
        help="Active API routers that did not answer the last time they "
        "were contacted.")

    _isp_export_fields = [
        'company', 'date', 'mrr', 'arpu', 'revenue', 'revenue_today',
        'revenue_year', 'overdue', 'active_services', 'online', 'isolated',
        'new', 'terminated', 'subscribers', 'paying_subscribers',
        'routers_down']

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('company', 'ASC'), ('id', 'ASC')]
        cls.mrr.help = ("Monthly recurring revenue: the list prices of "
            "the plans of the services active or isolated today (before "
            "discounts).")
        cls.revenue.string = "Revenue This Month"
        cls.new.string = "New This Month"
        cls.terminated.string = "Terminated This Month"
        cls.overdue.help = (
            "Subscribers' receivables past their due date, unpaid today.")
        cls.subscribers.help = (
            "Subscribers with a service active or isolated today.")

    @classmethod
    def _network_figures(cls, company):
        "Services online now and routers down of `company` (a column)"
        pool = Pool()
        Service = pool.get('isp.service')
        Router = pool.get('isp.router')
        service = Service.__table__()
        router = Router.__table__()
        return {
            'online': service.select(Count(service.id),
                where=(service.company == company)
                & service.state.in_(['active', 'isolated'])
                & (service.live_status == 'online')),
            'routers_down': router.select(Count(router.id),
                where=(router.company == company)
                & (router.active == Literal(True))
                & (router.provisioning_mode == 'api')
                & (router.last_contact != Null)
                & (router.reachable == Literal(False))),
            }

    @classmethod
    def _dashboard_figures(cls, company, today):
        """The subqueries of the figures of `company` (a column) at `today`
        by field name.  The extension point of other modules: e.g. the
        helpdesk adds its `open_tickets` and `breached_tickets` fields, the
        subqueries here and the fields to the inherited views."""
        figures = cls._figures(
            company, month_start(today), month_end(today), today)
        figures.update(cls._now_figures(company))
        figures['revenue_today'] = cls._figures(
            company, today, today, today)['revenue']
        figures['revenue_year'] = cls._figures(
            company, today.replace(month=1, day=1), today,
            today)['revenue']
        figures.update(cls._network_figures(company))
        return figures

    @classmethod
    def table_query(cls):
        """A row per company, its figures at its own today (the date of its
        time zone: at 00:30 in Nairobi, 21:30 UTC, Nairobi's row is already
        tomorrow's) unless the context gives the date"""
        pool = Pool()
        Company = pool.get('company.company')
        Date = pool.get('ir.date')
        date = Transaction().context.get('date')
        table = Company.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.timezone,
                group_by=[table.timezone]))
        queries = []
        for timezone, in cursor.fetchall():
            company = Company.__table__()
            if date:
                today = date
            elif timezone:
                today = Date.today(timezone=ZoneInfo(timezone))
            else:
                today = Date.today()
            figures = cls._dashboard_figures(company.id, today)
            queries.append(company.select(
                    company.id.as_('id'),
                    company.id.as_('company'),
                    company.currency.as_('currency'),
                    cls.date.sql_cast(Literal(today)).as_('date'),
                    *(query.as_(name) for name, query in figures.items()),
                    where=(company.timezone == timezone) if timezone
                    else (company.timezone == Null)))
        if not queries:
            company = Company.__table__()
            figures = cls._dashboard_figures(company.id, Date.today())
            queries.append(company.select(
                    company.id.as_('id'),
                    company.id.as_('company'),
                    company.currency.as_('currency'),
                    cls.date.sql_cast(Literal(Date.today())).as_('date'),
                    *(query.as_(name) for name, query in figures.items())))
        if len(queries) == 1:
            return queries[0]
        return Union(*queries, all_=True)


class DashboardMonth(Monthly):
    """The monthly figures of the dashboard's charts: the last twelve
    months of every branch of the user, whatever the context company (the
    board's charts pick the branch selected in its figures, else the
    user's current company)"""
    __name__ = 'isp.report.dashboard.month'

    churn_percent = fields.Function(fields.Numeric(
            "Churn Rate (%)", digits=(16, 2),
            help="Terminated services over the services at the start, "
            "in percent."), 'get_churn_percent')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('month', 'ASC'), ('company', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _company_where(cls, column):
        # the rules keep the user's branches
        return Literal(True)

    @classmethod
    def fields_view_get(cls, view_id=None, view_type='form', level=None):
        result = super().fields_view_get(
            view_id=view_id, view_type=view_type, level=level)
        if result['type'] == 'graph':
            # the series' domains read the company of each month
            fields_ = dict(result['fields'], **cls.fields_get(['company']))
            result = dict(result, fields=fields_,
                arch=cls._graph_per_branch(result['arch'], fields_))
        return result

    @classmethod
    def _chart_branches(cls):
        "The user's branches with services: (id, name, currency code)"
        pool = Pool()
        User = pool.get('res.user')
        Company = pool.get('company.company')
        Service = pool.get('isp.service')
        service = Service.__table__()
        ids = list(User.get_companies())
        if not ids:
            return []
        cursor = Transaction().connection.cursor()
        cursor.execute(*service.select(service.company,
                where=service.company.in_(ids),
                group_by=[service.company]))
        companies = Company.browse(sorted(c for c, in cursor))
        return [(c.id, c.rec_name, c.currency.code) for c in companies]

    @classmethod
    def _graph_per_branch(cls, arch, fields_):
        """One series per branch of the user for each y field of a graph:
        amounts of branches in other currencies are never added up; the
        series are named with the fields' strings of `fields_` (in the
        user's language)"""
        tree = etree.fromstring(arch)
        branches = cls._chart_branches()
        for y in tree.iter('y'):
            for field in list(y):
                for id_, name, currency in branches:
                    series = etree.SubElement(y, 'field', dict(field.attrib))
                    series.set('key', '%s_%d' % (field.get('name'), id_))
                    string = fields_[field.get('name')]['string']
                    if isinstance(cls._fields[field.get('name')], Monetary):
                        string = '%s (%s)' % (string, currency)
                    series.set('string', '%s - %s' % (name, string))
                    series.set('domain', PYSONEncoder().encode(
                            Equal(Eval('company', -1), id_)))
                if branches:
                    y.remove(field)
        return etree.tostring(tree, encoding='unicode')

    def get_churn_percent(self, name):
        rate = self.get_churn_rate(name)
        if rate is None:
            return None
        return (rate * 100).quantize(Decimal('0.01'))


# -- export -------------------------------------------------------------------

REPORTS = [
    'isp.report.aged_receivable',
    'isp.report.revenue.plan',
    'isp.report.revenue.location',
    'isp.report.revenue.router',
    'isp.report.monthly',
    'isp.report.dashboard',
    'isp.report.dashboard.month',
    ]


class ReportExportStart(ModelView):
    "Export Report"
    __name__ = 'isp.report.export.start'

    format = fields.Selection([
            ('csv', "CSV"),
            ('xlsx', "Excel (XLSX)"),
            ('pdf', "PDF"),
            ], "Format", required=True)

    @classmethod
    def default_format(cls):
        return 'xlsx'


class ReportExportResult(ModelView):
    "Export Report"
    __name__ = 'isp.report.export.result'

    file = fields.Binary("File", filename='filename', readonly=True)
    filename = fields.Char("File Name", readonly=True)


class ReportExport(BranchWizardMixin, Wizard):
    """Export the selected lines of a report (every line of the report in
    its current context when none is selected) to a CSV, XLSX or PDF file"""
    __name__ = 'isp.report.export'

    start = StateView('isp.report.export.start',
        'isp_billing.report_export_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Export", 'export', 'tryton-ok', default=True),
            ])
    export = StateTransition()
    result = StateView('isp.report.export.result',
        'isp_billing.report_export_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def _records(self):
        Model = self.model
        if self.records:
            # their read access was checked when the wizard started
            return list(self.records)
        with check_access():
            # the user's branches only (the record rules)
            return Model.search([])

    def transition_export(self):
        Model = self.model
        filename, data = Model.isp_export(self._records(), self.start.format)
        self.result.filename = filename
        self.result.file = data
        return 'result'

    def default_result(self, fields):
        return {
            'file': self.result.file,
            'filename': self.result.filename,
            }
