# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The isolation walk of every public route: branch A's host never serves
branch B's data, nor changes it.

The routes are discovered from trytond's URL map (every rule of an ISP
module); each must have its case in `CASES` (a new route without one fails
`test_routes_have_a_case`).  Each route is called on Bandung's host
(its `isp_web_domain`) with Nairobi's identifiers: Nairobi's subscriber's
portal session cookie, Nairobi's invoice, ticket, plan, voucher profile and
order ids in the path and the form, Nairobi's pay link token, webhooks about
Nairobi's payment and message providers signed with Bandung's secrets.  No
answer is a 5xx or shows one of Nairobi's markers (names, numbers), and
Nairobi's records are as before (`nairobi_state`)."""
import hashlib
import hmac
import json
import re
import urllib.parse
from decimal import Decimal

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import app

from trytond.modules.isp_base.tests.portal_tools import (
    LEAKS,
    PASSWORD,
    PortalClient,
    PortalTestMixin,
    create_subscriber,
)
from trytond.modules.isp_base.tests.portal_tools import (
    create_branch as portal_branch,
)
from trytond.modules.isp_base.web.security import SESSION_COOKIE
from trytond.modules.isp_billing.tests.payment_setup import (
    SEQUENCES,
    create_branch,
    create_gateway,
    create_invoices,
    create_plan_and_router,
    create_services,
    run_locked,
)
from trytond.modules.isp_voucher.tests.voucher_setup import create_profile

try:
    from tools.fake_gateways import FakeMidtrans
except ImportError:   # an installed wheel without the repository's tools
    FakeMidtrans = None

A_HOST, B_HOST = 'bandung.routes.test', 'nairobi.routes.test'
A_META_SECRET, B_META_SECRET = 'bandung-meta-secret', 'nairobi-meta-secret'
A_MIDTRANS_KEY = 'SB-Mid-server-bandung'
OPS = {'/health', '/ready', '/metrics'}

#: How each public route is walked (a new route needs its case here):
#: 'page': a portal/shop page of the public web layer (tenant of the host);
#: 'pay': the pay link; 'payment_webhook', 'meta_webhook',
#: 'callback_webhook': the gateways' and message providers' webhooks;
#: 'map': the staff network map (a back-office user's session, their
#: record rules); 'static': the modules' static files (no tenant data);
#: 'ops': health, readiness and metrics (no tenant data).
CASES = {
    '/<database_name>/isp_base/static/<path:path>': 'static',
    '/health': 'ops',
    '/ready': 'ops',
    '/metrics': 'ops',
    '/<database_name>/isp_base/notify/meta/<int:provider_id>':
        'meta_webhook',
    '/<database_name>/isp_base/notify/callback/<int:provider_id>/<secret>':
        'callback_webhook',
    '/<database_name>/isp_billing/webhook/<provider>': 'payment_webhook',
    '/<database_name>/isp_billing/pay/<token>': 'pay',
    '/<database_name>/isp_network/map': 'map',
    '/<database_name>/isp_network/map/open': 'map',
    '/<database_name>/isp_network/map/data': 'map',
    }


def discovered_rules():
    "The rules of trytond's URL map the ISP modules registered"
    return [rule for rule in app.url_map.iter_rules()
        if getattr(rule.endpoint, '__module__', '').startswith(
            'trytond.modules.isp_')
        or '/isp_' in rule.rule or rule.rule in OPS]


def case_of(rule):
    """The case of `rule`: its entry in CASES, else 'page' for the pages of
    the public web layer (portal and shop: walked the same way)"""
    if rule.rule in CASES:
        return CASES[rule.rule]
    if '/portal/' in rule.rule or '/isp_voucher/shop' in rule.rule:
        return 'page'
    return None


class RoutesIsolationTestCase(PortalTestMixin, RouteTestCase):
    "Every public route on Bandung's host with Nairobi's identifiers"
    module = 'isp_multicompany'

    @classmethod
    def setUpClass(cls):
        cls.midtrans = FakeMidtrans().start() if FakeMidtrans else None
        super().setUpClass()
        cls.ids = run_locked(cls.setup_data, tables=SEQUENCES)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.midtrans:
            cls.midtrans.stop()

    @classmethod
    def setup_data(cls):
        """Bandung and Nairobi with their portal domains (see below)"""
        pool = Pool()
        Category = pool.get('isp.helpdesk.category')
        Ticket = pool.get('isp.helpdesk.ticket')
        Order = pool.get('isp.voucher.order')
        Invoice = pool.get('account.invoice')
        ids = {}
        # Bandung: a subscriber with a portal login, a midtrans account and
        # message providers (its own secrets); no accounting needed
        a = portal_branch("Bandung Routes", A_HOST)
        with Transaction().set_context(company=a.id):
            party, _ = create_subscriber(a, "Subscriber BR Walk",
                email='br@routes.test')
            create_gateway('midtrans', 'http://127.0.0.1:9', company=a,
                server_key=A_MIDTRANS_KEY)
            meta, callback = cls.providers(a, 'BR', A_META_SECRET)
        ids['a'] = {'company': a.id, 'login': 'br@routes.test',
            'callback_secret': callback.callback_secret}
        # Nairobi: its subscriber's service, posted invoice with an online
        # payment open, ticket, voucher profile sold online and its order
        b = create_branch("Nairobi Routes", 'IDR')
        b.isp_web_domain = B_HOST
        b.save()
        with Transaction().set_context(company=b.id):
            party, _ = create_subscriber(b, "Subscriber NR Walk",
                email='nr@routes.test')
            plan, router = create_plan_and_router(
                b, "Plan NR Walk", 100000, 'NR')
            service, = create_services(b, plan, router,
                ["Other NR Walk"], 'NR')
            service.subscriber = party
            service.save()
            invoice, = create_invoices(b, party, 120000)
            create_gateway('midtrans',
                cls.midtrans.url if cls.midtrans else 'http://127.0.0.1:9',
                company=b)
            meta, callback = cls.providers(b, 'NR', B_META_SECRET)
            category, = Category.create([{
                        'company': b.id, 'name': "Internet"}])
            ticket, = Ticket.create([{'company': b.id,
                        'subscriber': party.id, 'category': category.id,
                        'channel': 'phone', 'subject': "Ticket NR Walk"}])
            profile = create_profile(b, code='VNR',
                name="Voucher NR Walk", shop=True)
            order, = Order.create([{'company': b.id,
                        'profile': profile.id, 'phone': '+254700111222',
                        'amount': Decimal(5000),
                        'currency': b.currency.id}])
        ids['b'] = {
            'company': b.id, 'party': party.id, 'login': 'nr@routes.test',
            'service': service.id, 'plan': plan.id,
            'invoice': invoice.id, 'token': invoice.isp_pay_token,
            'meta': meta.id, 'callback': callback.id,
            'callback_secret': callback.callback_secret,
            'ticket': ticket.id, 'category': category.id,
            'profile': profile.id, 'order': order.id,
            'order_token': order.token, 'router': router.id,
            }
        b = ids['b']
        if cls.midtrans:
            payment = Invoice.isp_open_payment(
                Invoice(b['invoice']), provider='midtrans')
            b['reference'] = payment.reference
            b['amount'] = payment.amount
        return ids

    @staticmethod
    def providers(company, code, app_secret):
        "A WhatsApp (Meta) provider and an SMS one (a callback secret)"
        Provider = Pool().get('isp.message.provider')
        return Provider.create([{
                    'name': 'Meta %s' % code, 'type': 'whatsapp_meta',
                    'company': company.id, 'account': 'acc', 'token': 'tok',
                    'app_secret': app_secret,
                    'verify_token': 'verify-%s' % code,
                    }, {
                    'name': 'SMS %s' % code, 'type': 'sms_africastalking',
                    'company': company.id, 'account': 'acc', 'token': 'tok'}])

    # -- Nairobi's markers and state -------------------------------------

    def markers(self):
        """What only a page of Nairobi's data shows (not what a request
        sends: a page may show its own URL, the login typed)"""
        return ["Nairobi Routes", "Subscriber NR Walk", "Plan NR Walk",
            "Ticket NR Walk", "Voucher NR Walk", '254700111222', 'NR001',
            'NR-001', '120,000', '120.000']

    def nairobi_state(self):
        "Nairobi's records a route could change"
        b = self.ids['b']
        with Transaction().start(DB_NAME, 0, readonly=True):
            pool = Pool()
            Company = pool.get('company.company')
            company = Company(b['company'])
            counts = {}
            for name, field in [
                    ('isp.message', 'company'),
                    ('isp.message.inbound', 'company'),
                    ('isp.payment.transaction', 'company'),
                    ('isp.payment.notification', 'transaction.company'),
                    ('isp.helpdesk.ticket', 'company'),
                    ('isp.helpdesk.ticket.message', 'ticket.company'),
                    ('isp.voucher.order', 'company'),
                    ('isp.plan.change.request', 'service.company'),
                    # (any record's: the walk's forms carry no file)
                    ('ir.attachment', None),
                    ]:
                domain = [(field, '=', company.id)] if field else []
                counts[name] = pool.get(name).search_count(domain)
            Invoice = pool.get('account.invoice')
            Service = pool.get('isp.service')
            Party = pool.get('party.party')
            Ticket = pool.get('isp.helpdesk.ticket')
            WebUser = pool.get('web.user')
            invoice = Invoice(b['invoice'])
            service = Service(b['service'])
            party = Party(b['party'])
            ticket = Ticket(b['ticket'])
            user, = WebUser.search([('party', '=', party.id)])
            return (counts, invoice.state, invoice.amount_to_pay,
                service.state, service.plan.id, party.name, party.whatsapp,
                [(m.type, m.value) for m in party.contact_mechanisms],
                ticket.state, ticket.rating, user.email, user.password_hash,
                user.reset_password_token)

    def assertNotServed(self, response, where, unavailable=False):
        """No 5xx (`unavailable`: but 503), no exception text, none of
        Nairobi's markers"""
        body = response.get_data(as_text=True)
        where = '%s -> %s %s' % (where, response.status_code, body[:300])
        if not (unavailable and response.status_code == 503):
            self.assertLess(response.status_code, 500, where)
        self.assertIsNone(LEAKS.search(body), where)
        for marker in self.markers():
            self.assertNotIn(marker, body, where)
        location = response.headers.get('Location', '')
        self.assertNotIn(self.ids['b']['token'], location, where)
        return response

    # -- the routes --------------------------------------------------------

    def test_routes_have_a_case(self):
        "Every public route of the ISP modules has its case in the walk"
        rules = discovered_rules()
        missing = sorted(r.rule for r in rules if case_of(r) is None)
        self.assertEqual(missing, [])
        found = {r.rule for r in rules}
        self.assertEqual(set(CASES) - found, set())
        pages = [r for r in rules if case_of(r) == 'page']
        self.assertGreaterEqual(len(pages), 20)
        for module in ['isp_base', 'isp_billing', 'isp_helpdesk',
                'isp_voucher']:
            self.assertTrue(any('/%s/' % module in r.rule for r in pages),
                module)

    def arguments(self, rule):
        "Nairobi's identifiers for the rule's path arguments"
        b = self.ids['b']
        values = {
            'invoice_id': b['invoice'], 'ticket_id': b['ticket'],
            'profile_id': b['profile'], 'order_id': b['order'],
            'token': b['order_token'] if '/order/' in rule.rule
            else b['token'],
            'provider_id': b['meta'] if '/meta/' in rule.rule
            else b['callback'],
            'secret': b['callback_secret'], 'provider': 'midtrans',
            'path': 'isp_base/portal.css',
            }
        path = rule.rule.replace('<database_name>', DB_NAME)
        for name in rule.arguments - {'database_name'}:
            self.assertIn(name, values, rule.rule)
            path = re.sub(r'<(\w+:)?%s>' % name,
                urllib.parse.quote(str(values[name]), safe=''), path)
        return path

    def form(self):
        "A form of Nairobi's identifiers (every field a page reads)"
        b = self.ids['b']
        return {
            'invoice': b['invoice'], 'invoice_id': b['invoice'],
            'service': b['service'], 'service_id': b['service'],
            'plan': b['plan'], 'plan_id': b['plan'],
            'ticket': b['ticket'], 'category': b['category'],
            'profile': b['profile'], 'gateway': 1, 'order': b['order'],
            'login': b['login'], 'email': b['login'],
            'password': PASSWORD, 'token': b['token'],
            'body': "Walk", 'message': "Walk", 'subject': "Walk",
            'rating': '1', 'phone': '+6281234567890',
            'next': '/%s/isp_billing/portal/invoice/%d' % (
                DB_NAME, b['invoice']),
            'lang': 'en', 'name': "Walk",
            }

    def test_pages_with_nairobi_identifiers(self):
        """Every page on Bandung's host: with Nairobi's subscriber's session
        cookie, and as Bandung's subscriber with Nairobi's ids"""
        b_client = PortalClient(self.client(), DB_NAME, B_HOST)
        b_client.login(self.ids['b']['login'], PASSWORD)
        b_session = b_client.cookie(SESSION_COOKIE)
        self.assertTrue(b_session)
        # the markers are what Nairobi's own host shows
        for path, marker in [
                ('/isp_billing/portal/dashboard', "Plan NR Walk"),
                ('/isp_billing/portal/invoice/%d' % (
                        self.ids['b']['invoice']), "120,000"),
                ('/isp_helpdesk/portal/ticket/%d' % (
                        self.ids['b']['ticket']), "Ticket NR Walk"),
                ('/isp_voucher/shop', "Voucher NR Walk"),
                ]:
            self.assertIn(marker, b_client.get(path).text, path)
        before = self.nairobi_state()
        pages = sorted((r for r in discovered_rules()
                if case_of(r) == 'page'), key=lambda r: r.rule)
        for who in ['nairobi_cookie', 'bandung_subscriber']:
            client = PortalClient(self.client(), DB_NAME, A_HOST)
            if who == 'bandung_subscriber':
                client.login(self.ids['a']['login'], PASSWORD)
            else:
                client.client.set_cookie(SESSION_COOKIE, b_session,
                    domain=A_HOST, path='/%s/' % DB_NAME)
            for rule in pages:
                path = self.arguments(rule)
                for method in sorted(rule.methods - {'HEAD', 'OPTIONS'}):
                    where = '%s %s %s' % (who, method, path)
                    with self.subTest(who=who, method=method, path=path):
                        if method == 'GET':
                            response = client.get(path)
                        else:
                            # a CSRF token of this client's session
                            client.get('/isp_base/portal/profile')
                            response = client.post(path, self.form())
                        self.assertNotServed(response, where)
        self.assertEqual(self.nairobi_state(), before)

    def test_pay_link(self):
        "Nairobi's pay link on Bandung's host: unknown, nothing opened"
        before = self.nairobi_state()
        rule, = [r for r in discovered_rules() if case_of(r) == 'pay']
        client = PortalClient(self.client(), DB_NAME, A_HOST)
        response = self.assertNotServed(
            client.get(self.arguments(rule)), 'pay link')
        self.assertEqual(response.status_code, 404)
        self.assertEqual(self.nairobi_state(), before)
        # on Nairobi's own host the link works, and on a host of no branch
        # (the server's name), and on the host of Nairobi's Payment Link
        # setting (a central payment domain that is another branch's)
        for host in [B_HOST, 'localhost', A_HOST]:
            if host == A_HOST:
                self.set_pay_url(self.ids['b']['company'],
                    'https://%s/{database}/isp_billing/pay/{token}' % A_HOST)
                self.addCleanup(self.set_pay_url,
                    self.ids['b']['company'], None)
            client = PortalClient(self.client(), DB_NAME, host)
            response = client.get(self.arguments(rule))
            self.assertIn(response.status_code, {303, 409},
                (host, response.get_data(as_text=True)[:300]))

    @staticmethod
    def set_pay_url(company_id, pattern):
        "Set the Payment Link of the company (committed)"
        with Transaction().start(DB_NAME, 0,
                context={'company': company_id}) as transaction:
            Configuration = Pool().get('isp.billing.configuration')
            Configuration.write([Configuration(1)], {'pay_url': pattern})
            transaction.commit()

    def test_webhooks(self):
        """Nairobi's payment and message providers' webhooks on Bandung's
        host signed with Bandung's secrets: refused, nothing changed"""
        a, b = self.ids['a'], self.ids['b']
        before = self.nairobi_state()
        client = PortalClient(self.client(), DB_NAME, A_HOST)
        rules = {case_of(r): r for r in discovered_rules()}
        # a payment: Nairobi's reference, Bandung's server key
        if 'reference' in b:
            gross = '%.2f' % b['amount']
            body = json.dumps({
                    'order_id': b['reference'], 'status_code': '200',
                    'gross_amount': gross, 'transaction_status': 'settlement',
                    'fraud_status': 'accept',
                    'signature_key': hashlib.sha512(
                        (b['reference'] + '200' + gross
                            + A_MIDTRANS_KEY).encode()).hexdigest(),
                    }).encode()
            response = self.assertNotServed(client.open(
                    self.arguments(rules['payment_webhook']), method='POST',
                    data=body, content_type='text/json'), 'payment webhook')
            self.assertEqual(response.status_code, 403)
        # WhatsApp (Meta): Nairobi's provider, signed with Bandung's secret
        path = self.arguments(rules['meta_webhook'])
        body = json.dumps({'entry': [{'changes': [{'value': {'messages': [{
                                    'from': '6281234567890', 'id': 'wamid.1',
                                    'type': 'text', 'text': {'body': "Hi"},
                                    'timestamp': '1700000000'}]}}]}]}
            ).encode()
        signature = 'sha256=' + hmac.new(A_META_SECRET.encode(), body,
            hashlib.sha256).hexdigest()
        response = self.assertNotServed(client.open(path, method='POST',
                data=body, content_type='text/json',
                headers={'X-Hub-Signature-256': signature}), 'meta POST')
        self.assertEqual(response.status_code, 403)
        response = self.assertNotServed(client.get(path, query_string={
                    'hub.mode': 'subscribe', 'hub.verify_token': 'verify-BR',
                    'hub.challenge': 'walk-challenge'}), 'meta GET')
        self.assertEqual(response.status_code, 403)
        self.assertNotIn('walk-challenge', response.get_data(as_text=True))
        # a callback: Nairobi's provider with Bandung's secret
        path = self.arguments(rules['callback_webhook']).replace(
            urllib.parse.quote(b['callback_secret'], safe=''),
            urllib.parse.quote(a['callback_secret'], safe=''))
        response = self.assertNotServed(client.open(path, method='POST',
                data={'from': '+254712345678', 'text': "Hi", 'id': '1'}),
            'callback')
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.nairobi_state(), before)

    def test_other_routes(self):
        """The static files and operations routes hold no tenant data; the
        staff map serves a Bandung technician's records only"""
        pool_ids = self.ids
        client = PortalClient(self.client(), DB_NAME, A_HOST)
        for rule in discovered_rules():
            if case_of(rule) in {'static', 'ops'}:
                path = self.arguments(rule) if rule.rule not in OPS \
                    else rule.rule
                response = self.client().get(path, base_url='http://'
                    + A_HOST)
                # /ready: 503 without a configured database
                self.assertNotServed(response, path, unavailable=True)
        # the map, with a Bandung technician's session and Nairobi's ids
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            User = pool.get('res.user')
            ModelData = pool.get('ir.model.data')
            user, = User.create([{'name': 'tech', 'login': 'walk-tech',
                        'groups': [('add', [ModelData.get_id(
                                        'isp_base', 'group_isp_technician')])],
                        'companies': [('add', [pool_ids['a']['company']])],
                        'company': pool_ids['a']['company']}])
            transaction.commit()
            user_id = user.id
        with Transaction().start(DB_NAME, user_id,
                context={'_check_access': True}) as transaction:
            Wizard = Pool().get('isp.network.map.open', type='wizard')
            session_id, _, _ = Wizard.create()
            result = Wizard.execute(session_id, {}, 'open_')
            Wizard.delete(session_id)
            transaction.commit()
        (action, _), = result['actions']
        url = urllib.parse.urlsplit(action['url'])
        response = client.get('%s?%s' % (
                urllib.parse.unquote(url.path), url.query))
        self.assertEqual(response.status_code, 303, response.text)
        for rule in discovered_rules():
            if case_of(rule) != 'map':
                continue
            path = self.arguments(rule)
            for query in [{}, {'router': pool_ids['b']['router']}]:
                with self.subTest(path=path, query=query):
                    self.assertNotServed(
                        client.get(path, query_string=query), path)


del RouteTestCase
