# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The e-voucher shop's orders (docs/shop.md).

A buyer on the branch's own domain orders a voucher of a profile marked
*Sold Online*; the order (`isp.voucher.order`, numbered EV... per branch)
is paid through the existing online payments (`isp.payment.transaction`,
reference ``EV`` + 10 random characters, the same webhooks, status checks
and reconciliation as invoices).  When the gateway confirms the payment,
and only then, under the payment's row lock, exactly one voucher is taken
from the profile's online stock (or generated), sold with the order and
the code sent by WhatsApp and e-mail; the sale is invoiced and paid just
after, in bulk for the orders paid meanwhile (`Order.invoice_paid`)."""
import contextlib
import datetime as dt
import secrets
import weakref
from collections import defaultdict
from itertools import groupby

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
#: The most paid orders one run of `Order.invoice_paid` invoices
INVOICE_BATCH = 200
#: Seconds the invoicing of paid orders is scheduled after their payment:
#: it comes after the deliveries queued meanwhile (and takes them too)
INVOICE_DELAY = 1
#: {transaction: branches whose invoicing it queued}
_invoicing = weakref.WeakKeyDictionary()
#: {transaction: {order id: (payment id, paid at, late)}}: the orders paid
#: in its open batch of payments (`Order.delivery_batch`)
_deliveries = weakref.WeakKeyDictionary()
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

    def shop_vouchers(self, count=1):
        """`count` new vouchers of the profile's online stock (generated
        shop batches), the oldest first; a shop batch of `shop_restock`
        vouchers (or of what is missing, when more) is generated when the
        stock is short.  The caller holds the profile's row lock (one
        taker at a time)."""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Batch = pool.get('isp.voucher.batch')
        domain = [
            ('profile', '=', self.id),
            ('state', '=', 'new'),
            ('batch.shop', '=', True),
            ('batch.state', '=', 'generated'),
            ]
        found = Voucher.search(domain, order=[('id', 'ASC')], limit=count)
        if len(found) < count:
            quantity = max(self.shop_restock or DEFAULT_RESTOCK,
                count - len(found))
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
            found = Voucher.search(domain, order=[('id', 'ASC')],
                limit=count)
        return found


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
    payment = fields.Many2One(
        'isp.payment.transaction', "Payment", readonly=True,
        ondelete='RESTRICT',
        help="The online payment that paid the order (its voucher).")
    invoice = fields.Many2One(
        'account.invoice', "Invoice", readonly=True, ondelete='RESTRICT',
        help="The sale, invoiced and paid just after the payment.")
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

    @classmethod
    @contextlib.contextmanager
    def delivery_batch(cls):
        """Within it, `pay` leaves the deliveries to the end of the block,
        done there for all its orders at once (`_deliver`): the payments'
        batch of `apply_queued` (`PaymentTransaction.documents_batch`);
        nested: the outer one does it"""
        transaction = Transaction()
        if transaction in _deliveries:
            yield
            return
        batch = _deliveries[transaction] = {}
        try:
            yield
            cls._deliver(batch)
        finally:
            _deliveries.pop(transaction, None)

    def pay(self, payment):
        """The payment `payment` of the order was confirmed (under its row
        lock and the order's): the voucher, sold with the order, and the
        messages (`_deliver`: at once, or at the end of the open
        `delivery_batch`); the sale's invoice is queued (`invoice_paid`:
        in bulk, off the buyer's wait); returns the values to write on the
        payment (a review flag when the order already had its voucher)"""
        batch = _deliveries.get(Transaction())
        if self.voucher or (batch is not None and self.id in batch):
            return {'review': 'document_settled', 'review_note': gettext(
                    'isp_voucher.msg_shop_second_payment',
                    order=self.number)[:200]}
        now = _now()
        late = self.state == 'cancelled' or (
            self.expires_at is not None and now > self.expires_at)
        paid = {self.id: (payment.id, now, late)}
        if batch is not None:
            batch.update(paid)
        else:
            self._deliver(paid)
        values = {}
        if late:
            values = {'review': 'document_settled', 'review_note': gettext(
                    'isp_voucher.msg_shop_paid_late',
                    order=self.number)[:200]}
        return values

    @classmethod
    def _deliver(cls, paid):
        """The orders paid ({order id: (payment id, paid at, late)}), in
        bulk per branch: each its voucher taken from its profile's online
        stock and sold, its buyer's party, the order written paid, the
        codes sent, the invoicing queued"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        orders = sorted(cls.browse(list(paid)),
            key=lambda o: (o.company.id, o.id))
        for company, c_orders in groupby(orders, key=lambda o: o.company):
            c_orders = list(c_orders)
            with Transaction().set_context(company=company.id):
                vouchers = {}
                by_profile = defaultdict(list)
                for order in c_orders:
                    by_profile[order.profile].append(order)
                for profile, p_orders in by_profile.items():
                    vouchers.update(zip((o.id for o in p_orders),
                            profile.shop_vouchers(len(p_orders)),
                            strict=True))
                Voucher.sell(list(vouchers.values()))
                parties = cls.buyer_parties(c_orders)
                to_write = []
                for order in c_orders:
                    payment_id, now, late = paid[order.id]
                    to_write.extend(([order], {
                                'state': 'paid', 'paid_at': now,
                                'late': late,
                                'voucher': vouchers[order.id].id,
                                'payment': payment_id,
                                'party': parties[order.phone].id,
                                }))
                cls.write(*to_write)
                cls.notify(cls.browse([o.id for o in c_orders]))
            c_orders[0]._queue_invoicing()

    def _queue_invoicing(self):
        """Queue `invoice_paid` for the order's branch, once per database
        transaction (a batch of payments queues one)"""
        queued = _invoicing.setdefault(Transaction(), set())
        if self.company.id in queued:
            return
        queued.add(self.company.id)
        with Transaction().set_context(
                queue_scheduled_at=dt.timedelta(seconds=INVOICE_DELAY)):
            self.__class__.__queue__.invoice_paid([self])

    @classmethod
    def invoice_paid(cls, orders):
        """Queue task: invoice the sales of the paid orders of the branches
        of `orders` that have no invoice yet (up to INVOICE_BATCH, oldest
        first), in bulk: the invoices created, posted and paid by the
        orders' payments together, without invoice or payment notice (the
        buyer got `voucher_delivered`).  The orders' rows are locked and
        read again first: a sale is invoiced once."""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Voucher = pool.get('isp.voucher')
        companies = sorted({o.company.id for o in orders})
        todo = cls.search([
                ('company', 'in', companies),
                ('state', '=', 'paid'),
                ('invoice', '=', None),
                ('voucher', '!=', None),
                ('payment', '!=', None),
                ], order=[('company', 'ASC'), ('id', 'ASC')],
            limit=INVOICE_BATCH)
        if not todo:
            return
        cls.lock(todo)
        todo = [o for o in cls.browse(todo) if not o.invoice]
        for company, c_orders in groupby(todo, key=lambda o: o.company):
            c_orders = list(c_orders)
            with Transaction().set_context(company=company.id,
                    _isp_no_notices=True):
                invoices = [o._sale_invoice() for o in c_orders]
                Invoice.save(invoices)
                Invoice.isp_post(invoices)
                with Invoice.isp_payments_batch():
                    for order, invoice in zip(
                            c_orders, Invoice.browse(invoices), strict=True):
                        Invoice.isp_record_payment(invoice,
                            order.payment.amount, method='gateway',
                            reference=order.payment.reference,
                            to_pay=invoice.amount_to_pay)
            to_write, vouchers = [], []
            for order, invoice in zip(c_orders, invoices, strict=True):
                line, = [li for li in invoice.lines if li.type == 'line']
                to_write.extend(([order], {'invoice': invoice.id}))
                vouchers.extend(([order.voucher], {
                            'invoice_line': line.id,
                            'sale_price': line.unit_price,
                            }))
            cls.write(*to_write)
            Voucher.write(*vouchers)

    def _sale_invoice(self):
        "The draft invoice (not saved) of the order's sale to its buyer"
        profile = self.profile
        return sale_invoice(self.company, self.party, profile, 1,
            profile.list_price, gettext('isp_voucher.msg_shop_line',
                profile=profile.rec_name, order=self.number),
            self.number, who=self.number)

    @classmethod
    def buyer_parties(cls, orders):
        """{phone: the branch's party of the buyer's number (a customer,
        not a subscriber)} of `orders` (of one branch), made when missing
        (in one create), with the orders' e-mails"""
        pool = Pool()
        Party = pool.get('party.party')
        company = orders[0].company
        emails = defaultdict(list)
        for order in orders:
            if order.email and order.email not in emails[order.phone]:
                emails[order.phone].append(order.email)
        parties = {}
        for party in Party.search([
                    ('isp_company', '=', company.id),
                    ('whatsapp', 'in', sorted({o.phone for o in orders})),
                    ('is_subscriber', '=', False),
                    ], order=[('id', 'ASC')]):
            parties.setdefault(party.whatsapp, party)
        to_write = []
        for phone, party in parties.items():
            known = {m.value for m in party.contact_mechanisms}
            new = [e for e in emails[phone] if e not in known]
            if new:
                to_write.extend(([party], {'contact_mechanisms': [
                                ('create', [{'type': 'email', 'value': e}
                                        for e in new])]}))
        if to_write:
            Party.write(*to_write)
        missing = {}
        for order in orders:
            if order.phone not in parties:
                missing.setdefault(order.phone, order)
        if missing:
            created = Party.create([{
                        'name': phone,
                        'isp_company': company.id,
                        'whatsapp': phone,
                        'lang': lang.id if lang else None,
                        'addresses': [('create', [{}])],
                        'contact_mechanisms': [('create', [
                                    {'type': 'email', 'value': e}
                                    for e in emails[phone]])],
                        } for phone, order in missing.items()
                    for lang in [order._lang()]])
            parties.update(zip(missing, created, strict=True))
        return parties

    def _lang(self):
        "The order's language (ir.lang) or None"
        Lang = Pool().get('ir.lang')
        if self.language:
            try:
                return Lang.get(self.language)
            except (KeyError, ValueError, IndexError):
                pass
        return None

    @classmethod
    def notify(cls, orders):
        """The codes by WhatsApp and, with an e-mail, by e-mail (queued;
        one `send_events` for all)"""
        Message = Pool().get('isp.message')
        events = []
        for order in orders:
            voucher = order.voucher
            profile = order.profile
            lang = order._lang()
            with Transaction().set_context(
                    language=lang.code if lang else None):
                validity = profile.validity_text()
            events.append({
                    'event': 'voucher_delivered', 'party': order.party,
                    'company': order.company, 'origin': order,
                    'channels': ['whatsapp'] + (
                        ['email'] if order.email else []),
                    'language': lang,
                    'values': {
                        'voucher_code': voucher.code,
                        'profile': profile.name,
                        'validity': validity,
                        'login_url': order.login_url() or '',
                        },
                    })
        if events:
            Message.send_events(events)

    def login_url(self):
        "The hotspot login URL with the code filled in (None without host)"
        voucher = self.voucher
        host = self.profile.hotspot_dns_name
        if voucher and host:
            return login_url(host, voucher.code, voucher.password)

    def payment_over(self, payment):
        """`payment` failed or expired: a pending order without another
        pending payment is cancelled (no voucher)"""
        if self.state != 'pending' or self.id in _deliveries.get(
                Transaction(), ()):
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

    @classmethod
    @contextlib.contextmanager
    def documents_batch(cls):
        "The orders paid in the batch are delivered at its end, in bulk"
        Order = Pool().get('isp.voucher.order')
        with super().documents_batch(), Order.delivery_batch():
            yield

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
