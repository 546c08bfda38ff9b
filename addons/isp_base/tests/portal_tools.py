# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Helpers of the public pages' route tests: branches with a portal domain,
subscribers with a portal login, and a werkzeug client that logs in and
posts forms with their CSRF token.

    class MyPortalTestCase(RouteTestCase):
        module = 'isp_billing'

        @classmethod
        def setUpDatabase(cls):
            cls.data = portal_branches()   # committed once per class

        def test_x(self):
            client = PortalClient(self.client(), DB_NAME, 'bandung.test')
            client.login('S-BDG-1@example.com', PASSWORD)
            response = client.get('/isp_billing/portal/invoices')
"""
import html
import re

from trytond.modules.company.tests import create_company
from trytond.pool import Pool
from trytond.transaction import Transaction

# Debian's chromium for the Playwright tests, and its options
from tools.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: F401

PASSWORD = 'Portal-Pass-2026'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: What a page may never show: the text of an exception
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')


def create_branch(name, domain, aliases=None, lang=None):
    "A company with a portal domain (and the user in it)"
    pool = Pool()
    User = pool.get('res.user')
    Lang = pool.get('ir.lang')
    company = create_company(name)
    company.isp_web_domain = domain
    company.isp_web_aliases = aliases
    company.save()
    if lang:
        company.party.lang = Lang.get(lang)
        company.party.save()
    User.write([User(Transaction().user)], {
            'companies': [('add', [company.id])], 'company': company.id})
    return company


def create_subscriber(company, name, email=None, whatsapp=None, lang=None,
        password=PASSWORD, portal=True):
    """A subscriber of `company` (numbered) and, when `portal`, its active
    portal user with `password`"""
    pool = Pool()
    Party = pool.get('party.party')
    WebUser = pool.get('web.user')
    Lang = pool.get('ir.lang')
    mechanisms = []
    if email:
        mechanisms.append({'type': 'email', 'value': email})
    with Transaction().set_context(company=company.id):
        party, = Party.create([{
                    'name': name,
                    'is_subscriber': True,
                    'isp_company': company.id,
                    'whatsapp': whatsapp,
                    'lang': Lang.get(lang).id if lang else None,
                    'addresses': [('create', [{}])],
                    'contact_mechanisms': [('create', mechanisms)],
                    }])
    user = None
    if portal:
        user, = WebUser.create([{
                    'email': email,
                    'party': party.id,
                    'isp_company': company.id,
                    'password': password,
                    }])
    return party, user


class PortalClient:
    "A werkzeug test client on one database and host, with CSRF tokens"

    def __init__(self, client, database, host, https=False, language=None):
        """language: the browser's Accept-Language (default: none, the
        pages are in the subscriber's or the branch's language)"""
        self.client = client
        self.language = language
        self.database = database
        self.host = host
        self.base = ('https://' if https else 'http://') + host
        self.token = None

    def url(self, path):
        "The path of a route path (without or with the database)"
        if path.startswith('/' + self.database + '/'):
            return path
        return '/' + self.database + path

    def open(self, path, **kwargs):
        "A request of this client's host (no CSRF token added)"
        kwargs.setdefault('base_url', self.base)
        if self.language:
            headers = dict(kwargs.pop('headers', None) or {})
            headers.setdefault('Accept-Language', self.language)
            kwargs['headers'] = headers
        response = self.client.open(self.url(path), **kwargs)
        self._remember(response)
        return response

    def get(self, path, **kwargs):
        return self.open(path, method='GET', **kwargs)

    def post(self, path, data=None, csrf=True, **kwargs):
        "POST a form; `csrf`: add the token of the last page read"
        data = dict(data or {})
        if csrf and 'csrf_token' not in data:
            data['csrf_token'] = self.token or ''
        return self.open(path, method='POST', data=data, **kwargs)

    def _remember(self, response):
        if response.mimetype == 'text/html':
            found = CSRF.search(response.get_data(as_text=True))
            if found:
                self.token = html.unescape(found.group(1))

    def login(self, login, password, expect=303, **kwargs):
        "Open the login page and log in"
        self.get('/isp_base/portal/login', **kwargs)
        response = self.post('/isp_base/portal/login',
            {'login': login, 'password': password}, **kwargs)
        assert response.status_code == expect, (response.status_code,
            response.get_data(as_text=True)[:500])
        return response

    def cookie(self, name):
        cookie = self.client.get_cookie(name, path='/%s/' % self.database,
            domain=self.host)
        return cookie.value if cookie else None


class PortalTestMixin:
    """Route tests of portal pages: no login delay (web_user's throttle),
    `portal(login, host)` a logged-in PortalClient, `page(client, path,
    status)` a page's text checked for its status and leaks"""

    def setUp(self):
        import unittest.mock
        super().setUp()
        patcher = unittest.mock.patch(
            'trytond.modules.isp_base.web_user.throttle')
        patcher.start()
        self.addCleanup(patcher.stop)

    def portal(self, login, host):
        from trytond.tests.test_tryton import DB_NAME
        client = PortalClient(self.client(), DB_NAME, host)
        client.login(login, PASSWORD)
        return client

    def page(self, client, path, status=200):
        response = client.get(path)
        body = response.get_data(as_text=True)
        self.assertEqual(response.status_code, status, body[:600])
        self.assertIsNone(LEAKS.search(body), body)
        return body


def untranslated(web_directory, language='id'):
    """The messages of a module's pages (its web/ Python files and
    templates, as babel.cfg extracts them) without a translation in its
    `language` catalog"""
    import pathlib

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po
    web_directory = pathlib.Path(web_directory)
    method_map = [('**.py', 'python'), ('templates/**.html', 'jinja2')]
    keywords = {'_': None, 'gettext': None, 'N_': None,
        'ngettext': (1, 2)}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(web_directory),
            method_map=method_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    path = web_directory / 'locale' / language / 'LC_MESSAGES' / 'messages.po'
    with open(path, 'rb') as fp:
        catalog = read_po(fp)
    return sorted(m for m in found
        if not (catalog.get(m) and catalog.get(m).string))


def browser_route(wsgi, failures, follow=False):
    """A Playwright route handler (``page.route('**/*', handler)``) that
    answers every request of the browser with trytond's WSGI application
    through `wsgi` (a werkzeug test client without cookies: the browser
    keeps them), headers (cookies, Content-Security-Policy) included; an
    exception is appended to `failures` and the request aborted.  No server
    needed.  `follow`: redirects are followed here (with the cookies they
    set) and the last answer given: Chromium does not always hand the
    request of a fulfilled redirect to the route."""
    import http.cookies
    import urllib.parse

    def fetch(method, url, headers, data):
        url = urllib.parse.urlsplit(url)
        return wsgi.open(
            url.path + ('?' + url.query if url.query else ''),
            method=method, headers=headers, data=data,
            base_url='%s://%s' % (url.scheme, url.netloc))

    def answer(route, request):
        headers = {k: v for k, v in request.headers.items()
            if k.lower() not in {'host', 'content-length'}}
        response = fetch(request.method, request.url, headers,
            request.post_data_buffer or b'')
        cookies = response.headers.getlist('Set-Cookie')
        url = request.url
        while follow and response.status_code in {301, 302, 303, 307}:
            jar = http.cookies.SimpleCookie(headers.get('cookie', ''))
            for cookie in cookies:
                jar.load(cookie)
            headers['cookie'] = '; '.join('%s=%s' % (k, m.value)
                for k, m in jar.items() if m.value)
            url = urllib.parse.urljoin(url, response.headers['Location'])
            response = fetch('GET', url, headers, b'')
            cookies += response.headers.getlist('Set-Cookie')
        route.fulfill(status=response.status_code,
            headers={k: v for k, v in response.headers.items()
                if k.lower() != 'content-length'} | {
                'set-cookie': '\n'.join(cookies)},
            body=response.get_data())

    def serve(route, request):
        try:
            answer(route, request)
        except Exception as exception:
            failures.append(repr(exception))
            route.abort()
    return serve
