# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The e-voucher shop through trytond's WSGI application: two branches with
their own domains and accounting, a profile sold online in each (and one
not sold online in Bandung), the central Midtrans account on the fake
gateway.  Every refusal of the buy form and of the order page, a purchase
paid through the webhook to the code, a cancelled and a late payment, a
lost notification settled by the reconciliation."""
import copy
import json
import re
import unittest
import urllib.parse
from decimal import Decimal

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.portal_tools import (
    PortalClient,
    untranslated,
)
from trytond.modules.isp_billing.tests.payment_setup import (
    SEQUENCES,
    SETUP_TABLES,
    create_branch,
    create_gateway,
    create_sales_tax,
    run_locked,
)
from trytond.modules.isp_voucher import web as voucher_web

from .voucher_setup import create_profile

try:
    from tools.fake_gateways import (
        FakeDuitku,
        FakeMidtrans,
        FakeMpesa,
        FakeXendit,
    )
except ImportError:   # an installed wheel without the repository's tools
    FakeMidtrans = FakeXendit = FakeDuitku = FakeMpesa = None

A_HOST, B_HOST = 'bandung.shop.test', 'nairobi.shop.test'
K_HOST = 'mombasa.shop.test'   # a KES branch: its M-Pesa account
PROVIDERS = ['midtrans', 'xendit', 'duitku', 'mpesa']
SHOP = '/isp_voucher/shop'
BUY = '/isp_voucher/shop/buy/%d'
ORDER = '/isp_voucher/shop/order/%d/%s'
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')


def _branch(name, domain, lang, country, currency='IDR'):
    pool = Pool()
    Lang = pool.get('ir.lang')
    company = create_branch(name, currency)
    company.isp_web_domain = domain
    company.isp_country = country
    company.save()
    company.party.lang = Lang.get(lang)
    company.party.save()
    return company


@unittest.skipIf(FakeMidtrans is None, "tools.fake_gateways missing")
class ShopTestCase(RouteTestCase):
    "The e-voucher shop"
    module = 'isp_voucher'

    @classmethod
    def setUpClass(cls):
        cls.midtrans = FakeMidtrans().start()
        super().setUpClass()
        cls.ids = run_locked(cls.setup_data, tables=SETUP_TABLES)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.midtrans.stop()

    @classmethod
    def setup_data(cls):
        pool = Pool()
        Country = pool.get('country.country')
        indonesia, kenya = Country.create([
                {'name': "Indonesia", 'code': 'ID'},
                {'name': "Kenya", 'code': 'KE'}])
        a = _branch("NetKita Bandung", A_HOST, 'id', indonesia)
        b = _branch("NetKita Nairobi", B_HOST, 'en', kenya)
        ids = {}
        for company, code in [(a, 'A'), (b, 'B')]:
            with Transaction().set_context(company=company.id):
                create_sales_tax(company, '0.11')
                profile = create_profile(company, code=code + 'H',
                    price='5000', shop=True, shop_restock=3,
                    data_quota=2000,
                    hotspot_dns_name='hotspot.%s.test' % code.lower())
                ids[code] = profile.id
        with Transaction().set_context(company=a.id):
            off = create_profile(a, code='AO', price='9000')
            ids['off'] = off.id
        # the head office's central account: both branches use it
        ids['gateway'] = create_gateway('midtrans', cls.midtrans.url).id
        ids.update(a=a.id, b=b.id)
        return ids

    def setUp(self):
        super().setUp()
        self.midtrans.reset()
        self.midtrans.drop_callbacks(None)   # replayed through the route

    # -- helpers --

    def shop(self, host=A_HOST, language='en'):
        "A visitor of `host` (its pre-session and CSRF token taken)"
        client = PortalClient(self.client(), DB_NAME, host,
            language=language)
        client.get(SHOP)
        return client

    def page(self, client, path, status=200):
        response = client.get(path)
        body = response.get_data(as_text=True)
        self.assertEqual(response.status_code, status, body[:800])
        self.assertIsNone(LEAKS.search(body), body[:800])
        return body

    def counts(self):
        "(orders, payments, vouchers sold) in the database"
        with Transaction().start(DB_NAME, 0, readonly=True):
            pool = Pool()
            Order = pool.get('isp.voucher.order')
            Payment = pool.get('isp.payment.transaction')
            Voucher = pool.get('isp.voucher')
            return (Order.search_count([]), Payment.search_count([]),
                Voucher.search_count([('sold_date', '!=', None)]))

    def buy(self, client, profile, phone='0812 3456 7890', email='',
            amount=None, gateway=None, **kw):
        if amount is None:
            amount = '5550'
        return client.post(BUY % profile, data={
                'phone': phone, 'email': email, 'amount': amount,
                'gateway': str(gateway or self.ids['gateway']), **kw})

    def deliver(self, reference):
        "Post the fake's callbacks of `reference` to the webhook route"
        statuses = []
        for delivery in self.midtrans.callbacks:
            if reference.encode() not in delivery.body:
                continue
            parts = urllib.parse.urlsplit(delivery.url)
            statuses.append(self.client().post(parts.path,
                    data=delivery.body,
                    headers=delivery.headers).status_code)
        self.midtrans.callbacks.clear()
        return statuses

    def order_of(self, reference):
        "The order (read in a transaction of its own) of payment `reference`"
        with Transaction().start(DB_NAME, 0, readonly=True):
            Payment = Pool().get('isp.payment.transaction')
            payment, = Payment.search([('reference', '=', reference)])
            order = payment.document
            return {
                'id': order.id, 'token': order.token, 'state': order.state,
                'number': order.number, 'late': order.late,
                'voucher': order.voucher.id if order.voucher else None,
                'code': order.voucher.code if order.voucher else None,
                'voucher_state': (order.voucher.state if order.voucher
                    else None),
                'invoice_state': (order.invoice.state if order.invoice
                    else None),
                'invoice_total': (order.invoice.total_amount
                    if order.invoice else None),
                'phone': order.phone, 'review': payment.review,
                'payment_state': payment.state,
                }

    def dashboard(self):
        "(voucher sales today, online orders today) of Bandung"
        with Transaction().start(DB_NAME, 0, readonly=True, context={
                    'company': self.ids['a']}):
            Dashboard = Pool().get('isp.report.dashboard')
            row, = Dashboard.search([('company', '=', self.ids['a'])])
            return row.voucher_sales_today, row.shop_orders_today

    def place(self, client=None, **kw):
        "Buy Bandung's profile; return the payment reference"
        client = client or self.shop()
        response = self.buy(client, self.ids['A'], **kw)
        self.assertEqual(response.status_code, 303,
            response.get_data(as_text=True)[:800])
        self.assertIn('/snap/', response.headers['Location'])
        opened = [r for r in self.midtrans.requests
            if r.path == '/snap/v1/transactions'][-1]
        return opened.json()['transaction_details']['order_id']

    # -- tests --

    def test_shop_page_languages(self):
        """The branch's profiles sold online with the price with taxes,
        validity, quota and speed, in Indonesian and English; never the
        other branch's nor one not sold online"""
        # 5,000 + 11 %
        for language, words in [('id', ['Voucher hotspot', 'Beli', '1 hari',
                        '2 GB', 'hingga 5 Mbps', 'Rp', '5.550']),
                ('en', ['Hotspot vouchers', 'Buy', '1 day', '2 GB',
                        'up to 5 Mbps', 'IDR', '5,550'])]:
            client = self.shop(language=language)
            body = self.page(client, SHOP)
            for word in words:
                self.assertIn(word, body)
            self.assertIn(BUY % self.ids['A'], body)
            self.assertNotIn(BUY % self.ids['B'], body)
            self.assertNotIn(BUY % self.ids['off'], body)
        body = self.page(self.shop(B_HOST), SHOP)
        self.assertIn(BUY % self.ids['B'], body)
        self.assertNotIn(BUY % self.ids['A'], body)
        # an unknown host has no shop
        self.page(self.shop('elsewhere.test'), SHOP, status=404)

    def test_buy_refusals(self):
        """Every bad input: 4xx with a reason, no order, payment or
        voucher created"""
        client = self.shop()
        self.page(client, BUY % self.ids['A'])
        before = self.counts()
        cases = [
            (dict(phone='12'), 400, 'valid phone'),
            (dict(phone='+1 202 555 0'), 400, 'valid phone'),
            (dict(email='not-an-email'), 400, 'valid e-mail'),
            (dict(amount='1'), 409, 'price has changed'),
            (dict(amount='5550.01'), 409, 'price has changed'),
            (dict(amount='abc'), 409, 'price has changed'),
            (dict(gateway='999999'), 400, 'payment method'),
            ]
        for values, status, reason in cases:
            with self.subTest(values=values):
                response = self.buy(client, self.ids['A'], **values)
                body = response.get_data(as_text=True)
                self.assertEqual(response.status_code, status, body[:800])
                self.assertIn(reason, body)
                self.assertIsNone(LEAKS.search(body))
        for profile in [self.ids['off'], self.ids['B'], 2 ** 31, 0]:
            with self.subTest(profile=profile):
                self.assertEqual(
                    self.buy(client, profile).status_code, 404)
                self.assertEqual(client.get(BUY % profile).status_code, 404)
        # without the CSRF token
        response = client.post(BUY % self.ids['A'], csrf=False, data={
                'phone': '081234567890', 'amount': '5550',
                'gateway': str(self.ids['gateway'])})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.counts(), before)
        self.assertEqual([r for r in self.midtrans.requests
                if r.path == '/snap/v1/transactions'], [])

    def test_other_branch_order_404(self):
        """An order's page needs its branch's host, its id and its token:
        another branch's order id, a wrong token: 404, never the order"""
        response = self.buy(self.shop(B_HOST), self.ids['B'],
            phone='0712 345678')
        self.assertEqual(response.status_code, 303,
            response.get_data(as_text=True)[:800])
        opened = [r for r in self.midtrans.requests
            if r.path == '/snap/v1/transactions'][-1]
        reference = opened.json()['transaction_details']['order_id']
        self.assertTrue(reference.startswith('EV'))
        order = self.order_of(reference)
        self.assertEqual(order['phone'], '+254712345678')
        path = ORDER % (order['id'], order['token'])
        self.page(self.shop(B_HOST), path)
        self.page(self.shop(A_HOST), path, status=404)
        self.page(self.shop(B_HOST),
            ORDER % (order['id'], 'x' * 22), status=404)
        self.page(self.shop(B_HOST),
            ORDER % (order['id'], order['token'][:-1] + '!'), status=404)
        self.page(self.shop(B_HOST),
            ORDER % (2 ** 31, order['token']), status=404)

    def test_buy_and_pay(self):
        """Paid through the webhook: one voucher from the stock (a shop
        batch generated when empty), sold with the order, the sale invoiced
        and paid, the code and its QR code on the order page, WhatsApp and
        e-mail queued; repeated notifications change nothing"""
        client = self.shop(language='id')
        sales, orders = self.dashboard()
        reference = self.place(client, email='rina@example.com')
        self.assertTrue(reference.startswith('EV'))
        order = self.order_of(reference)
        self.assertEqual((order['state'], order['voucher']),
            ('pending', None))
        self.assertTrue(order['number'].startswith('EV'))
        opened = [r for r in self.midtrans.requests
            if r.path == '/snap/v1/transactions'][-1].json()
        self.assertEqual(opened['transaction_details']['gross_amount'], 5550)
        path = ORDER % (order['id'], order['token'])
        self.assertEqual(opened['callbacks']['finish'],
            'http://%s/%s%s' % (A_HOST, DB_NAME, path))
        body = self.page(client, path)
        self.assertIn('http-equiv="refresh"', body)
        self.assertIn('data-state="pending"', body)
        self.assertNotIn('voucher-code', body)

        self.midtrans.pay(reference)
        self.assertEqual(self.deliver(reference), [200])
        order = self.order_of(reference)
        self.assertEqual(order['state'], 'paid')
        self.assertEqual(order['voucher_state'], 'sold')
        self.assertEqual(order['invoice_state'], 'paid')
        self.assertEqual(order['invoice_total'], Decimal('5550'))
        self.assertFalse(order['late'])
        # the branch's dashboard: the sale (untaxed) and the order today
        self.assertEqual(self.dashboard(),
            (sales + Decimal('5000'), orders + 1))
        body = self.page(client, path)
        self.assertIn(order['code'], body)
        self.assertIn('id="voucher-qr"', body)
        self.assertIn('hotspot.a.test/login?username=', body)
        self.assertNotIn('http-equiv="refresh"', body)
        self.assertIn('Terima kasih', body)

        # the same notification again: nothing more
        sold = self.counts()[2]
        self.midtrans.notify(reference, repeat=3)
        self.assertEqual(self.deliver(reference), [200] * 3)
        self.assertEqual(self.counts()[2], sold)
        self.assertEqual(self.order_of(reference)['voucher'],
            order['voucher'])

        with Transaction().start(DB_NAME, 0, readonly=True):
            pool = Pool()
            Order = pool.get('isp.voucher.order')
            Message = pool.get('isp.message')
            Voucher = pool.get('isp.voucher')
            record = Order(order['id'])
            messages = Message.search([('origin', '=', str(record))])
            self.assertEqual(sorted((m.channel, m.event, m.recipient)
                    for m in messages), [
                    ('email', 'voucher_delivered', 'rina@example.com'),
                    ('whatsapp', 'voucher_delivered', '+6281234567890')])
            self.assertIn(order['code'], messages[0].body)
            # no invoice or payment notice to the buyer
            self.assertEqual(Message.search([
                        ('party', '=', record.party.id),
                        ('event', '!=', 'voucher_delivered')]), [])
            voucher = record.voucher
            self.assertTrue(voucher.batch.shop)
            self.assertEqual(voucher.invoice_line.invoice, record.invoice)
            # the rest of the restock stays new for the next buyers
            self.assertEqual(Voucher.search_count([
                        ('batch', '=', voucher.batch.id),
                        ('state', '=', 'new')]), 2)
            self.assertFalse(record.party.is_subscriber)
            self.assertEqual(record.party.isp_company, record.company)

        # a second purchase takes the stock: no new batch
        reference = self.place(client)
        self.midtrans.pay(reference)
        self.deliver(reference)
        second = self.order_of(reference)
        with Transaction().start(DB_NAME, 0, readonly=True):
            Voucher = Pool().get('isp.voucher')
            self.assertEqual(Voucher(second['voucher']).batch,
                Voucher(order['voucher']).batch)

    def test_cancelled_then_late(self):
        """An expired payment cancels the order, no voucher; paid after
        all (late), the buyer gets the voucher and staff a flag"""
        reference = self.place()
        before = self.counts()[2]
        self.midtrans.expire(reference)
        self.assertEqual(self.deliver(reference), [200])
        order = self.order_of(reference)
        self.assertEqual((order['state'], order['voucher']),
            ('cancelled', None))
        self.assertEqual(self.counts()[2], before)
        body = self.page(self.shop(), ORDER % (order['id'], order['token']))
        self.assertIn('data-state="cancelled"', body)
        self.assertNotIn('http-equiv="refresh"', body)
        # the provider reports the payment after all
        self.midtrans.pay(reference)
        self.assertEqual(self.deliver(reference), [200])
        order = self.order_of(reference)
        self.assertEqual(order['state'], 'paid')
        self.assertTrue(order['late'])
        self.assertEqual(order['review'], 'document_settled')
        self.assertEqual(order['voucher_state'], 'sold')

    def test_failed_payment_no_voucher(self):
        "A failed payment: cancelled, no voucher"
        reference = self.place()
        before = self.counts()[2]
        self.midtrans.fail(reference)
        self.deliver(reference)
        order = self.order_of(reference)
        self.assertEqual((order['state'], order['voucher']),
            ('cancelled', None))
        self.assertEqual(self.counts()[2], before)

    def test_lost_notification_reconciled(self):
        """The notification lost: the reconciliation's status check
        settles the order with its voucher"""
        reference = self.place()
        self.midtrans.pay(reference)
        self.midtrans.callbacks.clear()   # lost
        self.assertEqual(self.order_of(reference)['state'], 'pending')

        def check():
            Payment = Pool().get('isp.payment.transaction')
            payment, = Payment.search([('reference', '=', reference)])
            Payment.check_status([payment])
        run_locked(check, tables=SEQUENCES)
        order = self.order_of(reference)
        self.assertEqual(order['state'], 'paid')
        self.assertEqual(order['voucher_state'], 'sold')

    def test_paid_together_invoiced_in_bulk(self):
        """Orders paid in one batch (two of Bandung, one of Nairobi): each
        gets its voucher and code at once, the sales are invoiced after,
        by one task per branch (`invoice_paid`) taking only its branch's
        orders; each invoice paid by its order's payment, and once"""
        references = [self.place(), self.place(phone='0812 1111 2222')]
        response = self.buy(self.shop(B_HOST), self.ids['B'],
            phone='0712 345678')
        self.assertEqual(response.status_code, 303)
        references.append([r for r in self.midtrans.requests
                if r.path == '/snap/v1/transactions'][-1].json()[
                'transaction_details']['order_id'])
        for reference in references:
            self.midtrans.pay(reference)
        self.midtrans.callbacks.clear()
        def check():
            Payment = Pool().get('isp.payment.transaction')
            # the status checks: one database transaction pays the three
            Payment.check_status(Payment.search(
                    [('reference', 'in', references)]))
        _, _, tasks = run_locked(check, tables=SEQUENCES, run_tasks=False)
        orders = [self.order_of(r) for r in references]
        self.assertEqual([(o['state'], o['voucher_state'],
                    o['invoice_state']) for o in orders],
            [('paid', 'sold', None)] * 3)
        self.assertEqual(len({o['code'] for o in orders}), 3)
        with Transaction().start(DB_NAME, 0, readonly=True):
            pool = Pool()
            Queue = pool.get('ir.queue')
            Order = pool.get('isp.voucher.order')
            invoicing = {Order(t.data['instances'][0]).company.id: t.id
                for t in Queue.browse(tasks)
                if t.data['method'] == 'invoice_paid'}
            self.assertEqual(sorted(invoicing),
                sorted([self.ids['a'], self.ids['b']]))

        def run(task_id):
            "the task, then the tasks it queued (the invoices' processing)"
            run_locked(lambda: Pool().get('ir.queue')(task_id).run())
        for task_id in tasks:
            if task_id not in invoicing.values():
                run(task_id)
        run(invoicing[self.ids['a']])
        # Bandung's task invoiced Bandung's orders only
        orders = [self.order_of(r) for r in references]
        self.assertEqual([o['invoice_state'] for o in orders],
            ['paid', 'paid', None])
        run(invoicing[self.ids['b']])
        with Transaction().start(DB_NAME, 0, readonly=True):
            pool = Pool()
            Order = pool.get('isp.voucher.order')
            Line = pool.get('account.move.line')
            records = Order.browse([o['id'] for o in orders])
            self.assertEqual([o.invoice.state for o in records],
                ['paid'] * 3)
            self.assertEqual([o.invoice.company for o in records],
                [o.company for o in records])
            self.assertEqual([o.invoice.party for o in records],
                [o.party for o in records])
            for order in records:
                self.assertEqual(order.payment.reference,
                    order.payments[0].reference)
                self.assertEqual(order.voucher.invoice_line.invoice,
                    order.invoice)
                self.assertEqual(order.invoice.total_amount, order.amount)
                # paid by its own payment (its reference on the move)
                self.assertTrue(Line.search([
                            ('move.description', '=',
                                order.payment.reference),
                            ('account', '=', order.invoice.account.id)]))
            invoices = sorted(o.invoice.id for o in records)
        # the task again: nothing invoiced twice
        run_locked(lambda: Pool().get('isp.voucher.order').invoice_paid(
                Pool().get('isp.voucher.order').browse(
                    [o['id'] for o in orders])), tables=SEQUENCES)
        with Transaction().start(DB_NAME, 0, readonly=True):
            Invoice = Pool().get('account.invoice')
            Order = Pool().get('isp.voucher.order')
            self.assertEqual(sorted(i.id
                    for o in Order.browse([o['id'] for o in orders])
                    for i in Invoice.search([
                            ('company', '=', o.company.id),
                            ('description', '=', o.number)])), invoices)

    def test_staff_see_their_branch(self):
        "The orders' record rule: a user of Nairobi sees no Bandung order"
        self.place()
        self.assertEqual(self.buy(self.shop(B_HOST), self.ids['B'],
                phone='0712 345678').status_code, 303)
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            User = pool.get('res.user')
            Group = pool.get('res.group')
            ModelData = pool.get('ir.model.data')
            Order = pool.get('isp.voucher.order')
            group = Group(ModelData.get_id('isp_base', 'group_isp_finance'))
            user, = User.create([{
                        'login': 'finance-nbo', 'name': "Finance Nairobi",
                        'companies': [('add', [self.ids['b']])],
                        'company': self.ids['b'],
                        'groups': [('add', [group.id])]}])
            everyone = {o.company.id for o in Order.search([])}
            transaction.commit()
        with Transaction().start(DB_NAME, user.id, context={
                    'company': self.ids['b'], '_check_access': True}):
            seen = Pool().get('isp.voucher.order').search([])
            self.assertEqual(everyone, {self.ids['a'], self.ids['b']})
            self.assertEqual({o.company.id for o in seen}, {self.ids['b']})

    def test_hostile_requests(self):
        """Hostile path arguments, bodies and methods on the shop's routes:
        never a 5xx nor an exception's text, nothing created"""
        client = self.shop()
        before = self.counts()
        paths = [SHOP, BUY % self.ids['A'], BUY % 0,
            '/isp_voucher/shop/buy/abc',
            '/isp_voucher/shop/buy/%d' % 2 ** 63,
            ORDER % (1, 'a' * 22), ORDER % (2 ** 40, 'a' * 22),
            ORDER % (1, '%00' * 20), ORDER % (1, 'é' * 30),
            ORDER % (1, 'a' * 5000), '/isp_voucher/shop/order/x/y']
        bodies = [b'', b'phone=%00&amount=5550', b'amount=' + b'9' * 1900,
            b'phone=\xff\xfe&amount=1e999999', b'gateway=-1&amount=NaN',
            b'amount=Infinity&phone=081234567890', b'a=' * 70,
            b'amount=sNaN&phone=081234567890&gateway=%d'
            % self.ids['gateway']]
        for path in paths:
            for method in ['GET', 'POST', 'PUT', 'DELETE']:
                response = client.open(path, method=method)
                with self.subTest(path=path, method=method):
                    self.assertLess(response.status_code, 500)
            for body in bodies:
                token = ('&csrf_token=%s' % client.token).encode()
                response = client.open(path, method='POST',
                    data=body + token,
                    content_type='application/x-www-form-urlencoded')
                text = response.get_data(as_text=True)
                with self.subTest(path=path, body=body[:40]):
                    self.assertLess(response.status_code, 500, text[:400])
                    self.assertIsNone(LEAKS.search(text), text[:400])
        self.assertEqual(self.counts(), before)

    def test_catalog_complete(self):
        "Every message of the shop's pages has its Indonesian translation"
        import os
        self.assertEqual(untranslated(os.path.dirname(voucher_web.__file__)),
            [])



@unittest.skipIf(FakeMidtrans is None, "tools.fake_gateways missing")
class ShopGatewaysTestCase(RouteTestCase):
    """EV orders' webhooks through each gateway: the refusals of the
    invoices' rules (signature, unsigned fields, amount, currency, unknown
    reference, at most once) and cancelled payments, voucher by voucher"""
    module = 'isp_voucher'

    @classmethod
    def setUpClass(cls):
        cls.fakes = {'midtrans': FakeMidtrans().start(),
            'xendit': FakeXendit().start(), 'duitku': FakeDuitku().start(),
            'mpesa': FakeMpesa().start()}
        super().setUpClass()
        cls.ids = run_locked(cls.setup_data, tables=SETUP_TABLES)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for fake in cls.fakes.values():
            fake.stop()

    @classmethod
    def setup_data(cls):
        Country = Pool().get('country.country')
        indonesia, kenya = Country.create([
                {'name': "Indonesia", 'code': 'ID'},
                {'name': "Kenya", 'code': 'KE'}])
        a = _branch("NetKita Bandung", A_HOST, 'id', indonesia)
        k = _branch("NetKita Mombasa", K_HOST, 'en', kenya, 'KES')
        ids = {'host': {}, 'profile': {}, 'gateway': {}}
        for company, code, price in [(a, 'A', '5000'), (k, 'K', '50')]:
            with Transaction().set_context(company=company.id):
                create_sales_tax(company, '0.11')
                ids[code] = create_profile(company, code=code + 'H',
                    price=price, shop=True, shop_restock=3).id
        for provider in PROVIDERS:
            kenyan = provider == 'mpesa'
            ids['gateway'][provider] = create_gateway(provider,
                cls.fakes[provider].url, company=k if kenyan else None).id
            ids['host'][provider] = K_HOST if kenyan else A_HOST
            ids['profile'][provider] = ids['K' if kenyan else 'A']
        return ids

    def setUp(self):
        super().setUp()
        for fake in self.fakes.values():
            fake.reset()
            fake.drop_callbacks(None)   # replayed through the route
        self.fakes['xendit'].callback_url = (
            'http://localhost/%s/isp_billing/webhook/xendit' % DB_NAME)

    def place(self, provider):
        "Buy through `provider` on its branch's shop: the reference"
        client = PortalClient(self.client(), DB_NAME,
            self.ids['host'][provider], language='en')
        client.get(SHOP)
        profile = self.ids['profile'][provider]
        body = client.get(BUY % profile).get_data(as_text=True)
        amount = re.search(r'name="amount" value="([^"]+)"', body).group(1)
        response = client.post(BUY % profile, data={
                'phone': ('0712 345678' if provider == 'mpesa'
                    else '0812 3456 7890'),
                'amount': amount,
                'gateway': str(self.ids['gateway'][provider])})
        self.assertEqual(response.status_code, 303,
            response.get_data(as_text=True)[:800])
        with Transaction().start(DB_NAME, 0, readonly=True):
            Payment = Pool().get('isp.payment.transaction')
            payment, = Payment.search([], order=[('id', 'DESC')], limit=1)
            self.assertEqual(payment.gateway.provider, provider)
            self.assertTrue(payment.reference.startswith('EV'))
            return payment.reference

    def deliveries(self, provider, reference):
        return [d for d in self.fakes[provider].callbacks
            if reference in d.url or reference.encode() in d.body]

    def replay(self, delivery, body=None, url=None):
        "Post a captured callback to the route, as the provider would"
        parts = urllib.parse.urlsplit(url or delivery.url)
        path = parts.path + ('?' + parts.query if parts.query else '')
        return self.client().post(path,
            data=delivery.body if body is None else body,
            headers=delivery.headers)

    def replay_payload(self, delivery, payload):
        "`delivery` with its body replaced by `payload`, encoded alike"
        if 'json' in delivery.headers.get('Content-Type', ''):
            body = json.dumps(payload).encode()
        else:
            body = urllib.parse.urlencode(payload).encode()
        return self.replay(delivery, body=body)

    def order(self, reference):
        "(order state, voucher id) of payment `reference`"
        with Transaction().start(DB_NAME, 0, readonly=True):
            Payment = Pool().get('isp.payment.transaction')
            payment, = Payment.search([('reference', '=', reference)])
            order = payment.document
            return order.state, order.voucher.id if order.voucher else None

    def sold(self):
        with Transaction().start(DB_NAME, 0, readonly=True):
            Voucher = Pool().get('isp.voucher')
            return Voucher.search_count([('sold_date', '!=', None)])

    def test_forged(self):
        "A forged notification: refused, no voucher"
        for provider in PROVIDERS:
            with self.subTest(provider=provider):
                reference = self.place(provider)
                fake = self.fakes[provider]
                fake.pay(reference)
                fake.callbacks.clear()
                before = self.sold()
                fake.notify(reference, bad_signature=True)
                delivery, = self.deliveries(provider, reference)
                self.assertIn(self.replay(delivery).status_code, {401, 403})
                self.assertEqual(self.order(reference), ('pending', None))
                self.assertEqual(self.sold(), before)

    def test_tampered_unsigned_fields(self):
        """Each field a gateway does not sign altered to claim a payment
        (the invoices' cases): refused or not confirmed, no voucher"""
        from trytond.modules.isp_billing.tests.test_payment_gateway import (
            TAMPERS,
        )
        self.assertEqual({t[0] for t in TAMPERS}, set(PROVIDERS))
        for provider, event, altered, alter, status in TAMPERS:
            with self.subTest(provider=provider, altered=altered):
                reference = self.place(provider)
                before = self.sold()
                getattr(self.fakes[provider], event)(reference)
                delivery = self.deliveries(provider, reference)[-1]
                response = self.replay_payload(delivery,
                    alter(copy.deepcopy(delivery.payload)))
                self.assertEqual(response.status_code, status, response.data)
                state, voucher = self.order(reference)
                self.assertNotEqual(state, 'paid')
                self.assertIsNone(voucher)
                self.assertEqual(self.sold(), before)

    def test_claims_not_confirmed(self):
        """Authenticated notifications (a leaked key) of a payment, of a
        wrong amount, of a wrong currency the gateway does not know: no
        voucher"""
        claims = [(p, {}) for p in PROVIDERS] + [
            (p, {'amount': 1000}) for p in PROVIDERS]
        for provider, values in claims:
            with self.subTest(provider=provider, **values):
                reference = self.place(provider)
                before = self.sold()
                for delivery in self.fakes[provider].claim(reference,
                        'paid', **values):
                    self.assertEqual(self.replay(delivery).status_code, 200)
                self.assertEqual(self.order(reference), ('pending', None))
                self.assertEqual(self.sold(), before)

    def test_wrong_amount(self):
        """Paid at the gateway with another amount: flagged for staff, no
        voucher (M-Pesa: the prompt's amount cannot differ)"""
        for provider in ['midtrans', 'xendit', 'duitku']:
            with self.subTest(provider=provider):
                reference = self.place(provider)
                before = self.sold()
                self.fakes[provider].pay(reference, amount=1000)
                delivery, = self.deliveries(provider, reference)
                self.assertEqual(self.replay(delivery).status_code, 200)
                self.assertEqual(self.order(reference), ('pending', None))
                self.assertEqual(self.sold(), before)
                with Transaction().start(DB_NAME, 0, readonly=True):
                    Payment = Pool().get('isp.payment.transaction')
                    payment, = Payment.search(
                        [('reference', '=', reference)])
                    self.assertEqual(payment.review, 'wrong_amount')

    def test_wrong_currency(self):
        """A gateway of another currency than the branch's (Midtrans, IDR,
        on the KES branch; M-Pesa, KES, on the IDR one): refused at the
        form, no order"""
        for host, provider in [(K_HOST, 'midtrans'), (A_HOST, 'mpesa')]:
            with self.subTest(host=host, provider=provider):
                client = PortalClient(self.client(), DB_NAME, host,
                    language='en')
                client.get(SHOP)
                profile = self.ids['K' if host == K_HOST else 'A']
                with Transaction().start(DB_NAME, 0, readonly=True):
                    before = Pool().get('isp.voucher.order').search_count([])
                response = client.post(BUY % profile, data={
                        'phone': '0712 345678', 'amount': '55.50',
                        'gateway': str(self.ids['gateway'][provider])})
                self.assertEqual(response.status_code, 400)
                self.assertIn('payment method',
                    response.get_data(as_text=True))
                with Transaction().start(DB_NAME, 0, readonly=True):
                    self.assertEqual(Pool().get(
                            'isp.voucher.order').search_count([]), before)

    def test_unknown_reference(self):
        "A notification of an unknown EV reference: 404, nothing changes"
        for provider in PROVIDERS:
            with self.subTest(provider=provider):
                reference = self.place(provider)
                fake = self.fakes[provider]
                fake.pay(reference)
                delivery, = self.deliveries(provider, reference)
                before = self.sold()
                unknown = 'EV' + '9' * (len(reference) - 2)
                response = self.replay(delivery,
                    body=delivery.body.replace(reference.encode(),
                        unknown.encode()),
                    url=delivery.url.replace(reference, unknown))
                self.assertIn(response.status_code, {403, 404})
                self.assertEqual(self.order(reference), ('pending', None))
                self.assertEqual(self.sold(), before)

    def test_repeated_one_voucher(self):
        "The same notification three times: one voucher"
        for provider in PROVIDERS:
            with self.subTest(provider=provider):
                reference = self.place(provider)
                fake = self.fakes[provider]
                before = self.sold()
                fake.pay(reference)
                fake.notify(reference, repeat=2)
                deliveries = self.deliveries(provider, reference)
                self.assertEqual(len(deliveries), 3)
                self.assertEqual([self.replay(d).status_code
                        for d in deliveries], [200] * 3)
                state, voucher = self.order(reference)
                self.assertEqual(state, 'paid')
                self.assertIsNotNone(voucher)
                self.assertEqual(self.sold(), before + 1)

    def test_cancelled_no_voucher(self):
        """An expired or failed (cancelled) payment: no voucher (a Xendit
        invoice only expires)"""
        for provider in PROVIDERS:
            for event in ['expire', 'fail'][:1 if provider == 'xendit'
                    else 2]:
                with self.subTest(provider=provider, event=event):
                    reference = self.place(provider)
                    before = self.sold()
                    getattr(self.fakes[provider], event)(reference)
                    for delivery in self.deliveries(provider, reference):
                        self.assertEqual(
                            self.replay(delivery).status_code, 200)
                    self.assertEqual(self.order(reference),
                        ('cancelled', None))
                    self.assertEqual(self.sold(), before)


del RouteTestCase
