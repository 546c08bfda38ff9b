# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The customer portal in headless Chromium on PostgreSQL, end to end: a
subscriber whose service is isolated for an overdue invoice logs in, sees
the warning on the dashboard, pays through the fake Midtrans, comes back to
the portal, sees the invoice paid and, once the worker has reactivated the
service on the simulated router and the router shows the session, the
service online with its address.

A real `trytond` server (the portal's host `bandung.localhost`, which
Chromium resolves to the loopback), one `trytond-worker`, the fake Midtrans
(tools/fake_gateways.py) posting its callbacks to the server and the RouterOS
simulator (tools/routeros_sim.py).  Run at phone size in Indonesian and at
desktop size in English (one subscriber each, one server).  Screenshots:
docs/img/portal-dashboard*.png, portal-invoices*.png, portal-paid*.png.

Needs ISP_TEST_PG_URI (scripts/test sets it, or the `pg_uri` fixture
starts a private cluster), Playwright and Debian's chromium."""
import datetime as dt
import os
import pathlib
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    Stack,
    create_branch,
    create_gateway,
    create_isolated_subscribers,
    wait_until,
)
from tools.fake_gateways import FakeMidtrans  # noqa: E402
from tools.routeros_sim import Router as SimRouter  # noqa: E402

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--no-first-run',
    '--disable-component-update', '--disable-sync']
HOST = 'bandung.localhost'
PASSWORD = 'Portal-Pass-2026'
IMG = ROOT / 'docs' / 'img'
RUNS = [
    # (size, viewport, language, screenshot suffix)
    ('phone', (360, 740), 'id', '-phone'),
    ('desktop', (1280, 800), 'en', ''),
    ]
TEXTS = {
    'id': {'overdue': 'lewat jatuh tempo', 'paid': 'Terima kasih',
        'lunas': 'Lunas', 'isolated': 'Diisolir', 'online': 'Online'},
    'en': {'overdue': 'overdue', 'paid': 'Thank you', 'lunas': 'Paid',
        'isolated': 'Isolated', 'online': 'Online'},
    }

pytestmark = [
    pytest.mark.skipif(
        not (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
            'postgresql'),
        reason="needs TRYTOND_DATABASE_URI on PostgreSQL (as scripts/test "
        "sets it)"),
    pytest.mark.skipif(sync_playwright is None
        or not os.path.exists(CHROMIUM),
        reason="Playwright or Debian's chromium missing"),
    ]


def _setup(company, sim):
    """Two subscribers isolated for an overdue invoice on the simulated
    router, with a portal login each (Indonesian, English): [(login,
    username, lang)]"""
    from trytond.pool import Pool

    from trytond.modules.isp_billing.tests.payment_setup import (
        set_due_date,
    )
    pool = Pool()
    Company = pool.get('company.company')
    Service = pool.get('isp.service')
    Invoice = pool.get('account.invoice')
    WebUser = pool.get('web.user')
    Lang = pool.get('ir.lang')
    Party = pool.get('party.party')
    branch = Company(company)
    branch.isp_web_domain = HOST
    branch.save()
    service_ids = create_isolated_subscribers(company, *sim.address,
        'portal', len(RUNS))
    services = Service.browse(service_ids)
    # a fair-usage quota, and some usage this cycle
    Template = pool.get('product.template')
    Usage = pool.get('isp.service.usage')
    Template.write([services[0].plan], {'quota': 100,
            'throttled_download_rate': 1000, 'throttled_upload_rate': 1000})
    Usage.create([{'company': company, 'service': s.id,
                'date': dt.date.today(), 'bytes_in': 6 * 10 ** 9,
                'bytes_out': (31 + 20 * i) * 10 ** 9}
            for i, s in enumerate(services)])
    result = []
    for service, (_, _, lang, _) in zip(services, RUNS, strict=True):
        party = service.subscriber
        Party.write([party], {'lang': Lang.get(lang).id})
        WebUser.create([{'email': None, 'party': party.id,
                    'isp_company': company, 'password': PASSWORD}])
        result.append((party.subscriber_code, service.username, lang,
                service.id))
    # their invoices (the first, prorated, of the registration) overdue
    parties = [s.subscriber.id for s in services]
    invoices = Invoice.search([('party', 'in', parties),
            ('state', '=', 'posted')])
    assert len(invoices) >= len(RUNS), invoices
    set_due_date(invoices, dt.date.today() - dt.timedelta(days=10))
    return result


def _sync_router():
    "The router's sync, as its cron runs it: live status of the sessions"
    from trytond.pool import Pool
    Router = Pool().get('isp.router')
    Router.sync(Router.search([]))


@pytest.fixture(scope='module')
def portal(pg_uri):
    sim = SimRouter(name='portal', version='7.16.2', password='portal')
    sim.start()
    fake = FakeMidtrans().start()
    stack = Stack(pg_uri, name='isp_portal_pay_test', workers=1)
    try:
        stack.create_database()
        stack.init_pool()
        company = stack.run_locked(create_branch, tables=SEQUENCES)
        with stack.transaction(company=company):
            create_gateway('midtrans', fake, company, stack.url)
        subscribers = stack.run_locked(lambda: _setup(company, sim),
            tables=SEQUENCES, company=company)
        stack.start_workers()
        stack.start_server()
        stack.company, stack.sim, stack.fake = company, sim, fake
        stack.subscribers = subscribers
        yield stack
    finally:
        stack.stop_server()
        stack.stop_workers()
        stack.drop_database()
        fake.stop()
        sim.stop()


def _profile(sim, username):
    return (sim.menu('/ppp/secret').find(name=username) or {}).get('profile')


def _reload_until(page, check, timeout=60):
    "Reload `page` until `check()` holds"
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, page.content()[:2000]
        time.sleep(0.5)
        page.reload()


@pytest.mark.parametrize('run', range(len(RUNS)),
    ids=['%s-%s' % (r[0], r[2]) for r in RUNS])
def test_pay_overdue_and_back_online(portal, run):
    """Log in, see the isolation and the overdue invoice, pay at the fake
    gateway, come back paid, see the service online again"""
    size, (width, height), lang, suffix = RUNS[run]
    login, username, sub_lang, service_id = portal.subscribers[run]
    assert sub_lang == lang
    texts = TEXTS[lang]
    sim = portal.sim
    assert wait_until(lambda: _profile(sim, username) == 'isolir',
        timeout=120), _profile(sim, username)
    base = 'http://%s:%d/%s' % (HOST, portal.port, portal.name)
    IMG.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
            args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={'width': width, 'height': height}, locale=lang)
            page = context.new_page()
            # every answer of the portal and the gateway: no error (the
            # browser's own favicon requests aside)
            page.on('response', lambda r: r.status >= 400
                and not r.url.endswith('/favicon.ico')
                and errors.append('%s %s' % (r.status, r.url)))
            page.on('console', lambda m: m.type == 'error'
                and 'Failed to load resource' not in m.text
                and errors.append(m.text))
            page.goto(base + '/isp_billing/portal/dashboard')
            # not logged in: the login page, then back
            page.fill('#login', login.lower())
            page.fill('#password', PASSWORD)
            page.click('button.primary')
            page.wait_for_url('**/isp_billing/portal/dashboard')
            assert page.locator('html').get_attribute('lang') == lang
            service = page.locator('section.service')
            assert service.get_attribute('data-status') == 'isolated'
            assert texts['isolated'] in service.inner_text()
            warning = page.locator('.overdue .warning').inner_text()
            assert texts['overdue'] in warning, warning
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(IMG / ('portal-dashboard-isolated%s.png'
                        % suffix)), full_page=True)
            # pay every overdue invoice through the gateway's page
            while page.locator('.overdue button.pay').count():
                page.locator('.overdue button.pay').first.click()
                page.wait_for_url('**/snap/v4/redirection/**')
                page.click('button[value="pay"]')
                page.wait_for_url('**/isp_billing/portal/invoice/**')
                assert 'payment=' in page.url
                _reload_until(page, lambda: texts['paid']
                    in page.locator('main').inner_text())
                assert page.locator('section.invoice').get_attribute(
                    'data-state') == 'paid'
                assert page.locator('form button.pay').count() == 0
                page.screenshot(path=str(IMG / ('portal-paid%s.png'
                            % suffix)), full_page=True)
                page.goto(base + '/isp_billing/portal/dashboard')
            # the worker reactivates the service on the router; the
            # subscriber's router dials in; the router's sync sees it
            assert wait_until(lambda: _profile(sim, username) != 'isolir',
                timeout=120), _profile(sim, username)
            sim.ppp_login(username, address='10.20.0.%d' % (run + 10))
            portal.run_locked(_sync_router, company=portal.company)
            page.reload()
            service = page.locator('section.service')
            assert service.get_attribute('data-status') == 'online'
            assert texts['online'] in service.inner_text()
            assert service.locator('svg.usage-bar rect.fill').get_attribute(
                'width') == str(37 + 20 * run)
            assert '10.20.0.%d' % (run + 10) in service.inner_text()
            assert page.locator('.overdue').count() == 0
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(IMG / ('portal-dashboard%s.png'
                        % suffix)), full_page=True)
            # the invoices: paid, with the payment received; the PDF
            page.click('nav a[data-nav="invoices"]')
            page.wait_for_url('**/isp_billing/portal/invoices')
            rows = page.locator('table.invoices tbody tr')
            assert rows.count() >= 1
            for i in range(rows.count()):
                assert rows.nth(i).get_attribute('data-state') == 'paid'
            assert page.locator('table.payments tbody tr').count() >= 1
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(IMG / ('portal-invoices%s.png'
                        % suffix)), full_page=True)
            href = page.locator('table.invoices a[href$="/pdf"]'
                ).first.get_attribute('href')
            # (fetched by the page: Chromium resolves *.localhost)
            status, mimetype, magic = page.evaluate(
                """async url => {
                    const r = await fetch(url);
                    const b = new Uint8Array(await r.arrayBuffer());
                    return [r.status, r.headers.get('content-type'),
                        String.fromCharCode(...b.slice(0, 4))];
                }""", href)
            assert (status, mimetype, magic) == (
                200, 'application/pdf', '%PDF')
            assert errors == []
        finally:
            browser.close()
