# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Voucher resellers (agents): a party of the branch with a commission and
a credit limit, buying vouchers at the price less the commission on a
posted customer invoice; the sales and commission per reseller and month.
"""
from decimal import Decimal

from sql import Literal, Null
from sql.aggregate import Count, Min, Sum
from sql.functions import DateTrunc
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.isp_base.common import InputGuardMixin
from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchValuesMixin,
    BranchWizardMixin,
    check_companies,
)
from trytond.modules.isp_billing.billing import billing_journal

from .exceptions import ResellerError

#: the commission as a share of the price: 0 to 0.9
MAX_COMMISSION = Decimal('0.9')


def sale_invoice(company, party, profile, quantity, unit_price,
        line_description, description, who):
    """The draft customer invoice (not saved) of `quantity` vouchers of
    `profile` sold to `party` at `unit_price` (without taxes): the
    profile's product, the taxes of its price with taxes and its revenue
    account (the product's category, else the branch's billing
    configuration); `who` names the buyer in the refusal"""
    pool = Pool()
    Invoice = pool.get('account.invoice')
    Line = pool.get('account.invoice.line')
    Date = pool.get('ir.date')
    Configuration = pool.get('isp.billing.configuration')
    product = profile.product
    if product.account_category:
        account = product.account_revenue_used
    else:
        account = Configuration.get_value(company, 'revenue_account')
    line = Line(type='line', company=company, currency=company.currency,
        invoice_type='out', party=party, product=product,
        unit=product.default_uom, quantity=quantity, account=account,
        taxes=profile._customer_taxes(product))
    line.unit_price = unit_price
    line.description = line_description
    address = party.address_get(type='invoice')
    invoice = Invoice(
        company=company, type='out', party=party,
        invoice_address=address, currency=company.currency,
        account=party.account_receivable_used,
        invoice_date=Date.today(), payment_term=None,
        journal=billing_journal(company),
        description=description, lines=[line])
    if not invoice.account or not line.account:
        raise ResellerError(gettext(
                'isp_voucher.msg_sell_no_account',
                reseller=who, product=product.rec_name))
    return invoice


class Reseller(
        BranchValuesMixin, BranchOnChangeMixin, InputGuardMixin,
        DeactivableMixin, ModelSQL, ModelView):
    "ISP Voucher Reseller"
    __name__ = 'isp.voucher.reseller'
    _branch_fields = ('company', 'party')

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        help="The branch the reseller buys from.")
    party = fields.Many2One(
        'party.party', "Party", required=True, ondelete='RESTRICT',
        domain=[('isp_company', '=', Eval('company', -1))],
        context={'company': Eval('company', -1)}, depends={'company'},
        help="The reseller or agent: a party of the branch.")
    commission_rate = fields.Numeric(
        "Commission", digits=(16, 4), required=True,
        help="The share of the voucher's price (without taxes) the "
        "reseller keeps: 0.15 = 15 %; the invoice is for the rest.")
    credit_limit = Monetary(
        "Credit Limit", currency='currency', digits='currency',
        required=True,
        help="The most the reseller may owe: a sale that would take its "
        "open receivable above is refused.")
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"), 'get_currency')
    receivable = fields.Function(Monetary(
            "Receivable", currency='currency', digits='currency',
            help="What the reseller owes the branch now."),
        'get_receivable')
    vouchers = fields.One2Many(
        'isp.voucher', 'reseller', "Vouchers", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_party_uniq', Unique(t, t.company, t.party),
                'isp_voucher.msg_reseller_party_unique'),
            ]
        cls._sql_indexes.add(Index(t, (t.company, Index.Range())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_commission_rate(cls):
        return Decimal('0.1')

    @classmethod
    def default_credit_limit(cls):
        return Decimal(0)

    def get_rec_name(self, name):
        return self.party.rec_name

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('party.rec_name',) + tuple(clause[1:])]

    def get_currency(self, name):
        return self.company.currency.id

    @classmethod
    def get_receivable(cls, resellers, name):
        "The parties' receivable in each reseller's branch"
        pool = Pool()
        Party = pool.get('party.party')
        result = {}
        by_company = {}
        for reseller in resellers:
            by_company.setdefault(reseller.company.id, []).append(reseller)
        for company, c_resellers in by_company.items():
            with Transaction().set_context(company=company):
                amounts = Party.get_receivable_payable(
                    [Party(r.party.id) for r in c_resellers],
                    ['receivable'])['receivable']
            for reseller in c_resellers:
                result[reseller.id] = amounts.get(
                    reseller.party.id, Decimal(0))
        return result

    @classmethod
    def validate_fields(cls, resellers, field_names):
        super().validate_fields(resellers, field_names)
        for reseller in resellers:
            reseller.check_amounts()

    def check_amounts(self):
        "The commission is 0 to 90 %, the credit limit not negative"
        if self.commission_rate is not None and not (
                0 <= self.commission_rate <= MAX_COMMISSION):
            raise ResellerError(gettext(
                    'isp_voucher.msg_reseller_commission_rate',
                    field=self.__names__('commission_rate')['field'],
                    reseller=self.party.rec_name,
                    maximum=MAX_COMMISSION * 100))
        if self.credit_limit is not None and self.credit_limit < 0:
            raise ResellerError(gettext(
                    'isp_voucher.msg_reseller_credit_limit',
                    field=self.__names__('credit_limit')['field'],
                    reseller=self.party.rec_name))

    def wholesale_price(self, price):
        "The unit price of the invoice: `price` less the commission"
        return self.company.currency.round(
            price * (1 - self.commission_rate))

    @classmethod
    def sell(cls, reseller, batch, quantity):
        """Sell `quantity` new vouchers of `batch` (the first ones) to
        `reseller`: a posted customer invoice of the profile's product at
        the wholesale price with its taxes, and the vouchers sold to the
        reseller.  Refused (nothing written) when the quantity is not
        there, or when the reseller's receivable would go above its credit
        limit.  Returns the invoice."""
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        Voucher = pool.get('isp.voucher')
        Invoice = pool.get('account.invoice')
        check_companies([reseller, batch])
        field = gettext('isp_voucher.msg_sell_quantity_field')
        if not quantity or quantity <= 0:
            raise ResellerError(gettext(
                    'isp_voucher.msg_sell_quantity_positive',
                    field=field, quantity=quantity))
        if reseller.company != batch.company or not reseller.active:
            raise ResellerError(gettext(
                    'isp_voucher.msg_sell_reseller_branch',
                    reseller=reseller.rec_name, batch=batch.rec_name))
        # one sale of a batch at a time: the vouchers picked stay new
        Batch.lock([batch])
        vouchers = Voucher.search([
                ('batch', '=', batch.id),
                ('state', '=', 'new'),
                ], order=[('id', 'ASC')], limit=quantity)
        if len(vouchers) < quantity:
            raise ResellerError(gettext(
                    'isp_voucher.msg_sell_quantity_available',
                    field=field, quantity=quantity,
                    available=len(vouchers), batch=batch.rec_name))
        with Transaction().set_context(company=reseller.company.id):
            profile = batch.profile
            invoice = reseller._sale_invoice(profile, batch, quantity)
            reseller.check_credit(invoice)
            invoice.save()
            Invoice.isp_post([invoice])
            line, = [li for li in invoice.lines if li.type == 'line']
            price = profile.list_price
            Voucher.sell(vouchers)
            Voucher.write(vouchers, {
                    'reseller': reseller.id,
                    'invoice_line': line.id,
                    'sale_price': price,
                    'commission': price - line.unit_price,
                    })
        return invoice

    def _sale_invoice(self, profile, batch, quantity):
        "The draft invoice (not saved) of `quantity` vouchers of `profile`"
        return sale_invoice(self.company, self.party, profile, quantity,
            self.wholesale_price(profile.list_price),
            gettext('isp_voucher.msg_sell_line', quantity=quantity,
                profile=profile.rec_name, batch=batch.name),
            batch.rec_name, who=self.rec_name)

    def check_credit(self, invoice):
        """Refuse the sale when the reseller's receivable and the invoice's
        total (with taxes) go above its credit limit"""
        pool = Pool()
        Tax = pool.get('account.tax')
        total = Decimal(0)
        for line in invoice.lines:
            amount = line.unit_price * Decimal(line.quantity)
            total += amount
            if line.taxes:
                total += sum(tax['amount'] for tax in Tax.compute(
                        list(line.taxes), line.unit_price, line.quantity,
                        invoice.invoice_date))
        currency = self.company.currency
        total = currency.round(total)
        receivable = self.__class__.get_receivable(
            [self], 'receivable')[self.id]
        if receivable + total > self.credit_limit:
            raise ResellerError(gettext(
                    'isp_voucher.msg_sell_credit_limit',
                    reseller=self.rec_name,
                    receivable=receivable, total=total,
                    limit=self.credit_limit,
                    field=self.__names__('credit_limit')['field']))


class Voucher(metaclass=PoolMeta):
    __name__ = 'isp.voucher'

    reseller = fields.Many2One(
        'isp.voucher.reseller', "Reseller", readonly=True,
        ondelete='RESTRICT')
    invoice_line = fields.Many2One(
        'account.invoice.line', "Invoice Line", readonly=True,
        ondelete='RESTRICT')
    sale_price = fields.Numeric(
        "Sale Price", digits=(16, 4), readonly=True,
        help="The price without taxes when it was sold to the reseller.")
    commission = fields.Numeric(
        "Commission", digits=(16, 4), readonly=True,
        help="What the reseller keeps of the sale price.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.reseller, Index.Range()),
                where=t.reseller != Null))


class InvoiceLine(metaclass=PoolMeta):
    __name__ = 'account.invoice.line'

    @fields.depends('company', 'invoice', '_parent_invoice.company',
        'product', 'unit')
    def on_change_product(self):
        """A voucher profile's product without account category takes the
        branch's revenue account and billing tax, as plans do (the taxes of
        the profile's price with taxes)"""
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        Configuration = pool.get('isp.billing.configuration')
        template = self.product.template if self.product else None
        company = self.company or (
            self.invoice.company if self.invoice else None)
        if (template and not template.account_category and company
                and not template.isp_plan
                and Profile.search([('product', '=', self.product.id)],
                    limit=1, order=[])):
            tax = Configuration.get_value(company, 'tax')
            self.account = Configuration.get_value(
                company, 'revenue_account')
            self.taxes = [tax] if tax else []
            if not self.unit or (
                    self.unit.category != self.product.default_uom.category):
                self.unit = self.product.default_uom
            return
        super().on_change_product()


class SellStart(ModelView):
    "Sell Vouchers to a Reseller"
    __name__ = 'isp.voucher.sell_reseller.start'

    batch = fields.Many2One('isp.voucher.batch', "Batch", readonly=True)
    company = fields.Many2One('company.company', "Company", readonly=True)
    reseller = fields.Many2One(
        'isp.voucher.reseller', "Reseller", required=True,
        domain=[('company', '=', Eval('company', -1))])
    available = fields.Integer("Available", readonly=True,
        help="The new vouchers of the batch.")
    quantity = fields.Integer("Quantity", required=True,
        help="How many of the batch's new vouchers the reseller takes.")


class Sell(BranchWizardMixin, Wizard):
    "Sell Vouchers to a Reseller"
    __name__ = 'isp.voucher.sell_reseller'
    start = StateView('isp.voucher.sell_reseller.start',
        'isp_voucher.sell_reseller_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Sell", 'sell', 'tryton-ok', default=True),
            ])
    sell = StateTransition()

    def default_start(self, fields):
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        batch = self.record
        available = Voucher.search_count([
                ('batch', '=', batch.id), ('state', '=', 'new')])
        return {
            'batch': batch.id,
            'company': batch.company.id,
            'available': available,
            'quantity': available,
            }

    def transition_sell(self):
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        Reseller.sell(self.start.reseller, self.record, self.start.quantity)
        return 'end'


class ResellerSale(ModelSQL, ModelView):
    "ISP Voucher Reseller Sales"
    __name__ = 'isp.voucher.reseller.sale'

    company = fields.Many2One('company.company', "Company")
    reseller = fields.Many2One('isp.voucher.reseller', "Reseller")
    month = fields.Date("Month")
    vouchers = fields.Integer("Vouchers")
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"), 'get_currency')
    amount = Monetary(
        "Sales", currency='currency', digits='currency',
        help="The vouchers' price without taxes.")
    commission = Monetary(
        "Commission", currency='currency', digits='currency')
    invoiced = Monetary(
        "Invoiced", currency='currency', digits='currency',
        help="The sales less the commission, without taxes.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('month', 'DESC'), ('reseller', 'ASC'), ('id', 'DESC')]

    @classmethod
    def table_query(cls):
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        voucher = Voucher.__table__()
        # the month in a subquery: PostgreSQL would not take the grouped
        # expression (its parameter) for the selected one
        sold = voucher.select(
            voucher.id, voucher.create_date, voucher.company,
            voucher.reseller, voucher.sale_price, voucher.commission,
            DateTrunc('month', voucher.sold_date).as_('month'),
            where=voucher.reseller != Null)
        amount = Sum(sold.sale_price)
        commission = Sum(sold.commission)
        return sold.select(
            Min(sold.id).as_('id'),
            Literal(0).as_('create_uid'),
            Min(sold.create_date).as_('create_date'),
            Literal(None).as_('write_uid'),
            Literal(None).as_('write_date'),
            sold.company.as_('company'),
            sold.reseller.as_('reseller'),
            cls.month.sql_cast(sold.month).as_('month'),
            Count(sold.id).as_('vouchers'),
            cls.amount.sql_cast(amount).as_('amount'),
            cls.commission.sql_cast(commission).as_('commission'),
            cls.invoiced.sql_cast(amount - commission).as_('invoiced'),
            group_by=[sold.company, sold.reseller, sold.month])

    def get_currency(self, name):
        return self.company.currency.id

