# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The plan change request: asked on the customer portal (only plans of the
subscriber's branch, for the subscriber's own services), seen and cancelled
there; approved or refused in the back office by the right groups of the
branch, the approval applying the prorated plan change."""
import os
import pathlib
import re
import unittest.mock
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.portal_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    PortalClient,
    browser_route,
    create_subscriber,
    untranslated,
)
from trytond.modules.isp_billing.billing import (
    billing_date_on_or_before,
    period_from,
    prorate,
)

from .payment_setup import (
    SEQUENCES,
    SETUP_TABLES,
    create_plan_and_router,
    run_locked,
)
from .test_portal_billing import _branch, _service

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

A_HOST, B_HOST = 'bandung.plan.test', 'nairobi.plan.test'
PLAN = '/isp_billing/portal/plan'
CANCEL = '/isp_billing/portal/plan/cancel'
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')
IMG = pathlib.Path(__file__).resolve().parents[3] / 'docs' / 'img'


def _plan(company, name, price, **values):
    pool = Pool()
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')])
    plan, = Template.create([{
                'name': name, 'isp_plan': True, 'type': 'service',
                'isp_company': company.id if company else None,
                'default_uom': unit.id, 'list_price': Decimal(price),
                'download_rate': 50000, 'upload_rate': 10000,
                'products': [('create', [{}])], **values}])
    return plan


def _staff(login, group, company):
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    user, = User.create([{
                'name': login, 'login': login,
                'groups': [('add', [ModelData.get_id('isp_base', group)])],
                'companies': [('add', [company.id])], 'company': company.id,
                }])
    return user.id


class PortalPlanTestCase(RouteTestCase):
    "Plan change requests: the portal page and the back office decision"
    module = 'isp_billing'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = run_locked(cls.setup_data, tables=SETUP_TABLES)[0]

    @classmethod
    def setup_data(cls):
        a = _branch("NetKita Bandung", A_HOST, 'id')
        b = _branch("NetKita Nairobi", B_HOST, 'en')
        ids = {'a': a.id, 'b': b.id}
        with Transaction().set_context(company=a.id):
            home20, router = create_plan_and_router(a, "Home 20", 150000,
                'BD')
            home50 = _plan(a, "Home 50", 300000)
            old = _plan(a, "Old 10", 90000, active=False)
            central = _plan(None, "Central 100", 450000)
            services = {}
            for number, (name, email, lang) in enumerate([
                        ("Siti Aminah", 'siti@example.com', 'id'),
                        ("Budi Santoso", 'budi@example.com', 'en'),
                        ("Rina", None, None), ("Eko", None, None),
                        ("Wati", None, None),
                        ("Dewi Lestari", 'dewi@example.com', 'id')], 1):
                party, _ = create_subscriber(a, name, email=email, lang=lang,
                    portal=bool(email))
                services[name] = _service(a, party, home20, router,
                    number).id
        with Transaction().set_context(company=b.id):
            nairobi10, router_b = create_plan_and_router(b, "Nairobi 10",
                2000, 'NB')
            john, _ = create_subscriber(b, "John Kamau",
                email='john@example.com', lang='en')
            services["John Kamau"] = _service(b, john, nairobi10, router_b,
                1).id
        ids.update({
                'home20': home20.id, 'home50': home50.id, 'old': old.id,
                'central': central.id, 'nairobi10': nairobi10.id,
                'services': services,
                'users': {
                    'cs': _staff('bdg_cs', 'group_isp_customer_service', a),
                    'admin': _staff('bdg_admin', 'group_isp_branch_admin',
                        a),
                    'tech': _staff('bdg_tech', 'group_isp_technician', a),
                    'finance': _staff('bdg_finance', 'group_isp_finance',
                        a),
                    'nairobi': _staff('nrb_admin', 'group_isp_branch_admin',
                        b),
                    },
                })
        return ids

    def setUp(self):
        super().setUp()
        patcher = unittest.mock.patch(
            'trytond.modules.isp_base.web_user.throttle')
        patcher.start()
        self.addCleanup(patcher.stop)

    def portal(self, login=None, host=A_HOST):
        client = PortalClient(self.client(), DB_NAME, host)
        if login:
            client.login(login, PASSWORD)
        return client

    def page(self, client, status=200):
        response = client.get(PLAN)
        body = response.get_data(as_text=True)
        self.assertEqual(response.status_code, status, body[:600])
        self.assertIsNone(LEAKS.search(body), body)
        return body

    def requests(self, name=None):
        "(service's subscriber, requested plan, state) of the requests"
        with Transaction().start(DB_NAME, 0):
            Request = Pool().get('isp.plan.change.request')
            return [(r.subscriber.name, r.requested_plan.name, r.state)
                for r in Request.search([], order=[('id', 'ASC')])
                if name is None or r.subscriber.name == name]

    # -- the portal page ------------------------------------------------------

    def test_plan_page_languages(self):
        """The branch's plans (own and central, active) in the subscriber's
        language; never another branch's or an inactive plan"""
        client = self.portal('siti@example.com')
        body = self.page(client)
        self.assertIn('lang="id"', body)
        self.assertIn('Ganti paket', body)
        self.assertIn('data-nav="plan" aria-current="page"', body)
        for name in ["Home 20", "Home 50", "Central 100"]:
            self.assertIn(name, body)
        self.assertNotIn("Old 10", body)
        self.assertNotIn("Nairobi 10", body)
        self.assertIn('Rp300.000', body)
        body = self.page(self.portal('budi@example.com'))
        self.assertIn('lang="en"', body)
        self.assertIn('Change plan', body)
        body = self.page(self.portal('john@example.com', host=B_HOST))
        self.assertIn("Nairobi 10", body)
        self.assertIn("Central 100", body)
        self.assertNotIn("Home 50", body)

    def test_current_plan_not_offered(self):
        """Each service's form offers the branch's other plans, never the
        plan the service already has (asking for it is refused)"""
        ids = self.ids
        for login, host, offered in [
                ('siti@example.com', A_HOST, {'home50', 'central'}),
                ('budi@example.com', A_HOST, {'home50', 'central'}),
                ('john@example.com', B_HOST, {'central'})]:
            with self.subTest(login=login):
                body = self.page(self.portal(login, host=host))
                forms = re.findall(r'<form [^>]*data-service="(\d+)"'
                    r'(.*?)</form>', body, re.S)
                self.assertTrue(forms)
                with Transaction().start(DB_NAME, 0):
                    Service = Pool().get('isp.service')
                    for service_id, form in forms:
                        service = Service(int(service_id))
                        choices = {int(v) for v in re.findall(
                                r'name="plan" value="(\d+)"', form)}
                        self.assertNotIn(service.plan.id, choices)
                        if service.plan.id == ids['home20'] or (
                                host == B_HOST):
                            self.assertEqual(choices,
                                {ids[k] for k in offered})

    def test_request_and_cancel(self):
        """A request per service: shown pending, a second one refused while
        it is, cancelled by the subscriber"""
        ids = self.ids
        client = self.portal('siti@example.com')
        self.page(client)
        service = ids['services']["Siti Aminah"]
        response = client.post(PLAN, {'service': service,
                'plan': ids['home50']})
        self.assertEqual(response.status_code, 303)
        self.assertIn('done=requested', response.headers['Location'])
        body = client.get(response.headers['Location']).get_data(
            as_text=True)
        self.assertIn('Permintaan Anda sudah dikirim', body)
        self.assertIn('data-state="requested"', body)
        self.assertIn('Menunggu', body)
        self.assertEqual(self.requests("Siti Aminah"),
            [("Siti Aminah", "Home 50", 'requested')])
        response = client.post(PLAN, {'service': service,
                'plan': ids['central']})
        self.assertEqual(response.status_code, 400)
        self.assertIn('sudah ada permintaan', response.get_data(
                as_text=True))
        self.assertEqual(len(self.requests("Siti Aminah")), 1)
        request_id = re.search(r'name="request" value="(\d+)"',
            response.get_data(as_text=True)).group(1)
        # another subscriber cannot cancel it
        budi = self.portal('budi@example.com')
        self.page(budi)
        self.assertEqual(budi.post(CANCEL, {'request': request_id})
            .status_code, 404)
        response = client.post(CANCEL, {'request': request_id})
        self.assertEqual(response.status_code, 303)
        body = client.get(response.headers['Location']).get_data(
            as_text=True)
        self.assertIn('data-state="cancelled"', body)
        self.assertEqual(client.post(CANCEL, {'request': request_id})
            .status_code, 400)
        self.assertEqual(self.requests("Siti Aminah"),
            [("Siti Aminah", "Home 50", 'cancelled')])

    def test_request_refused(self):
        """Another branch's, an inactive or unknown plan, another
        subscriber's service: 404; the current plan, missing fields: 400;
        without CSRF token: 403; not logged in: the login page.  Nothing
        created."""
        ids = self.ids
        service = ids['services']["Budi Santoso"]
        client = self.portal('budi@example.com')
        self.page(client)
        for data, status in [
                ({'service': service, 'plan': ids['nairobi10']}, 404),
                ({'service': service, 'plan': ids['old']}, 404),
                ({'service': service, 'plan': 'x'}, 404),
                ({'service': service, 'plan': 2 ** 40}, 404),
                ({'service': ids['services']["Siti Aminah"],
                        'plan': ids['home50']}, 404),
                ({'service': ids['services']["John Kamau"],
                        'plan': ids['home50']}, 404),
                ({'service': '-1', 'plan': ids['home50']}, 404),
                ({'service': service, 'plan': ids['home20']}, 400),
                ({'service': service}, 400),
                ({}, 400),
                ]:
            with self.subTest(data=data):
                response = client.post(PLAN, data)
                self.assertEqual(response.status_code, status)
                self.assertIsNone(LEAKS.search(response.get_data(
                            as_text=True)))
        response = client.post(PLAN, {'service': service,
                'plan': ids['home20']})
        self.assertIn('already the plan of the service',
            response.get_data(as_text=True))
        response = client.post(PLAN, {'service': service,
                'plan': ids['home50']}, csrf=False)
        self.assertEqual(response.status_code, 403)
        anonymous = self.portal()
        response = anonymous.get(PLAN)
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])
        anonymous.get('/isp_base/portal/login')
        response = anonymous.post(PLAN, {'service': service,
                'plan': ids['home50']})
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])
        # John on Bandung's host is nobody; Bandung's plan on Nairobi's: 404
        john = self.portal('john@example.com', host=B_HOST)
        self.page(john)
        self.assertEqual(john.post(PLAN, {
                    'service': ids['services']["John Kamau"],
                    'plan': ids['home50']}).status_code, 404)
        self.assertEqual(self.requests("Budi Santoso"), [])
        self.assertEqual(self.requests("John Kamau"), [])

    def test_catalog_complete(self):
        "Every message of isp_billing's pages has its Indonesian translation"
        from babel.messages.extract import extract_from_file
        web = pathlib.Path(__file__).resolve().parents[1] / 'web'
        keywords = {'_': None, 'gettext': None, 'N_': None}
        mine = {message for method, path in [
                ('python', web / 'plan.py'),
                ('jinja2', web / 'templates' / 'plan.html')]
            for _, message, _, _ in extract_from_file(method, str(path),
                keywords=keywords)}
        self.assertGreater(len(mine), 10)
        self.assertEqual(sorted(mine & set(untranslated(web))), [])

    # -- in Chromium: the screenshots of docs/portal.md ----------------------

    @unittest.skipIf(sync_playwright is None or not os.path.exists(CHROMIUM),
        "Playwright or Debian's chromium missing")
    def test_browser_profile_and_plan(self):
        """Profile and plan pages in Chromium, at 360 px in Indonesian and
        on a desktop in English: a refused phone, a plan requested; no
        horizontal scroll (docs/img/portal-profile*.png, portal-plan*.png)"""
        from trytond.protocols.wrappers import Response
        from trytond.wsgi import app
        from werkzeug.test import Client
        self.failures = []
        serve = browser_route(Client(app, Response, use_cookies=False),
            self.failures, follow=True)
        IMG.mkdir(parents=True, exist_ok=True)
        base = 'http://%s/%s' % (A_HOST, DB_NAME)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                args=CHROMIUM_ARGS)
            try:
                for lang, (width, height), suffix, plan in [
                        ('id', (360, 740), '', "Home 50"),
                        ('en', (1280, 800), '-desktop-en', "Central 100")]:
                    with self.subTest(lang=lang):
                        self.browse(browser, serve, base, lang, width,
                            height, suffix, plan)
            finally:
                browser.close()
        self.assertEqual(self.failures, [])

    def browse(self, browser, serve, base, lang, width, height, suffix,
            plan):
        context = browser.new_context(viewport={
                'width': width, 'height': height}, locale=lang,
            extra_http_headers={'Accept-Language': lang})

        def submit(selector):
            with page.expect_navigation():
                page.click(selector)
        try:
            page = context.new_page()
            page.route('**/*', serve)
            page.goto(base + '/isp_base/portal/login?next=/%s%s' % (
                    DB_NAME, '/isp_base/portal/profile'))
            page.fill('#login', 'dewi@example.com')
            page.fill('#password', PASSWORD)
            submit('button.primary')
            submit('.lang-switch button[value="%s"]' % lang)
            page.fill('#phone', '0812-abc')
            submit('#profile-form button.primary')
            self.assertEqual(page.locator('html').get_attribute('lang'),
                lang)
            self.assertTrue(page.locator('#phone-error').is_visible())
            self.assertLessEqual(page.evaluate(
                    "document.documentElement.scrollWidth"), width)
            page.screenshot(path=str(IMG / ('portal-profile%s.png'
                        % suffix)), full_page=True)
            page.goto(base + PLAN)
            # every navigation entry on the screen, Helpdesk included
            self.assertEqual(page.locator('.site-nav li').count(), 5)
            self.assertLessEqual(page.evaluate("Math.max(...Array.from("
                    "document.querySelectorAll('.site-nav li'), "
                    "e => e.getBoundingClientRect().right))"), width)
            self.assertTrue(page.locator('[data-nav="helpdesk"]')
                .is_visible())
            page.get_by_text(plan, exact=False).first.click()
            submit('.plan-form button.primary')
            self.assertEqual(page.locator(
                    '#plan-requests li[data-state="requested"]').count(), 1)
            self.assertLessEqual(page.evaluate(
                    "document.documentElement.scrollWidth"), width)
            page.screenshot(path=str(IMG / ('portal-plan%s.png' % suffix)),
                full_page=True)
            # cancelled for the next run
            submit('#plan-requests button')
            self.assertEqual(page.locator(
                    '#plan-requests li[data-state="requested"]').count(), 0)
        finally:
            context.close()

    # -- the back office ------------------------------------------------------

    def request(self, name, plan):
        "A committed pending request of `name`'s service for `plan`"
        def make():
            pool = Pool()
            Request = pool.get('isp.plan.change.request')
            Service = pool.get('isp.service')
            Template = pool.get('product.template')
            return Request.request(Service(self.ids['services'][name]),
                Template(self.ids[plan]), origin='staff').id
        return run_locked(make)[0]

    def decide(self, user, request_id, button='approve'):
        "Click `button` on the request as staff `user` (an RPC's checks)"
        def click():
            pool = Pool()
            Request = pool.get('isp.plan.change.request')
            getattr(Request, button)([Request(request_id)])
        run_locked(click, user=self.ids['users'][user], tables=SEQUENCES,
            company=self.ids['a'], _check_access=True)

    def test_approve_prorated(self):
        """Customer service and branch administrators approve: the plan
        changes and the rest of the billed period is credited on the old
        plan and charged on the new"""
        for user, name, plan, price in [
                ('cs', "Rina", 'home50', 300000),
                ('admin', "Eko", 'central', 450000)]:
            with self.subTest(user=user):
                request_id = self.request(name, plan)
                self.decide(user, request_id)
                with Transaction().start(DB_NAME, 0):
                    pool = Pool()
                    Request = pool.get('isp.plan.change.request')
                    Line = pool.get('account.invoice.line')
                    Date = pool.get('ir.date')
                    request = Request(request_id)
                    self.assertEqual(request.state, 'approved')
                    self.assertEqual(request.decided_by.id,
                        self.ids['users'][user])
                    self.assertTrue(request.decision_date)
                    service = request.service
                    self.assertEqual(service.plan.id, self.ids[plan])
                    with Transaction().set_context(company=self.ids['a']):
                        today = Date.today()
                    _, cycle_end, _, cycle_days = period_from(
                        billing_date_on_or_before(today, 1), 1)
                    days = (min(cycle_end, service.billed_until)
                        - today).days + 1
                    lines = Line.search([('isp_service', '=', service.id),
                            ('isp_kind', 'in', ['plan_credit',
                                    'plan_charge'])])
                    self.assertEqual(sorted((line.isp_kind,
                                line.unit_price) for line in lines), [
                            ('plan_charge',
                                prorate(price, days, cycle_days).quantize(
                                    Decimal(1))),
                            ('plan_credit',
                                -prorate(150000, days, cycle_days).quantize(
                                    Decimal(1))),
                            ])
                    self.assertEqual({line.invoice.state for line in lines},
                        {'posted'})

    def test_decide_refused(self):
        """A technician, finance, or another branch's administrator cannot
        approve or refuse; the request stays pending, the plan unchanged"""
        request_id = self.request("Wati", 'home50')
        for user in ['tech', 'finance', 'nairobi']:
            for button in ['approve', 'refuse']:
                with self.subTest(user=user, button=button):
                    with self.assertRaises((AccessError, UserError)):
                        self.decide(user, request_id, button)
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Request = pool.get('isp.plan.change.request')
            request = Request(request_id)
            self.assertEqual(request.state, 'requested')
            self.assertEqual(request.service.plan.id, self.ids['home20'])
            # nor can Nairobi's administrator see it
            transaction = Transaction()
            with transaction.set_user(self.ids['users']['nairobi']), \
                    transaction.set_context(company=self.ids['b'],
                        _check_access=True):
                self.assertEqual(Request.search([]), [])
        # customer service refuses it
        self.decide('cs', request_id, 'refuse')
        self.assertEqual(self.requests("Wati"),
            [("Wati", "Home 50", 'refused')])

    def test_request_rules(self):
        """The model refuses a plan of another branch, an inactive one, the
        current one and a second pending request of a service"""
        ids = self.ids
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Request = pool.get('isp.plan.change.request')
            Service = pool.get('isp.service')
            Template = pool.get('product.template')
            service = Service(ids['services']["Budi Santoso"])
            for plan in ['nairobi10', 'old', 'home20']:
                with self.subTest(plan=plan), self.assertRaises(UserError):
                    Request.request(service, Template(ids[plan]))
                transaction.rollback()
            Request.request(service, Template(ids['home50']))
            with self.assertRaises(UserError):
                Request.request(service, Template(ids['central']))
            transaction.rollback()
            # customer service records a request from the back office (the
            # company, subscriber and current plan come from the service)
            with transaction.set_user(ids['users']['cs']), \
                    transaction.set_context(company=ids['a'],
                        _check_access=True):
                request, = Request.create([{'service': service.id,
                            'requested_plan': ids['central']}])
                self.assertEqual((request.company.id, request.subscriber,
                        request.current_plan.id, request.state,
                        request.origin), (ids['a'], service.subscriber,
                        ids['home20'], 'requested', 'staff'))
                with self.assertRaises(UserError):
                    Request.create([{'service': service.id,
                                'requested_plan': ids['central'],
                                'state': 'approved'}])
            transaction.rollback()
