# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Online payments against the fake gateways: opening payments, webhooks as
each provider sends them, idempotence, refusals and the reconciliation.

The fakes run over real HTTP; their callbacks are captured (dropped) and
replayed through the WSGI application, whose route commits: so these tests
commit in their own database (restored from the cache for the class), each
with invoices of its own.  Concurrency on PostgreSQL is tested in
tests/test_payment_webhooks.py.
"""
import contextlib
import datetime as dt
import pathlib
import sys
import urllib.parse
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_billing.exceptions import (
    PaymentGatewayError,
    PaymentOnlineError,
)
from trytond.modules.isp_billing.gateway import redact_url

from .payment_setup import (
    SEQUENCES,
    create_branch,
    create_customer,
    create_gateway,
    create_invoices,
    run_locked,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.fake_gateways import (  # noqa: E402
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)

AMOUNT = Decimal('250000')


class PaymentGatewayTestCase(RouteTestCase):
    "Test online payments against the fake gateways"
    module = 'isp_billing'

    @classmethod
    def setUpClass(cls):
        cls.fakes = {
            'midtrans': FakeMidtrans().start(),
            'xendit': FakeXendit().start(),
            'duitku': FakeDuitku().start(),
            'mpesa': FakeMpesa().start(),
            }
        super().setUpClass()
        cls.run_locked(cls.setUpPayments, tables=SEQUENCES)

    @classmethod
    def run_locked(cls, func, user=0, tables=(), **context):
        "`func`'s result, run as `payment_setup.run_locked` does"
        return run_locked(func, user=user, tables=tables, **context)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for fake in cls.fakes.values():
            fake.stop()

    @classmethod
    def setUpPayments(cls):
        company = create_branch("NetKita", 'IDR')
        kenya = create_branch("NetKita Kenya", 'KES')
        cls.company, cls.kenya = company.id, kenya.id
        cls.gateways = {}
        for provider, fake in cls.fakes.items():
            cls.gateways[provider] = create_gateway(provider, fake.url,
                company=kenya if provider == 'mpesa' else None).id

    def setUp(self):
        super().setUp()
        for fake in self.fakes.values():
            fake.reset()
            fake.drop_callbacks(None)   # replayed through the route
        self.fakes['xendit'].callback_url = (
            'http://localhost/%s/isp_billing/webhook/xendit' % DB_NAME)

    # -- helpers --------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, user=0, **context):
        "A committed transaction"
        with Transaction().start(DB_NAME, user, context=context) as t:
            try:
                yield t
            finally:
                t.tasks.clear()

    def locked(self, func, tables=()):
        return self.run_locked(func, tables=tables)

    def open_payment(self, provider='midtrans', amount=AMOUNT, count=1):
        "Invoices and their online payments: [(invoice id, reference)]"
        return self.open_payments([provider] * count, amount)

    def open_payments(self, providers, amount=AMOUNT):
        "An invoice and its online payment per provider (one transaction)"
        def open_():
            pool = Pool()
            Company = pool.get('company.company')
            Invoice = pool.get('account.invoice')
            result = []
            for provider in providers:
                company = Company(self.kenya if provider == 'mpesa'
                    else self.company)
                party = create_customer(phone='+254712345678'
                    if provider == 'mpesa' else '+6281234567890')
                invoice, = create_invoices(company, party, amount)
                payment = Invoice.isp_open_payment(invoice,
                    provider=provider)
                result.append((invoice.id, payment.reference))
            return result
        return self.locked(open_, tables=SEQUENCES)

    def deliveries(self, provider, reference=None):
        return [d for d in self.fakes[provider].callbacks
            if reference is None or reference in d.url
            or reference.encode() in d.body]

    def replay(self, delivery, **kwargs):
        "Post a captured callback to the route, as the provider would"
        parts = urllib.parse.urlsplit(delivery.url)
        path = parts.path + ('?' + parts.query if parts.query else '')
        return self.client().post(path, data=kwargs.get('body',
                delivery.body), headers=kwargs.get('headers',
                delivery.headers))

    def state(self, invoice_id, reference):
        "(invoice state, transaction state, review, verdicts, payments)"
        with self.transaction():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            PaymentTransaction = pool.get('isp.payment.transaction')
            invoice = Invoice(invoice_id)
            payment, = PaymentTransaction.search(
                [('reference', '=', reference)])
            return (invoice.state, payment.state, payment.review,
                sorted(n.verdict for n in payment.notifications),
                len(invoice.payment_lines))

    # -- opening payments ---------------------------------------------------

    def test_open_payment_midtrans(self):
        "Paying online opens a Snap payment; asking again reuses it"
        (invoice_id, reference), = self.open_payment('midtrans')
        request, = [r for r in self.fakes['midtrans'].requests
            if r.path == '/snap/v1/transactions']
        self.assertEqual(request.json()['transaction_details'], {
                'order_id': reference, 'gross_amount': 250000})
        self.assertTrue(request.headers['x-override-notification'].endswith(
                '/isp_billing/webhook/midtrans'))
        with self.transaction():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            invoice = Invoice(invoice_id)
            payment = Invoice.isp_open_payment(invoice)
            self.assertEqual(payment.reference, reference)
            self.assertEqual(payment.state, 'pending')
            self.assertIn('/snap/v4/redirection/', payment.payment_url)
            self.assertTrue(reference.startswith('IV'))
            self.assertEqual(len(reference), 12)

    def test_open_payment_refused(self):
        "A provider's refusal leaves no transaction behind"
        self.fakes['xendit'].fail_api(1, status=500)
        with self.assertRaises(PaymentGatewayError):
            self.open_payment('xendit')
        with self.transaction():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            self.assertFalse(PaymentTransaction.search(
                    [('gateway.provider', '=', 'xendit')]))

    def test_open_payment_not_payable(self):
        "Only posted invoices with something to pay are paid online"
        (invoice_id, reference), = self.open_payment('duitku')
        self.fakes['duitku'].pay(reference)
        delivery, = self.deliveries('duitku', reference)
        self.assertEqual(self.replay(delivery).status_code, 200)
        with self.transaction():
            Invoice = Pool().get('account.invoice')
            with self.assertRaises(PaymentOnlineError):
                Invoice.isp_open_payment(Invoice(invoice_id))

    def test_branch_account_wins(self):
        "A branch's own account replaces the central one of its provider"
        with self.transaction():
            pool = Pool()
            Gateway = pool.get('isp.payment.gateway')
            Company = pool.get('company.company')
            company = Company(self.company)
            central = Gateway(self.gateways['xendit'])
            self.assertIn(central, Gateway.for_company(company, 'xendit'))
            own = create_gateway('xendit', self.fakes['xendit'].url,
                company=company)
            self.assertEqual(Gateway.for_company(company, 'xendit'), [own])
            self.assertIn(Gateway(self.gateways['midtrans']),
                Gateway.for_company(company))
            Transaction().rollback()

    # -- the public payment link ---------------------------------------------

    def _pay_link_invoice(self, company_id, phone, lang_code=None):
        "A posted invoice: (id, pay link path, pay URL, number)"
        def create():
            pool = Pool()
            Company = pool.get('company.company')
            Configuration = pool.get('isp.billing.configuration')
            Lang = pool.get('ir.lang')
            company = Company(company_id)
            with Transaction().set_context(company=company.id):
                configuration = Configuration(1)
                configuration.pay_url = (
                    'https://billing.example.net/{database}/isp_billing/'
                    'pay/{token}')
                configuration.save()
            party = create_customer(phone=phone)
            if lang_code:
                party.lang, = Lang.search([('code', '=', lang_code)])
                party.save()
            invoice, = create_invoices(company, party, AMOUNT)
            return (invoice.id, invoice.isp_pay_token,
                invoice.isp_pay_url(), invoice.number)
        invoice_id, token, url, number = self.locked(
            create, tables=SEQUENCES)
        path = '/%s/isp_billing/pay/%s' % (DB_NAME, token)
        return invoice_id, path, url, number

    def test_pay_link(self):
        """The invoice's public link opens its payment (reused when asked
        again) and sends the subscriber to the gateway; once paid it says so
        in the subscriber's language; a cancelled or unknown one too"""
        invoice_id, path, url, number = self._pay_link_invoice(
            self.company, '+6281234567890', 'id')
        self.assertEqual(url, 'https://billing.example.net' + path)
        client = self.client()
        response = client.get(path)
        self.assertEqual(response.status_code, 303, response.data)
        location = response.headers['Location']
        self.assertIn('/snap/v4/redirection/', location)
        self.assertEqual(client.get(path).headers['Location'], location)
        opened = [r for r in self.fakes['midtrans'].requests
            if r.path == '/snap/v1/transactions']
        self.assertEqual(len(opened), 1)
        reference = opened[0].json()['transaction_details']['order_id']
        fake = self.fakes['midtrans']
        fake.pay(reference)
        delivery, = self.deliveries('midtrans', reference)
        self.assertEqual(self.replay(delivery).status_code, 200)
        response = client.get(path)
        self.assertEqual(response.status_code, 200)
        self.assertIn('Tagihan %s sudah lunas' % number,
            response.data.decode())

        invoice_id, path, _, number = self._pay_link_invoice(
            self.company, '+6281234567891')

        def cancel():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Company = pool.get('company.company')
            Company.write([Company(self.company)],
                {'cancel_invoice_out': True})
            Invoice.cancel([Invoice(invoice_id)])
        self.locked(cancel, tables=SEQUENCES)
        response = client.get(path)
        self.assertEqual(response.status_code, 410)
        self.assertIn('was cancelled', response.data.decode())
        for unknown in ['x' * 22, 'bad!token*12345678', 'short']:
            response = client.get('/%s/isp_billing/pay/%s' % (
                    DB_NAME, unknown))
            self.assertEqual(response.status_code, 404, unknown)

    def test_pay_link_mpesa(self):
        "An M-Pesa branch's link pushes the prompt and says so"
        _, path, _, number = self._pay_link_invoice(
            self.kenya, '+254712345678')
        response = self.client().get(path)
        self.assertEqual(response.status_code, 202, response.data)
        self.assertIn('sent to your phone', response.data.decode())
        pushes = [r for r in self.fakes['mpesa'].requests
            if r.path.endswith('/stkpush/v1/processrequest')]
        self.assertEqual(len(pushes), 1)
        self.assertEqual(pushes[0].json()['PhoneNumber'], '254712345678')

    def test_pay_link_token_copy(self):
        "A copied invoice gets a link of its own"
        def copy():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Company = pool.get('company.company')
            party = create_customer()
            invoice, = create_invoices(Company(self.company), party, AMOUNT)
            copy, = Invoice.copy([invoice])
            return invoice.isp_pay_token, copy.isp_pay_token
        token, copied = self.locked(copy, tables=SEQUENCES)
        self.assertTrue(copied)
        self.assertNotEqual(copied, token)

    # -- webhooks -------------------------------------------------------------

    def _pay_and_repeat(self, provider):
        (invoice_id, reference), = self.open_payment(provider)
        fake = self.fakes[provider]
        fake.pay(reference)
        fake.notify(reference, repeat=4)
        deliveries = self.deliveries(provider, reference)
        self.assertEqual(len(deliveries), 5)
        for delivery in deliveries:
            response = self.replay(delivery)
            self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(self.state(invoice_id, reference), (
                'paid', 'paid', None,
                ['applied'] + ['duplicate'] * 4, 1))
        return invoice_id, reference, response

    def test_webhook_midtrans(self):
        "Midtrans: paid once whatever the number of notifications"
        *_, response = self._pay_and_repeat('midtrans')
        self.assertEqual(response.json, {'status': 'OK'})

    def test_webhook_xendit(self):
        "Xendit: paid once, the callback token is not stored"
        _, reference, _ = self._pay_and_repeat('xendit')
        with self.transaction():
            Notification = Pool().get('isp.payment.notification')
            for notification in Notification.search(
                    [('transaction.reference', '=', reference)]):
                self.assertNotIn('fake-callback-token',
                    notification.headers)
                self.assertIn(reference, notification.body)

    def test_webhook_duitku(self):
        "Duitku: paid once, answered SUCCESS"
        *_, response = self._pay_and_repeat('duitku')
        self.assertEqual(response.data, b'SUCCESS')

    def test_webhook_mpesa(self):
        "M-Pesa: paid once, the URL token is not stored"
        _, reference, response = self._pay_and_repeat('mpesa')
        self.assertEqual(response.json['ResultCode'], 0)
        with self.transaction():
            Notification = Pool().get('isp.payment.notification')
            for notification in Notification.search(
                    [('transaction.reference', '=', reference)]):
                self.assertIn('token=***', notification.url)

    def test_webhook_forged(self):
        "A forged notification is refused and changes nothing"
        for provider in ['midtrans', 'xendit', 'duitku', 'mpesa']:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                fake = self.fakes[provider]
                if provider == 'mpesa':
                    # Daraja signs nothing: a paid claim is caught by the
                    # status query, a wrong URL token at once
                    fake.claim_paid(reference)
                else:
                    fake.pay(reference)
                    fake.callbacks.clear()
                    fake.notify(reference, bad_signature=True)
                delivery, = self.deliveries(provider, reference)
                response = self.replay(delivery)
                self.assertIn(response.status_code, {401, 403})
                self.assertEqual(self.state(invoice_id, reference),
                    ('posted', 'pending', None, [], 0))
        delivery = self.deliveries('mpesa')[-1]
        parts = urllib.parse.urlsplit(delivery.url)
        query = urllib.parse.parse_qs(parts.query)
        forged = delivery.url.replace(query['token'][0], '0' * 64)
        response = self.client().post(
            urllib.parse.urlsplit(forged).path + '?'
            + urllib.parse.urlsplit(forged).query, data=delivery.body,
            headers=delivery.headers)
        self.assertEqual(response.status_code, 403)

    def test_webhook_unknown_reference(self):
        "An unknown reference is answered 404 without side effects"
        (invoice_id, reference), = self.open_payment('midtrans')
        fake = self.fakes['midtrans']
        fake.pay(reference)
        delivery, = self.deliveries('midtrans', reference)
        body = delivery.body.replace(reference.encode(), b'IVUNKNOWN000')
        response = self.replay(delivery, body=body)
        self.assertEqual(response.status_code, 404)
        # a reference of another provider is unknown to this route
        response = self.client().post(
            '/%s/isp_billing/webhook/xendit' % DB_NAME,
            json={'external_id': reference, 'status': 'PAID'},
            headers={'x-callback-token': 'fake-callback-token'})
        self.assertEqual(response.status_code, 404)
        response = self.client().post(
            '/%s/isp_billing/webhook/paypal' % DB_NAME, data=b'{}')
        self.assertEqual(response.status_code, 404)
        self.assertEqual(self.state(invoice_id, reference),
            ('posted', 'pending', None, [], 0))

    def test_webhook_wrong_amount(self):
        "A wrong amount is refused, flagged for staff, and pays nothing"
        for provider in ['midtrans', 'xendit', 'duitku']:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                self.fakes[provider].pay(reference, amount=1000)
                delivery, = self.deliveries(provider, reference)
                response = self.replay(delivery)
                self.assertEqual(response.status_code, 422)
                self.assertEqual(self.state(invoice_id, reference),
                    ('posted', 'pending', 'wrong_amount', ['wrong_amount'],
                        0))

    def test_webhook_malformed_and_large(self):
        "Bodies too large or without a reference are refused"
        url = '/%s/isp_billing/webhook/midtrans' % DB_NAME
        response = self.client().post(url, data=b'x' * (65 * 1024))
        self.assertEqual(response.status_code, 413)
        response = self.client().post(url, data=b'not json')
        self.assertEqual(response.status_code, 400)

    def test_webhook_expired_then_paid(self):
        "An expiry is applied; a later genuine payment still pays"
        (invoice_id, reference), = self.open_payment('midtrans')
        fake = self.fakes['midtrans']
        fake.expire(reference)
        delivery, = self.deliveries('midtrans', reference)
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(invoice_id, reference)[:2],
            ('posted', 'expired'))
        fake.pay(reference)
        delivery = self.deliveries('midtrans', reference)[-1]
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(invoice_id, reference),
            ('paid', 'paid', None, ['applied', 'applied'], 1))

    def test_webhook_paid_twice(self):
        "Two payments of one invoice: the second is flagged for staff"
        (invoice_id, first), = self.open_payment('midtrans')
        with self.transaction():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Gateway = pool.get('isp.payment.gateway')
            second = Invoice.isp_open_payment(Invoice(invoice_id),
                gateway=Gateway(self.gateways['xendit'])).reference
        self.fakes['midtrans'].pay(first)
        self.fakes['xendit'].pay(second)
        for provider, reference in [('midtrans', first), ('xendit', second)]:
            delivery, = self.deliveries(provider, reference)
            self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(invoice_id, second),
            ('paid', 'paid', 'document_settled', ['applied'], 1))

    def test_webhook_reversed(self):
        "A refund after payment is never applied silently"
        (invoice_id, reference), = self.open_payment('midtrans')
        fake = self.fakes['midtrans']
        fake.pay(reference)
        delivery, = self.deliveries('midtrans', reference)
        self.replay(delivery)
        fake.fail(reference)
        delivery = self.deliveries('midtrans', reference)[-1]
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(invoice_id, reference),
            ('paid', 'paid', 'reversed', ['applied', 'ignored'], 1))

    # -- reconciliation -------------------------------------------------------

    def test_reconciliation(self):
        "Dropped callbacks: the reconciliation asks and pays"
        providers = ['midtrans', 'xendit', 'duitku', 'mpesa']
        *opened, (unpaid_id, unpaid) = self.open_payments(
            providers + ['midtrans'])
        opened = dict(zip(providers, opened, strict=True))
        for provider, (_, reference) in opened.items():
            self.fakes[provider].pay(reference)
        later = dt.datetime.now() + dt.timedelta(minutes=20)

        with self.transaction(_isp_payment_now=later):
            PaymentTransaction = Pool().get('isp.payment.transaction')
            due = [t.id for t in PaymentTransaction.reconcile_pending()]
            mine = {r for _, r in opened.values()} | {unpaid}
            self.assertEqual(mine, {t.reference for t in
                    PaymentTransaction.browse(due)} & mine)
            due = [t.id for t in PaymentTransaction.browse(due)
                if t.reference in mine]
        with self.transaction(_isp_payment_now=dt.datetime.now()):
            PaymentTransaction = Pool().get('isp.payment.transaction')
            self.assertEqual(PaymentTransaction.reconcile_pending(), [])

        def check():
            with Transaction().set_context(_isp_payment_now=later):
                PaymentTransaction = Pool().get('isp.payment.transaction')
                PaymentTransaction.check_status(
                    PaymentTransaction.browse(due))
        self.locked(check)
        for provider, (invoice_id, reference) in opened.items():
            with self.subTest(provider=provider):
                self.assertEqual(self.state(invoice_id, reference),
                    ('paid', 'paid', None, ['applied'], 1))
        # Midtrans does not know an order before a method is chosen
        self.assertEqual(self.state(unpaid_id, unpaid),
            ('posted', 'pending', None, [], 0))
        much_later = later + dt.timedelta(hours=49)

        def abandon():
            with Transaction().set_context(_isp_payment_now=much_later):
                PaymentTransaction = Pool().get('isp.payment.transaction')
                payment, = PaymentTransaction.search(
                    [('reference', '=', unpaid)])
                PaymentTransaction.check_status([payment])
        self.locked(abandon)
        self.assertEqual(self.state(unpaid_id, unpaid),
            ('posted', 'expired', None, ['applied'], 0))

    def test_reconciliation_provider_down(self):
        "A provider that cannot be asked leaves the payment pending"
        (invoice_id, reference), = self.open_payment('xendit')
        self.fakes['xendit'].pay(reference)
        self.fakes['xendit'].fail_api(None, status=503)

        def check():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            PaymentTransaction.check_status(PaymentTransaction.search(
                    [('reference', '=', reference)]))
        self.locked(check)
        self.assertEqual(self.state(invoice_id, reference),
            ('posted', 'pending', None, [], 0))

    # -- access ---------------------------------------------------------------

    def test_credentials_access(self):
        "Only administrators read gateway credentials"
        with self.transaction():
            pool = Pool()
            User = pool.get('res.user')
            Group = pool.get('res.group')
            ModelData = pool.get('ir.model.data')
            finance = Group(ModelData.get_id('isp_base', 'group_isp_finance'))
            head = Group(ModelData.get_id(
                    'isp_base', 'group_isp_head_admin'))
            users = User.create([{
                        'name': login, 'login': login,
                        'groups': [('add', [group.id])],
                        'companies': [('add', [self.company])],
                        'company': self.company,
                        } for login, group in [
                        ('pay_finance', finance), ('pay_head', head)]])
            finance_id, head_id = [u.id for u in users]
        gateway_id = self.gateways['midtrans']
        with self.transaction(user=finance_id, _check_access=True):
            Gateway = Pool().get('isp.payment.gateway')
            self.assertEqual(Gateway.read([gateway_id], ['name'])[0]['name'],
                'Midtrans')
            with self.assertRaises(AccessError):
                Gateway.read([gateway_id], ['server_key'])
        with self.transaction(user=head_id, _check_access=True):
            Gateway = Pool().get('isp.payment.gateway')
            self.assertEqual(
                Gateway.read([gateway_id], ['server_key'])[0]['server_key'],
                'SB-Mid-server-fake')

    def test_redact_url(self):
        "The M-Pesa callback token never reaches the database"
        self.assertEqual(
            redact_url('http://h/db/x?reference=IVAB&token=s3cret'),
            'http://h/db/x?reference=IVAB&token=***')


del RouteTestCase
