# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Every public route of the ISP modules against malformed requests.

The routes are discovered from trytond's URL map (every rule with '/isp_'
in it), so a new route is covered the day it is added.  Each one gets its
path arguments filled with genuine values (a provider's id and secret, a
gateway name, a payment reference) and with hostile ones (ids too large
for the database, non-ASCII, NUL, very long), and bodies that are nested
100,000 deep, hold NULs, are not UTF-8, have values of the wrong type or
are too large, with the wrong methods and non-ASCII secrets in headers and
query strings.  No answer may be a 5xx or carry an exception's text.

Run on SQLite and on PostgreSQL (scripts/test runs the module on both):
PostgreSQL refuses NULs in text and ids beyond its integer.
"""
import contextlib
import hashlib
import hmac
import itertools
import json
import pathlib
import re
import sys
import urllib.parse

import pytest
from trytond.modules.company.tests import create_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import app

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.fake_gateways import (  # noqa: E402
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)

from .payment_setup import (  # noqa: E402
    SETUP_TABLES,
    create_branch,
    create_customer,
    create_gateway,
    create_invoices,
    run_locked,
)

META_SECRET = 'meta-app-secret'
VERIFY_TOKEN = 'meta-verify-token'
DEEP = 100_000
#: What an answer may never contain: the text of an exception.
LEAKS = re.compile(
    r'Traceback|File "|\b[A-Z]\w*(Error|Exception)\b|psycopg|sqlite3'
    r'|Internal Server Error')
#: Path arguments a hostile caller sends instead of the genuine ones.
HOSTILE_INTS = ['2147483648', '9223372036854775808', '1' + '0' * 40, '0']
HOSTILE_TEXTS = ['\u00e9\u00e8\u4e2d', '\x00', 'a\x00b', 'x' * 5000,
    '\ud800'.encode('utf-8', 'surrogatepass').decode('latin-1'), '%',
    '..', ' ']


def _nested(opening, closing, inner=''):
    return (opening * DEEP + inner + closing * DEEP).encode()


#: (content type, body) of the hostile bodies; {ref} is a genuine
#: reference of the route's provider (payments) when there is one.
BODIES = [
    ('application/json', _nested('[', ']')),
    ('application/json', _nested('{"a":', '}', '1')),
    ('application/json', b'{"order_id": "{ref}", "external_id": "{ref}", '
        b'"merchantOrderId": "{ref}", "x": ' + _nested('[', ']') + b'}'),
    ('application/json', b'\x00' * 64),
    ('application/json', b'\xff\xfe\xfa{'),
    ('application/json', b'{"order_id": "{ref}\\u0000", "sender": '
        b'"62812\\u0000", "message": "a\\u0000b", "id": "x\\u0000", '
        b'"status_code": "200\\u0000", "signature_key": "\\u00e9"}'),
    ('application/json', b'{"entry": "x"}'),
    ('application/json', b'{"entry": [{"changes": [{"value": {"messages": '
        b'[{"from": 628123, "id": [1], "type": "text", "text": "t", '
        b'"timestamp": 1e400}], "statuses": [{"id": {"a": 1}, '
        b'"status": ["read"], "errors": "x"}]}}]}]}'),
    ('application/json', b'{"sender": {"a": 1}, "message": [1], '
        b'"id": 99999999999999999999999999999, "timestamp": '
        b'99999999999999999999}'),
    ('application/json', b'{"id": [1, 2], "status": {"x": 1}}'),
    ('application/json', b'{"from": 123, "text": {"a": 1}, "id": {}}'),
    ('application/json', b'{"order_id": ["{ref}"], "gross_amount": '
        b'1e400, "status_code": {}, "transaction_status": null}'),
    ('application/json', b'{"order_id": "{ref}", "gross_amount": '
        b'"\\u00e9", "status_code": "200", "signature_key": "\\u00e9\\u00e8",'
        b' "transaction_status": "settlement"}'),
    ('application/json', b'{"Body": {"stkCallback": ' + _nested('[', ']')
        + b'}}'),
    ('application/json', b'{"Body": {"stkCallback": {"ResultCode": "x", '
        b'"CallbackMetadata": {"Item": "x"}, "CheckoutRequestID": [1]}}}'),
    ('application/x-www-form-urlencoded',
        b'sender=628%00&message=%00&id=%00%00'),
    ('application/x-www-form-urlencoded', b'merchantOrderId={ref}'
        b'&amount=%C3%A9&resultCode=00&signature=%C3%A9%00'),
    ('application/x-www-form-urlencoded', b'\xff\xfe%%%=&&=='),
    ('text/plain', b'\x00\x01\x02'),
    ]
#: JSON content types: trytond parses 'application/json' bodies itself as
#: RPC calls, the others reach the routes as they are.
CONTENT_TYPES = ['application/json', 'text/json', 'application/x-json']
FORM = 'application/x-www-form-urlencoded'
#: Headers a hostile caller adds (non-ASCII signatures and tokens).
HEADERS = [
    {},
    {'X-Hub-Signature-256': 'sha256=\u00e9\u00e8',
        'X-Callback-Token': '\u00e9\u00e8\u00ea'},
    {'Authorization': 'Basic \u00e9\u00e8'},
    {'Authorization': 'Basic Zm9vOmJhcg=='},
    ]


class PublicRoutesTestCase(RouteTestCase):
    "Every public ISP route answers malformed input with a 4xx"
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
        cls.seeds = run_locked(cls.setUpSeeds, tables=SETUP_TABLES)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for fake in cls.fakes.values():
            fake.stop()

    @classmethod
    def setUpSeeds(cls):
        """Genuine records: a message provider of each type, an open online
        payment per gateway; return the genuine path arguments"""
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        Invoice = pool.get('account.invoice')
        company = create_company()
        providers = Provider.create([{
                    'name': t, 'type': t, 'company': company.id,
                    'account': 'acc', 'token': 'tok',
                    'app_secret': META_SECRET, 'verify_token': VERIFY_TOKEN,
                    } for t in ['whatsapp_meta', 'whatsapp_token',
                        'sms_africastalking', 'email']])
        branch = create_branch("NetKita", 'IDR')
        kenya = create_branch("NetKita Kenya", 'KES')
        references, tokens = {}, []
        for provider, fake in cls.fakes.items():
            owner = kenya if provider == 'mpesa' else branch
            create_gateway(provider, fake.url, company=owner)
            party = create_customer(phone='+254712345678'
                if provider == 'mpesa' else '+6281234567890')
            invoice, = create_invoices(owner, party, 150000 if
                provider != 'mpesa' else 1500)
            payment = Invoice.isp_open_payment(invoice, provider=provider)
            references[provider] = payment.reference
            if invoice.isp_pay_token:
                tokens.append(invoice.isp_pay_token)
        return {
            'provider_id': [str(p.id) for p in providers],
            'secret': [p.callback_secret for p in providers
                if p.callback_secret],
            'provider': list(references),
            'token': tokens,
            'references': references,
            }

    @contextlib.contextmanager
    def transaction(self):
        with Transaction().start(DB_NAME, 0) as transaction:
            yield transaction

    # -- discovery and request building -----------------------------------

    @staticmethod
    def isp_rules():
        return [r for r in app.url_map.iter_rules() if '/isp_' in r.rule]

    def genuine_paths(self, rule):
        "The rule's paths with genuine arguments (every combination)"
        combos = [{}]
        for name in sorted(rule.arguments - {'database_name'}):
            values = self.seeds.get(name) or ['x']
            combos = [{**c, name: v} for c in combos for v in values]
        return [self.path(rule, c) for c in combos]

    def hostile_paths(self, rule):
        "The rule's paths with one argument hostile at a time"
        genuine = {name: (self.seeds.get(name) or ['x'])[0]
            for name in rule.arguments - {'database_name'}}
        paths = []
        for name in genuine:
            converter = type(rule._converters[name]).__name__
            values = HOSTILE_INTS if 'Integer' in converter else HOSTILE_TEXTS
            for value in values:
                paths.append(self.path(rule, {**genuine, name: value}))
        return paths

    @staticmethod
    def path(rule, arguments):
        path = rule.rule.replace('<database_name>', DB_NAME)
        for name, value in arguments.items():
            path = re.sub(r'<(\w+:)?%s>' % name,
                urllib.parse.quote(value, safe=''), path)
        return path

    @staticmethod
    def bodies():
        "BODIES, the JSON ones also under the other JSON content types"
        for content_type, body in BODIES:
            yield content_type, body
            if content_type == 'application/json':
                for other in CONTENT_TYPES[1:]:
                    yield other, body

    def reference(self, path):
        for provider, reference in self.seeds['references'].items():
            if path.endswith('/' + provider):
                return reference
        return 'ORDER-1'

    def check(self, client, method, path, **kwargs):
        response = client.open(path, method=method, **kwargs)
        body = response.get_data(as_text=True)
        where = '%s %s %s -> %s %s' % (method, path[:120],
            repr(kwargs.get('data', b''))[:80], response.status_code,
            body[:200])
        self.assertLess(response.status_code, 500, where)
        self.assertIsNone(LEAKS.search(body), where)
        return response

    # -- the tests ---------------------------------------------------------

    def test_routes_discovered(self):
        "The ISP modules' public routes are all found"
        rules = {r.rule for r in self.isp_rules()}
        self.assertGreaterEqual(len(rules), 4, rules)
        for module in ['isp_base', 'isp_billing']:
            self.assertTrue(any('/%s/' % module in r for r in rules), rules)

    def test_hostile_path_arguments(self):
        "Ids too large, non-ASCII, NUL and long path arguments: 4xx"
        client = self.client()
        for rule in self.isp_rules():
            for path in self.hostile_paths(rule):
                for method, content_type in itertools.product(
                        sorted(rule.methods - {'HEAD', 'OPTIONS'}),
                        [FORM, *CONTENT_TYPES]):
                    with self.subTest(rule=rule.rule, path=path[:80],
                            method=method, content_type=content_type):
                        self.check(client, method, path,
                            data=b'a=1' if content_type == FORM
                            else b'{"a": 1}', content_type=content_type)

    def test_wrong_methods(self):
        "Methods a route does not take: 405, never a 5xx"
        client = self.client()
        for rule in self.isp_rules():
            path = self.genuine_paths(rule)[0]
            for method in {'GET', 'POST', 'PUT', 'DELETE', 'PATCH'} - (
                    rule.methods):
                with self.subTest(rule=rule.rule, method=method):
                    response = self.check(client, method, path)
                    self.assertEqual(response.status_code, 405)

    @pytest.mark.postgresql_only
    def test_hostile_bodies(self):
        "Nested, NUL, non-UTF-8, mistyped and oversized bodies: no 5xx"
        client = self.client()
        for rule in self.isp_rules():
            methods = sorted(rule.methods - {'HEAD', 'OPTIONS'})
            for path in self.genuine_paths(rule):
                reference = self.reference(path).encode()
                for (content_type, body), headers, method in (
                        itertools.product(self.bodies(), HEADERS, methods)):
                    body = body.replace(b'{ref}', reference)
                    if not headers and '/meta/' in path:
                        # signed as Meta signs: reach what follows
                        headers = {'X-Hub-Signature-256': 'sha256=' + hmac.new(
                                META_SECRET.encode(), body,
                                hashlib.sha256).hexdigest()}
                    with self.subTest(path=path[:80], method=method,
                            body=body[:60], headers=headers):
                        self.check(client, method, path, data=body,
                            content_type=content_type, headers={
                                'Accept': 'application/json', **headers})

    def test_oversize_bodies(self):
        "Bodies larger than any provider sends: 413 or refused, no 5xx"
        client = self.client()
        body = json.dumps({'sender': '6281', 'message': 'x' * (3 << 20)})
        for rule in self.isp_rules():
            if 'POST' not in rule.methods:
                continue
            for path in self.genuine_paths(rule):
                with self.subTest(path=path[:80]):
                    response = self.check(client, 'POST', path,
                        data=body.encode(), content_type='application/json')
                    self.assertGreaterEqual(response.status_code, 400)

    def test_hostile_query_strings(self):
        "Non-ASCII, NUL and repeated tokens in query strings: no 5xx"
        client = self.client()
        queries = [
            'hub.mode=subscribe&hub.verify_token=%C3%A9%C3%A8'
            '&hub.challenge=1',
            'hub.mode=subscribe&hub.verify_token=%FF%FE&hub.challenge=1',
            'hub.mode=subscribe&hub.verify_token=%00&hub.challenge=%00',
            'hub.mode=subscribe&hub.verify_token=' + VERIFY_TOKEN
            + '&hub.verify_token=x&hub.challenge=' + 'c' * 5000,
            'reference=%00&token=%C3%A9',
            'reference={ref}&token=%FF',
            ]
        for rule in self.isp_rules():
            for path in self.genuine_paths(rule):
                reference = urllib.parse.quote(self.reference(path))
                for query in queries:
                    for method in sorted(rule.methods - {'HEAD', 'OPTIONS'}):
                        url = path + '?' + query.replace('{ref}', reference)
                        with self.subTest(url=url[:120], method=method):
                            self.check(client, method, url, data=b'{}',
                                content_type='application/json')


del RouteTestCase
