# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The payment gateway adapters against the fake gateways, over real HTTP on
loopback (no database)."""
import base64
import hashlib
import itertools
import json
import logging
import pathlib
import sys
import unittest
import urllib.parse
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.fake_gateways import (  # noqa: E402
    CallbackSink,
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)
from trytond.modules.isp_billing import gateways  # noqa: E402
from trytond.modules.isp_billing.gateways import (  # noqa: E402
    DuitkuAdapter,
    GatewayError,
    InvalidRequest,
    MidtransAdapter,
    MpesaAdapter,
    NotificationError,
    TransactionNotFound,
    XenditAdapter,
)

CUSTOMER = {'name': 'Budi Santoso', 'email': 'budi@example.id',
    'phone': '+6281234567890'}
_references = itertools.count(1)


def new_reference(prefix='INV'):
    return '%s-%05d' % (prefix, next(_references))


class GatewayCase(unittest.TestCase):
    "Start one fake and one callback receiver per class"
    fake_class = None
    fake_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.sink = CallbackSink().start()
        cls.fake = cls.fake_class(**cls.fake_kwargs).start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.sink.stop()

    def setUp(self):
        self.fake.reset()
        with self.sink.lock:
            self.sink.received.clear()
        self.sink.status = 200

    def last_callback(self):
        received = self.sink.wait(1)
        self.assertTrue(received, "no callback received")
        return received[-1]


class CommonTest(unittest.TestCase):
    "What every adapter shares"

    def test_missing_credentials(self):
        with self.assertRaises(InvalidRequest) as context:
            MidtransAdapter(None, {})
        self.assertIn('server_key', str(context.exception))

    def test_default_hosts(self):
        self.assertEqual(MidtransAdapter(None, {'server_key': 'k'}).base_url,
            'https://app.sandbox.midtrans.com')
        adapter = MidtransAdapter(None, {'server_key': 'k'}, sandbox=False)
        self.assertEqual(adapter.base_url, 'https://app.midtrans.com')
        self.assertEqual(adapter.api_base_url, 'https://api.midtrans.com')
        self.assertEqual(DuitkuAdapter(None, {'merchant_code': 'D',
                    'api_key': 'k'}, sandbox=False).base_url,
            'https://passport.duitku.com')

    def test_get_adapter(self):
        adapter = gateways.get_adapter('xendit', 'http://127.0.0.1:1',
            {'secret_key': 's', 'callback_token': 't'})
        self.assertIsInstance(adapter, XenditAdapter)
        with self.assertRaises(InvalidRequest):
            gateways.get_adapter('paypal')

    def test_whole_amounts_only(self):
        adapter = MidtransAdapter(None, {'server_key': 'k'})
        self.assertEqual(adapter.whole_amount(Decimal('250000.00'), 'IDR'),
            250000)
        for amount, currency in [
                (Decimal('1000.50'), 'IDR'), (1000.0, 'IDR'),
                (Decimal('-5'), 'IDR'), (Decimal(0), 'IDR'),
                (Decimal(1000), 'USD'), (None, 'IDR'),
                (Decimal('NaN'), 'IDR')]:
            with self.subTest(amount=amount, currency=currency), \
                    self.assertRaises(InvalidRequest):
                adapter.whole_amount(amount, currency)

    def test_unreachable(self):
        with CallbackSink() as sink:
            url = sink.url
        adapter = XenditAdapter(url, {'secret_key': 's',
                'callback_token': 't'}, timeout=2)
        with self.assertRaises(GatewayError) as context:
            adapter.query_status('INV-1')
        self.assertIn('cannot reach', context.exception.message)

    def test_timeout(self):
        with FakeXendit() as fake:
            fake.api_delay = 0.5
            adapter = XenditAdapter(fake.url, {
                    'secret_key': fake.secret_key,
                    'callback_token': fake.callback_token}, timeout=0.1)
            with self.assertRaises(GatewayError) as context:
                adapter.query_status('INV-1')
            self.assertIn('no answer', context.exception.message)
            fake.api_delay = 0

    def test_hostile_bodies(self):
        """Nested deeper than the stack, non-ASCII signatures and tokens,
        numbers beyond any payment: refused as malformed or not genuine,
        never an exception of another kind"""
        deep = b'[' * 100_000 + b']' * 100_000
        nested = b'{"order_id": "X", "x": ' + deep + b'}'
        adapters = [
            MidtransAdapter(None, {'server_key': 'k\u00e9'}),
            XenditAdapter(None, {'secret_key': 's',
                    'callback_token': '\u00e9t'}),
            DuitkuAdapter(None, {'merchant_code': 'D', 'api_key': 'k'}),
            MpesaAdapter(None, {'consumer_key': 'c', 'consumer_secret': 's',
                    'shortcode': '1', 'passkey': 'p',
                    'callback_secret': '\u00e9'}),
            ]
        for adapter in adapters:
            for body in [deep, nested, b'{"Body": {"stkCallback": '
                    + deep + b'}}']:
                with self.subTest(adapter=adapter.provider, body=body[:30]):
                    self.assertFalse(adapter.verify_notification(
                            {'x-callback-token': '\u00e8\u00e9'}, body,
                            url='/x?reference=IV1&token=%C3%A9'))
                    with self.assertRaises(NotificationError):
                        adapter.parse_notification({}, body)
        signed = {'order_id': 'IV1', 'status_code': '200',
            'gross_amount': '1.00', 'signature_key': '\u00e9\u00e8',
            'transaction_status': ['settlement'], 'fraud_status': {}}
        self.assertFalse(adapters[0].verify_notification({},
                json.dumps(signed)))
        for amount in ['1e999999', '1e-999999', '9' * 40, 'Infinity',
                '0.0000001', True]:
            with self.subTest(amount=amount), \
                    self.assertRaises(NotificationError):
                adapters[0].parse_notification({}, json.dumps({
                            'order_id': 'IV1', 'gross_amount': amount,
                            'transaction_status': 'settlement'}))

    def test_errors_without_credentials(self):
        """A provider's error that echoes a credential, whole or its start,
        raises and logs without it"""
        key = 'SB-Mid-server-3cho3dKey'

        class Echoing(FakeMidtrans):
            def fault_body(self, status):
                return {'status_code': str(status), 'status_message':
                    'Unknown key %s (%s...)' % (key, key[:8])}

        from trytond.modules.isp_billing.gateway import ask_status
        with Echoing(server_key=key) as fake, self.assertLogs(
                'trytond.modules.isp_billing', 'DEBUG') as logs:
            adapter = MidtransAdapter(fake.url, {'server_key': key},
                secrets=[key])
            fake.fail_api(1, status=401)
            with self.assertRaises(GatewayError) as context:
                adapter.query_status('IV1')
            fake.fail_api(1, status=401)
            self.assertIsNone(ask_status(adapter, 'IV1'))
        text = str(context.exception) + '\n'.join(logs.output)
        self.assertIn('Unknown key', text)
        self.assertIn('status query failed', text)
        for part in [key, key[:8], key[:6]]:
            self.assertNotIn(part, text)

    def test_answers(self):
        self.assertEqual(MidtransAdapter(None, {'server_key': 'k'}).answer(
                ).status, 200)
        answer = DuitkuAdapter(None, {'merchant_code': 'D', 'api_key': 'k'}
            ).answer(200)
        self.assertEqual((answer.status, answer.body), (200, b'SUCCESS'))
        answer = XenditAdapter(None, {'secret_key': 's',
                'callback_token': 't'}).answer(403, 'bad token')
        self.assertEqual(answer.status, 403)
        self.assertEqual(json.loads(answer.body)['message'], 'bad token')


class MidtransTest(GatewayCase):
    fake_class = FakeMidtrans
    fake_kwargs = {'server_key': 'SB-Mid-server-TEST'}

    def setUp(self):
        super().setUp()
        self.adapter = MidtransAdapter(self.fake.url,
            {'server_key': 'SB-Mid-server-TEST'}, timeout=5)

    def create(self, amount=Decimal('250000'), reference=None):
        reference = reference or new_reference()
        request = self.adapter.create_payment(reference, amount, 'IDR',
            CUSTOMER, self.sink.url + '/midtrans', 'https://isp.example/done',
            description="Internet 20 Mbps")
        return reference, request

    def test_create(self):
        reference, request = self.create()
        self.assertTrue(request.token)
        self.assertEqual(request.redirect_url,
            '%s/snap/v4/redirection/%s' % (self.fake.url, request.token))
        sent = [r for r in self.fake.requests
            if r.path == '/snap/v1/transactions'][-1]
        self.assertEqual(sent.headers['authorization'], 'Basic '
            + base64.b64encode(b'SB-Mid-server-TEST:').decode())
        self.assertEqual(sent.headers['x-override-notification'],
            self.sink.url + '/midtrans')
        body = sent.json()
        self.assertEqual(body['transaction_details'], {
                'order_id': reference, 'gross_amount': 250000})
        self.assertEqual(body['customer_details']['first_name'], 'Budi')
        self.assertEqual(body['callbacks']['finish'],
            'https://isp.example/done')

    def test_create_refused(self):
        adapter = MidtransAdapter(self.fake.url, {'server_key': 'wrong-key'})
        with self.assertLogs(gateways.logger, logging.DEBUG) as logs, \
                self.assertRaises(GatewayError) as context:
            adapter.create_payment(new_reference(), Decimal(1000), 'IDR',
                CUSTOMER, None, None)
        self.assertEqual(context.exception.status, 401)
        self.assertIn('Access denied', context.exception.message)
        self.assertNotIn('wrong-key', str(context.exception))
        self.assertNotIn('wrong-key', '\n'.join(logs.output))

    def test_duplicate_order_id(self):
        reference, _ = self.create()
        with self.assertRaises(GatewayError) as context:
            self.create(reference=reference)
        self.assertIn('already been taken', context.exception.message)
        self.fake.expire(reference)
        self.create(reference=reference)    # an expired order_id is reusable

    def test_status(self):
        reference, _ = self.create()
        with self.assertRaises(TransactionNotFound):
            self.adapter.query_status(reference)
        self.fake.notify(reference)         # the buyer chose bank transfer
        self.assertEqual(self.adapter.query_status(reference).state,
            'pending')
        self.fake.pay(reference)
        status = self.adapter.query_status(reference)
        self.assertEqual((status.state, status.amount, status.currency),
            ('paid', Decimal(250000), 'IDR'))
        self.assertEqual(status.raw['gross_amount'], '250000.00')

    def test_status_expired(self):
        reference, _ = self.create()
        self.fake.expire(reference)
        status = self.adapter.query_status(reference)
        self.assertEqual((status.state, status.raw['status_code']),
            ('expired', '407'))

    def test_status_server_error(self):
        reference, _ = self.create()
        self.fake.fail_api(1, status=500)
        with self.assertRaises(GatewayError) as context:
            self.adapter.query_status(reference)
        self.assertEqual(context.exception.status, 500)
        self.assertIn('recovering', context.exception.message)

    def test_notification_signature(self):
        reference, _ = self.create()
        self.fake.pay(reference)
        callback = self.last_callback()
        self.assertTrue(self.adapter.verify_notification(
                callback.headers, callback.body))
        data = json.loads(callback.body)
        data['gross_amount'] = '1000.00'
        self.assertFalse(self.adapter.verify_notification(
                callback.headers, json.dumps(data).encode()))
        other = MidtransAdapter(self.fake.url, {'server_key': 'other'})
        self.assertFalse(other.verify_notification(callback.headers,
                callback.body))
        self.assertFalse(self.adapter.verify_notification({}, b'not json'))
        self.assertFalse(self.adapter.verify_notification({}, b'{}'))

    def test_notification_forged(self):
        reference, _ = self.create()
        self.fake.pay(reference, wait=True)
        self.sink.received.clear()
        self.fake.notify(reference, bad_signature=True)
        callback = self.last_callback()
        self.assertFalse(self.adapter.verify_notification(
                callback.headers, callback.body))

    def test_parse_states(self):
        for event, state, code in [
                ('notify', 'pending', '201'), ('pay', 'paid', '200'),
                ('fail', 'failed', '202'), ('expire', 'expired', '202')]:
            with self.subTest(event=event):
                self.sink.received.clear()
                reference, _ = self.create()
                getattr(self.fake, event)(reference)
                callback = self.last_callback()
                self.assertTrue(self.adapter.verify_notification(
                        callback.headers, callback.body))
                notification = self.adapter.parse_notification(
                    callback.headers, callback.body)
                self.assertEqual(notification.reference, reference)
                self.assertEqual(notification.state, state)
                self.assertEqual(notification.raw['status_code'], code)
                self.assertEqual(notification.amount, Decimal('250000'))
                self.assertEqual(notification.currency, 'IDR')
                self.assertTrue(notification.provider_id)

    def test_status_code_bound_to_status(self):
        """transaction_status and fraud_status are not signed: a genuine
        notification whose status no longer matches its signed status_code
        is not genuine"""
        for event, altered in [
                ('notify', {'transaction_status': 'settlement'}),
                ('notify', {'transaction_status': 'capture'}),
                ('expire', {'transaction_status': 'settlement'}),
                ('expire', {'transaction_status': 'pending'}),
                ('fail', {'fraud_status': 'accept',
                        'transaction_status': 'capture'}),
                ('pay', {'transaction_status': 'expire'}),
                ('pay', {'fraud_status': 'challenge',
                        'transaction_status': 'capture'}),
                ('pay', {'transaction_status': 'teleported'}),
                ]:
            with self.subTest(event=event, altered=altered):
                self.sink.received.clear()
                reference, _ = self.create()
                getattr(self.fake, event)(reference)
                data = json.loads(self.last_callback().body)
                self.assertTrue(self.adapter.verify_notification({},
                        json.dumps(data)))
                data.update(altered)
                self.assertFalse(self.adapter.verify_notification({},
                        json.dumps(data)))

    def test_state_mapping(self):
        state = MidtransAdapter.state
        self.assertEqual(state('capture', 'accept'), 'paid')
        self.assertEqual(state('capture', 'challenge'), 'pending')
        self.assertEqual(state('capture', 'deny'), 'failed')
        self.assertEqual(state('settlement'), 'paid')
        self.assertEqual(state('authorize'), 'pending')
        for status in ['deny', 'cancel', 'failure', 'refund',
                'partial_refund', 'chargeback']:
            self.assertEqual(state(status), 'failed')

    def test_paid_amount_differs(self):
        reference, _ = self.create()
        self.fake.pay(reference, amount=Decimal('200000'))
        callback = self.last_callback()
        # genuine, but for another amount: the caller must refuse it
        self.assertTrue(self.adapter.verify_notification(
                callback.headers, callback.body))
        notification = self.adapter.parse_notification(callback.headers,
            callback.body)
        self.assertEqual(notification.raw['gross_amount'], '200000.00')
        self.assertEqual(notification.amount, Decimal('200000'))

    def test_parse_malformed(self):
        for body in [b'', b'[]', b'{"order_id": "X"}', b'\xff']:
            with self.subTest(body=body), \
                    self.assertRaises(NotificationError):
                self.adapter.parse_notification({}, body)


class XenditTest(GatewayCase):
    fake_class = FakeXendit
    fake_kwargs = {'secret_key': 'xnd_development_TEST',
        'callback_token': 'cb-token-TEST'}

    def setUp(self):
        super().setUp()
        self.adapter = XenditAdapter(self.fake.url, {
                'secret_key': 'xnd_development_TEST',
                'callback_token': 'cb-token-TEST'}, timeout=5)
        self.adapter.set_callback_url(self.sink.url + '/xendit')

    def create(self, amount=Decimal('150000')):
        reference = new_reference()
        return reference, self.adapter.create_payment(reference, amount,
            'IDR', CUSTOMER, None, 'https://isp.example/done',
            description="Invoice", expiry_minutes=60)

    def test_create(self):
        reference, request = self.create()
        self.assertTrue(request.provider_id)
        self.assertEqual(request.redirect_url,
            '%s/web/%s' % (self.fake.url, request.provider_id))
        sent = [r for r in self.fake.requests
            if r.path == '/v2/invoices'][-1]
        self.assertEqual(sent.basic_auth(), ('xnd_development_TEST', ''))
        body = sent.json()
        self.assertEqual((body['external_id'], body['amount'],
                body['currency'], body['payer_email'],
                body['invoice_duration']),
            (reference, 150000, 'IDR', 'budi@example.id', 3600))
        self.assertEqual(body['customer']['given_names'], 'Budi')
        self.assertEqual(self.fake.callback_url, self.sink.url + '/xendit')

    def test_create_refused(self):
        adapter = XenditAdapter(self.fake.url, {'secret_key': 'bad-key',
                'callback_token': 'x'})
        with self.assertRaises(GatewayError) as context:
            adapter.create_payment(new_reference(), Decimal(1000), 'IDR',
                {}, None, None)
        self.assertEqual((context.exception.status, context.exception.code),
            (401, 'INVALID_API_KEY'))
        self.assertNotIn('bad-key', str(context.exception))

    def test_status(self):
        reference, request = self.create()
        by_id = self.adapter.query_status(reference, request.provider_id)
        self.assertEqual((by_id.state, by_id.amount), ('pending',
                Decimal(150000)))
        self.fake.pay(reference)
        by_reference = self.adapter.query_status(reference)
        self.assertEqual((by_reference.state, by_reference.provider_id),
            ('paid', request.provider_id))
        with self.assertRaises(TransactionNotFound):
            self.adapter.query_status('x', 'ffffffffffffffffffffffff')
        with self.assertRaises(TransactionNotFound):
            self.adapter.query_status('UNKNOWN-REF')

    def test_callback_token(self):
        reference, _ = self.create()
        self.fake.pay(reference)
        callback = self.last_callback()
        self.assertEqual(callback.path, '/xendit')
        self.assertTrue(self.adapter.verify_notification(callback.headers,
                callback.body))
        upper = {k.upper(): v for k, v in callback.headers.items()}
        self.assertTrue(self.adapter.verify_notification(upper,
                callback.body))
        self.assertFalse(self.adapter.verify_notification({},
                callback.body))
        self.assertFalse(self.adapter.verify_notification(
                {'x-callback-token': 'cb-token-TESTX'}, callback.body))
        self.sink.received.clear()
        self.fake.notify(reference, bad_signature=True)
        forged = self.last_callback()
        self.assertFalse(self.adapter.verify_notification(forged.headers,
                forged.body))

    def test_parse_states(self):
        reference, request = self.create()
        self.fake.pay(reference)
        paid = self.adapter.parse_notification({},
            self.last_callback().body)
        self.assertEqual((paid.reference, paid.state, paid.amount,
                paid.currency, paid.provider_id),
            (reference, 'paid', Decimal(150000), 'IDR', request.provider_id))
        self.sink.received.clear()
        reference, _ = self.create()
        self.fake.expire(reference)
        expired = self.adapter.parse_notification({},
            self.last_callback().body)
        self.assertEqual((expired.reference, expired.state),
            (reference, 'expired'))
        base = json.loads(self.sink.received[-1].body)
        for status, state in [('SETTLED', 'paid'), ('PENDING', 'pending'),
                ('PAID', 'paid')]:
            body = dict(base, status=status, paid_amount=140000)
            notification = self.adapter.parse_notification({},
                json.dumps(body).encode())
            self.assertEqual(notification.state, state)
            self.assertEqual(notification.amount, Decimal(
                    140000 if state == 'paid' else 150000))

    def test_pending_has_no_callback(self):
        reference, _ = self.create()
        self.assertEqual(self.fake.notify(reference), [])


class DuitkuTest(GatewayCase):
    fake_class = FakeDuitku
    fake_kwargs = {'merchant_code': 'DS12345', 'api_key': 'duitku-key-TEST'}

    def setUp(self):
        super().setUp()
        self.adapter = DuitkuAdapter(self.fake.url, {
                'merchant_code': 'DS12345', 'api_key': 'duitku-key-TEST',
                'payment_method': 'BC'}, timeout=5)

    def create(self, amount=Decimal('175000')):
        reference = new_reference()
        return reference, self.adapter.create_payment(reference, amount,
            'IDR', CUSTOMER, self.sink.url + '/duitku',
            'https://isp.example/done', description="Internet")

    def test_create(self):
        reference, request = self.create()
        self.assertTrue(request.provider_id.startswith('DS12345'))
        self.assertEqual(request.redirect_url, '%s/topup/topupdirectv2.aspx'
            '?ref=%s' % (self.fake.url, request.provider_id))
        body = [r for r in self.fake.requests
            if r.path.endswith('/v2/inquiry')][-1].json()
        self.assertEqual(body['signature'], hashlib.md5(
                ('DS12345%s175000duitku-key-TEST' % reference).encode()
                ).hexdigest())
        self.assertEqual((body['paymentAmount'], body['paymentMethod'],
                body['callbackUrl'], body['customerVaName']),
            (175000, 'BC', self.sink.url + '/duitku', 'Budi Santoso'))

    def test_create_refused(self):
        adapter = DuitkuAdapter(self.fake.url, {'merchant_code': 'DS12345',
                'api_key': 'wrong-key'})
        with self.assertRaises(GatewayError) as context:
            adapter.create_payment(new_reference(), Decimal(10000), 'IDR',
                CUSTOMER, 'http://127.0.0.1:1/cb', 'http://127.0.0.1:1/')
        self.assertEqual(context.exception.status, 401)
        self.assertEqual(context.exception.message, 'Wrong signature')
        self.assertNotIn('wrong-key', str(context.exception))
        adapter = DuitkuAdapter(self.fake.url, {'merchant_code': 'DS99999',
                'api_key': 'duitku-key-TEST'})
        with self.assertRaises(GatewayError) as context:
            adapter.query_status('X')
        self.assertEqual((context.exception.status,
                context.exception.message), (404, 'Merchant not found'))

    def test_status(self):
        for event, state, code in [(None, 'pending', '01'),
                ('pay', 'paid', '00'), ('fail', 'failed', '02'),
                ('expire', 'expired', '02')]:
            with self.subTest(event=event):
                reference, request = self.create()
                if event:
                    getattr(self.fake, event)(reference)
                status = self.adapter.query_status(reference)
                self.assertEqual((status.state, status.provider_status,
                        status.amount, status.provider_id),
                    (state, code, Decimal(175000), request.provider_id))
        with self.assertRaises(TransactionNotFound):
            self.adapter.query_status('UNKNOWN-REF')

    def test_callback_signature(self):
        reference, _ = self.create()
        self.fake.pay(reference)
        callback = self.last_callback()
        self.assertEqual(callback.headers['content-type'],
            'application/x-www-form-urlencoded')
        self.assertTrue(self.adapter.verify_notification(callback.headers,
                callback.body))
        form = callback.form()
        for key, value in [('amount', '1000'), ('merchantOrderId', 'X'),
                ('merchantCode', 'DS99999'), ('signature', '0' * 32)]:
            with self.subTest(key=key):
                tampered = urllib.parse.urlencode(dict(form, **{key: value}))
                self.assertFalse(self.adapter.verify_notification({},
                        tampered.encode()))
        self.assertFalse(self.adapter.verify_notification({}, b''))
        self.sink.received.clear()
        self.fake.notify(reference, bad_signature=True)
        forged = self.last_callback()
        self.assertFalse(self.adapter.verify_notification(forged.headers,
                forged.body))

    def test_parse_states(self):
        for event, state, code in [('pay', 'paid', '00'),
                ('fail', 'failed', '01'), ('expire', 'failed', '01')]:
            with self.subTest(event=event):
                self.sink.received.clear()
                reference, request = self.create()
                getattr(self.fake, event)(reference)
                callback = self.last_callback()
                self.assertTrue(self.adapter.verify_notification(
                        callback.headers, callback.body))
                notification = self.adapter.parse_notification(
                    callback.headers, callback.body)
                self.assertEqual((notification.reference, notification.state,
                        notification.provider_status, notification.amount,
                        notification.currency, notification.provider_id),
                    (reference, state, code, Decimal(175000), 'IDR',
                        request.provider_id))
        with self.assertRaises(NotificationError):
            self.adapter.parse_notification({}, b'resultCode=00')


class MpesaTest(GatewayCase):
    fake_class = FakeMpesa
    fake_kwargs = {'consumer_key': 'ck-TEST', 'consumer_secret': 'cs-TEST',
        'shortcode': '600123', 'passkey': 'passkey-TEST'}
    credentials = {'consumer_key': 'ck-TEST', 'consumer_secret': 'cs-TEST',
        'shortcode': '600123', 'passkey': 'passkey-TEST',
        'callback_secret': 'callback-secret-TEST'}

    def setUp(self):
        super().setUp()
        self.adapter = MpesaAdapter(self.fake.url, self.credentials,
            timeout=5)
        self.adapter.forget_token()

    def create(self, amount=Decimal('1500'), phone='0712345678'):
        reference = new_reference('EV')
        return reference, self.adapter.create_payment(reference, amount,
            'KES', {'phone': phone}, self.sink.url + '/mpesa?tenant=1', None,
            description="Internet")

    def test_stk_push(self):
        reference, request = self.create()
        self.assertTrue(request.provider_id.startswith('ws_CO_'))
        self.assertIsNone(request.redirect_url)
        sent = [r for r in self.fake.requests
            if r.path == '/mpesa/stkpush/v1/processrequest'][-1]
        self.assertTrue(sent.headers['authorization'].startswith('Bearer '))
        body = sent.json()
        self.assertRegex(body['Timestamp'], r'^\d{14}$')
        self.assertEqual(base64.b64decode(body['Password']).decode(),
            '600123passkey-TEST' + body['Timestamp'])
        self.assertEqual((body['BusinessShortCode'], body['TransactionType'],
                body['Amount'], body['PartyA'], body['PartyB'],
                body['PhoneNumber'], body['AccountReference'],
                body['TransactionDesc']),
            ('600123', 'CustomerPayBillOnline', 1500, '254712345678',
                '600123', '254712345678', reference, 'Internet'))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                    body['CallBackURL']).query))
        self.assertEqual(query['tenant'], '1')
        self.assertEqual(query['reference'], reference)
        self.assertEqual(query['token'], self.adapter.callback_token(
                reference))
        self.assertNotIn('callback-secret-TEST', body['CallBackURL'])

    def test_long_reference(self):
        reference = 'INV/2024/%06d' % next(_references)
        request = self.adapter.create_payment(reference, Decimal(700), 'KES',
            {'phone': '0712345678'}, self.sink.url + '/mpesa', None)
        sent = [r for r in self.fake.requests
            if r.path == '/mpesa/stkpush/v1/processrequest'][-1].json()
        self.assertEqual(sent['AccountReference'], reference[:12])
        self.fake.pay(reference)
        callback = self.last_callback()
        self.assertTrue(self.adapter.verify_notification(callback.headers,
                callback.body, url=callback.path))
        notification = self.adapter.parse_notification(callback.headers,
            callback.body, url=callback.path)
        self.assertEqual((notification.reference, notification.provider_id),
            (reference, request.provider_id))

    def test_token_cached(self):
        self.create()
        self.create()
        other = MpesaAdapter(self.fake.url, self.credentials)
        other.create_payment(new_reference(), Decimal(10), 'KES',
            {'phone': '254112345678'}, self.sink.url, None)
        self.assertEqual(self.fake.tokens_issued, 1)
        oauth = [r for r in self.fake.requests
            if r.path == '/oauth/v1/generate']
        self.assertEqual(oauth[0].basic_auth(), ('ck-TEST', 'cs-TEST'))
        self.assertEqual(oauth[0].query['grant_type'], 'client_credentials')

    def test_token_renewed(self):
        self.create()
        # Daraja forgot the token (expired early): renewed once, then sent
        self.fake.expire_tokens()
        self.create()
        self.assertEqual(self.fake.tokens_issued, 2)
        # near its expiry, the cached token is renewed before use
        key = self.adapter._token_key
        token, _ = gateways._TOKENS[key]
        gateways._TOKENS[key] = (token,
            gateways.time.monotonic() + self.adapter.token_margin - 1)
        self.create()
        self.assertEqual(self.fake.tokens_issued, 3)

    def test_oauth_refused(self):
        adapter = MpesaAdapter(self.fake.url, dict(self.credentials,
                consumer_secret='wrong-secret'))
        with self.assertRaises(GatewayError) as context:
            adapter.access_token()
        self.assertEqual((context.exception.status, context.exception.code),
            (400, '400.008.01'))
        self.assertNotIn('wrong-secret', str(context.exception))

    def test_stk_refused(self):
        adapter = MpesaAdapter(self.fake.url, dict(self.credentials,
                passkey='wrong'))
        with self.assertRaises(GatewayError) as context:
            adapter.create_payment(new_reference(), Decimal(10), 'KES',
                {'phone': '0712345678'}, self.sink.url, None)
        self.assertEqual((context.exception.status, context.exception.code,
                context.exception.message),
            (500, '500.001.1001', 'Wrong credentials'))
        count = len(self.fake.requests)
        for customer, amount in [({}, Decimal(10)),
                ({'phone': '0812345678'}, Decimal(10)),
                ({'phone': '0712345678'}, Decimal('10.5'))]:
            with self.subTest(customer=customer, amount=amount), \
                    self.assertRaises(InvalidRequest):
                self.adapter.create_payment(new_reference(), amount, 'KES',
                    customer, self.sink.url, None)
        self.assertEqual(len(self.fake.requests), count)   # nothing sent

    def test_status(self):
        reference, request = self.create()
        status = self.adapter.query_status(reference, request.provider_id)
        self.assertEqual((status.state, status.amount), ('pending', None))
        for event, state, code in [('pay', 'paid', '0'),
                ('fail', 'failed', '1032'), ('expire', 'expired', '1037')]:
            with self.subTest(event=event):
                reference, request = self.create()
                getattr(self.fake, event)(reference)
                status = self.adapter.query_status(reference,
                    request.provider_id)
                self.assertEqual((status.state, status.provider_status,
                        status.provider_id),
                    (state, code, request.provider_id))
        with self.assertRaises(InvalidRequest):
            self.adapter.query_status(reference)
        with self.assertRaises(GatewayError) as context:
            self.adapter.query_status(reference, 'ws_CO_unknown')
        self.assertEqual(context.exception.status, 400)

    def test_callback_verified(self):
        reference, request = self.create()
        self.fake.pay(reference)
        callback = self.last_callback()
        self.assertTrue(self.adapter.verify_notification(callback.headers,
                callback.body, url=callback.path))
        self.assertTrue(self.adapter.verify_notification(callback.headers,
                callback.body, url=self.sink.url + callback.path))
        self.assertFalse(self.adapter.verify_notification(callback.headers,
                callback.body))
        notification = self.adapter.parse_notification(callback.headers,
            callback.body, url=callback.path)
        self.assertEqual((notification.reference, notification.state,
                notification.amount, notification.currency,
                notification.provider_id),
            (reference, 'paid', Decimal(1500), 'KES', request.provider_id))
        metadata = {i['Name']: i.get('Value') for i in notification.raw[
                'Body']['stkCallback']['CallbackMetadata']['Item']}
        self.assertEqual(metadata['PhoneNumber'], 254712345678)

    def test_callback_forged(self):
        reference, _ = self.create()
        self.fake.pay(reference)
        self.sink.received.clear()
        # a callback without the URL's secret
        self.fake.notify(reference, bad_signature=True)
        forged = self.last_callback()
        self.assertFalse(self.adapter.verify_notification(forged.headers,
                forged.body, url=forged.path))
        # the genuine URL of another reference
        other, _ = self.create()
        self.sink.received.clear()
        self.fake.notify(reference)
        genuine = self.last_callback()
        self.assertFalse(self.adapter.verify_notification(genuine.headers,
                genuine.body, url=genuine.path.replace(reference, other)))

    def test_callback_failed_and_expired(self):
        for event, state, code in [('fail', 'failed', '1032'),
                ('expire', 'expired', '1037')]:
            with self.subTest(event=event):
                self.sink.received.clear()
                reference, _ = self.create()
                getattr(self.fake, event)(reference)
                callback = self.last_callback()
                self.assertTrue(self.adapter.verify_notification(
                        callback.headers, callback.body, url=callback.path))
                notification = self.adapter.parse_notification(
                    callback.headers, callback.body, url=callback.path)
                self.assertEqual((notification.state,
                        notification.provider_status, notification.amount),
                    (state, code, None))

    def test_verify_is_authentication_only(self):
        """The URL token says who sent the callback, nothing about the body:
        verifying asks Daraja nothing (the Tryton side binds the body to
        the payment and confirms its outcome with a status query)"""
        reference, request = self.create()
        self.fake.pay(reference)
        callback = self.last_callback()
        self.fake.fail_api(None, status=503)
        try:
            self.assertTrue(self.adapter.verify_notification(
                    callback.headers, callback.body, url=callback.path))
        finally:
            self.fake.clear_faults()
        notification = self.adapter.parse_notification(callback.headers,
            callback.body, url=callback.path)
        self.assertEqual(notification.provider_id, request.provider_id)
        self.assertEqual(len(notification.receipt), 10)
        failed = json.loads(callback.body)
        failed['Body']['stkCallback'].update(ResultCode=1032)
        notification = self.adapter.parse_notification(callback.headers,
            json.dumps(failed), url=callback.path)
        self.assertEqual((notification.state, notification.receipt),
            ('failed', ''))

    def test_parse_malformed(self):
        for body in [b'{}', b'{"Body": {"stkCallback": {}}}', b'nope']:
            with self.subTest(body=body), \
                    self.assertRaises(NotificationError):
                self.adapter.parse_notification({}, body)

    def test_answer(self):
        answer = self.adapter.answer(200)
        self.assertEqual(json.loads(answer.body),
            {'ResultCode': 0, 'ResultDesc': 'Accepted'})
        self.assertEqual(self.adapter.answer(403).status, 403)

    def test_msisdn(self):
        for phone, expected in [('0712345678', '254712345678'),
                ('+254 712 345 678', '254712345678'),
                ('712345678', '254712345678'), ('0112345678', '254112345678'),
                ('254812345678', None), ('12345', None), (None, None)]:
            self.assertEqual(gateways.normalize_msisdn(phone), expected)
