# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The public web layer (isp_base/web) and the subscribers' login, through
trytond's WSGI application as a browser reaches it: two branches with their
own portal domains, a subscriber with a portal login in each."""
import re
import unittest.mock
import urllib.parse

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base.web import NAVIGATION, portal_page
from trytond.modules.isp_base.web.security import MAX_FORM

from .portal_tools import (
    PASSWORD,
    PortalClient,
    create_branch,
    create_subscriber,
    untranslated,
)

A_HOST, B_HOST = 'bandung.portal.test', 'nairobi.portal.test'
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')


@portal_page('/isp_base/portal/test-plugin', nav='plan')
def _test_plugin_page(page):
    "A page as another module adds one (test only)"
    return page.render('isp_base/home.html')


class PortalLayerTestCase(RouteTestCase):
    "The public web layer and the subscribers' login"
    module = 'isp_base'

    @classmethod
    def setUpDatabase(cls):
        a = create_branch("NetKita Bandung", A_HOST,
            aliases='www.bandung.portal.test', lang='id')
        b = create_branch("NetKita Nairobi", B_HOST, lang='en')
        siti, _ = create_subscriber(a, "Siti Aminah",
            email='siti@example.com', lang='id', whatsapp='+6281234500001')
        budi, _ = create_subscriber(a, "Budi Santoso",
            email='budi@example.com')
        john, _ = create_subscriber(b, "John Kamau", email='john@example.com',
            lang='en')
        # for the password tests (each its own subscriber)
        for name in ["Rina", "Eko", "Wati"]:
            create_subscriber(a, name, email='%s@example.com' % name.lower())
        # not invited yet: Dewi has no portal user, Agus's is inactive
        create_subscriber(a, "Dewi", email='dewi@example.com', portal=False)
        _, agus = create_subscriber(a, "Agus", email='agus@example.com')
        agus.active = False
        agus.save()
        # Tono shares Dewi's e-mail: his portal user gets none
        create_subscriber(a, "Tono", email='dewi@example.com', portal=False)
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        User.create([{
                    'name': login, 'login': login,
                    'groups': [('add', [ModelData.get_id('isp_base', group)])],
                    'companies': [('add', [a.id])], 'company': a.id,
                    } for login, group in [
                    ('bdg_cs', 'group_isp_customer_service'),
                    ('bdg_tech', 'group_isp_technician')]])
        cls.codes = {p.name: p.subscriber_code for p in [siti, budi, john]}

    def setUp(self):
        super().setUp()
        patcher = unittest.mock.patch(
            'trytond.modules.isp_base.web_user.throttle')
        self.throttle = patcher.start()
        self.addCleanup(patcher.stop)

    def portal(self, host=A_HOST, **kwargs):
        return PortalClient(self.client(), DB_NAME, host, **kwargs)

    def assertNoLeak(self, response):
        self.assertIsNone(LEAKS.search(response.get_data(as_text=True)))

    # -- tenant --

    def test_unknown_host_404(self):
        "Several companies: an unknown host is 404, an alias is served"
        response = self.portal('other.test').get('/isp_base/portal/login')
        self.assertEqual(response.status_code, 404)
        self.assertNoLeak(response)
        response = self.portal('www.bandung.portal.test:8000').get(
            '/isp_base/portal/login')
        self.assertEqual(response.status_code, 200)
        self.assertIn('NetKita Bandung', response.get_data(as_text=True))

    def test_domain_validated(self):
        "Portal domains: host names, each one of one branch"
        from trytond.modules.isp_base.exceptions import (
            WebDomainValidationError,
        )
        for values in [{'isp_web_domain': 'bad host'},
                {'isp_web_domain': 'x_y.test'}, {'isp_web_domain': 'a..b'},
                {'isp_web_domain': '-a.test'},
                {'isp_web_domain': A_HOST.upper()},
                {'isp_web_aliases': 'ok.test\nwww.bandung.portal.test'},
                {'isp_web_aliases': 'ok.test\nOK.test'}]:
            with self.subTest(values=values), \
                    Transaction().start(DB_NAME, 0) as transaction:
                Company = Pool().get('company.company')
                a, b = Company.search([], order=[('id', 'ASC')])
                with self.assertRaises(WebDomainValidationError):
                    Company.write([b], values)
                transaction.rollback()
        with Transaction().start(DB_NAME, 0) as transaction:
            Company = Pool().get('company.company')
            a, b = Company.search([], order=[('id', 'ASC')])
            Company.write([b], {'isp_web_aliases': ' New.Test. \n\n'})
            self.assertEqual(b.isp_web_hosts(), [B_HOST, 'new.test'])
            self.assertEqual(Company.isp_web_tenant('NEW.test:443'), b)
            transaction.rollback()

    # -- login --

    def test_login_by_email_and_customer_id(self):
        "Log in with the e-mail, or with the customer ID, and see the page"
        for login in ['siti@example.com', 'SITI@example.com ',
                self.codes["Siti Aminah"],
                self.codes["Siti Aminah"].lower()]:
            with self.subTest(login=login):
                client = self.portal()
                response = client.login(login, PASSWORD)
                self.assertEqual(response.headers['Location'],
                    '/%s/isp_base/portal/' % DB_NAME)
                cookie = response.headers.getlist('Set-Cookie')
                session = [c for c in cookie if c.startswith('isp_session=')]
                self.assertEqual(len(session), 1)
                self.assertIn('HttpOnly', session[0])
                self.assertIn('SameSite=Lax', session[0])
                self.assertNotIn('Secure', session[0])
                self.assertIn('Path=/%s/' % DB_NAME, session[0])
                page = client.get('/isp_base/portal/')
                self.assertEqual(page.status_code, 200)
                self.assertIn('Siti Aminah', page.get_data(as_text=True))

    def test_secure_cookie_on_https(self):
        "Over HTTPS the session cookie is Secure"
        client = self.portal(https=True)
        response = client.login('budi@example.com', PASSWORD)
        session, = [c for c in response.headers.getlist('Set-Cookie')
            if c.startswith('isp_session=')]
        self.assertIn('Secure', session)
        # behind a trusted proxy ([web] num_proxies wraps the application
        # in NumProxyFix): X-Forwarded-Proto https is HTTPS; without it the
        # header is nobody's word
        from trytond.protocols.wrappers import Response
        from trytond.wsgi import NumProxyFix, app
        from werkzeug.test import Client
        for wsgi, secure in [(NumProxyFix(app.wsgi_app, 1), True),
                (app.wsgi_app, False)]:
            client = PortalClient(Client(wsgi, Response), DB_NAME, A_HOST)
            response = client.login('budi@example.com', PASSWORD,
                headers={'X-Forwarded-Proto': 'https',
                    'X-Forwarded-For': '203.0.113.9'})
            session, = [c for c in response.headers.getlist('Set-Cookie')
                if c.startswith('isp_session=')]
            self.assertEqual('Secure' in session, secure)

    def test_wrong_and_unknown_same_answer(self):
        "A wrong password and an unknown login get the same answer"
        answers = []
        for login, password in [
                ('budi@example.com', 'wrong-password'),
                ('nobody@example.com', 'wrong-password'),
                ('ZZ999999', 'wrong-password'),
                ('john@example.com', PASSWORD),  # Nairobi's, on Bandung
                (self.codes["John Kamau"], PASSWORD),
                ]:
            with self.subTest(login=login):
                client = self.portal()
                response = client.login(login, password, expect=401)
                self.assertIsNone(client.cookie('isp_session'))
                body = response.get_data(as_text=True)
                body = body.replace(login, '').replace(
                    client.token, '')
                answers.append(body)
        self.assertEqual(len(set(answers)), 1)
        # each got the same password check: the throttle was asked alike
        self.assertEqual(self.throttle.call_count, len(answers))

    def test_rate_limit(self):
        "After 5 failures the login is refused, the right password too"
        client = self.portal(language='en')
        login = 'siti@example.com'
        for _ in range(6):
            client.login(login, 'wrong', expect=401)
        response = client.login(login, PASSWORD, expect=429)
        self.assertIn('Too many attempts', response.get_data(as_text=True))
        delays = [c.args[0] for c in self.throttle.call_args_list]
        self.assertEqual(delays, [0, 1, 2, 3, 4, 5])
        # another subscriber's login is not affected
        self.portal().login('budi@example.com', PASSWORD)

    def test_other_branch_session_refused(self):
        "A session of branch A is not a login on branch B's host"
        a = self.portal()
        a.login('budi@example.com', PASSWORD)
        key = a.cookie('isp_session')
        b = self.portal(B_HOST)
        b.client.set_cookie('isp_session', key, domain=B_HOST,
            path='/%s/' % DB_NAME)
        response = b.get('/isp_base/portal/')
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])

    def test_login_required_redirect(self):
        "A page needing a login sends to the login page, then back"
        client = self.portal()
        response = client.get('/isp_base/portal/test-plugin')
        self.assertEqual(response.status_code, 303)
        location = response.headers['Location']
        self.assertIn('next=' + urllib.parse.quote(
                '/%s/isp_base/portal/test-plugin' % DB_NAME, safe=''),
            location)
        client.get(location)
        response = client.post('/isp_base/portal/login', {
                'login': 'budi@example.com', 'password': PASSWORD,
                'next': '/%s/isp_base/portal/test-plugin' % DB_NAME})
        self.assertEqual(response.headers['Location'],
            '/%s/isp_base/portal/test-plugin' % DB_NAME)
        for hostile in ['//evil.test/x', 'https://evil.test/',
                '/other/x', '/%s/\\evil' % DB_NAME]:
            with self.subTest(next=hostile):
                client = self.portal()
                client.get('/isp_base/portal/login')
                response = client.post('/isp_base/portal/login', {
                        'login': 'budi@example.com', 'password': PASSWORD,
                        'next': hostile})
                self.assertEqual(response.headers['Location'],
                    '/%s/isp_base/portal/' % DB_NAME)

    def test_logout_ends_session(self):
        "Log out deletes the session: its key no longer logs in"
        client = self.portal()
        client.login('budi@example.com', PASSWORD)
        key = client.cookie('isp_session')
        client.get('/isp_base/portal/')
        response = client.post('/isp_base/portal/logout')
        self.assertEqual(response.status_code, 303)
        self.assertIsNone(client.cookie('isp_session'))
        with Transaction().start(DB_NAME, 0):
            Session = Pool().get('web.user.session')
            self.assertFalse(Session.search([('key', '=', key)]))
        other = self.portal()
        other.client.set_cookie('isp_session', key, domain=A_HOST,
            path='/%s/' % DB_NAME)
        self.assertEqual(other.get('/isp_base/portal/').status_code, 303)

    def test_session_expires(self):
        "A session older than [session] web_timeout no longer logs in"
        import datetime as dt

        from sql import Table
        client = self.portal()
        response = client.login('budi@example.com', PASSWORD)
        session, = [c for c in response.headers.getlist('Set-Cookie')
            if c.startswith('isp_session=')]
        self.assertIn('Max-Age=%d' % (30 * 24 * 3600), session)
        key = client.cookie('isp_session')
        self.assertEqual(client.get('/isp_base/portal/').status_code, 200)
        with Transaction().start(DB_NAME, 0) as transaction:
            table = Table('web_user_session')
            old = dt.datetime.now() - dt.timedelta(days=31)
            transaction.connection.cursor().execute(*table.update(
                    [table.create_date, table.write_date], [old, old],
                    where=table.key == key))
            transaction.commit()
        response = client.get('/isp_base/portal/')
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])

    # -- CSRF and bad requests --

    def test_csrf_refused(self):
        "POSTs without or with a wrong CSRF token are refused, nothing done"
        client = self.portal(language='en')
        client.login('budi@example.com', PASSWORD)
        client.get('/isp_base/portal/')
        for data in [{}, {'csrf_token': ''}, {'csrf_token': 'x' * 64}]:
            with self.subTest(data=data):
                response = client.post('/isp_base/portal/logout', data,
                    csrf=False)
                self.assertEqual(response.status_code, 403)
                self.assertIn('security token',
                    response.get_data(as_text=True))
                self.assertEqual(
                    client.get('/isp_base/portal/').status_code, 200)
        # a visitor's token (pre-session) is not the session's
        anonymous = self.portal()
        anonymous.get('/isp_base/portal/login')
        response = client.post('/isp_base/portal/logout',
            {'csrf_token': anonymous.token})
        self.assertEqual(response.status_code, 403)
        # login form: no pre-session cookie
        fresh = self.portal()
        response = fresh.post('/isp_base/portal/login', {
                'login': 'budi@example.com', 'password': PASSWORD,
                'csrf_token': 'x'})
        self.assertEqual(response.status_code, 403)
        self.assertIsNone(fresh.cookie('isp_session'))

    def test_malformed_and_oversize_forms(self):
        "Oversize, non-form, non-UTF-8, NUL and mangled posts: 400/413"
        client = self.portal()
        client.get('/isp_base/portal/login')
        token = client.token.encode()
        cases = [
            (b'csrf_token=' + token + b'&login=' + b'x' * MAX_FORM,
                'application/x-www-form-urlencoded', 413),
            (b'{"login": "a"}', 'application/json', 400),
            (b'csrf_token=' + token + b'&login=%FF%FE',
                'application/x-www-form-urlencoded', 400),
            (b'csrf_token=' + token + b'&login=a%00b',
                'application/x-www-form-urlencoded', 400),
            (b'csrf_token=' + token + b'&login',
                'application/x-www-form-urlencoded', 400),
            (b'\xff\xfe\x00', 'application/x-www-form-urlencoded', 400),
            (b'&'.join([b'f%d=1' % i for i in range(200)]),
                'application/x-www-form-urlencoded', 400),
            ]
        for body, content_type, status in cases:
            with self.subTest(body=body[:40], content_type=content_type):
                response = client.open('/isp_base/portal/login',
                    method='POST', data=body, content_type=content_type)
                self.assertEqual(response.status_code, status)
                self.assertNoLeak(response)
                self.assertIsNone(client.cookie('isp_session'))

    def test_security_headers(self):
        "Every page has the security headers and is not cached"
        response = self.portal().get('/isp_base/portal/login')
        headers = response.headers
        self.assertEqual(headers['X-Content-Type-Options'], 'nosniff')
        self.assertEqual(headers['X-Frame-Options'], 'DENY')
        self.assertIn("frame-ancestors 'none'",
            headers['Content-Security-Policy'])
        self.assertIn("script-src 'self'", headers['Content-Security-Policy'])
        self.assertEqual(headers['Referrer-Policy'], 'same-origin')
        self.assertEqual(headers['Cache-Control'], 'no-store')
        body = response.get_data(as_text=True)
        self.assertNotIn('<script>', body)
        self.assertNotIn('style=', body)
        self.assertNotIn('http://', body.replace(
                'http://www.w3.org', ''))

    # -- static files --

    def test_static_files(self):
        "The stylesheet is served with ETag and Cache-Control; 304 on match"
        client = self.portal()
        page = client.get('/isp_base/portal/login').get_data(as_text=True)
        href, = re.findall(r'href="([^"]+portal\.css[^"]*)"', page)
        response = client.get(href)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.mimetype, 'text/css')
        self.assertIn('immutable', response.headers['Cache-Control'])
        etag = response.headers['ETag']
        self.assertTrue(etag)
        plain = client.get('/isp_base/static/isp_base/portal.css')
        self.assertEqual(plain.headers['Cache-Control'],
            'public, max-age=86400')
        again = client.get(href, headers={'If-None-Match': etag})
        self.assertEqual(again.status_code, 304)

    def test_static_traversal_refused(self):
        "Paths out of web/static, hidden or unknown modules: 404"
        client = self.portal()
        for path in ['isp_base/../tryton.cfg', 'isp_base/..%2Ftryton.cfg',
                'isp_base/%2e%2e/tryton.cfg', 'isp_base//etc/passwd',
                'isp_base/%2Fetc%2Fpasswd', 'isp_base/..\\tryton.cfg',
                'isp_base/.hidden', 'isp_base/', 'isp_base/nothere.css',
                'ir/x.css', 'nomodule/portal.css', 'isp_base/portal.css%00',
                '..', '../../etc/passwd']:
            with self.subTest(path=path):
                response = client.get('/isp_base/static/' + path)
                self.assertEqual(response.status_code, 404)

    # -- language --

    def test_language(self):
        """The subscriber's language, else the chosen one, else the
        browser's, else the branch's"""
        login = '/isp_base/portal/login'
        # Bandung's company speaks Indonesian, Nairobi's English
        self.assertIn('lang="id"', self.portal().get(login).get_data(
                as_text=True))
        self.assertIn('lang="en"', self.portal(B_HOST).get(login).get_data(
                as_text=True))
        body = self.portal().get(login,
            headers={'Accept-Language': 'en-GB,en;q=0.8'}).get_data(
            as_text=True)
        self.assertIn('lang="en"', body)
        self.assertIn('Forgot your password?', body)
        body = self.portal(B_HOST).get(login,
            headers={'Accept-Language': 'id'}).get_data(as_text=True)
        self.assertIn('Lupa kata sandi?', body)
        # chosen on the site (cookie) beats the browser
        client = self.portal(B_HOST)
        client.get(login, headers={'Accept-Language': 'en'})
        response = client.post('/isp_base/portal/lang', {'lang': 'id',
                'next': '/%s%s' % (DB_NAME, login)})
        self.assertEqual(response.status_code, 303)
        body = client.get(login, headers={'Accept-Language': 'en'}).get_data(
            as_text=True)
        self.assertIn('lang="id"', body)
        self.assertEqual(client.post('/isp_base/portal/lang',
                {'lang': 'fr'}).status_code, 400)
        # the subscriber's own language beats them all; the switch sets it
        client = self.portal()
        client.login('siti@example.com', PASSWORD)
        body = client.get('/isp_base/portal/',
            headers={'Accept-Language': 'en'}).get_data(as_text=True)
        self.assertIn('lang="id"', body)
        self.assertIn('ID pelanggan', body)
        client.post('/isp_base/portal/lang', {'lang': 'en'})
        body = client.get('/isp_base/portal/',
            headers={'Accept-Language': 'id'}).get_data(as_text=True)
        self.assertIn('lang="en"', body)
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Party = pool.get('party.party')
            Lang = pool.get('ir.lang')
            siti, = Party.search([('name', '=', "Siti Aminah")])
            with transaction.set_context(company=siti.isp_company.id):
                siti = Party(siti.id)
                self.assertEqual(siti.lang.code, 'en')
                Party.write([siti], {'lang': Lang.get('id').id})

    def test_language_of_branch_country(self):
        """A branch without a language of its own: its country's, as its
        notices (Indonesian in Indonesia, English elsewhere)"""
        login = '/isp_base/portal/login'
        for code, expected in [('ID', 'id'), ('KE', 'en')]:
            with Transaction().start(DB_NAME, 0) as transaction:
                pool = Pool()
                Company = pool.get('company.company')
                Country = pool.get('country.country')
                Party = pool.get('party.party')
                company, = Company.search(
                    [('party.name', '=', "NetKita Nairobi")])
                country = Country.search([('code', '=', code)]) or \
                    Country.create([{'name': code, 'code': code}])
                Party.write([company.party], {'lang': None})
                company.isp_country = country[0]
                company.save()
                transaction.commit()
            try:
                body = self.portal(B_HOST).get(login).get_data(as_text=True)
                self.assertIn('lang="%s"' % expected, body)
            finally:
                with Transaction().start(DB_NAME, 0):
                    pool = Pool()
                    Company = pool.get('company.company')
                    Lang = pool.get('ir.lang')
                    Party = pool.get('party.party')
                    company, = Company.search(
                        [('party.name', '=', "NetKita Nairobi")])
                    Party.write([company.party], {'lang': Lang.get('en').id})
                    company.isp_country = None
                    company.save()

    # -- pages of other modules --

    def test_plugin_page(self):
        "A page registered by another module plugs into layout and nav"
        # the slot as the test page registered it (isp_billing's plan page,
        # imported with every module by the pool, fills it too)
        patcher = unittest.mock.patch.dict(NAVIGATION,
            {'plan': ('isp_base', '/isp_base/portal/test-plugin')})
        patcher.start()
        self.addCleanup(patcher.stop)
        client = self.portal()
        client.login('budi@example.com', PASSWORD)
        body = client.get('/isp_base/portal/test-plugin').get_data(
            as_text=True)
        self.assertIn('href="/%s/isp_base/portal/test-plugin" '
            'data-nav="plan" aria-current="page"' % DB_NAME, body)
        # the helpdesk's place is kept
        self.assertIn('data-nav="helpdesk" aria-disabled="true"', body)
        self.assertIn('name="csrf_token"', body)


    def test_catalog_complete(self):
        "Every message of isp_base's pages has its Indonesian translation"
        import pathlib
        web = pathlib.Path(__file__).resolve().parents[1] / 'web'
        self.assertEqual(untranslated(web), [])


    # -- passwords: reset, change, invitation --

    def messages(self, event):
        "The messages of `event`: (party name, channel, recipient, body)"
        with Transaction().start(DB_NAME, 0):
            Message = Pool().get('isp.message')
            return [(m.party.name, m.channel, m.recipient, m.body)
                for m in Message.search([('event', '=', event)],
                    order=[('id', 'ASC')])]

    def link_of(self, body):
        url, = re.findall(r'https?://\S+', body)
        parts = urllib.parse.urlsplit(url)
        return parts, dict(urllib.parse.parse_qsl(parts.query))

    def test_reset_password(self):
        """Reset by e-mail: same answer for anybody, a link through the
        queue; the new password ends the other sessions, the link is used
        once"""
        other = self.portal()
        other.login('rina@example.com', PASSWORD)
        answers = []
        for login in ['rina@example.com', 'nobody@example.com',
                'john@example.com']:
            client = self.portal(language='en')
            client.get('/isp_base/portal/reset')
            response = client.post('/isp_base/portal/reset',
                {'login': login, 'channel': 'email'})
            self.assertEqual(response.status_code, 200)
            answers.append(response.get_data(as_text=True).replace(
                    login, '').replace(client.token, ''))
        self.assertEqual(len(set(answers)), 1)
        self.assertIn('If an account matches', answers[0])
        (name, channel, recipient, body), = [m for m in self.messages(
                'portal_reset') if m[0] == "Rina"]
        self.assertEqual((channel, recipient), ('email', 'rina@example.com'))
        self.assertFalse([m for m in self.messages('portal_reset')
                if m[0] == "John Kamau"])
        parts, query = self.link_of(body)
        self.assertEqual(parts.netloc, A_HOST)
        self.assertEqual(parts.path,
            '/%s/isp_base/portal/password' % DB_NAME)
        # asking again at once sends nothing more
        client.get('/isp_base/portal/reset')
        client.post('/isp_base/portal/reset',
            {'login': 'rina@example.com', 'channel': 'email'})
        self.assertEqual(len([m for m in self.messages('portal_reset')
                    if m[0] == "Rina"]), 1)

        link = self.portal(language='en')
        page = link.get(parts.path + '?' + parts.query)
        self.assertEqual(page.status_code, 200)
        self.assertIn('name="token"', page.get_data(as_text=True))
        # not on Nairobi's host
        self.assertEqual(self.portal(B_HOST).get(
                parts.path + '?' + parts.query).status_code, 404)
        for data, status in [
                ({'password': 'Another-2026', 'password2': 'Other-2026'},
                    400),
                ({'password': 'short', 'password2': 'short'}, 400),
                ({'password': 'Rina', 'password2': 'Rina'}, 400),
                ({'password': 'New-Rina-2026', 'password2': 'New-Rina-2026',
                        'token': 'f' * 64}, 404),
                ]:
            with self.subTest(data=data):
                response = link.post('/isp_base/portal/password',
                    {'token': query['token'], **data})
                self.assertEqual(response.status_code, status)
        # nothing changed: the old password still logs in
        self.portal().login('rina@example.com', PASSWORD)
        response = link.post('/isp_base/portal/password', {
                'token': query['token'], 'password': 'New-Rina-2026',
                'password2': 'New-Rina-2026'})
        self.assertEqual(response.status_code, 303)
        self.assertIn('done=password', response.headers['Location'])
        # the sessions of before are ended, the link is used
        self.assertEqual(other.get('/isp_base/portal/').status_code, 303)
        self.assertEqual(link.get(
                parts.path + '?' + parts.query).status_code, 404)
        self.portal().login('rina@example.com', PASSWORD, expect=401)
        self.portal().login('rina@example.com', 'New-Rina-2026')

    def test_reset_by_whatsapp(self):
        "Reset by WhatsApp with the customer ID: the link to the number"
        client = self.portal()
        client.get('/isp_base/portal/reset')
        client.post('/isp_base/portal/reset',
            {'login': self.codes["Siti Aminah"], 'channel': 'whatsapp'})
        (name, channel, recipient, body), = [m for m in self.messages(
                'portal_reset') if m[0] == "Siti Aminah"]
        self.assertEqual((channel, recipient), ('whatsapp', '+6281234500001'))
        self.assertIn('Halo Siti Aminah', body)
        self.assertEqual(client.post('/isp_base/portal/reset',
                {'login': 'x', 'channel': 'fax'}).status_code, 400)

    def test_change_password_ends_other_sessions(self):
        "A password change keeps this session and ends the others"
        one, two = self.portal(language='en'), self.portal()
        one.login('eko@example.com', PASSWORD)
        two.login('eko@example.com', PASSWORD)
        one.get('/isp_base/portal/password/change')
        response = one.post('/isp_base/portal/password/change', {
                'current': 'wrong', 'password': 'Eko-New-2026',
                'password2': 'Eko-New-2026'})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(two.get('/isp_base/portal/').status_code, 200)
        response = one.post('/isp_base/portal/password/change', {
                'current': PASSWORD, 'password': 'Eko-New-2026',
                'password2': 'Eko-New-2026'})
        self.assertEqual(response.status_code, 200)
        self.assertIn('other sessions are ended',
            response.get_data(as_text=True))
        self.assertEqual(one.get('/isp_base/portal/').status_code, 200)
        self.assertEqual(two.get('/isp_base/portal/').status_code, 303)
        self.portal().login('eko@example.com', 'Eko-New-2026')

    def run_invite(self, login, names, channel='email'):
        pool = Pool()
        User = pool.get('res.user')
        Party = pool.get('party.party')
        Wizard = pool.get('isp.portal.invite', type='wizard')
        user, = User.search([('login', '=', login)])
        parties = Party.search([('name', 'in', names)])
        transaction = Transaction()
        with transaction.set_user(user.id), transaction.set_context(
                company=user.company.id, active_model='party.party',
                active_id=parties[0].id,
                active_ids=[p.id for p in parties]):
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            Wizard.execute(session_id, {'start': {'channel': channel,
                        'subscribers': len(parties)}}, 'invite')
            Wizard.delete(session_id)

    def test_invite(self):
        """The invitation wizard (bulk): portal users created or reactivated,
        links sent through the queue; the link sets the first password"""
        with Transaction().start(DB_NAME, 0) as transaction:
            self.run_invite('bdg_cs', ["Dewi", "Agus", "Tono"])
            transaction.commit()
        with Transaction().start(DB_NAME, 0, context={'active_test': False}):
            WebUser = Pool().get('web.user')
            users = {u.party.name: u for u in WebUser.search([
                        ('party.name', 'in', ["Dewi", "Agus", "Tono"])])}
            self.assertEqual(set(users), {"Dewi", "Agus", "Tono"})
            for user in users.values():
                self.assertTrue(user.active)
                self.assertEqual(user.isp_company, user.party.isp_company)
            self.assertEqual(users["Dewi"].email, 'dewi@example.com')
            self.assertIsNone(users["Tono"].email)
            tono_code = users["Tono"].party.subscriber_code
        sent = {m[0]: m for m in self.messages('portal_invite')}
        self.assertEqual(set(sent), {"Dewi", "Agus", "Tono"})
        parts, query = self.link_of(sent["Tono"][3])
        client = self.portal(language='en')
        page = client.get(parts.path + '?' + parts.query)
        self.assertIn('Welcome to your customer portal',
            page.get_data(as_text=True))
        client.post('/isp_base/portal/password', {'token': query['token'],
                'password': 'Tono-Pass-2026', 'password2': 'Tono-Pass-2026'})
        self.portal().login(tono_code, 'Tono-Pass-2026')
        # the invitation link is used; a second one replaces it
        self.assertEqual(client.get(
                parts.path + '?' + parts.query).status_code, 404)

    def test_invite_refused(self):
        "Another branch's subscriber is refused, nothing is created"
        from trytond.exceptions import UserError
        with Transaction().start(DB_NAME, 0) as transaction:
            WebUser = Pool().get('web.user')
            before = WebUser.search([], count=True)
            with self.assertRaises(UserError) as cm:
                self.run_invite('bdg_cs', ["John Kamau"])
            self.assertNotIn("John", str(cm.exception.args))
            self.assertEqual(WebUser.search([], count=True), before)
            Message = Pool().get('isp.message')
            self.assertFalse(Message.search([
                        ('event', '=', 'portal_invite'),
                        ('party.name', '=', "John Kamau")]))
            transaction.rollback()


del RouteTestCase
