# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The portal's login page in headless Chromium (Playwright, Debian's
chromium), at phone (360 px) and desktop sizes, in Indonesian and English.

No server: Playwright hands every request of the page to trytond's WSGI
application (werkzeug's test client) and gives the browser its answer, with
its headers (cookies, Content-Security-Policy): the page, its stylesheet and
the login form behave as served.  Screenshots: docs/img/portal-*.png."""
import os
import pathlib
import unittest

from trytond.protocols.wrappers import Response
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.wsgi import app
from werkzeug.test import Client

from .portal_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    browser_route,
    create_branch,
    create_subscriber,
)

HOST = 'bandung.portal.test'
IMG = pathlib.Path(__file__).resolve().parents[3] / 'docs' / 'img'
SIZES = {'phone': (360, 740), 'desktop': (1280, 800)}

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None


@unittest.skipIf(sync_playwright is None or not os.path.exists(CHROMIUM),
    "Playwright or Debian's chromium missing")
class PortalBrowserTestCase(RouteTestCase):
    "The login page in Chromium"
    module = 'isp_base'

    @classmethod
    def setUpDatabase(cls):
        bandung = create_branch("NetKita Bandung", HOST, lang='id')
        create_branch("NetKita Nairobi", 'nairobi.portal.test', lang='en')
        create_subscriber(bandung, "Siti Aminah", email='siti@example.com',
            lang='id')

    def serve(self, route, request):
        "Answer the browser's request with trytond's WSGI application"
        browser_route(self.wsgi, self.failures)(route, request)

    def test_login_page(self):
        "Phone and desktop, Indonesian and English: layout, CSS, login"
        # the browser keeps the cookies, not the test client
        self.wsgi = Client(app, Response, use_cookies=False)
        self.failures = []
        IMG.mkdir(parents=True, exist_ok=True)
        base = 'http://%s/%s/isp_base/portal' % (HOST, DB_NAME)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                args=CHROMIUM_ARGS)
            try:
                for (size, (width, height)), lang in [
                        (s, lang) for s in SIZES.items()
                        for lang in ['id', 'en']]:
                    with self.subTest(size=size, lang=lang):
                        self.check_login(browser, base, size, width, height,
                            lang)
            finally:
                browser.close()

    def check_login(self, browser, base, size, width, height, lang):
        context = browser.new_context(viewport={
                'width': width, 'height': height}, locale=lang,
            extra_http_headers={'Accept-Language': lang})
        errors = []
        try:
            page = context.new_page()
            page.route('**/*', self.serve)
            # (the wrong password's page is a 401, said on the console)
            page.on('console', lambda m: m.type == 'error'
                and 'status of 401' not in m.text and errors.append(m.text))
            page.goto(base + '/login')
            title = {'id': 'Masuk', 'en': 'Log in'}[lang]
            self.assertEqual(page.locator('h1').inner_text(), title)
            self.assertEqual(page.locator('html').get_attribute('lang'),
                lang)
            # the stylesheet applied (served, allowed by the CSP)
            self.assertEqual(page.locator('.site-header').evaluate(
                    "e => getComputedStyle(e).backgroundColor"),
                'rgb(11, 92, 171)')
            # nothing wider than the screen
            self.assertLessEqual(page.evaluate(
                    "document.documentElement.scrollWidth"), width)
            page.screenshot(path=str(IMG / ('portal-login-%s-%s.png'
                        % (size, lang))), full_page=True)
            # a wrong password: the error, in the page's language
            page.fill('#login', 'siti@example.com')
            page.fill('#password', 'wrong-password')
            page.click('button.primary')
            error = page.locator('.error').inner_text()
            self.assertIn({'id': 'salah', 'en': 'Wrong'}[lang], error)
            if size == 'phone':
                page.screenshot(path=str(IMG / ('portal-login-error-%s.png'
                            % lang)), full_page=True)
            page.fill('#password', PASSWORD)
            page.click('button.primary')
            page.wait_for_url('**/isp_base/portal/')
            self.assertIn('Siti Aminah', page.locator('h1').inner_text())
            self.assertLessEqual(page.evaluate(
                    "document.documentElement.scrollWidth"), width)
            self.assertEqual(errors, [])
            self.assertEqual(self.failures, [])
        finally:
            context.close()


del RouteTestCase
