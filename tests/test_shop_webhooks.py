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
- in headless Chromium at phone size, once through each fake gateway and
  each language twice (Midtrans/id, Xendit/en, Duitku/id and M-Pesa/en on
  a KES branch of Nairobi): the shop on the branch's host
  (`shop.localhost`, `nairobi.shop.localhost`, which Chromium resolves to
  the loopback), the buy form, the fake gateway's page (M-Pesa: the order
  page while the buyer approves the prompt on the fake's phone page), back
  to the order page that waits for the payment and shows the code and its
  QR code; the worker has pushed the voucher to the RouterOS simulator,
  where the code logs in.  Screenshots: docs/img/shop-*.png.

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

from bench.bench_shop import HOST, ShopStack, setup_shop  # noqa: E402
from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    create_gateway,
    wait_until,
)
from tools.fake_gateways import (  # noqa: E402
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)
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
KE_HOST = 'nairobi.shop.localhost'   # the KES branch: M-Pesa
PHONES = {'mpesa': ('0712 345678', '0712 34')}
#: the URL of each gateway's payment page (M-Pesa: none, the order page)
PAGES = {'midtrans': '**/snap/v4/redirection/**', 'xendit': '**/web/**',
    'duitku': '**/topup/topupdirectv2.aspx**', 'mpesa': None}
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
def fakes():
    fakes = {'midtrans': FakeMidtrans().start(),
        'xendit': FakeXendit().start(), 'duitku': FakeDuitku().start(),
        'mpesa': FakeMpesa().start()}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture(scope='module')
def midtrans(fakes):
    return fakes['midtrans']


@pytest.fixture(scope='module')
def sim():
    router = SimRouter(name='shop', version='7.16.2', password='shop')
    router.start()
    yield router
    router.stop()


def _setup_kenya(sim):
    "A KES branch on KE_HOST, its profile sold online: the ids"
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from trytond.modules.isp_billing.tests.payment_setup import (
        create_branch,
        create_sales_tax,
    )
    from trytond.modules.isp_voucher.tests.voucher_setup import (
        create_voucher_product,
    )
    pool = Pool()
    Country = pool.get('country.country')
    Router = pool.get('isp.router')
    Profile = pool.get('isp.voucher.profile')
    company = create_branch("NetKita Nairobi", 'KES')
    company.isp_web_domain = KE_HOST
    company.isp_country, = (Country.search([('code', '=', 'KE')])
        or Country.create([{'name': "Kenya", 'code': 'KE'}]))
    company.save()
    with Transaction().set_context(company=company.id):
        create_sales_tax(company, '0.11')
        router, = Router.create([{
                    'name': "Hotspot Nairobi", 'code': 'HK',
                    'host': sim.address[0], 'port': sim.address[1],
                    'use_ssl': False, 'api_password': 'shop'}])
        profile, = Profile.create([{
                    'company': company.id, 'name': "1 day 5M",
                    'product': create_voucher_product(company,
                        price='100').id,
                    'router': router.id, 'validity': 1,
                    'validity_unit': 'days', 'rate_limit': '2M/5M',
                    'shop': True, 'shop_restock': 3,
                    'hotspot_dns_name': 'hotspot.nairobi.test'}])
    return {'company': company.id, 'profile': profile.id}


@pytest.fixture(scope='module')
def stack(pg_uri, fakes, sim):
    "The shop of bench_shop's branch (IDR) and of a KES branch, 4 gateways"
    stack = None
    try:
        stack = ShopStack(pg_uri, name='isp_shop_webhook_test')
        stack.create_database()
        stack.init_pool()
        stack.ids = stack.run_locked(lambda: setup_shop(sim),
            tables=SEQUENCES)
        stack.kenya = stack.run_locked(lambda: _setup_kenya(sim),
            tables=SEQUENCES)
        stack.gateways = {}
        for provider, fake in fakes.items():
            company = (stack.kenya if provider == 'mpesa'
                else stack.ids)['company']
            with stack.transaction(company=company):
                stack.gateways[provider] = create_gateway(provider, fake,
                    company, stack.url)
        stack.ids['gateway'] = stack.gateways['midtrans']
        fakes['xendit'].callback_url = (stack.url
            + stack.webhook_path('xendit'))
        stack.start_workers()
        stack.start_server()
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
@pytest.mark.parametrize('provider,lang', [('midtrans', 'id'),
        ('xendit', 'en'), ('duitku', 'id'), ('mpesa', 'en')])
def test_buy_in_browser(stack, fakes, sim, provider, lang):
    """At phone size through `provider`: the shop, a refused phone, the buy
    form, the gateway's page (M-Pesa: the prompt approved on the fake
    phone), the order page waiting then showing the code and its QR code;
    the code logs in on the simulated router"""
    width, height = 360, 740
    texts = TEXTS[lang]
    host = KE_HOST if provider == 'mpesa' else HOST
    phone, bad_phone = PHONES.get(provider, ('0812 3456 7890', '0812 34'))
    base = 'http://%s:%d/%s' % (host, stack.port, stack.name)
    # the screenshots of the docs: the first purchase in each language
    shots = provider in {'midtrans', 'xendit'}
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
            if shots:
                page.screenshot(path=str(IMG / ('shop-phone-%s.png'
                            % lang)), full_page=True)
            page.click('a.buy')
            gateway = 'input[name="gateway"][value="%d"]' % (
                stack.gateways[provider])
            page.check(gateway)
            page.fill('#phone', bad_phone)
            page.click('button.primary')
            assert texts['bad_phone'] in page.locator(
                '#phone-error').inner_text()
            page.check(gateway)
            page.fill('#phone', phone)
            page.click('button.primary')
            if PAGES[provider]:
                page.wait_for_url(PAGES[provider])
                page.click('button[value="pay"]')
                page.wait_for_url('**/isp_voucher/shop/order/**')
            else:
                # STK push: the order page waits while the buyer approves
                # the prompt on the phone
                page.wait_for_url('**/isp_voucher/shop/order/**')
                assert texts['wait'] in page.locator('main').inner_text()
                mpesa = fakes['mpesa']
                phone_page = context.new_page()
                phone_page.goto(mpesa.phone_url(
                        mpesa.transactions[-1].reference))
                phone_page.click('button[value="pay"]')
                phone_page.close()
            assert page.url.startswith('http://%s:' % host)
            # the page looks again every few seconds until paid
            page.wait_for_selector('#voucher-code', timeout=60000)
            assert texts['paid'] in page.locator('main').inner_text()
            assert page.locator('#order').get_attribute(
                'data-state') == 'paid'
            assert page.locator('#voucher-qr path').count() == 1
            code = page.locator('#voucher-code').inner_text().strip()
            assert page.evaluate(
                "document.documentElement.scrollWidth") <= width
            if shots:
                page.screenshot(path=str(IMG / ('shop-code-phone-%s.png'
                            % lang)), full_page=True)
        finally:
            browser.close()
    assert errors == []
    # paid through the gateway's own payment record
    from trytond.pool import Pool
    with stack.transaction():
        Voucher = Pool().get('isp.voucher')
        Order = Pool().get('isp.voucher.order')
        voucher, = Voucher.search([('code', '=', code)])
        order, = Order.search([('voucher', '=', voucher.id)])
        assert order.payment.gateway.provider == provider
    # pushed by the worker: the code logs in on the router
    assert wait_until(lambda: _hotspot_user(sim, code), timeout=60), code
    session = sim.hotspot_login(code, password=code, address='10.5.0.9')
    assert session
