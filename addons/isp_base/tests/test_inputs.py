# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Secrets per record, secrets out of the logs, bad input refused.

- every field whose default is random gets a value of its own per record,
  also when records are created or imported together, and on copy;
- the access log never holds the secrets of the ISP routes' URLs, and a
  failing provider's credentials never reach the log or the attempts;
- numbers given as text, infinite or out of range, text too long or with
  NULs are refused with an error naming the field.
"""
import datetime as dt
import json
import pathlib
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler

from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase, with_transaction
from werkzeug.serving import make_server

from trytond.modules.isp_base import accesslog
from trytond.modules.isp_base.exceptions import InputValidationError
from trytond.modules.isp_base.tests.inputs import (
    assert_input_guard,
    assert_secret_defaults,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.fakehttp import LoopbackService  # noqa: E402

#: Credentials of a provider that echoes them in its error answers.
AT_KEY = 'atsk_9f8e7d6c5b4a3f2e1d0c'
AT_SECRET = 'cb-secret-0123456789abcdef'
SMTP_PASSWORD = 'smtp-pass-77aa88bb'


class _EchoHandler(BaseHTTPRequestHandler):
    "Refuses every call, quoting the credentials it was sent (as some do)"

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        key = self.headers.get('apiKey') or ''
        body = json.dumps({'error': 'The supplied authentication is '
                'invalid: apiKey=%s (%s...)' % (key, key[:8])}).encode()
        self.send_response(401)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class EchoProvider(LoopbackService):
    handler_class = _EchoHandler
    name = 'echo'


class InputsTestCase(RouteTestCase):
    "Test secrets per record, log redaction and input bounds"
    module = 'isp_base'

    @with_transaction()
    def test_random_defaults_are_per_record(self):
        "Every random default of the ISP models is drawn per record"
        found = assert_secret_defaults(self, Pool())
        self.assertIn('isp.message.provider',
            {m.__name__ for m, _ in found})

    @with_transaction()
    def test_provider_secrets_created_together(self):
        "Providers created or imported in one call get their own secret"
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        company = create_company()
        with set_company(company):
            providers = Provider.create([
                    {'name': 'P%d' % i, 'type': 'whatsapp_token'}
                    for i in range(3)])
            Provider.import_data(['name', 'type'],
                [['I1', 'whatsapp_token'], ['I2', 'whatsapp_token']])
            imported = Provider.search([('name', 'in', ['I1', 'I2'])])
            kept, = Provider.create([{'name': 'K', 'type': 'whatsapp_token',
                        'callback_secret': 'chosen-by-admin'}])
        secrets = [p.callback_secret for p in providers + imported]
        self.assertTrue(all(secrets))
        self.assertEqual(len(set(secrets)), 5)
        self.assertEqual(kept.callback_secret, 'chosen-by-admin')

    @with_transaction()
    def test_provider_copy_new_secret(self):
        "Copying providers works and gives each copy a new secret"
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        company = create_company()
        with set_company(company):
            providers = Provider.create([
                    {'name': 'P%d' % i, 'type': 'sms_africastalking',
                        'account': 'sandbox'} for i in range(2)])
            copies = Provider.copy(providers)
        secrets = {p.callback_secret for p in providers + copies}
        self.assertEqual(len(secrets), 4)
        self.assertTrue(all(secrets))


    # -- secrets out of the logs ---------------------------------------------

    def test_access_log_redacted(self):
        "trytond's access log of the ISP routes holds no secret"
        client = self.client()
        urls = [
            '/%s/isp_base/notify/callback/7/%s' % (DB_NAME, AT_SECRET),
            '/%s/isp_base/notify/meta/7?hub.mode=subscribe'
            '&hub.verify_token=%s&hub.challenge=42' % (DB_NAME, AT_SECRET),
            '/%s/isp_billing/pay/%s' % (DB_NAME, AT_SECRET),
            '/%s/isp_billing/webhook/mpesa?reference=R1&token=%s'
            % (DB_NAME, AT_SECRET),
            ]
        with self.assertLogs('trytond.wsgi', level='INFO') as logs:
            for url in urls:
                client.open(url, method='POST' if 'meta' not in url
                    else 'GET', data=b'a=1',
                    content_type='application/x-www-form-urlencoded')
        text = '\n'.join(logs.output)
        self.assertNotIn(AT_SECRET, text)
        self.assertNotIn(AT_SECRET[:8], text)
        for kept in ['/isp_base/notify/callback/7/***',
                'hub.verify_token=***&hub.challenge=42',
                '/isp_billing/pay/***', 'reference=R1&token=***']:
            self.assertIn(kept, text)

    def test_werkzeug_access_log_redacted(self):
        "werkzeug's server log (the trytond command's) holds no secret"
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'OK']
        server = make_server('127.0.0.1', 0, app)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = 'http://127.0.0.1:%d/db' % server.server_port
        try:
            with self.assertLogs('werkzeug', level='INFO') as logs:
                for path in [
                        '/isp_base/notify/callback/7/' + AT_SECRET,
                        '/isp_base/notify/meta/7?hub.mode=subscribe'
                        '&hub.verify_token=' + AT_SECRET,
                        '/isp_billing/pay/' + AT_SECRET,
                        '/isp_voucher/shop/order/7/' + AT_SECRET]:
                    urllib.request.urlopen(base + path, timeout=5).read()
        finally:
            server.shutdown()
            thread.join()
        text = '\n'.join(logs.output)
        self.assertNotIn(AT_SECRET[:8], text)
        self.assertEqual(text.count('***'), 4, text)
        self.assertIn('/isp_voucher/shop/order/7/***', text)

    def test_redact_only_listed_secrets(self):
        "Only the listed path arguments and query parameters are masked"
        self.assertEqual(accesslog.redact(
                "<Request 1.2.3.4 'http://h/db/isp_base/notify/meta/3"
                "?hub.mode=subscribe&hub%2Everify_token=s3cr3t"
                "&hub.challenge=9' [GET]>"),
            "<Request 1.2.3.4 'http://h/db/isp_base/notify/meta/3"
            "?hub.mode=subscribe&hub%2Everify_token=***"
            "&hub.challenge=9' [GET]>")
        for text in ['GET /db/isp_billing/webhook/midtrans HTTP/1.1',
                'GET /db/other/pay/abc?token=x HTTP/1.1',
                'GET /db/isp_base/notify/meta/3?token=x HTTP/1.1']:
            self.assertEqual(accesslog.redact(text), text)

    @with_transaction()
    def test_failing_provider_credentials_masked(self):
        "A refusal quoting the credentials keeps none in logs or records"
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        Message = pool.get('isp.message')
        Attempt = pool.get('isp.message.attempt')
        company = create_company()
        with EchoProvider() as echo, set_company(company):
            provider, = Provider.create([{
                        'name': 'AT', 'type': 'sms_africastalking',
                        'account': 'sandbox', 'token': AT_KEY,
                        'callback_secret': AT_SECRET,
                        'base_url': echo.url}])
            message, = Message.create([{
                        'company': company.id, 'channel': 'sms',
                        'recipient': '+254712345678', 'body': 'Hi',
                        'state': 'sending', 'provider': provider.id}])
            attempt, = Attempt.create([{
                        'message': message.id, 'company': company.id,
                        'provider': provider.id, 'at': dt.datetime.now(),
                        'outcome': 'pending'}])
            result = provider.adapter().send('+254712345678', 'Hi')
            logger = 'trytond.modules.isp_base.notification'
            with self.assertLogs(logger, level='INFO') as logs:
                Message._store_result_step(
                    message.id, attempt.id, provider.id, result)
        attempt = Attempt(attempt.id)
        message = Message(message.id)
        self.assertEqual(attempt.outcome, 'provider')
        kept = '\n'.join(logs.output + [attempt.reason, attempt.answer,
                message.provider_answer, message.failure_reason])
        self.assertIn('apiKey=***', kept)
        for secret in [AT_KEY, AT_KEY[:8]]:
            self.assertNotIn(secret, kept)

    @with_transaction()
    def test_provider_credentials_listed(self):
        "The credentials are the listed fields and the SMTP password"
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        company = create_company()
        with set_company(company):
            provider, = Provider.create([{
                        'name': 'Mail', 'type': 'email',
                        'base_url': 'smtp://user:%s@mail.example:25'
                        % SMTP_PASSWORD,
                        'token': AT_KEY, 'app_secret': 'app-secret-1',
                        'verify_token': 'verify-1'}])
        self.assertEqual(set(provider.credentials()), {
                AT_KEY, 'app-secret-1', 'verify-1', SMTP_PASSWORD,
                provider.callback_secret})
        for name in Provider.CREDENTIAL_FIELDS:
            self.assertIn(name, Provider._fields)


    # -- bad input -----------------------------------------------------------

    @with_transaction()
    def test_every_field_guarded(self):
        "Every number and text field of the ISP models refuses bad input"
        found = assert_input_guard(self, Pool())
        models = {m.__name__ for m, _, _ in found}
        for name in ['party.party', 'product.template', 'isp.location',
                'isp.message.provider', 'isp.message.template']:
            self.assertIn(name, models)

    def _company(self):
        company = create_company()
        return company

    @with_transaction()
    def test_subscriber_coordinates_input(self):
        "Latitudes given as text, infinite or NaN are refused by name"
        pool = Pool()
        Party = pool.get('party.party')
        company = self._company()
        with set_company(company):
            party, = Party.create([{'name': 'Budi', 'is_subscriber': True,
                        'latitude': '-6.2', 'longitude': 106.8}])
            self.assertEqual(party.latitude, -6.2)
            for value in ['abc', float('inf'), float('-inf'), float('nan'),
                    'nan', 'Infinity', [1]]:
                for mode in ['create', 'write']:
                    with self.subTest(value=value, mode=mode):
                        with self.assertRaises(InputValidationError) as cm:
                            if mode == 'create':
                                Party.create([{'name': 'X',
                                            'is_subscriber': True,
                                            'latitude': value}])
                            else:
                                Party.write([party], {'latitude': value})
                        self.assertIn('Latitude', cm.exception.message)
            party = Party(party.id)
            self.assertEqual(party.latitude, -6.2)

    @with_transaction()
    def test_plan_rates_and_name_input(self):
        "Rates like '10M' or 2**40 and a 100 KB name are refused by name"
        pool = Pool()
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        unit, = Uom.search([('name', '=', 'Unit')])
        company = self._company()

        def plan(**values):
            return Template.create([{
                        'name': "Home 20M", 'type': 'service',
                        'default_uom': unit.id, 'isp_plan': True,
                        'download_rate': 20000, 'upload_rate': 5000,
                        **values}])[0]
        with set_company(company):
            self.assertEqual(plan(download_rate='30000').download_rate, 30000)
            for values, field in [
                    ({'download_rate': '10M'}, 'Download Rate'),
                    ({'download_rate': 2 ** 40}, 'Download Rate'),
                    ({'download_rate': 100_000_001}, 'Download Rate'),
                    ({'upload_rate': 1.5}, 'Upload Rate'),
                    ({'burst_time': 86400}, 'Burst Time'),
                    ({'setup_fee': 'Infinity'}, 'Setup Fee'),
                    ({'name': 'x' * 100_000}, 'Name'),
                    ({'name': 'Home\x00'}, 'Name'),
                    ]:
                with self.subTest(values=values):
                    with self.assertRaises(InputValidationError) as cm:
                        plan(**values)
                    self.assertIn(field, cm.exception.message)
                    self.assertNotIn('x' * 100, cm.exception.message)


del RouteTestCase

