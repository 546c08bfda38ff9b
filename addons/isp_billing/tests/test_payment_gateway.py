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
import copy
import datetime as dt
import json
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
from trytond.modules.isp_billing.gateway import CREDENTIALS, redact_url

from .payment_setup import (
    SEQUENCES,
    SETUP_TABLES,
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


def _stk(payload):
    "The stkCallback of an M-Pesa callback payload"
    return payload['Body']['stkCallback']


def _stk_paid(payload, receipt='RCP0000001', amount=250000):
    "An M-Pesa callback payload made a success (ResultCode 0)"
    _stk(payload).update(ResultCode=0, ResultDesc='Success',
        CallbackMetadata={'Item': [{'Name': 'Amount', 'Value': amount},
                {'Name': 'MpesaReceiptNumber', 'Value': receipt}]})
    return payload


#: (provider, the genuine event, what is altered, alteration of its
#: decoded body, expected answer): each alteration of fields the provider
#: does not sign (or, Xendit, of any field) to claim a payment, starting
#: from a genuine notification that tells none
TAMPERS = [
    ('midtrans', 'notify', 'transaction_status of a pending (201)',
        lambda p: {**p, 'transaction_status': 'settlement'}, 403),
    ('midtrans', 'notify', 'transaction_status and fraud_status (201)',
        lambda p: {**p, 'transaction_status': 'capture',
            'fraud_status': 'accept'}, 403),
    ('midtrans', 'expire', 'transaction_status of an expiry (202)',
        lambda p: {**p, 'transaction_status': 'settlement'}, 403),
    ('midtrans', 'fail', 'fraud_status of a denied capture (202)',
        lambda p: {**p, 'transaction_status': 'capture',
            'fraud_status': 'accept'}, 403),
    ('midtrans', 'fail', 'transaction_status of a deny (202)',
        lambda p: {**p, 'transaction_status': 'settlement',
            'fraud_status': 'accept'}, 403),
    ('xendit', 'expire', 'status',
        lambda p: {**p, 'status': 'PAID', 'paid_amount': p['amount']}, 200),
    ('xendit', 'expire', 'status SETTLED',
        lambda p: {**p, 'status': 'SETTLED'}, 200),
    ('xendit', 'expire', 'id (another invoice)',
        lambda p: {**p, 'status': 'PAID', 'id': 'f' * 24}, 403),
    ('duitku', 'fail', 'resultCode',
        lambda p: {**p, 'resultCode': '00'}, 200),
    ('duitku', 'fail', 'reference (another payment)',
        lambda p: {**p, 'resultCode': '00', 'reference': 'DX0000OTHER'},
        403),
    ('mpesa', 'fail', 'ResultCode of a cancelled prompt',
        _stk_paid, 200),
    ('mpesa', 'expire', 'ResultCode of an unanswered prompt',
        _stk_paid, 200),
    ('mpesa', 'fail', 'CheckoutRequestID (another payment)',
        lambda p: _stk_paid(p) and {'Body': {'stkCallback': {
                    **_stk(p), 'CheckoutRequestID': 'ws_CO_OTHER'}}}, 403),
    ]


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
        cls.run_locked(cls.setUpPayments, tables=SETUP_TABLES)

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

    def replay_payload(self, delivery, payload):
        "Post `delivery` with its body replaced by `payload`, encoded alike"
        if 'json' in delivery.headers.get('Content-Type', ''):
            body = json.dumps(payload).encode()
        else:
            body = urllib.parse.urlencode(payload).encode()
        return self.replay(delivery, body=body)

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
            payment, = PaymentTransaction.search(
                [('reference', '=', reference)])
            invoice = Invoice(invoice_id if invoice_id is not None
                else payment.document.id)
            return (invoice.state, payment.state, payment.review,
                sorted(n.verdict for n in payment.notifications),
                len(invoice.payment_lines) if invoice_id is not None
                else None)

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
                # recorded, then refused and flagged by the queue task
                self.assertEqual(response.status_code, 200)
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

    def test_webhook_paid_twice_in_one_batch(self):
        """Two payments of one invoice applied in one batch (its payment
        moves made in bulk at its end): the first pays the invoice, the
        second is kept as credit and flagged; one notice each, one
        reconciliation"""
        (invoice_id, first), = self.open_payment('midtrans')
        with self.transaction():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Gateway = pool.get('isp.payment.gateway')
            second = Invoice.isp_open_payment(Invoice(invoice_id),
                gateway=Gateway(self.gateways['xendit'])).reference
        self.fakes['midtrans'].pay(first)
        self.fakes['xendit'].pay(second)

        def record():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            for provider, reference in [
                    ('midtrans', first), ('xendit', second)]:
                payment, = PaymentTransaction.search(
                    [('reference', '=', reference)])
                delivery, = self.deliveries(provider, reference)
                notification = payment.gateway.get_adapter(
                    ).parse_notification(delivery.headers, delivery.body,
                    url=delivery.url)
                PaymentTransaction.record_notification(payment,
                    notification, body=delivery.body)
            Transaction().tasks.clear()
        self.locked(record)

        def apply():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            payment, = PaymentTransaction.search(
                [('reference', '=', first)])
            return len(PaymentTransaction.apply_queued([payment]))
        # the tasks it queued (the invoice's processing) run once done
        self.assertEqual(run_locked(apply)[0], 2)
        self.assertEqual(self.state(invoice_id, first),
            ('paid', 'paid', None, ['applied'], 1))
        with self.transaction() as transaction:
            pool = Pool()
            Invoice = pool.get('account.invoice')
            Message = pool.get('isp.message')
            invoice = Invoice(invoice_id)
            self.assertTrue(invoice.reconciled)
            self.assertEqual(len(invoice.payment_lines), 1)
            # one notice per payment, on each channel
            messages = Message.search([
                    ('origin', '=', str(invoice)),
                    ('event', '=', 'payment_received'),
                    ])
            channels = {m.channel for m in messages}
            self.assertEqual(len(messages), 2 * len(channels))
            transaction.commit()
        self.assertEqual(self.state(invoice_id, second),
            ('paid', 'paid', 'document_settled', ['applied'], 1))

    def test_webhook_reversed(self):
        """A refund after payment is never applied silently: flagged once
        the status API confirms it; a refund it does not confirm flags
        nothing"""
        (invoice_id, reference), (_, claimed) = self.open_payment(
            'midtrans', count=2)
        fake = self.fakes['midtrans']
        for ref in [reference, claimed]:
            fake.pay(ref)
            delivery, = self.deliveries('midtrans', ref)
            self.assertEqual(self.replay(delivery).status_code, 200)
        fake.refund(reference)
        delivery = self.deliveries('midtrans', reference)[-1]
        self.assertEqual(delivery.payload['transaction_status'], 'refund')
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(invoice_id, reference),
            ('paid', 'paid', 'reversed', ['applied', 'ignored'], 1))
        delivery, = fake.claim(claimed, 'refunded')
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(None, claimed)[1:],
            ('paid', None, ['applied', 'unconfirmed'], None))

    # -- what the signatures do not cover ------------------------------------

    def test_webhook_tampered_unsigned_fields(self):
        """Each unsigned field of each gateway altered to claim a payment:
        refused (403, nothing stored) or recorded (200) and not confirmed
        by the status API (verdict 'unconfirmed', the API's own state
        applied): nothing is paid"""
        for provider, event, altered, alter, status in TAMPERS:
            with self.subTest(provider=provider, altered=altered):
                (invoice_id, reference), = self.open_payment(provider)
                getattr(self.fakes[provider], event)(reference)
                delivery = self.deliveries(provider, reference)[-1]
                payload = alter(copy.deepcopy(delivery.payload))
                response = self.replay_payload(delivery, payload)
                self.assertEqual(response.status_code, status,
                    response.data)
                invoice, state, review, verdicts, lines = self.state(
                    invoice_id, reference)
                self.assertEqual((invoice, review, lines),
                    ('posted', None, 0))
                self.assertNotEqual(state, 'paid')
                if status == 403:
                    self.assertEqual((state, verdicts), ('pending', []))
                else:
                    self.assertIn('unconfirmed', verdicts)

    def test_webhook_unsigned_fields_of_a_payment(self):
        """A genuine payment whose unsigned amount or currency was altered
        is paid as the status API tells, never refused nor flagged"""
        for provider, alter in [
                ('midtrans', lambda p: {**p, 'currency': 'USD'}),
                ('xendit', lambda p: {**p, 'paid_amount': 1000,
                        'currency': 'USD'}),
                ('mpesa', lambda p: _stk_paid(p, receipt=_stk(p)[
                            'CallbackMetadata']['Item'][1]['Value'],
                        amount=1)),
                ]:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                self.fakes[provider].pay(reference)
                delivery, = self.deliveries(provider, reference)
                response = self.replay_payload(delivery,
                    alter(copy.deepcopy(delivery.payload)))
                self.assertEqual(response.status_code, 200, response.data)
                self.assertEqual(self.state(invoice_id, reference),
                    ('paid', 'paid', None, ['applied'], 1))

    def test_webhook_claims_not_confirmed(self):
        """Authenticated notifications (a leaked key or token) telling a
        payment the gateway does not know change nothing"""
        for provider in ['midtrans', 'xendit', 'duitku', 'mpesa']:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                delivery, = self.fakes[provider].claim(reference, 'paid')
                response = self.replay(delivery)
                self.assertEqual(response.status_code, 200, response.data)
                self.assertEqual(self.state(invoice_id, reference),
                    ('posted', 'pending', None, ['unconfirmed'], 0))

    def test_webhook_status_api_down(self):
        """A genuine payment while the status API is down: recorded
        'queued' and answered 200 (M-Pesa does not retry), the payment
        pending; the reconciliation cron queues the task again and it
        applies the notification once the API answers (the
        confirm-and-apply step alike)"""
        for provider in ['midtrans', 'xendit', 'duitku', 'mpesa']:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                fake = self.fakes[provider]
                fake.pay(reference)
                delivery, = self.deliveries(provider, reference)
                fake.fail_api(None, status=503)
                try:
                    response = self.replay(delivery)
                finally:
                    fake.clear_faults()
                self.assertEqual(response.status_code, 200)
                self.assertEqual(self.state(invoice_id, reference),
                    ('posted', 'pending', None, ['queued'], 0))
                self.assertEqual(self.requeued(reference), 1)
                self.assertEqual(self.state(invoice_id, reference),
                    ('paid', 'paid', None, ['applied'], 1))
                # the confirm-and-apply step, given the notification
                (invoice_id, reference), = self.open_payment(provider)
                fake.pay(reference)
                delivery, = self.deliveries(provider, reference)

                def apply(provider=provider, reference=reference,
                        delivery=delivery):
                    PaymentTransaction = Pool().get(
                        'isp.payment.transaction')
                    payment, = PaymentTransaction.search(
                        [('reference', '=', reference)])
                    if provider == 'midtrans':
                        PaymentTransaction.check_status([payment])
                        return
                    parts = urllib.parse.urlsplit(delivery.url)
                    adapter = payment.gateway.get_adapter()
                    notification = adapter.parse_notification(
                        delivery.headers, delivery.body,
                        url=parts.path + '?' + parts.query)
                    PaymentTransaction.confirm_and_apply(payment,
                        notification, body=delivery.body)
                self.locked(apply)
                self.assertEqual(self.state(invoice_id, reference)[::2],
                    ('paid', None, 1))

    def test_webhook_queued_batch(self):
        """Notifications recorded 'queued' (no worker free yet) are applied
        by one task per branch in one batch: every queued payment of the
        branch with one lock restart (their rows, invoices and the move
        sequence at once) and one status query each, asked before the
        locks, repeats as duplicates; the other branch's wait
        for their own task; a second run finds nothing"""
        # a first payment of the period through the route (it opens the
        # journal's period, a table lock of its own)
        (_, reference), = self.open_payment('midtrans')
        self.fakes['midtrans'].pay(reference)
        delivery, = self.deliveries('midtrans', reference)
        self.assertEqual(self.replay(delivery).status_code, 200)
        self.assertEqual(self.state(None, reference)[1], 'paid')
        providers = ['midtrans', 'xendit', 'duitku', 'midtrans', 'mpesa']
        opened = self.open_payments(providers)
        for provider, (_, reference) in zip(providers, opened, strict=True):
            self.fakes[provider].pay(reference)

        def record():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            for provider, (_, reference) in zip(providers, opened,
                    strict=True):
                payment, = PaymentTransaction.search(
                    [('reference', '=', reference)])
                delivery, = self.deliveries(provider, reference)
                parts = urllib.parse.urlsplit(delivery.url)
                notification = payment.gateway.get_adapter(
                    ).parse_notification(delivery.headers, delivery.body,
                    url=parts.path + '?' + parts.query)
                for _ in range(2):
                    PaymentTransaction.record_notification(payment,
                        notification, headers=delivery.headers,
                        body=delivery.body, url=delivery.url)
            # their tasks are not run: as if the workers were busy
            Transaction().tasks.clear()
        self.locked(record)
        for invoice_id, reference in opened:
            self.assertEqual(self.state(invoice_id, reference),
                ('posted', 'pending', None, ['queued', 'queued'], 0))

        def apply(reference):
            PaymentTransaction = Pool().get('isp.payment.transaction')
            payment, = PaymentTransaction.search(
                [('reference', '=', reference)])
            return len(PaymentTransaction.apply_queued([payment]))
        (_, first), *_, (mpesa_id, mpesa) = opened
        for fake in self.fakes.values():
            fake.requests.clear()
        applied, restarts, _ = run_locked(lambda: apply(first))
        self.assertEqual((applied, restarts), (8, 1))
        # one status query per payment, none in the run holding the locks
        self.assertEqual(sum(len(self.fakes[p].requests)
                for p in ['midtrans', 'xendit', 'duitku']), 4)
        for invoice_id, reference in opened[:-1]:
            self.assertEqual(self.state(invoice_id, reference),
                ('paid', 'paid', None, ['applied', 'duplicate'], 1))
        self.assertEqual(self.state(mpesa_id, mpesa),
            ('posted', 'pending', None, ['queued', 'queued'], 0))
        self.assertEqual(run_locked(lambda: apply(mpesa))[0], 2)
        self.assertEqual(self.state(mpesa_id, mpesa),
            ('paid', 'paid', None, ['applied', 'duplicate'], 1))
        self.assertEqual(run_locked(lambda: apply(first))[:2], (0, 0))

    def requeued(self, reference):
        """Run the reconciliation cron a minute later and the
        `apply_queued` tasks it queues for `reference`'s branch; return
        how many"""
        later = dt.datetime.now() + dt.timedelta(minutes=2)
        with self.transaction(_isp_payment_now=later) as transaction:
            pool = Pool()
            PaymentTransaction = pool.get('isp.payment.transaction')
            Queue = pool.get('ir.queue')
            payment, = PaymentTransaction.search(
                [('reference', '=', reference)])
            with Transaction().set_context(company=payment.company.id):
                PaymentTransaction.reconcile_pending()
            tasks = [t for t in Queue.browse(transaction.tasks)
                if t.data['method'] == 'apply_queued']
            data = [t.data for t in tasks]

        def run():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            for item in data:
                PaymentTransaction.apply_queued(
                    PaymentTransaction.browse(item['instances']))
        self.locked(run)
        return len(data)

    def test_webhook_mpesa_bound_to_its_payment(self):
        """M-Pesa: the body of payment X sent to payment Y's URL is refused,
        and a receipt already recorded for X never pays Y"""
        (x_id, x_ref), (y_id, y_ref) = self.open_payment('mpesa', count=2)
        fake = self.fakes['mpesa']
        fake.pay(x_ref)
        x_delivery, = self.deliveries('mpesa', x_ref)
        y_url = x_delivery.url
        fake.pay(y_ref)
        y_delivery, = self.deliveries('mpesa', y_ref)
        y_url = y_delivery.url
        swapped = copy.copy(x_delivery)
        swapped.url = y_url
        self.assertEqual(self.replay(swapped).status_code, 403)
        self.assertEqual(self.state(y_id, y_ref),
            ('posted', 'pending', None, [], 0))
        self.assertEqual(self.replay(x_delivery).status_code, 200)
        receipt = _stk(x_delivery.payload)['CallbackMetadata']['Item'][1][
            'Value']
        reused = _stk_paid(copy.deepcopy(y_delivery.payload),
            receipt=receipt)
        self.assertEqual(
            self.replay_payload(y_delivery, reused).status_code, 409)
        self.assertEqual(self.state(y_id, y_ref),
            ('posted', 'pending', None, [], 0))
        self.assertEqual(self.replay(y_delivery).status_code, 200)
        self.assertEqual(self.state(y_id, y_ref),
            ('paid', 'paid', None, ['applied'], 1))
        with self.transaction():
            PaymentTransaction = Pool().get('isp.payment.transaction')
            receipts = {t.reference: t.provider_receipt
                for t in PaymentTransaction.search(
                    [('reference', 'in', [x_ref, y_ref])])}
        self.assertEqual(receipts[x_ref], receipt)
        self.assertNotIn(receipts[y_ref], {None, receipt})

    def test_webhook_nul_and_invalid_text(self):
        """NUL and lone surrogates in unsigned fields of a genuine payment
        (raw in a form body, escaped in JSON): stored as text the database
        takes, the payment recorded (on PostgreSQL too: scripts/test runs
        the module on both, PostgreSQL refuses NUL in text)"""
        bad = 'IDR\x00\ud800'
        for provider, alter in [
                ('midtrans', lambda p: {**p, 'payment_type': bad,
                        'currency': bad}),
                ('xendit', lambda p: {**p, 'description': bad,
                        'currency': bad}),
                ('duitku', lambda p: p),
                ('mpesa', lambda p: _stk_paid(p, receipt='R\x00\ud800X')),
                ]:
            with self.subTest(provider=provider):
                (invoice_id, reference), = self.open_payment(provider)
                self.fakes[provider].pay(reference)
                delivery, = self.deliveries(provider, reference)
                if provider == 'duitku':
                    body = delivery.body.replace(b'resultCode=00',
                        b'resultCode=00&productDetail=a\x00b&paymentCode=\x00')
                    response = self.replay(delivery, body=body)
                else:
                    response = self.replay_payload(delivery,
                        alter(copy.deepcopy(delivery.payload)))
                self.assertEqual(response.status_code, 200, response.data)
                self.assertEqual(self.state(invoice_id, reference),
                    ('paid', 'paid', None, ['applied'], 1))
                with self.transaction():
                    Notification = Pool().get('isp.payment.notification')
                    stored, = Notification.search(
                        [('transaction.reference', '=', reference)])
                    for value in [stored.body, stored.currency_code,
                            stored.provider_status,
                            stored.transaction.provider_receipt]:
                        self.assertNotIn('\x00', value or '')
                        self.assertNotIn('\ud800', value or '')

    def test_webhook_late_failure(self):
        """A failure or expiry arriving after the payment (out of order) is
        stored and changes nothing: no flag, answered 200 (M-Pesa too)"""
        for provider, event in [('midtrans', 'fail'), ('midtrans', 'expire'),
                ('xendit', 'expire'), ('duitku', 'fail'), ('mpesa', 'fail'),
                ('mpesa', 'expire')]:
            with self.subTest(provider=provider, event=event):
                (invoice_id, reference), = self.open_payment(provider)
                fake = self.fakes[provider]
                getattr(fake, event)(reference)
                late, = self.deliveries(provider, reference)
                fake.pay(reference)
                paid = self.deliveries(provider, reference)[-1]
                self.assertEqual(self.replay(paid).status_code, 200)
                response = self.replay(late)
                self.assertEqual(response.status_code, 200, response.data)
                self.assertEqual(self.state(invoice_id, reference),
                    ('paid', 'paid', None, ['applied', 'ignored'], 1))

    def test_notifications_stored_without_signature(self):
        "Stored notifications keep no signature (readers could replay it)"
        for provider, key in [('midtrans', 'signature_key'),
                ('duitku', 'signature')]:
            with self.subTest(provider=provider):
                (_, reference), = self.open_payment(provider)
                self.fakes[provider].pay(reference)
                delivery, = self.deliveries(provider, reference)
                self.assertEqual(self.replay(delivery).status_code, 200)
                with self.transaction():
                    Notification = Pool().get('isp.payment.notification')
                    bodies = [n.body for n in Notification.search(
                            [('transaction.reference', '=', reference)])]
                self.assertEqual(len(bodies), 1)
                for body in bodies:
                    self.assertNotIn(delivery.payload.get(key) or 'x', body)
                    self.assertIn(reference, body)

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

    def test_secrets_per_record(self):
        """Gateway accounts created together get their own callback secret,
        copies a new one; invoices created together (a billing batch) get
        their own payment link; every random default of the billing
        models is drawn per record"""
        from trytond.modules.isp_base.tests.inputs import (
            assert_secret_defaults,
        )
        with self.transaction() as transaction:
            pool = Pool()
            Gateway = pool.get('isp.payment.gateway')
            found = {(m.__name__, f)
                for m, f in assert_secret_defaults(self, pool)}
            self.assertLessEqual({
                    ('isp.payment.gateway', 'callback_secret'),
                    ('account.invoice', 'isp_pay_token')}, found)
            accounts = Gateway.create([{'name': 'M%d' % i,
                        'provider': 'mpesa'} for i in range(3)])
            copies = Gateway.copy(accounts)
            chosen, = Gateway.create([{'name': 'C', 'provider': 'mpesa',
                        'callback_secret': 'chosen-by-admin'}])
            secrets = [a.callback_secret for a in accounts + copies]
            self.assertTrue(all(secrets))
            self.assertEqual(len(set(secrets)), 6)
            self.assertEqual(chosen.callback_secret, 'chosen-by-admin')
            transaction.rollback()

        def invoices():
            Company = Pool().get('company.company')
            return [i.isp_pay_token for i in create_invoices(
                    Company(self.company), create_customer(), AMOUNT,
                    count=3)]
        tokens = set(self.locked(invoices, tables=SEQUENCES))
        self.assertEqual(len(tokens), 3)
        self.assertTrue(all(tokens))

    def test_adapter_masks_every_credential(self):
        """The adapter of an account masks the value of each of its
        credential fields (the model's explicit list) in errors and logs"""
        with self.transaction() as transaction:
            pool = Pool()
            Gateway = pool.get('isp.payment.gateway')
            for provider, _ in Gateway.provider.selection:
                values = {name: '%s-%s-value' % (provider, name)
                    for name in {*Gateway.CREDENTIAL_FIELDS,
                        *CREDENTIALS[provider]}}
                gateway, = Gateway.create([{'name': provider,
                            'provider': provider, **values}])
                with self.subTest(provider=provider):
                    self.assertEqual(
                        set(gateway.get_adapter().secrets),
                        {values[n] for n in Gateway.CREDENTIAL_FIELDS})
            transaction.rollback()

    def test_redact_url(self):
        "The M-Pesa callback token never reaches the database"
        self.assertEqual(
            redact_url('http://h/db/x?reference=IVAB&token=s3cret'),
            'http://h/db/x?reference=IVAB&token=***')


del RouteTestCase
