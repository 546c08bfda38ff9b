# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""E-voucher orders paid through the gateway webhooks on PostgreSQL, end to
end: the fake Midtrans posts its callbacks over HTTP to a real `trytond`
server, one `trytond-worker` runs the queued tasks (the harness of
bench/bench_shop.py).

- the same valid notification 10 times at once for one order: ten 200s,
  one voucher sold, one invoice paid, verdicts applied + 9 duplicates;
- five orders of one profile paid at once: five different vouchers, the
  online stock generated once;
- in headless Chromium at phone size, in Indonesian and in English: the
  shop on the branch's host (`shop.localhost`, which Chromium resolves to
  the loopback), the buy form, the fake Midtrans' page, back to the order
  page that waits for the payment and shows the code and its QR code; the
  worker has pushed the voucher to the RouterOS simulator, where the code
  logs in.  Screenshots: docs/img/shop-*.png.

Needs TRYTOND_DATABASE_URI on PostgreSQL (scripts/test sets it; the
`pg_uri` fixture starts a private cluster)."""
import os
import pathlib
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_shop import HOST, start_shop  # noqa: E402
from bench.bench_webhook import SEQUENCES, wait_until  # noqa: E402
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
IMG = ROOT / 'docs' / 'img'
TEXTS = {
    'id': {'title': 'Voucher hotspot', 'wait': 'Menunggu pembayaran',
        'paid': 'Terima kasih', 'bad_phone': 'nomor telepon yang valid'},
    'en': {'title': 'Hotspot vouchers', 'wait': 'Waiting for your payment',
        'paid': 'Thank you', 'bad_phone': 'valid phone number'},
    }

pytestmark = pytest.mark.skipif(
    not (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
        'postgresql'),
    reason="needs TRYTOND_DATABASE_URI on PostgreSQL (as scripts/test "
    "sets it)")


@pytest.fixture(scope='module')
def midtrans():
    fake = FakeMidtrans().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def sim():
    router = SimRouter(name='shop', version='7.16.2', password='shop')
    router.start()
    yield router
    router.stop()


@pytest.fixture(scope='module')
def stack(pg_uri, midtrans, sim):
    stack = None
    try:
        stack = start_shop(pg_uri, 'isp_shop_webhook_test', midtrans, sim)
        yield stack
    finally:
        if stack is not None:
            stack.stop_server()
            stack.stop_workers()
            stack.drop_database()


def _orders(stack, count, phone='081234567890'):
    "The references of `count` new orders paid online at Midtrans"
    ids = stack.ids

    def place():
        from trytond.pool import Pool
        pool = Pool()
        Order = pool.get('isp.voucher.order')
        Company = pool.get('company.company')
        Profile = pool.get('isp.voucher.profile')
        Gateway = pool.get('isp.payment.gateway')
        company = Company(ids['company'])
        profile = Profile(ids['profile'])
        references = []
        for _ in range(count):
            order = Order.place(company, profile, phone, None,
                profile.price_with_tax, Gateway(ids['gateway']),
                language='id')
            references.append(order.open_payment().reference)
        return references
    return stack.run_locked(place, tables=SEQUENCES,
        company=ids['company'])


def _orders_state(stack, references):
    "{reference: (order state, voucher id, invoice state)}"
    from trytond.pool import Pool
    with stack.transaction():
        Payment = Pool().get('isp.payment.transaction')
        result = {}
        for payment in Payment.search([('reference', 'in', references)]):
            order = payment.document
            result[payment.reference] = (order.state,
                order.voucher.id if order.voucher else None,
                order.invoice.state if order.invoice else None)
        return result


def _paid(stack, references):
    def check():
        states = _orders_state(stack, references)
        return all(s[0] == 'paid' and s[2] == 'paid'
            for s in states.values())
    assert wait_until(check, timeout=90), (
        _orders_state(stack, references), stack.server_log()[-3000:])
    return _orders_state(stack, references)


def test_concurrent_notifications_one_voucher(stack, midtrans):
    "10 identical notifications at once: one voucher, one paid invoice"
    reference, = _orders(stack, 1)
    midtrans.drop_callbacks(1)
    midtrans.pay(reference)
    deliveries = midtrans.notify(reference, repeat=10, concurrent=True)
    assert [d.status for d in deliveries] == [200] * 10, [
        (d.status, d.answer, d.error) for d in deliveries]
    (state, voucher_id, invoice_state), = _paid(stack, [reference]).values()
    from trytond.pool import Pool
    with stack.transaction():
        pool = Pool()
        Notification = pool.get('isp.payment.notification')
        Voucher = pool.get('isp.voucher')
        Order = pool.get('isp.voucher.order')
        Invoice = pool.get('account.invoice')
        order, = Order.search([('payments.reference', '=', reference)])
        verdicts = sorted(n.verdict for n in Notification.search(
                [('transaction.reference', '=', reference)]))
        assert verdicts == ['applied'] + ['duplicate'] * 9
        sold = Voucher.search([('sold_date', '!=', None)])
        assert [v.id for v in sold] == [voucher_id]
        assert Voucher(voucher_id).state == 'sold'
        invoices = Invoice.search([('party', '=', order.party.id)])
        assert [i.state for i in invoices] == ['paid']
        assert invoices[0].total_amount == order.amount


def test_orders_paid_at_once_distinct_vouchers(stack, midtrans):
    """Five orders of one profile paid at once: five different vouchers
    (the profile's row lock: one taker of the stock at a time)"""
    references = _orders(stack, 5, phone='081298765432')
    midtrans.drop_callbacks(5)
    for reference in references:
        midtrans.pay(reference)
    threads = [threading.Thread(target=midtrans.notify, args=(reference,))
        for reference in references]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    states = _paid(stack, references)
    vouchers = [s[1] for s in states.values()]
    assert len(set(vouchers)) == 5, states


def _hotspot_user(sim, code):
    return sim.menu('/ip/hotspot/user').find(name=code)


@pytest.mark.skipif(sync_playwright is None or not os.path.exists(CHROMIUM),
    reason="Playwright or Debian's chromium missing")
@pytest.mark.parametrize('lang', ['id', 'en'])
def test_buy_in_browser(stack, midtrans, sim, lang):
    """At phone size: the shop, a refused phone, the buy form, the
    gateway's page, the order page waiting then showing the code and its
    QR code; the code logs in on the simulated router"""
    width, height = 360, 740
    texts = TEXTS[lang]
    base = 'http://%s:%d/%s' % (HOST, stack.port, stack.name)
    IMG.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
            args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={'width': width, 'height': height}, locale=lang)
            page = context.new_page()
            # every answer: no error but the refused phone's 400 (and the
            # browser's own favicon requests)
            page.on('response', lambda r: r.status >= 400
                and not r.url.endswith('/favicon.ico')
                and not (r.status == 400 and '/shop/buy/' in r.url)
                and errors.append('%s %s' % (r.status, r.url)))
            page.on('console', lambda m: m.type == 'error'
                and 'Failed to load resource' not in m.text
                and errors.append(m.text))
            page.goto(base + '/isp_voucher/shop')
            assert page.locator('html').get_attribute('lang') == lang
            assert texts['title'] in page.locator('h1').inner_text()
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(IMG / ('shop-phone-%s.png' % lang)),
                full_page=True)
            page.click('a.buy')
            page.fill('#phone', '0812 34')
            page.click('button.primary')
            assert texts['bad_phone'] in page.locator(
                '#phone-error').inner_text()
            page.fill('#phone', '0812 3456 7890')
            page.click('button.primary')
            page.wait_for_url('**/snap/v4/redirection/**')
            page.click('button[value="pay"]')
            page.wait_for_url('**/isp_voucher/shop/order/**')
            assert page.url.startswith('http://%s:' % HOST)
            # the page looks again every few seconds until paid
            page.wait_for_selector('#voucher-code', timeout=60000)
            assert texts['paid'] in page.locator('main').inner_text()
            assert page.locator('#order').get_attribute(
                'data-state') == 'paid'
            assert page.locator('#voucher-qr path').count() == 1
            code = page.locator('#voucher-code').inner_text().strip()
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(IMG / ('shop-code-phone-%s.png'
                        % lang)), full_page=True)
        finally:
            browser.close()
    assert errors == []
    # pushed by the worker: the code logs in on the router
    assert wait_until(lambda: _hotspot_user(sim, code), timeout=60), code
    session = sim.hotspot_login(code, password=code, address='10.5.0.9')
    assert session
