# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tests of tools/fake_gateways.py on its own: the providers' documented
requests, answers and callbacks, checked without the adapters."""
import base64
import hashlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse
from decimal import Decimal

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import fake_gateways  # noqa: E402
from tools.fake_gateways import (  # noqa: E402
    CallbackSink,
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)

KEY = 'SB-Mid-server-T'


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def session():
    result = requests.Session()
    result.trust_env = False
    return result


class FakeCase(unittest.TestCase):

    def setUp(self):
        self.http = session()
        self.sink = CallbackSink().start()
        self.addCleanup(self.sink.stop)
        self.addCleanup(self.http.close)

    def start(self, fake):
        fake.start()
        self.addCleanup(fake.stop)
        return fake

    def snap(self, fake, order_id='INV-1', amount=250000, headers=None,
            key=KEY, **extra):
        body = {'transaction_details': {'order_id': order_id,
                'gross_amount': amount}}
        body.update(extra)
        if headers is None:
            headers = {'X-Override-Notification': self.sink.url + '/mt'}
        return self.http.post(fake.url + '/snap/v1/transactions', json=body,
            auth=(key, ''), headers=headers)


class MidtransTest(FakeCase):

    def setUp(self):
        super().setUp()
        self.fake = self.start(FakeMidtrans(server_key=KEY))

    def test_snap_validation(self):
        answer = self.snap(self.fake, key='wrong')
        self.assertEqual(answer.status_code, 401)
        self.assertIn('Access denied', answer.json()['error_messages'][0])
        answer = self.http.post(self.fake.url + '/snap/v1/transactions',
            json={'transaction_details': {}}, auth=(KEY, ''))
        self.assertEqual(answer.status_code, 400)
        self.assertEqual(answer.json()['error_messages'], [
                'transaction_details.order_id is required',
                'transaction_details.gross_amount is required'])
        answer = self.snap(self.fake, amount=1000.5)
        self.assertEqual(answer.status_code, 400)
        answer = self.snap(self.fake, item_details=[
                {'id': 'a', 'price': 1000, 'quantity': 2, 'name': 'x'}])
        self.assertIn('sum of item_details',
            answer.json()['error_messages'][0])
        answer = self.snap(self.fake)
        self.assertEqual(answer.status_code, 201)
        self.assertEqual(set(answer.json()), {'token', 'redirect_url'})
        self.assertEqual(self.snap(self.fake).status_code, 400)

    def test_notification_format(self):
        self.snap(self.fake)
        [delivery] = self.fake.pay('INV-1')
        self.assertEqual(delivery.status, 200)
        [received] = self.sink.wait(1)
        self.assertEqual(received.path, '/mt')
        self.assertEqual(received.headers['content-type'],
            'application/json')
        data = json.loads(received.body)
        self.assertEqual((data['order_id'], data['status_code'],
                data['transaction_status'], data['gross_amount'],
                data['fraud_status'], data['currency']),
            ('INV-1', '200', 'settlement', '250000.00', 'accept', 'IDR'))
        expected = hashlib.sha512(('INV-1' + '200' + '250000.00' + KEY
                ).encode()).hexdigest()
        self.assertEqual(data['signature_key'], expected)
        self.assertRegex(data['transaction_time'],
            r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$')

    def test_status_api(self):
        self.snap(self.fake)
        url = self.fake.url + '/v2/INV-1/status'
        answer = self.http.get(url, auth=(KEY, ''))
        self.assertEqual(answer.status_code, 404)
        self.assertEqual(answer.json()['status_code'], '404')
        self.fake.expire('INV-1')
        answer = self.http.get(url, auth=(KEY, '')).json()
        self.assertEqual((answer['status_code'], answer['transaction_status']),
            ('407', 'expire'))
        self.assertEqual(self.sink.wait(1)[0].payload['status_code'], '202')
        self.assertEqual(self.http.get(url, auth=('x', '')).status_code, 401)

    def test_notification_urls(self):
        self.fake.notification_url = self.sink.url + '/dashboard'
        self.snap(self.fake, 'A', headers={})
        self.snap(self.fake, 'B', headers={
                'X-Append-Notification': self.sink.url + '/extra'})
        self.snap(self.fake, 'C', headers={'X-Override-Notification': ','.join(
                    self.sink.url + '/o%d' % i for i in range(4))})
        for reference in 'ABC':
            self.fake.pay(reference)
        paths = [r.path for r in self.sink.wait(6)]
        self.assertEqual(paths, ['/dashboard', '/dashboard', '/extra',
                '/o0', '/o1', '/o2'])

    def test_pay_page(self):
        answer = self.snap(self.fake, callbacks={
                'finish': 'https://isp.example/done?x=1'}).json()
        page = self.http.get(answer['redirect_url'])
        self.assertEqual(page.status_code, 200)
        self.assertIn('text/html', page.headers['Content-Type'])
        self.assertIn('value="pay"', page.text)
        self.assertIn('250,000', page.text)
        done = self.http.post(answer['redirect_url'], data={'action': 'pay'},
            allow_redirects=False)
        self.assertEqual(done.status_code, 303)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                    done.headers['Location']).query))
        self.assertEqual(query, {'x': '1', 'order_id': 'INV-1',
                'status_code': '200', 'transaction_status': 'settlement'})
        self.assertEqual(self.sink.wait(1)[0].payload['transaction_status'],
            'settlement')
        self.assertEqual(self.fake.find('INV-1').state, 'paid')
        self.assertNotIn('value="pay"',
            self.http.get(answer['redirect_url']).text)


class XenditTest(FakeCase):

    def setUp(self):
        super().setUp()
        self.fake = self.start(FakeXendit(secret_key='xnd_T',
                callback_token='cbt'))
        self.auth = ('xnd_T', '')

    def invoice(self, external_id='INV-1', amount=100000):
        return self.http.post(self.fake.url + '/v2/invoices', json={
                'external_id': external_id, 'amount': amount,
                'payer_email': 'a@b.id', 'description': 'Internet',
                'success_redirect_url': 'https://isp.example/ok'},
            auth=self.auth)

    def test_api(self):
        self.assertEqual(self.http.post(self.fake.url + '/v2/invoices',
                json={}, auth=('bad', '')).json()['error_code'],
            'INVALID_API_KEY')
        answer = self.http.post(self.fake.url + '/v2/invoices',
            json={'amount': 1000}, auth=self.auth)
        self.assertEqual((answer.status_code, answer.json()['error_code']),
            (400, 'API_VALIDATION_ERROR'))
        invoice = self.invoice(amount=1000.75).json()
        self.assertEqual((invoice['status'], invoice['amount'],
                invoice['currency']), ('PENDING', 1000, 'IDR'))
        self.assertEqual(invoice['invoice_url'],
            '%s/web/%s' % (self.fake.url, invoice['id']))
        got = self.http.get(self.fake.url + '/v2/invoices/' + invoice['id'],
            auth=self.auth).json()
        self.assertEqual(got['external_id'], 'INV-1')
        listed = self.http.get(self.fake.url + '/v2/invoices',
            params={'external_id': 'INV-1'}, auth=self.auth).json()
        self.assertEqual([i['id'] for i in listed], [invoice['id']])
        missing = self.http.get(self.fake.url + '/v2/invoices/abc',
            auth=self.auth)
        self.assertEqual(missing.json()['error_code'],
            'INVOICE_NOT_FOUND_ERROR')

    def test_callbacks(self):
        answer = self.http.post(self.fake.url + '/callback_urls/invoice',
            json={'url': self.sink.url + '/xendit'}, auth=self.auth).json()
        self.assertEqual(answer['callback_token'], 'cbt')
        self.invoice('INV-1')
        self.invoice('INV-2')
        self.assertEqual(self.fake.notify('INV-1'), [])   # pending: none
        self.fake.pay('INV-1')
        self.fake.expire('INV-2')
        paid, expired = self.sink.wait(2)
        self.assertEqual(paid.headers['x-callback-token'], 'cbt')
        data = json.loads(paid.body)
        self.assertEqual((data['external_id'], data['status'],
                data['amount'], data['paid_amount'], data['currency']),
            ('INV-1', 'PAID', 100000, 100000, 'IDR'))
        for key in ('id', 'user_id', 'paid_at', 'payment_method',
                'payment_channel', 'merchant_name'):
            self.assertIn(key, data)
        self.assertEqual(json.loads(expired.body)['status'], 'EXPIRED')
        with self.assertRaises(ValueError):
            self.fake.fail('INV-1')

    def test_pay_page(self):
        self.fake.callback_url = self.sink.url + '/xendit'
        invoice = self.invoice().json()
        page = self.http.get(invoice['invoice_url'])
        self.assertIn('100,000', page.text)
        done = self.http.post(invoice['invoice_url'], data={'action': 'pay'},
            allow_redirects=False)
        self.assertEqual((done.status_code, done.headers['Location']),
            (303, 'https://isp.example/ok'))
        self.assertEqual(self.sink.wait(1)[0].payload['status'], 'PAID')


class DuitkuTest(FakeCase):

    def setUp(self):
        super().setUp()
        self.fake = self.start(FakeDuitku(merchant_code='D1',
                api_key='dk'))

    def inquiry(self, order_id='INV-1', amount=50000, **changes):
        body = {'merchantCode': 'D1', 'paymentAmount': amount,
            'paymentMethod': 'BC', 'merchantOrderId': order_id,
            'productDetails': 'Internet', 'email': 'a@b.id',
            'customerVaName': 'Budi', 'callbackUrl': self.sink.url + '/d',
            'returnUrl': 'https://isp.example/back',
            'signature': md5('D1%s%sdk' % (order_id, amount))}
        body.update(changes)
        return self.http.post(self.fake.url
            + '/webapi/api/merchant/v2/inquiry', json=body)

    def test_inquiry(self):
        self.assertEqual(self.inquiry(signature='x').json(),
            {'Message': 'Wrong signature'})
        answer = self.inquiry(productDetails='')
        self.assertEqual((answer.status_code, answer.json()['Message']),
            (400, 'productDetails is mandatory'))
        self.assertEqual(self.inquiry(merchantCode='D2').status_code, 404)
        answer = self.inquiry().json()
        self.assertEqual((answer['statusCode'], answer['amount']),
            ('00', '50000'))
        status = self.http.post(self.fake.url
            + '/webapi/api/merchant/transactionStatus', json={
                'merchantCode': 'D1', 'merchantOrderId': 'INV-1',
                'signature': md5('D1INV-1dk')}).json()
        self.assertEqual((status['statusCode'], status['reference']),
            ('01', answer['reference']))

    def test_callback_format(self):
        self.inquiry('INV-1')
        self.inquiry('INV-2')
        self.fake.pay('INV-1')
        self.fake.fail('INV-2')
        paid, failed = self.sink.wait(2)
        self.assertEqual(paid.headers['content-type'],
            'application/x-www-form-urlencoded')
        form = paid.form()
        self.assertEqual((form['merchantCode'], form['amount'],
                form['merchantOrderId'], form['resultCode'],
                form['paymentCode']), ('D1', '50000', 'INV-1', '00', 'BC'))
        self.assertEqual(form['signature'], md5('D150000INV-1dk'))
        self.assertEqual(failed.form()['resultCode'], '01')

    def test_pay_page(self):
        answer = self.inquiry().json()
        page = self.http.get(answer['paymentUrl'])
        self.assertIn('INV-1', page.text)
        done = self.http.post(answer['paymentUrl'], data={'action': 'pay'},
            allow_redirects=False)
        self.assertEqual(done.status_code, 303)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                    done.headers['Location']).query))
        self.assertEqual(query, {'merchantOrderId': 'INV-1',
                'resultCode': '00', 'reference': answer['reference']})
        self.assertEqual(self.sink.wait(1)[0].form()['resultCode'], '00')


class MpesaTest(FakeCase):

    def setUp(self):
        super().setUp()
        self.fake = self.start(FakeMpesa(consumer_key='ck',
                consumer_secret='cs', shortcode='174379', passkey='pk'))

    def token(self):
        return self.http.get(self.fake.url + '/oauth/v1/generate',
            params={'grant_type': 'client_credentials'},
            auth=('ck', 'cs')).json()['access_token']

    def stk(self, token=None, **changes):
        timestamp = time.strftime('%Y%m%d%H%M%S')
        body = {'BusinessShortCode': '174379',
            'Password': base64.b64encode(
                ('174379pk' + timestamp).encode()).decode(),
            'Timestamp': timestamp,
            'TransactionType': 'CustomerPayBillOnline', 'Amount': 100,
            'PartyA': '254712345678', 'PartyB': '174379',
            'PhoneNumber': '254712345678',
            'CallBackURL': self.sink.url + '/cb?token=secret',
            'AccountReference': 'EV000001', 'TransactionDesc': 'Voucher'}
        body.update(changes)
        return self.http.post(self.fake.url
            + '/mpesa/stkpush/v1/processrequest', json=body,
            headers={'Authorization': 'Bearer ' + (token or self.token())})

    def test_oauth(self):
        answer = self.http.get(self.fake.url + '/oauth/v1/generate',
            params={'grant_type': 'client_credentials'}, auth=('ck', 'x'))
        self.assertEqual((answer.status_code, answer.json()['errorCode']),
            (400, '400.008.01'))
        answer = self.http.get(self.fake.url + '/oauth/v1/generate',
            auth=('ck', 'cs'))
        self.assertEqual(answer.json()['errorCode'], '400.008.02')
        answer = self.http.get(self.fake.url + '/oauth/v1/generate',
            params={'grant_type': 'client_credentials'}, auth=('ck', 'cs'))
        self.assertEqual(answer.json()['expires_in'], '3599')

    def test_stk_validation(self):
        answer = self.stk(token='invalid')
        self.assertEqual((answer.status_code, answer.json()['errorCode']),
            (404, '404.001.03'))
        token = self.token()
        for changes, status, message in [
                ({'PartyA': '0712345678'}, 400, 'Invalid PartyA'),
                ({'Amount': 10.5}, 400, 'Invalid Amount'),
                ({'AccountReference': 'X' * 13}, 400,
                    'Invalid AccountReference'),
                ({'Password': 'bad'}, 500, 'Wrong credentials'),
                ({'BusinessShortCode': '600000'}, 500,
                    'Merchant does not exist'),
                ({'Timestamp': '2024'}, 400, 'Invalid Timestamp')]:
            with self.subTest(changes=changes):
                answer = self.stk(token, **changes)
                self.assertEqual(answer.status_code, status)
                self.assertIn(message, answer.json()['errorMessage'])
        answer = self.stk(token).json()
        self.assertEqual(answer['ResponseCode'], '0')
        self.fake.token_ttl = 0
        token = self.token()
        self.assertEqual(self.stk(token).status_code, 404)   # expired

    def test_query_and_callbacks(self):
        token = self.token()
        checkout = self.stk(token).json()['CheckoutRequestID']
        timestamp = time.strftime('%Y%m%d%H%M%S')
        query = {'BusinessShortCode': '174379', 'Timestamp': timestamp,
            'Password': base64.b64encode(
                ('174379pk' + timestamp).encode()).decode(),
            'CheckoutRequestID': checkout}
        url = self.fake.url + '/mpesa/stkpushquery/v1/query'
        headers = {'Authorization': 'Bearer ' + token}
        answer = self.http.post(url, json=query, headers=headers)
        self.assertEqual((answer.status_code, answer.json()['errorMessage']),
            (500, 'The transaction is being processed'))
        self.fake.pay('EV000001')
        answer = self.http.post(url, json=query, headers=headers).json()
        self.assertEqual((answer['ResultCode'], answer['ResponseCode']),
            ('0', '0'))
        [received] = self.sink.wait(1)
        self.assertEqual(received.path, '/cb?token=secret')
        callback = json.loads(received.body)['Body']['stkCallback']
        self.assertEqual((callback['CheckoutRequestID'],
                callback['ResultCode']), (checkout, 0))
        items = {i['Name']: i.get('Value')
            for i in callback['CallbackMetadata']['Item']}
        self.assertEqual(set(items), {'Amount', 'MpesaReceiptNumber',
                'Balance', 'TransactionDate', 'PhoneNumber'})
        self.assertEqual((items['Amount'], items['PhoneNumber']),
            (100, 254712345678))
        self.assertRegex(str(items['TransactionDate']), r'^\d{14}$')
        self.fake.notify('EV000001', bad_signature=True)
        self.assertEqual(self.sink.wait(2)[1].path, '/cb?token=forged')
        other = self.stk(token, AccountReference='EV000002').json()
        self.fake.fail(other['CheckoutRequestID'])
        cancelled = json.loads(self.sink.wait(3)[2].body)['Body'][
            'stkCallback']
        self.assertEqual(cancelled['ResultCode'], 1032)
        self.assertNotIn('CallbackMetadata', cancelled)

    def test_phone_page(self):
        self.stk()
        url = self.fake.phone_url('EV000001')
        self.assertIn('254712345678', self.http.get(url).text)
        answer = self.http.post(url, data={'action': 'fail'})
        self.assertEqual(answer.status_code, 200)
        self.assertEqual(self.fake.find('EV000001').state, 'failed')
        callback = json.loads(self.sink.wait(1)[0].body)
        self.assertEqual(callback['Body']['stkCallback']['ResultCode'], 1032)


class EventsTest(FakeCase):
    "Repeat, drop, faults and the control endpoint (common to the fakes)"

    def setUp(self):
        super().setUp()
        self.fake = self.start(FakeMidtrans(server_key=KEY))
        self.snap(self.fake)

    def test_repeat(self):
        self.fake.pay('INV-1')
        deliveries = self.fake.notify('INV-1', repeat=5)
        self.assertEqual([d.status for d in deliveries], [200] * 5)
        received = self.sink.wait(6)
        self.assertEqual(len({r.body for r in received}), 1)

    def test_concurrent(self):
        self.fake.pay('INV-1', wait=True)
        deliveries = self.fake.notify('INV-1', repeat=10, concurrent=True)
        self.assertEqual(len(deliveries), 10)
        self.assertEqual(len(self.sink.wait(11)), 11)

    def test_drop(self):
        self.fake.drop_callbacks(1)
        [delivery] = self.fake.pay('INV-1')
        self.assertTrue(delivery.dropped)
        self.assertEqual(self.sink.received, [])
        self.assertEqual(self.fake.find('INV-1').state, 'paid')
        [delivery] = self.fake.notify('INV-1')
        self.assertEqual(delivery.status, 200)
        self.fake.drop_callbacks(None)
        self.assertTrue(all(d.dropped
                for d in self.fake.notify('INV-1', repeat=3)))
        self.fake.clear_faults()
        self.assertFalse(self.fake.notify('INV-1')[0].dropped)

    def test_callback_answer_and_errors(self):
        self.sink.status = 500
        [delivery] = self.fake.pay('INV-1')
        self.assertEqual(delivery.status, 500)
        self.sink.stop()
        [delivery] = self.fake.notify('INV-1')
        self.assertIsNone(delivery.status)
        self.assertTrue(delivery.error)

    def test_api_faults(self):
        url = self.fake.url + '/v2/INV-1/status'
        self.fake.notify('INV-1')
        self.fake.fail_api(2, status=503)
        statuses = [self.http.get(url, auth=(KEY, '')).status_code
            for _ in range(3)]
        self.assertEqual(statuses, [503, 503, 200])
        self.fake.api_delay = 0.2
        start = time.monotonic()
        self.http.get(url, auth=(KEY, ''))
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.fake.clear_faults()

    def test_callback_delay(self):
        self.fake.callback_delay = 0.2
        self.assertEqual(self.fake.pay('INV-1'), [])
        self.assertEqual(self.sink.received, [])
        self.assertEqual(len(self.sink.wait(1, timeout=3)), 1)

    def test_control_endpoint(self):
        control = self.fake.url + '/_fake/control'
        answer = self.http.post(control, json={'action': 'drop'})
        self.assertEqual(answer.json()['ok'], True)
        answer = self.http.post(control, json={'action': 'pay',
                'reference': 'INV-1', 'amount': '1000'}).json()
        self.assertTrue(answer['deliveries'][0]['dropped'])
        answer = self.http.post(control, json={'action': 'notify',
                'reference': 'INV-1', 'repeat': 2}).json()
        self.assertEqual([d['status'] for d in answer['deliveries']],
            [200, 200])
        self.assertEqual(self.sink.wait(2)[0].payload['gross_amount'],
            '1000.00')
        transactions = self.http.get(self.fake.url
            + '/_fake/transactions').json()
        self.assertEqual((transactions[0]['state'],
                transactions[0]['paid_amount']), ('paid', '1000'))
        self.assertEqual(len(self.http.get(self.fake.url
                    + '/_fake/callbacks').json()), 3)
        self.assertEqual(self.http.post(control, json={'action': 'pay',
                    'reference': 'NOPE'}).status_code, 404)
        self.assertEqual(self.http.post(control, json={
                    'action': 'dance'}).status_code, 400)
        self.http.post(control, json={'action': 'fault', 'count': 1,
                'status': 502})
        self.assertEqual(self.snap(self.fake, 'INV-2').status_code, 502)
        self.http.post(control, json={'action': 'config',
                'callback_url': self.sink.url + '/new'})
        self.assertEqual(self.fake.notification_url, self.sink.url + '/new')

    def test_paid_amount(self):
        [delivery] = self.fake.pay('INV-1', amount=Decimal('249999'))
        self.assertEqual(delivery.payload['gross_amount'], '249999.00')


def free_port_base(count=4):
    "A base port with `count` free ports after it"
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(('127.0.0.1', base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError('no free ports')


class CommandLineTest(unittest.TestCase):

    def test_cli(self):
        base = free_port_base()
        process = subprocess.Popen([sys.executable, '-m',
                'tools.fake_gateways', '--port-base', str(base)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            lines = [process.stdout.readline() for _ in range(4)]
            names = [line.split()[0] for line in lines]
            self.assertEqual(names, ['name=midtrans', 'name=xendit',
                    'name=duitku', 'name=mpesa'])
            for offset, line in enumerate(lines):
                self.assertIn('url=http://127.0.0.1:%d ' % (base + offset),
                    line)
            answer = session().get('http://127.0.0.1:%d/_fake/transactions'
                % (base + 3), timeout=5)
            self.assertEqual(answer.json(), [])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
            process.stdout.close()
        self.assertEqual(process.returncode, 0)

    def test_start_all(self):
        fakes = fake_gateways.start_all()
        try:
            self.assertEqual(set(fakes), {'midtrans', 'xendit', 'duitku',
                    'mpesa'})
            self.assertEqual(len({f.port for f in fakes.values()}), 4)
        finally:
            for fake in fakes.values():
                fake.stop()
