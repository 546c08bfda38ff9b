# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The e-voucher shop's orders (docs/shop.md).

A buyer on the branch's own domain orders a voucher of a profile marked
*Sold Online*; the order (`isp.voucher.order`, numbered EV... per branch)
is paid through the existing online payments (`isp.payment.transaction`,
reference ``EV`` + 10 random characters, the same webhooks, status checks
and reconciliation as invoices).  When the gateway confirms the payment,
and only then, under the payment's row lock, exactly one voucher is taken
from the profile's online stock (or generated), sold with the order, the
sale invoiced and paid, and the code sent by WhatsApp and e-mail."""
import datetime as dt
import secrets

from sql import Null
from sql.aggregate import Count, Sum
from sql.conditionals import Coalesce
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base.common import SecretDefaultsMixin
from trytond.modules.isp_base.validation import email_problem, normalize_phone

from .card import login_url
from .exceptions import ShopError
from .reseller import sale_invoice
from .voucher import minimum_code_length

#: Minutes an order waits for its payment when the gateway sets no expiry
DEFAULT_EXPIRY = 60
#: The vouchers a shop batch generates by default when the stock is empty
DEFAULT_RESTOCK = 10
STATES = [
    ('pending', "Waiting for Payment"),
    ('paid', "Paid"),
    ('cancelled', "Cancelled"),
    ]


def new_order_token():
    "The secret of an order's link (128 bits)"
    return secrets.token_urlsafe(16)


def _now():
    return (Transaction().context.get('_isp_payment_now')
        or dt.datetime.now())


class Profile(metaclass=PoolMeta):
    __name__ = 'isp.voucher.profile'

    shop = fields.Boolean(
        "Sold Online",
        help="Offered in the branch's e-voucher shop (its web domain).")
    shop_restock = fields.Integer(
        "Online Restock",
        states={'invisible': ~Eval('shop')},
        help="How many vouchers a shop batch generates when the profile's "
        "online stock is empty.")

    @classmethod
    def default_shop_restock(cls):
        return DEFAULT_RESTOCK

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(), 'shop_restock': (1, 10000)}

    def shop_voucher(self):
        """One new voucher of the profile's online stock (generated shop
        batches), the oldest; a shop batch of `shop_restock` vouchers is
        generated when there is none.  The caller holds the profile's
        row lock (one taker at a time)."""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Batch = pool.get('isp.voucher.batch')
        domain = [
            ('profile', '=', self.id),
            ('state', '=', 'new'),
            ('batch.shop', '=', True),
            ('batch.state', '=', 'generated'),
            ]
        found = Voucher.search(domain, order=[('id', 'ASC')], limit=1)
        if not found:
            quantity = self.shop_restock or DEFAULT_RESTOCK
            batch, = Batch.create([{
                        'company': self.company.id,
                        'profile': self.id,
                        'name': gettext('isp_voucher.msg_shop_batch_name',
                            profile=self.name),
                        'quantity': quantity,
                        'code_length': max(8, minimum_code_length(quantity)),
                        'shop': True,
                        }])
            Batch.generate([batch])
            found = Voucher.search(domain, order=[('id', 'ASC')], limit=1)
        return found[0]


class Batch(metaclass=PoolMeta):
    __name__ = 'isp.voucher.batch'

    shop = fields.Boolean(
        "Online Shop Stock",
        states={'readonly': Eval('state') != 'draft'},
        help="Its vouchers are sold by the e-voucher shop only "
        "(never print them).")


class Order(SecretDefaultsMixin, ModelSQL, ModelView):
    "E-Voucher Order"
    __name__ = 'isp.voucher.order'
    _rec_name = 'number'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT')
    number = fields.Char("Number", readonly=True)
    profile = fields.Many2One(
        'isp.voucher.profile', "Profile", required=True, readonly=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))])
    phone = fields.Char("Phone", required=True, readonly=True,
        help="The buyer's number (E.164): WhatsApp gets the code.")
    email = fields.Char("E-mail", readonly=True)
    language = fields.Char("Language", readonly=True)
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True,
        help="The price with taxes the buyer pays.")
    currency = fields.Many2One(
        'currency.currency', "Currency", required=True, readonly=True)
    gateway = fields.Many2One(
        'isp.payment.gateway', "Gateway", readonly=True,
        ondelete='RESTRICT')
    state = fields.Selection(
        STATES, "State", required=True, readonly=True, sort=False)
    expires_at = fields.Timestamp(
        "Expires At", readonly=True,
        help="The payment is expected before; a payment after it still "
        "gives the voucher and flags the order.")
    paid_at = fields.Timestamp("Paid At", readonly=True)
    late = fields.Boolean(
        "Paid Late", readonly=True,
        help="Paid after it expired or was cancelled: the buyer got the "
        "voucher; check the payment.")
    voucher = fields.Many2One(
        'isp.voucher', "Voucher", readonly=True, ondelete='RESTRICT')
    invoice = fields.Many2One(
        'account.invoice', "Invoice", readonly=True, ondelete='RESTRICT')
    party = fields.Many2One(
        'party.party', "Buyer", readonly=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    payments = fields.One2Many(
        'isp.payment.transaction', 'document', "Online Payments",
        readonly=True)
    token = fields.Char("Link Token", readonly=True,
        help="The secret of the order's page link (shows the code).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.company, Index.Range()),
                    (t.create_date, Index.Range())),
                Index(t, (t.state, Index.Equality()),
                    where=t.state == 'pending'),
                })
        cls._order = [('create_date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def default_state(cls):
        return 'pending'

    @classmethod
    def _secret_defaults(cls):
        return {**super()._secret_defaults(), 'token': new_order_token}

    # -- numbers --

    @classmethod
    def _number(cls, company_id):
        "The next number of a branch's order sequence (made when missing)"
        pool = Pool()
        Sequence = pool.get('ir.sequence')
        ModelData = pool.get('ir.model.data')
        type_id = ModelData.get_id('isp_voucher', 'sequence_type_order')
        with Transaction().set_context(active_test=False), \
                without_check_access():
            sequences = Sequence.search([
                    ('sequence_type', '=', type_id),
                    ('company', '=', company_id),
                    ], limit=1)
            if not sequences:
                sequences = Sequence.create([{
                            'name': "E-Voucher Orders",
                            'sequence_type': type_id,
                            'company': company_id,
                            'prefix': 'EV',
                            'padding': 6,
                            }])
            return sequences[0].get()

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'create' and values.get('company') and not values.get(
                'number'):
            values['number'] = cls._number(values['company'])
        return values

    # -- ordering --

    @classmethod
    def check_request(cls, company, profile, phone, email, amount):
        """Why an order of `profile` by `phone` for `amount` cannot be
        taken in `company` (a message id), else None, with the phone in
        E.164: (problem, phone)"""
        if (profile is None or profile.company != company
                or not profile.active or not profile.shop):
            return 'unknown_profile', None
        number = normalize_phone(phone or '', company.isp_phone_country())
        if not number:
            return 'phone', None
        if email and email_problem(email):
            return 'email', None
        if (amount is None or not amount.is_finite()
                or amount != profile.price_with_tax):
            return 'amount', None
        return None, number

    @classmethod
    def place(cls, company, profile, phone, email, amount, gateway,
            language=None):
        """A new pending order (checked as `check_request` does; refused
        with ShopError, nothing written)"""
        problem, number = cls.check_request(company, profile, phone, email,
            amount)
        if problem:
            raise ShopError(gettext('isp_voucher.msg_shop_%s' % problem))
        if gateway not in cls.gateways(company):
            raise ShopError(gettext('isp_voucher.msg_shop_gateway'))
        expiry = gateway.expiry_minutes or DEFAULT_EXPIRY
        order, = cls.create([{
                    'company': company.id,
                    'profile': profile.id,
                    'phone': number,
                    'email': email or None,
                    'language': language,
                    'amount': profile.price_with_tax,
                    'currency': company.currency.id,
                    'gateway': gateway.id,
                    'expires_at': _now() + dt.timedelta(minutes=expiry),
                    }])
        return order

    @classmethod
    def gateways(cls, company):
        "The accounts the branch takes its currency with (central or own)"
        pool = Pool()
        Gateway = pool.get('isp.payment.gateway')
        from trytond.modules.isp_billing import gateways as adapters
        code = company.currency.code
        return [a for a in Gateway.for_company(company)
            if code in adapters.ADAPTERS[a.provider].currencies]

    def open_payment(self, return_url=None):
        "The order's online payment at its gateway (a new transaction)"
        pool = Pool()
        PaymentTransaction = pool.get('isp.payment.transaction')
        customer = {'name': self.phone, 'phone': self.phone,
            'email': self.email or None}
        with without_check_access():
            gateway = self.gateway.__class__(self.gateway.id)
            return PaymentTransaction.open(self, gateway, self.amount,
                self.currency, customer=customer,
                description=self.number, prefix='EV',
                return_url=return_url)

    # -- payment --

    def pay(self, payment):
        """The payment `payment` of the order was confirmed (under its row
        lock and the order's): the voucher, sold with the order, the paid
        invoice and the messages; returns the values to write on the
        payment (a review flag when the order already had its voucher)"""
        if self.voucher:
            return {'review': 'document_settled', 'review_note': gettext(
                    'isp_voucher.msg_shop_second_payment',
                    order=self.number)[:200]}
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        now = _now()
        late = self.state == 'cancelled' or (
            self.expires_at is not None and now > self.expires_at)
        with Transaction().set_context(company=self.company.id):
            voucher = self.profile.shop_voucher()
            Voucher.sell([voucher])
            party = self.buyer_party()
            invoice = self._invoice(party, payment)
            line, = [li for li in invoice.lines if li.type == 'line']
            Voucher.write([voucher], {
                    'invoice_line': line.id,
                    'sale_price': line.unit_price,
                    })
            self.__class__.write([self], {
                    'state': 'paid', 'paid_at': now, 'late': late,
                    'voucher': voucher.id, 'invoice': invoice.id,
                    'party': party.id,
                    })
            self.notify(self.__class__(self.id))
        values = {}
        if late:
            values = {'review': 'document_settled', 'review_note': gettext(
                    'isp_voucher.msg_shop_paid_late',
                    order=self.number)[:200]}
        return values

    def _invoice(self, party, payment):
        "The posted invoice of the sale, paid by `payment`"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        profile = self.profile
        invoice = sale_invoice(self.company, party, profile, 1,
            profile.list_price, gettext('isp_voucher.msg_shop_line',
                profile=profile.rec_name, order=self.number),
            self.number, who=self.number)
        invoice.save()
        with Transaction().set_context(_isp_no_notices=True):
            Invoice.isp_post([invoice])
            invoice = Invoice(invoice.id)
            Invoice.isp_record_payment(invoice, payment.amount,
                method='gateway', reference=payment.reference,
                to_pay=invoice.amount_to_pay)
        return invoice

    def buyer_party(self):
        """The branch's party of the buyer's number (a customer, not a
        subscriber), made when missing, with the order's e-mail"""
        pool = Pool()
        Party = pool.get('party.party')
        Lang = pool.get('ir.lang')
        parties = Party.search([
                ('isp_company', '=', self.company.id),
                ('whatsapp', '=', self.phone),
                ('is_subscriber', '=', False),
                ], order=[('id', 'ASC')], limit=1)
        email = self.email
        if parties:
            party, = parties
            if email and email not in {
                    m.value for m in party.contact_mechanisms}:
                Party.write([party], {'contact_mechanisms': [('create', [
                                    {'type': 'email', 'value': email}])]})
            return party
        lang = None
        if self.language:
            try:
                lang = Lang.get(self.language)
            except (KeyError, ValueError, IndexError):
                lang = None
        party, = Party.create([{
                    'name': self.phone,
                    'isp_company': self.company.id,
                    'whatsapp': self.phone,
                    'lang': lang.id if lang else None,
                    'addresses': [('create', [{}])],
                    'contact_mechanisms': [('create', [
                                {'type': 'email', 'value': email}]
                            if email else [])],
                    }])
        return party

    @classmethod
    def notify(cls, order):
        "The code by WhatsApp and, with an e-mail, by e-mail (queued)"
        pool = Pool()
        Message = pool.get('isp.message')
        Lang = pool.get('ir.lang')
        voucher = order.voucher
        profile = order.profile
        channels = ['whatsapp'] + (['email'] if order.email else [])
        lang = None
        if order.language:
            try:
                lang = Lang.get(order.language)
            except (KeyError, ValueError, IndexError):
                lang = None
        with Transaction().set_context(language=lang.code if lang else None):
            validity = profile.validity_text()
        Message.send_events([{
                    'event': 'voucher_delivered', 'party': order.party,
                    'company': order.company, 'origin': order,
                    'channels': channels, 'language': lang,
                    'values': {
                        'voucher_code': voucher.code,
                        'profile': profile.name,
                        'validity': validity,
                        'login_url': order.login_url() or '',
                        },
                    }])

    def login_url(self):
        "The hotspot login URL with the code filled in (None without host)"
        voucher = self.voucher
        host = self.profile.hotspot_dns_name
        if voucher and host:
            return login_url(host, voucher.code, voucher.password)

    def payment_over(self, payment):
        """`payment` failed or expired: a pending order without another
        pending payment is cancelled (no voucher)"""
        if self.state != 'pending':
            return
        if any(p.state == 'pending' and p.id != payment.id
                for p in self.payments):
            return
        self.__class__.write([self], {'state': 'cancelled'})


class PaymentTransaction(metaclass=PoolMeta):
    __name__ = 'isp.payment.transaction'

    @classmethod
    def _document_models(cls):
        return super()._document_models() + ['isp.voucher.order']

    @classmethod
    def locks_for(cls, transactions):
        """Also the orders being paid and their profiles (one taker of a
        profile's stock at a time)"""
        pool = Pool()
        Order = pool.get('isp.voucher.order')
        Profile = pool.get('isp.voucher.profile')
        locks = super().locks_for(transactions)
        orders = [t.document for t in transactions
            if t.document and t.document.__name__ == 'isp.voucher.order']
        if orders:
            locks[Order._table] = sorted({o.id for o in orders})
            locks[Profile._table] = sorted({o.profile.id for o in orders})
        return locks

    def _record_payment(self, amount):
        if self.document and self.document.__name__ == 'isp.voucher.order':
            pool = Pool()
            Order = pool.get('isp.voucher.order')
            return Order(self.document.id).pay(self)
        return super()._record_payment(amount)

    def _apply(self, notification, receipt=''):
        verdict = super()._apply(notification, receipt=receipt)
        if (verdict == 'applied' and notification.state in {
                    'failed', 'expired'}
                and self.document
                and self.document.__name__ == 'isp.voucher.order'):
            pool = Pool()
            Order = pool.get('isp.voucher.order')
            Order(self.document.id).payment_over(self)
        return verdict


class Message(metaclass=PoolMeta):
    __name__ = 'isp.message'

    @classmethod
    def _get_origins(cls):
        return super()._get_origins() + ['isp.voucher.order']


class Dashboard(metaclass=PoolMeta):
    __name__ = 'isp.report.dashboard'

    voucher_sales_today = Monetary(
        "Voucher Sales Today", currency='currency', digits='currency',
        readonly=True,
        help="Untaxed, of the vouchers invoiced today (online shop and "
        "resellers).")
    shop_orders_today = fields.Integer(
        "Online Orders Today", readonly=True,
        help="E-voucher orders of the shop paid today.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._isp_export_fields = cls._isp_export_fields + [
            'voucher_sales_today', 'shop_orders_today']

    @classmethod
    def _dashboard_figures(cls, company, today):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.invoice.line')
        Voucher = pool.get('isp.voucher')
        Order = pool.get('isp.voucher.order')
        figures = super()._dashboard_figures(company, today)
        invoice = Invoice.__table__()
        line = Line.__table__()
        voucher = Voucher.__table__()
        figures['voucher_sales_today'] = (line
            .join(invoice, condition=line.invoice == invoice.id)
            .select(cls.voucher_sales_today.sql_cast(Coalesce(
                        Sum(line.quantity * line.unit_price), 0)),
                where=(invoice.company == company)
                & (invoice.type == 'out')
                & invoice.state.in_(['posted', 'paid'])
                & (line.type == 'line')
                & (invoice.invoice_date == today)
                & line.id.in_(voucher.select(voucher.invoice_line,
                        where=(voucher.invoice_line != Null)
                        & (voucher.company == company)))))
        order = Order.__table__()
        invoice = Invoice.__table__()
        figures['shop_orders_today'] = (order
            .join(invoice, condition=order.invoice == invoice.id)
            .select(Count(order.id),
                where=(order.company == company)
                & (order.state == 'paid')
                & (invoice.invoice_date == today)))
        return figures
