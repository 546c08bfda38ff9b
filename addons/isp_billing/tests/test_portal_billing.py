# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The subscriber's dashboard and invoices in the customer portal, through
trytond's WSGI application: two branches with their own portal domains and
accounting; in Bandung Siti (a service with usage, an overdue invoice, a
paid one) and Budi (an invoice of his own), in Nairobi John (an invoice).
Paying online goes to the fake Midtrans and back."""
import datetime as dt
import re
import unittest.mock
import urllib.parse

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import app

from trytond.modules.isp_base.tests.portal_tools import (
    PASSWORD,
    PortalClient,
    create_subscriber,
    untranslated,
)
from trytond.modules.isp_billing import web as billing_web
from trytond.modules.isp_billing.web.pages import INVOICE

from .payment_setup import (
    SEQUENCES,
    SETUP_TABLES,
    create_branch,
    create_gateway,
    create_invoices,
    create_plan_and_router,
    run_locked,
    set_due_date,
)
from .test_invoice_report import pdf_text

try:
    from tools.fake_gateways import FakeMidtrans
except ImportError:   # an installed wheel without the repository's tools
    FakeMidtrans = None

A_HOST, B_HOST = 'bandung.portal.test', 'nairobi.portal.test'
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')
GB = 10 ** 9


def _branch(name, domain, lang):
    pool = Pool()
    Lang = pool.get('ir.lang')
    company = create_branch(name, 'IDR')
    company.isp_web_domain = domain
    company.save()
    company.party.lang = Lang.get(lang)
    company.party.save()
    return company


def _service(company, party, plan, router, number, **values):
    Service = Pool().get('isp.service')
    service, = Service.create([{
                'company': company.id, 'subscriber': party.id,
                'plan': plan.id, 'router': router.id,
                'username': '%s%03d' % (router.code, number),
                'password': 'secret%d' % number,
                'customer_id': 'CKP-%s%03d' % (router.code, number),
                'state': 'active', 'billing_day': 1,
                'activation_date': dt.date.today() - dt.timedelta(days=60),
                'billed_until': dt.date.today() + dt.timedelta(days=10),
                **values}])
    return service


class PortalBillingTestCase(RouteTestCase):
    "The dashboard, invoices, invoice PDF and paying online in the portal"
    module = 'isp_billing'

    @classmethod
    def setUpClass(cls):
        cls.midtrans = FakeMidtrans().start() if FakeMidtrans else None
        super().setUpClass()
        # committed, with the locks posting asks for
        cls.ids = run_locked(cls.setup_data, tables=SETUP_TABLES)[0]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.midtrans:
            cls.midtrans.stop()

    @classmethod
    def setup_data(cls):
        pool = Pool()
        Usage = pool.get('isp.service.usage')
        Date = pool.get('ir.date')
        a = _branch("NetKita Bandung", A_HOST, 'id')
        b = _branch("NetKita Nairobi", B_HOST, 'en')
        today = Date.today()
        with Transaction().set_context(company=a.id):
            siti, _ = create_subscriber(a, "Siti Aminah",
                email='siti@example.com', lang='id')
            budi, _ = create_subscriber(a, "Budi Santoso",
                email='budi@example.com', lang='en')
            plan, router = create_plan_and_router(a, "Home 20", 150000,
                'BD')
            plan.quota = 100
            plan.throttled_download_rate = 1000
            plan.throttled_upload_rate = 1000
            plan.save()
            service = _service(a, siti, plan, router, 1,
                live_status='online', live_address='10.10.0.7',
                live_since=dt.datetime.now() - dt.timedelta(hours=3))
            _service(a, siti, plan, router, 2, state='isolated',
                live_status='offline', live_address='10.10.0.8',
                live_since=dt.datetime.now() - dt.timedelta(days=2))
            Usage.create([{
                        'company': a.id, 'service': service.id,
                        'date': service.get_usage_cycle_start(today),
                        'bytes_in': 5 * GB, 'bytes_out': 37 * GB,
                        }])
            overdue, = create_invoices(a, siti, 150000)
            set_due_date([overdue], today - dt.timedelta(days=20))
            paid, = create_invoices(a, siti, 90000)
            cls._pay(paid)
            budi_invoice, = create_invoices(a, budi, 120000)
            to_pay, = create_invoices(a, siti, 175000)
            if cls.midtrans:
                create_gateway('midtrans', cls.midtrans.url, company=a)
        with Transaction().set_context(company=b.id):
            john, _ = create_subscriber(b, "John Kamau",
                email='john@example.com', lang='en')
            john_invoice, = create_invoices(b, john, 300000)
        return {
            'overdue': overdue.id, 'paid': paid.id, 'budi': budi_invoice.id,
            'john': john_invoice.id, 'overdue_number': overdue.number,
            'to_pay': to_pay.id,
            }

    @staticmethod
    def _pay(invoice):
        "Pay `invoice` whole in cash"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Method = pool.get('account.invoice.payment.method')
        method, = Method.search([('company', '=', invoice.company.id)],
            limit=1)
        invoice.pay_invoice(invoice.amount_to_pay, method,
            invoice.invoice_date, "Cash at the office")
        Invoice.process([invoice])

    def setUp(self):
        super().setUp()
        patcher = unittest.mock.patch(
            'trytond.modules.isp_base.web_user.throttle')
        patcher.start()
        self.addCleanup(patcher.stop)
        if self.midtrans:
            self.midtrans.reset()
            self.midtrans.drop_callbacks(None)   # replayed through the route

    def portal(self, login=None, host=A_HOST, **kwargs):
        client = PortalClient(self.client(), DB_NAME, host, **kwargs)
        if login:
            client.login(login, PASSWORD)
        return client

    def page(self, client, path, status=200):
        response = client.get(path)
        body = response.get_data(as_text=True)
        self.assertEqual(response.status_code, status, body[:600])
        self.assertIsNone(LEAKS.search(body), body)
        return body

    def set_language(self, client, lang):
        client.get('/isp_billing/portal/invoices')
        response = client.post('/isp_base/portal/lang', {'lang': lang,
                'next': '/%s/isp_billing/portal/invoices' % DB_NAME})
        self.assertEqual(response.status_code, 303)

    # -- the pages ------------------------------------------------------------

    def test_dashboard_is_home(self):
        "After logging in the subscriber lands on the dashboard"
        client = self.portal('siti@example.com')
        response = client.get('/isp_base/portal/')
        self.assertEqual(response.status_code, 303)
        self.assertTrue(response.headers['Location'].endswith(
                '/%s/isp_billing/portal/dashboard' % DB_NAME))

    def test_dashboard(self):
        """Each service with its status, IP, usage against the quota, next
        invoice; the overdue invoice with its Pay button; in Indonesian
        (Siti's language) and English"""
        client = self.portal('siti@example.com')
        self.set_language(client, 'id')   # (another test may change it)
        body = self.page(client, '/isp_billing/portal/dashboard')
        self.assertIn('data-status="online"', body)
        self.assertIn('10.10.0.7', body)
        self.assertIn('Online', body)            # online
        self.assertIn('42,0 GB dari 100 GB', body)
        self.assertIn('width="42"', body)          # the SVG bar
        self.assertIn('Rp150.000', body)           # next invoice
        self.assertIn('data-overdue="1"', body)
        self.assertIn('/invoice/%d/pay' % self.ids['overdue'], body)
        self.assertIn('lewat jatuh tempo', body)
        self.set_language(client, 'en')
        body = self.page(client, '/isp_billing/portal/dashboard')
        self.assertIn('Online', body)
        self.assertIn('42.0 GB of 100 GB', body)
        self.assertIn('1 invoice is overdue: IDR150,000 to pay.', body)

        # the isolated service: no address shown
        self.assertIn('data-status="isolated"', body)
        self.assertNotIn('10.10.0.8', body)

    def test_dashboard_empty(self):
        "A subscriber without service nor invoice: the page says so"
        client = self.portal('john@example.com', host=B_HOST)
        body = self.page(client, '/isp_billing/portal/dashboard')
        self.assertIn('You have no active service.', body)
        self.assertNotIn('Siti', body)

    def test_invoices(self):
        """The list with state and amount due, the payments received, the
        detail and the PDF, in both languages; only the subscriber's"""
        client = self.portal('siti@example.com')
        self.set_language(client, 'id')
        body = self.page(client, '/isp_billing/portal/invoices')
        self.assertIn('Tagihan', body)
        self.assertIn('data-state="paid"', body)
        self.assertIn('data-state="overdue"', body)
        self.assertIn('Rp90.000', body)            # the payment received
        self.assertIn('Cash at the office', body)
        self.assertNotIn('Rp120.000', body)        # Budi's
        body = self.page(client, INVOICE % self.ids['overdue'])
        self.assertIn(self.ids['overdue_number'], body)
        self.assertIn('Unduh PDF', body)
        self.set_language(client, 'en')
        body = self.page(client, '/isp_billing/portal/invoices')
        self.assertIn('Payments received', body)
        body = self.page(client, INVOICE % self.ids['overdue'])
        self.assertIn('Download PDF', body)
        self.assertIn('IDR150,000', body)
        if self.midtrans:
            self.assertIn('/pay"', body)
        body = self.page(client, INVOICE % self.ids['paid'])
        self.assertNotIn('/pay"', body)            # nothing to pay
        response = client.get((INVOICE % self.ids['overdue']) + '/pdf')
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.mimetype, 'application/pdf')
        self.assertTrue(response.data.startswith(b'%PDF'))
        self.assertIn(self.ids['overdue_number'].replace('/', '_'),
            response.headers['Content-Disposition'])

    def test_catalog_complete(self):
        "Every message of the pages has its Indonesian translation"
        import pathlib
        self.assertEqual(untranslated(
                pathlib.Path(billing_web.__file__).parent), [])

    # -- refusals -------------------------------------------------------------

    def test_other_subscribers_invoices_404(self):
        """Another subscriber's invoice, its PDF and its Pay: 404, never
        the invoice (same branch and other branch)"""
        client = self.portal('siti@example.com')
        client.get('/isp_billing/portal/invoices')
        for key in ['budi', 'john']:
            invoice_id = self.ids[key]
            for suffix in ['', '/pdf']:
                with self.subTest(key=key, suffix=suffix):
                    body = self.page(client, (INVOICE % invoice_id) + suffix,
                        status=404)
                    self.assertNotIn('%PDF', body)
            response = client.post((INVOICE % invoice_id) + '/pay')
            self.assertEqual(response.status_code, 404, key)
        # John, on his own branch's host, does not see Bandung's invoices
        john = self.portal('john@example.com', host=B_HOST)
        for key in ['overdue', 'paid', 'budi']:
            self.page(john, INVOICE % self.ids[key], status=404)
            self.page(john, (INVOICE % self.ids[key]) + '/pdf', status=404)
        body = self.page(john, '/isp_billing/portal/invoices')
        self.assertNotIn('Siti', body)
        self.assertIn('IDR300,000', body)
        # Siti's session is not valid on Nairobi's host
        self.assertEqual(client.get('/isp_billing/portal/invoices',
                base_url='http://' + B_HOST).status_code, 303)

    def test_bad_ids_404(self):
        "Unknown, huge, negative or non-numeric ids: 404, never a 500"
        client = self.portal('siti@example.com')
        for path in ['/isp_billing/portal/invoice/0',
                '/isp_billing/portal/invoice/999999',
                '/isp_billing/portal/invoice/99999999999999999999',
                '/isp_billing/portal/invoice/2147483648/pdf']:
            with self.subTest(path=path):
                response = client.get(path)
                self.assertEqual(response.status_code, 404)
        # not a number: the same 404 page (not trytond's 405)
        for path in ['/isp_billing/portal/invoice/-1',
                '/isp_billing/portal/invoice/abc',
                '/isp_billing/portal/invoice/1e3/pdf']:
            with self.subTest(path=path):
                response = client.get(path)
                self.assertEqual(response.status_code, 404)
                self.assertIn('Halaman ini tidak ada',
                    response.get_data(as_text=True))
        # every portal page with an id in its path, any method
        for rule in app.url_map.iter_rules():
            if not ('/portal/' in rule.rule and '<int:' in rule.rule):
                continue
            path = re.sub(r'<int:\w+>', 'x1', rule.rule.split('>', 1)[1])
            for method in sorted(rule.methods - {'HEAD', 'OPTIONS'}):
                with self.subTest(path=path, method=method):
                    response = (client.get(path) if method == 'GET'
                        else client.post(path, {}))
                    self.assertEqual(response.status_code, 404)
        response = client.get('/isp_billing/portal/invoice/%d/pdf/x'
            % self.ids['overdue'])
        self.assertIn(response.status_code, {404, 405})
        response = client.post('/isp_billing/portal/invoice/99999999/pay')
        self.assertEqual(response.status_code, 404)
        response = client.get((INVOICE % self.ids['overdue'])
            + '?payment=../../x')
        self.assertEqual(response.status_code, 200)

    def test_login_required(self):
        "Not logged in: every page sends to the login page and back"
        client = self.portal()
        for path in ['/isp_billing/portal/dashboard',
                '/isp_billing/portal/invoices',
                INVOICE % self.ids['overdue'],
                (INVOICE % self.ids['overdue']) + '/pdf']:
            with self.subTest(path=path):
                response = client.get(path)
                self.assertEqual(response.status_code, 303)
                location = response.headers['Location']
                self.assertIn('/isp_base/portal/login?next=', location)
                self.assertIn(urllib.parse.quote(path, safe=''), location)
        client.get('/isp_base/portal/login')
        response = client.post((INVOICE % self.ids['overdue']) + '/pay')
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])

    def test_pay_csrf_refused(self):
        "A Pay POST without the CSRF token, or another's: 403, nothing open"
        client = self.portal('siti@example.com')
        self.page(client, INVOICE % self.ids['overdue'])
        path = (INVOICE % self.ids['overdue']) + '/pay'
        self.assertEqual(client.post(path, csrf=False).status_code, 403)
        self.assertEqual(client.post(path, {'csrf_token': 'x' * 43})
            .status_code, 403)
        with Transaction().start(DB_NAME, 0):
            PaymentTransaction = Pool().get('isp.payment.transaction')
            self.assertEqual(PaymentTransaction.search([]), [])

    @unittest.skipIf(FakeMidtrans is None, "tools.fake_gateways missing")
    def test_pay_online(self):
        """Pay: the payment opened at the branch's gateway with the portal
        as return URL; the subscriber comes back to the invoice and sees the
        result the webhook recorded"""
        client = self.portal('siti@example.com')
        invoice_path = INVOICE % self.ids['to_pay']
        self.set_language(client, 'id')
        self.page(client, invoice_path)
        # the PDF before: the whole amount to pay (and kept for next time)
        before = pdf_text(client.get(invoice_path + '/pdf').data)
        self.assertIn('175.000', before.split('Jumlah yang harus')[-1])
        response = client.post(invoice_path + '/pay')
        self.assertEqual(response.status_code, 303,
            response.get_data(as_text=True)[:500])
        self.assertIn('/snap/v4/redirection/', response.headers['Location'])
        opened, = [r for r in self.midtrans.requests
            if r.path == '/snap/v1/transactions']
        body = opened.json()
        reference = body['transaction_details']['order_id']
        finish = body['callbacks']['finish']
        self.assertEqual(finish, 'http://%s/%s%s?payment=%s' % (
                A_HOST, DB_NAME, invoice_path, reference))
        # back before the notification: being confirmed
        back = finish[len('http://' + A_HOST):]
        self.assertIn('sedang dikonfirmasi', self.page(client, back))
        self.midtrans.pay(reference)
        delivery, = [d for d in self.midtrans.callbacks
            if reference.encode() in d.body]
        parts = urllib.parse.urlsplit(delivery.url)
        self.assertEqual(self.client().post(parts.path, data=delivery.body,
                headers=delivery.headers).status_code, 200)
        body = self.page(client, back)
        self.assertIn('Terima kasih', body)
        # the PDF follows the payment (never the one kept before)
        after = pdf_text(client.get(invoice_path + '/pdf').data)
        self.assertNotEqual(before, after)
        self.assertNotIn('175.000', after.split('Jumlah yang harus')[-1])
        self.assertIn('data-state="paid"', body)
        self.assertNotIn('/pay"', body)
        # another subscriber's reference on this invoice tells nothing
        self.page(client, invoice_path + '?payment=IVXXXXXXXXXX')
        # paid now: Pay again just shows the invoice
        response = client.post(invoice_path + '/pay')
        self.assertEqual(response.status_code, 303)
        self.assertTrue(response.headers['Location'].endswith(invoice_path))

    def test_queries_constant(self):
        """The queries of the dashboard, invoices and PDF pages do not grow
        with the subscriber's invoices (none per record)"""
        from trytond import backend
        name = backend.name
        module = __import__('trytond.backend.%s.database' % name,
            fromlist=['database'])
        Cursor = (module.LoggingCursor if name == 'postgresql'
            else module.SQLiteCursor)
        execute = Cursor.__mro__[1].execute
        counted = []

        def count(self, *args, **kwargs):
            counted.append(1)
            return execute(self, *args, **kwargs)

        client = self.portal('budi@example.com')
        pages = ['/isp_billing/portal/dashboard',
            '/isp_billing/portal/invoices',
            (INVOICE % self.ids['budi']) + '/pdf']

        def queries():
            result = []
            for path in pages:
                client.get(path)   # warm this process's caches
                counted.clear()
                with unittest.mock.patch.object(Cursor, 'execute', count,
                        create=True):
                    self.assertEqual(client.get(path).status_code, 200)
                result.append(len(counted))
            return result
        before = queries()
        self.assertTrue(all(before), before)

        def more():
            budi, = Pool().get('party.party').search([
                    ('name', '=', "Budi Santoso")])
            create_invoices(budi.isp_company, budi, 11000, count=3)
        run_locked(more, tables=SEQUENCES)
        self.assertEqual(queries(), before)
        self.assertIn('data-state', self.page(client,
                '/isp_billing/portal/invoices'))

    def test_pdf_kept(self):
        """The PDF is rendered at the first ask (WeasyPrint in a process of
        its own), kept, and served again to any session without rendering
        while what it shows is the same; a stale one is rendered anew"""
        import os

        from trytond.modules.isp_billing import invoice_report
        invoice_id = self.ids['overdue']
        path = (INVOICE % invoice_id) + '/pdf'

        def kept():
            with Transaction().start(DB_NAME, 0):
                Kept = Pool().get('isp.invoice.pdf')
                return [(k.invoice.id, k.key)
                    for k in Kept.search([('invoice', '=', invoice_id)])]

        def forget(key=None):
            with Transaction().start(DB_NAME, 0) as transaction:
                Kept = Pool().get('isp.invoice.pdf')
                records = Kept.search([('invoice', '=', invoice_id)])
                if key:
                    Kept.write(records, {'key': key})
                else:
                    Kept.delete(records)
                transaction.commit()
        forget()
        convert = invoice_report.html_to_pdf
        with unittest.mock.patch.object(invoice_report, 'html_to_pdf',
                side_effect=convert) as converted:
            first = self.portal('siti@example.com').get(path)
            self.assertEqual(first.status_code, 200)
            self.assertEqual(converted.call_count, 1)
            (invoice, key), = kept()
            self.assertEqual(invoice, invoice_id)
            again = self.portal('siti@example.com').get(path)
            self.assertEqual(again.data, first.data)
            self.assertEqual(converted.call_count, 1)
            forget('stale')
            anew = self.portal('siti@example.com').get(path)
            self.assertEqual(converted.call_count, 2)
            self.assertEqual(pdf_text(anew.data), pdf_text(first.data))
            self.assertEqual(kept(), [(invoice_id, key)])
        # converted in another process (the server's threads go on)
        executor = invoice_report._CONVERTER['executor']
        self.assertIsNotNone(executor)
        self.assertNotIn(os.getpid(), executor._processes)


del RouteTestCase
