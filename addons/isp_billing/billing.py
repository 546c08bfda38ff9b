# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Recurring billing of services: periods, proration, the billing run, plan
changes, setup fees, loyalty and promotion discounts."""
import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from itertools import groupby

from dateutil.relativedelta import relativedelta
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.modules.account.exceptions import PeriodNotFoundError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base import metrics

from .exceptions import BillingError

logger = logging.getLogger(__name__)
BATCH = 100
BILLED_STATES = ['active', 'isolated']


# -- periods ------------------------------------------------------------------

def billing_date_on_or_before(date, day):
    "The last billing date (day `day` of a month) on or before `date`"
    if date.day >= day:
        return date.replace(day=day)
    return (date - relativedelta(months=1)).replace(day=day)


def period_from(start, day):
    """The billing period starting on `start` for billing day `day`:
    (start, end, days, cycle_days).  It ends the day before the next billing
    date; `days` / `cycle_days` is the share of a full cycle it covers (1 when
    `start` is a billing date)."""
    cycle_start = billing_date_on_or_before(start, day)
    cycle_end = cycle_start + relativedelta(months=1) - dt.timedelta(days=1)
    days = (cycle_end - start).days + 1
    cycle_days = (cycle_end - cycle_start).days + 1
    return start, cycle_end, days, cycle_days


def prorate(amount, days, cycle_days):
    "`amount` for `days` of a cycle of `cycle_days` (exact; round after)"
    if days == cycle_days:
        return Decimal(amount)
    value = Fraction(Decimal(amount)) * days / cycle_days
    return Decimal(value.numerator) / Decimal(value.denominator)


def billing_journal(company):
    "The journal of the run's invoices: the configured one, else stock's"
    pool = Pool()
    Configuration = pool.get('isp.billing.configuration')
    Invoice = pool.get('account.invoice')
    journal = Configuration.get_value(company, 'journal')
    if not journal:
        invoice = Invoice(company=company, type='out')
        invoice.set_journal()
        journal = invoice.journal
    return journal


def months_between(start, date):
    "Whole months from `start` to `date`"
    delta = relativedelta(date, start)
    return delta.years * 12 + delta.months


# -- the service as a subscription -----------------------------------------

class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    billing_day = fields.Integer(
        "Billing Day", required=True,
        domain=[('billing_day', '>=', 1), ('billing_day', '<=', 28)],
        help="The day of the month (1-28) the service is invoiced on, for "
        "the month ahead.")
    billed_until = fields.Date(
        "Billed Until", readonly=True,
        help="The last day already invoiced: the billing run starts the "
        "next period the day after.")
    promotion = fields.Many2One(
        'isp.promotion', "Promotion", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        help="A promotion code giving a discount for its first months.")
    isolated_by_billing = fields.Boolean(
        "Isolated for Non-Payment", readonly=True,
        help="Set by the reminder ladder: paying what is overdue "
        "reactivates the service.")
    invoice_lines = fields.One2Many(
        'account.invoice.line', 'isp_service', "Invoice Lines",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.company, Index.Range()),
                (t.billed_until, Index.Range(order='ASC NULLS FIRST')),
                where=t.state.in_(BILLED_STATES)))

    @classmethod
    def default_billing_day(cls):
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        company = Transaction().context.get('company')
        if company:
            return Configuration.get_value(company, 'billing_day') or 1
        return 1

    @classmethod
    def default_isolated_by_billing(cls):
        return False

    @classmethod
    def copy(cls, services, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('billed_until', None)
        default.setdefault('invoice_lines', None)
        default.setdefault('isolated_by_billing', False)
        return super().copy(services, default=default)

    # -- registration --

    @classmethod
    def register_first_invoice(cls, services):
        """Invoice the first (prorated) period and the setup fee at once, when
        the branch's accounting is set up for today (else the billing run
        does it later)"""
        super().register_first_invoice(services)
        pool = Pool()
        Date = pool.get('ir.date')
        FiscalYear = pool.get('account.fiscalyear')
        ready = []
        for company, c_services in groupby(
                services, key=lambda s: s.company):
            with Transaction().set_context(company=company.id):
                today = Date.today()
            if FiscalYear.search([
                        ('company', '=', company.id),
                        ('start_date', '<=', today),
                        ('end_date', '>=', today),
                        ('state', '=', 'open'),
                        ], limit=1):
                ready.extend(c_services)
            else:
                logger.info("no fiscal year for %s: the first invoice waits "
                    "for the billing run", company.rec_name)
        if ready:
            cls.isp_bill(ready)

    # -- the billing run --

    @classmethod
    def isp_bill_due(cls, date=None):
        """Cron (per company): queue the billing of every service of the
        context company (or of each company) with a period starting on or
        before `date` (default: today in the company's time zone), in
        batches.  Safe to re-run: a batch bills only what is still unbilled,
        under a lock."""
        pool = Pool()
        Company = pool.get('company.company')
        company = Transaction().context.get('company')
        companies = [Company(company)] if company else Company.search([])
        with metrics.observe_run(metrics.BILLING_RUNS,
                metrics.BILLING_DURATION):
            return cls._isp_bill_due(companies, date)

    @classmethod
    def _isp_bill_due(cls, companies, date):
        pool = Pool()
        Date = pool.get('ir.date')
        count = 0
        for company in companies:
            with Transaction().set_context(company=company.id):
                today = date or Date.today()
                cls._isp_open_journal_period(company, today)
                services = cls.search([
                        ('company', '=', company.id),
                        *cls._isp_due_domain(today)],
                    order=[('id', 'ASC')])
                # queue_batch=True would split them by [queue] batch_size;
                # an expected time puts the batches after the posting tasks
                # they queue (workers take those without one first), so
                # that posting goes on while the other batches are built
                with Transaction().set_context(queue_batch=BATCH,
                        queue_expected_at=dt.timedelta(0)):
                    cls.__queue__.isp_bill_batch(services, today)
            count += len(services)
        return count

    @classmethod
    def _isp_open_journal_period(cls, company, date):
        """Create the journal period of the run's invoices (stock
        `check_journal_period_modify`) when missing, before the batches:
        each of the first batches would otherwise lock the journal periods'
        table and wait for the other to finish."""
        pool = Pool()
        Date = pool.get('ir.date')
        Period = pool.get('account.period')
        MoveLine = pool.get('account.move.line')
        journal = billing_journal(company)
        try:
            period = Period.find(company, date=max(Date.today(), date))
        except PeriodNotFoundError:
            return  # each batch reports it
        if journal:
            MoveLine.check_journal_period_modify(period, journal)

    @classmethod
    def _isp_due_domain(cls, date):
        return [
            ('state', 'in', BILLED_STATES),
            ('activation_date', '!=', None),
            ('activation_date', '<=', date),
            ['OR',
                ('billed_until', '=', None),
                ('billed_until', '<', date),
                ],
            ]

    @classmethod
    def isp_bill_batch(cls, services, date):
        """Queue task: bill a batch of services for `date`: build, save and
        validate the invoices (with their draft moves) and move
        `billed_until`, then queue their posting (`Invoice.isp_post_batch`:
        numbering, moves posted, credit, notices).  Workers build batches
        side by side; only the posting tasks wait for each other on the
        numbering sequences."""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        services = cls.search([
                ('id', 'in', [s.id for s in services]),
                *cls._isp_due_domain(date)])
        if services:
            with without_check_access():
                invoices = cls._isp_bill(services, date, post=False)
            if invoices:
                Invoice.__queue__.isp_post_batch(invoices)

    @classmethod
    def isp_bill(cls, services, date=None):
        """Invoice every unbilled period of `services` starting on or before
        `date` (default: today in each company's time zone), one posted
        invoice per service, and tell the subscribers.  Return the invoices.

        The services are locked and re-read first; the `billed_until` marker
        moves in the same transaction and invoice lines carry a unique
        (service, period) key, so a second run never invoices a period
        twice.  Billing is the branch's own act: it runs without access
        checks (a customer service user registering a subscriber bills the
        first period)."""
        with without_check_access():
            return cls._isp_bill(services, date)

    @classmethod
    def _isp_bill(cls, services, date, post=True):
        "`post`: False to leave the invoices validated (not numbered)"
        pool = Pool()
        Date = pool.get('ir.date')
        Invoice = pool.get('account.invoice')
        invoices = []
        marks = []
        services = sorted(services, key=lambda s: (s.company.id, s.id))
        # all at once: each lock asked for restarts the transaction
        cls.lock(services)
        for company, c_services in groupby(
                services, key=lambda s: s.company):
            c_services = list(c_services)
            with Transaction().set_context(company=company.id):
                today = Date.today()
                fresh = cls.browse([s.id for s in c_services])
                builder = InvoiceBuilder(company, today)
                for service in fresh:
                    invoice, until = service._isp_build_invoice(
                        date or today, builder)
                    if invoice:
                        invoices.append(invoice)
                        marks.append((service, until))
        if not invoices:
            return []
        Invoice.save(invoices)
        by_date = defaultdict(list)
        for service, until in marks:
            by_date[until].append(service)
        to_write = []
        for until, d_services in by_date.items():
            to_write.extend((d_services, {'billed_until': until}))
        cls.write(*to_write)
        if post:
            Invoice.isp_post(invoices)
        else:
            Invoice.isp_validate(invoices)
        return invoices

    def _isp_build_invoice(self, date, builder):
        """Return the draft invoice of every period of the service starting on
        or before `date`, and the new billed-until date (None, None when
        nothing is due)"""
        if self.state not in BILLED_STATES or not self.activation_date:
            return None, None
        start = (self.billed_until + dt.timedelta(days=1)
            if self.billed_until else self.activation_date)
        lines = []
        until = None
        if not self.billed_until and self.plan.setup_fee:
            lines.append(builder.line(
                    self, 'setup', self.plan.setup_fee,
                    gettext('isp_billing.msg_line_setup_fee',
                        plan=self.plan.rec_name), product=False))
        while start <= date:
            start, end, days, cycle_days = period_from(
                start, self.billing_day)
            lines.extend(self._isp_period_lines(
                    builder, start, end, days, cycle_days))
            until = end
            start = end + dt.timedelta(days=1)
        if until is None:
            return None, None
        return builder.invoice(self, lines, date), until

    def _isp_period_lines(self, builder, start, end, days, cycle_days):
        "The lines of one period: the plan, then its discount"
        price = self.plan.list_price or Decimal(0)
        amount = prorate(price, days, cycle_days)
        period = builder.period_text(start, end)
        if days != cycle_days:
            description = gettext('isp_billing.msg_line_prorated',
                plan=self.plan.rec_name, period=period, days=days,
                cycle_days=cycle_days)
            kind = 'prorated'
        else:
            description = gettext('isp_billing.msg_line_period',
                plan=self.plan.rec_name, period=period)
            kind = 'recurring'
        lines = [builder.line(self, kind, amount, description,
                start=start, end=end, key=start, plan=self.plan)]
        rate, reason = self._isp_discount(builder, start)
        if rate:
            lines.append(builder.line(self, 'discount', -amount * rate,
                    gettext('isp_billing.msg_line_discount',
                        reason=reason, rate='%g' % (rate * 100),
                        period=period),
                    start=start, end=end, plan=self.plan))
        return lines

    def _isp_discount(self, builder, start):
        "The discount rate (0-1) of the period starting at `start` and why"
        best, reason = Decimal(0), None
        promotion = self.promotion
        if (promotion and promotion.active and promotion.rate
                and (not promotion.months or months_between(
                        self.activation_date, start) < promotion.months)):
            best, reason = promotion.rate, promotion.code
        config = builder.config
        if (config['loyalty_months'] and config['loyalty_discount']
                and months_between(self.activation_date, start)
                >= config['loyalty_months']
                and config['loyalty_discount'] > best):
            best = config['loyalty_discount']
            reason = gettext('isp_billing.msg_discount_loyalty',
                months=config['loyalty_months'])
        return best, reason

    # -- plan changes --

    @classmethod
    def on_write(cls, services, values):
        callbacks = super().on_write(services, values)
        if 'plan' in values:
            changed = [s for s in services
                if s.plan.id != values['plan'] and s.billed_until
                and s.state in BILLED_STATES]
            if changed:
                old_plans = {s.id: s.plan for s in changed}

                def prorate_plan_change():
                    cls.isp_bill_plan_change(
                        cls.browse(list(old_plans)), old_plans)
                callbacks.append(prorate_plan_change)
        return callbacks

    @classmethod
    def isp_bill_plan_change(cls, services, old_plans, date=None):
        """Credit the unused part of the old plans and charge the new plans
        from `date` (today) to the end of the billed period: one posted
        invoice per service (without access checks, as the billing run)"""
        with without_check_access():
            return cls._isp_bill_plan_change(services, old_plans, date)

    @classmethod
    def _isp_bill_plan_change(cls, services, old_plans, date):
        pool = Pool()
        Date = pool.get('ir.date')
        Invoice = pool.get('account.invoice')
        invoices = []
        for company, c_services in groupby(
                services, key=lambda s: s.company):
            with Transaction().set_context(company=company.id):
                today = Date.today()
                builder = InvoiceBuilder(company, today)
                for service in c_services:
                    change_date = date or today
                    old = old_plans[service.id]
                    if (not service.billed_until
                            or service.billed_until < change_date):
                        continue
                    cycle_start = billing_date_on_or_before(
                        change_date, service.billing_day)
                    _, cycle_end, _, cycle_days = period_from(
                        cycle_start, service.billing_day)
                    end = min(cycle_end, service.billed_until)
                    days = (end - change_date).days + 1
                    period = builder.period_text(change_date, end)
                    lines = [
                        builder.line(service, 'plan_credit',
                            -prorate(old.list_price, days, cycle_days),
                            gettext('isp_billing.msg_line_plan_credit',
                                plan=old.rec_name, period=period,
                                days=days, cycle_days=cycle_days),
                            start=change_date, end=end, plan=old),
                        builder.line(service, 'plan_charge',
                            prorate(service.plan.list_price, days,
                                cycle_days),
                            gettext('isp_billing.msg_line_plan_charge',
                                plan=service.plan.rec_name, period=period,
                                days=days, cycle_days=cycle_days),
                            start=change_date, end=end, plan=service.plan),
                        ]
                    invoices.append(
                        builder.invoice(service, lines, change_date))
        if invoices:
            Invoice.save(invoices)
            Invoice.isp_post(invoices)
        return invoices


class InvoiceBuilder:
    """Builds draft invoices of one company in memory, reading the
    configuration, accounts and taxes once"""

    def __init__(self, company, today):
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        Lang = pool.get('ir.lang')
        self.company = company
        self.today = today
        self.config = Configuration.get_values(company)
        self.currency = company.currency
        self._products = {}
        self._accounting = {}
        self._addresses = {}
        self.journal = None
        lang = company.party.lang
        self.lang = lang or Lang.get()

    def period_text(self, start, end):
        return '%s - %s' % (
            self.lang.strftime(start), self.lang.strftime(end))

    def product(self, plan):
        "The plan's variant (created when the plan has none)"
        pool = Pool()
        Product = pool.get('product.product')
        if plan.id not in self._products:
            if plan.products:
                product = plan.products[0]
            else:
                product, = Product.create([{'template': plan.id}])
            self._products[plan.id] = product
        return self._products[plan.id]

    def accounting(self, product):
        "(account, taxes) of a product (None: the configured ones)"
        pool = Pool()
        Line = pool.get('account.invoice.line')
        key = product.id if product else None
        if key not in self._accounting:
            if product:
                line = Line(company=self.company, currency=self.currency,
                    invoice_type='out', type='line', product=product)
                line.on_change_product()
                account, taxes = line.account, list(line.taxes)
            else:
                account = self.config['revenue_account']
                taxes = [self.config['tax']] if self.config['tax'] else []
            if not account:
                raise BillingError(gettext(
                        'isp_billing.msg_billing_no_revenue_account',
                        company=self.company.rec_name))
            self._accounting[key] = (account, taxes)
        return self._accounting[key]

    def line(self, service, kind, amount, description, start=None,
            end=None, key=None, plan=None, product=None):
        pool = Pool()
        Line = pool.get('account.invoice.line')
        if product is None and plan is not None:
            product = self.product(plan)
        product = product or None
        account, taxes = self.accounting(product)
        line = Line(
            type='line', company=self.company, currency=self.currency,
            invoice_type='out', party=service.subscriber,
            product=product, quantity=1,
            unit=product.default_uom if product else None,
            unit_price=self.currency.round(Decimal(amount)),
            description=description, account=account, taxes=taxes,
            isp_service=service, isp_kind=kind,
            isp_period_start=start, isp_period_end=end,
            isp_period_key=key)
        return line

    def address(self, party):
        pool = Pool()
        Address = pool.get('party.address')
        if party.id not in self._addresses:
            address = party.address_get(type='invoice')
            if not address:
                address, = Address.create([{'party': party.id}])
            self._addresses[party.id] = address
        return self._addresses[party.id]

    def invoice(self, service, lines, date):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        party = service.subscriber
        invoice_date = max(self.today, date)
        due = max(invoice_date, min(
                (line_.isp_period_start for line_ in lines
                    if line_.isp_period_start),
                default=invoice_date))
        due += dt.timedelta(days=self.config['due_days'] or 0)
        invoice = Invoice(
            company=self.company, type='out', party=party,
            invoice_address=self.address(party),
            currency=self.currency,
            account=party.account_receivable_used,
            invoice_date=invoice_date,
            payment_term=None, payment_term_date=due,
            description=service.customer_id,
            lines=lines)
        if not self.journal:
            self.journal = billing_journal(self.company)
        invoice.journal = self.journal
        return invoice


class Promotion(DeactivableMixin, ModelSQL, ModelView):
    "ISP Promotion"
    __name__ = 'isp.promotion'

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='CASCADE')
    code = fields.Char("Code", required=True, strip=True,
        help="The code the subscriber gives, e.g. MERDEKA50.")
    name = fields.Char("Name", required=True, translate=True)
    rate = fields.Numeric(
        "Discount", digits=(16, 4), required=True,
        domain=[('rate', '>', 0), ('rate', '<=', 1)],
        help="The share of the plan's price taken off (0.5 = 50 %).")
    months = fields.Integer(
        "Months",
        domain=['OR', ('months', '=', None), ('months', '>', 0)],
        help="For how many months from the activation; empty: always.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_code_uniq', Unique(t, t.company, t.code),
                'isp_billing.msg_promotion_code_unique'),
            ]

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('code'):
            values['code'] = values['code'].upper()
        return values
