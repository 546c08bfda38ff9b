# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The helpdesk pages of the customer portal through trytond's WSGI
application: Bandung (Indonesian) with Siti and Budi, Nairobi (English)
with John; opening a ticket with a photo, the list, the public
conversation, replying, the ticket_resolved notice with its rating link and
the rating; every refusal writes nothing."""
import io
import os
import pathlib
import re
import unittest

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.portal_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LEAKS,
    PASSWORD,
    PortalClient,
    PortalTestMixin,
    browser_route,
    create_subscriber,
    untranslated,
)
from trytond.modules.isp_helpdesk import web as helpdesk_web
from trytond.modules.isp_helpdesk.web.pages import MAX_ATTACHMENT

from .helpdesk_setup import two_branches

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

A_HOST, B_HOST = 'bandung.test', 'nairobi.test'
IMG = pathlib.Path(__file__).resolve().parents[3] / 'docs' / 'img'
NEW = '/isp_helpdesk/portal/tickets/new'
LIST = '/isp_helpdesk/portal/tickets'
TICKET = '/isp_helpdesk/portal/ticket/%d'
PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 64
GIF = b'GIF89a' + b'\x00' * 64


class PortalHelpdeskTestCase(PortalTestMixin, RouteTestCase):
    "The subscriber's helpdesk pages"
    module = 'isp_helpdesk'

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Lang = pool.get('ir.lang')
        Category = pool.get('isp.helpdesk.category')
        Lang.write(Lang.search([('code', '=', 'id')]), {'active': True})
        data = two_branches()
        bdg, nbo = data['bdg'], data['nbo']
        Category.write([bdg['billing']], {'closed_reply': 'refuse'})
        siti, _ = create_subscriber(bdg['company'], "Siti Aminah",
            email='siti@hd.test', lang='id')
        budi, _ = create_subscriber(bdg['company'], "Budi Santoso",
            email='budi@hd.test', lang='en')
        john, _ = create_subscriber(nbo['company'], "John Kamau",
            email='john@hd.test', lang='en')
        cls.ids = {
            'bdg': bdg['company'].id, 'nbo': nbo['company'].id,
            'internet': bdg['internet'].id, 'billing': bdg['billing'].id,
            'nbo_internet': nbo['internet'].id,
            'siti': siti.id, 'budi': budi.id, 'john': john.id,
            'tech': bdg['users']['group_isp_technician'].id,
            }

    # -- helpers --------------------------------------------------------------

    def portal(self, login, host=A_HOST):
        return super().portal(login, host)

    def open_ticket(self, client, category=None, status=303, **values):
        "POST the new ticket form (multipart when a file is given)"
        client.get(NEW)
        data = {
            'category': str(self.ids['internet'] if category is None
                else category),
            'subject': "Internet mati", 'description': "Lampu LOS merah",
            **values}
        response = client.post(NEW, data)
        self.assertEqual(response.status_code, status,
            response.get_data(as_text=True)[:600])
        if status == 303:
            return int(re.search(r'/ticket/(\d+)\?done=opened',
                    response.headers['Location']).group(1))
        return response

    def staff(self, company='bdg'):
        "A committed transaction of the back office in a branch"
        return Transaction().start(DB_NAME, 0, context={
                'company': self.ids[company]})

    def counts(self):
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            return tuple(pool.get(m).search([], count=True) for m in [
                    'isp.helpdesk.ticket', 'isp.helpdesk.ticket.message',
                    'ir.attachment'])

    # -- tests ----------------------------------------------------------------

    def test_open_ticket_and_list(self):
        """Siti opens a ticket with a photo in Indonesian: assigned, channel
        portal, the photo attached under a safe name, ticket_created queued
        in her language; her list shows it, nobody else's"""
        client = self.portal('siti@hd.test')
        body = self.page(client, NEW)
        self.assertIn('Laporkan masalah', body)
        self.assertIn('enctype="multipart/form-data"', body)
        self.assertIn('value="%d"' % self.ids['internet'], body)
        self.assertNotIn('value="%d"' % self.ids['nbo_internet'], body)
        ticket_id = self.open_ticket(client, subject="Siti: no signal",
            attachment=(io.BytesIO(PNG), '../../my router.gif'))
        body = self.page(client, TICKET % ticket_id + '?done=opened')
        self.assertIn('Tiket Anda sudah dibuat', body)
        self.assertIn('Lampu LOS merah', body)
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Attachment = pool.get('ir.attachment')
            Message = pool.get('isp.message')
            ticket = Ticket(ticket_id)
            self.assertEqual((ticket.channel, ticket.state,
                    ticket.subscriber.id, ticket.company.id), (
                    'portal', 'assigned', self.ids['siti'], self.ids['bdg']))
            self.assertIsNotNone(ticket.resolution_deadline)
            attachment, = Attachment.search(
                [('resource', '=', str(ticket))])
            self.assertEqual(attachment.name, 'my_router.png')
            self.assertEqual(attachment.data, PNG)
            sent, = Message.search([('origin', '=', str(ticket))])
            self.assertEqual((sent.event, sent.language.code),
                ('ticket_created', 'id'))
            number = ticket.number
        body = self.page(client, LIST)
        self.assertIn(number, body)
        self.assertIn('Tiket Anda', body)
        self.assertIn('aria-current="page"', body)   # the Helpdesk slot
        for login, host in [('budi@hd.test', A_HOST),
                ('john@hd.test', B_HOST)]:
            with self.subTest(login=login):
                body = self.page(self.portal(login, host), LIST)
                self.assertNotIn(TICKET % ticket_id + '"', body)
                self.assertNotIn("Siti: no signal", body)

    def test_open_refused(self):
        """Missing or too long fields, a file not a photo or PDF: 400 with
        the reason, the input kept; too large a file: 413; another branch's
        or no category id: 404; no CSRF token: 403; nothing written"""
        client = self.portal('budi@hd.test')
        before = self.counts()
        cases = [
            ({'subject': ''}, 400, 'Say in a few words what is wrong.'),
            ({'subject': 'x' * 121}, 400, 'The subject is too long.'),
            ({'description': '  '}, 400, 'Describe the problem.'),
            ({'category': ''}, 400, 'Choose a category.'),
            ({'attachment': (io.BytesIO(GIF), 'a.png')}, 400,
                'Attach a photo (JPEG or PNG) or a PDF.'),
            ({'attachment': (io.BytesIO(
                            PNG + b'\x00' * MAX_ATTACHMENT), 'big.png')},
                413, 'The file is too large.'),
            ({'category': str(self.ids['nbo_internet'])}, 404, None),
            ({'category': 'abc'}, 404, None),
            ({'category': str(2 ** 40)}, 404, None),
            ({'service': '999999'}, 404, None),
            ({'csrf_token': 'forged'}, 403, None),
            ]
        for values, status, reason in cases:
            with self.subTest(values=str(values)[:60]):
                response = self.open_ticket(client, status=status, **values)
                body = response.get_data(as_text=True)
                self.assertIsNone(LEAKS.search(body), body)
                if reason:
                    self.assertIn(reason, body)
                if status == 400:
                    self.assertIn('Nothing was saved', body)
                if status == 400 and 'description' not in values:
                    self.assertIn('Lampu LOS merah', body)   # kept
        self.assertEqual(self.counts(), before)

    def test_malformed_uploads(self):
        """Multipart bodies: two files in a field, broken bodies, one
        too large, a file on a page taking none: refused (4xx),
        never an exception, nothing written"""
        client = self.portal('budi@hd.test')
        client.get(NEW)
        token = client.token
        before = self.counts()
        two = {'csrf_token': token, 'category': str(self.ids['internet']),
            'subject': "x", 'description': "y",
            'attachment': [(io.BytesIO(PNG), 'a.png'),
                (io.BytesIO(PNG), 'b.png')]}
        response = client.post(NEW, two)
        self.assertEqual(response.status_code, 400)
        for headers, data, status in [
                ({'Content-Type': 'multipart/form-data; boundary=zz'},
                    b'--zz\r\nContent-Disposition: form-data; name="a"\r\n'
                    b'\r\n\xff\x00', 403),
                ({'Content-Type': 'multipart/form-data'}, b'garbage', 403),
                ({'Content-Type': 'multipart/form-data; boundary=zz'},
                    b'--zz\r\n' + b'x' * (MAX_ATTACHMENT + 20000), 413),
                ]:
            with self.subTest(data=data[:20]):
                response = client.open(NEW, method='POST', headers=headers,
                    data=data)
                self.assertEqual(response.status_code, status)
                self.assertIsNone(LEAKS.search(
                        response.get_data(as_text=True)))
        # the rating page takes no file: a multipart body is not a form
        response = client.post(TICKET % 1 + '/rate', {
                'rating': '5', 'f': (io.BytesIO(PNG), 'a.png')})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(self.counts(), before)

    def test_other_subscribers_ticket_404(self):
        """Another subscriber's (same branch or the other) ticket, its
        reply and rating: 404, nothing written; not logged in: the login
        page"""
        budi = self.portal('budi@hd.test')
        budi_ticket = self.open_ticket(budi)
        john_ticket = self.open_ticket(self.portal('john@hd.test', B_HOST),
            category=self.ids['nbo_internet'])
        siti = self.portal('siti@hd.test')
        siti.get(LIST)
        before = self.counts()
        for ticket_id in [budi_ticket, john_ticket, 2 ** 31, 0]:
            with self.subTest(ticket=ticket_id):
                self.page(siti, TICKET % ticket_id, 404)
                for action, data in [('reply', {'body': "Hello"}),
                        ('rate', {'rating': '5'})]:
                    response = siti.post(TICKET % ticket_id + '/' + action,
                        data)
                    self.assertEqual(response.status_code, 404)
        # John's ticket on his own branch's host only
        john = self.portal('john@hd.test', B_HOST)
        self.page(john, TICKET % john_ticket)
        self.page(PortalClient(self.client(), DB_NAME, A_HOST),
            TICKET % john_ticket, 303)
        self.assertEqual(self.counts(), before)
        response = PortalClient(self.client(), DB_NAME, A_HOST).get(
            TICKET % budi_ticket)
        self.assertIn('/isp_base/portal/login?next=',
            response.headers['Location'])

    def test_reply_resolve_and_rate(self):
        """The staff's public reply is shown, the internal note is not; the
        subscriber's reply (with a PDF) resumes the waiting ticket; rating
        before the resolution, out of 1-5 or twice: 400; resolving sends
        ticket_resolved with the rating link in the subscriber's language;
        the rating is stored once"""
        client = self.portal('siti@hd.test')
        ticket_id = self.open_ticket(client)
        with self.staff():
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Message = pool.get('isp.helpdesk.ticket.message')
            Message.create([
                    {'ticket': ticket_id, 'kind': 'public',
                        'body': "Teknisi kami memeriksa jalur Anda"},
                    {'ticket': ticket_id, 'kind': 'internal',
                        'body': "ODP 12 rusak"}])
            Ticket.wait([Ticket(ticket_id)])
        body = self.page(client, TICKET % ticket_id)
        self.assertIn('Teknisi kami memeriksa jalur Anda', body)
        self.assertNotIn('ODP 12', body)
        self.assertIn('Menunggu jawaban Anda', body)
        self.assertNotIn('rate-form', body)

        before = self.counts()
        for data, reason in [({'body': ' '}, 'Tulis pesan Anda.'),
                ({'body': "x", 'attachment': (
                            io.BytesIO(b'MZ\x90'), 'a.exe')},
                    'Lampirkan foto'),
                ]:
            response = client.post(TICKET % ticket_id + '/reply', data)
            self.assertEqual(response.status_code, 400)
            self.assertIn(reason, response.get_data(as_text=True))
        response = client.post(TICKET % ticket_id + '/rate',
            {'rating': '5'})
        self.assertEqual(response.status_code, 400)
        self.assertIn('dapat dinilai setelah selesai',
            response.get_data(as_text=True))
        self.assertEqual(self.counts(), before)

        client.get(TICKET % ticket_id)
        response = client.post(TICKET % ticket_id + '/reply', {
                'body': "Sudah saya restart",
                'attachment': (io.BytesIO(b'%PDF-1.4 x'),
                    'bukti.pdf')})
        self.assertEqual(response.status_code, 303)
        with self.staff():
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Notice = pool.get('isp.message')
            ticket = Ticket(ticket_id)
            self.assertEqual(ticket.state, 'in_progress')
            self.assertEqual(ticket.messages[-1].kind, 'customer')
            Ticket.resolve([ticket])
            notice, = Notice.search([('origin', '=', str(ticket)),
                    ('event', '=', 'ticket_resolved')])
            self.assertEqual(notice.language.code, 'id')
            self.assertIn('selesai', notice.body)
            self.assertIn('https://bandung.test/%s%s' % (
                    DB_NAME, TICKET % ticket_id), notice.body)

        body = self.page(client, TICKET % ticket_id)
        self.assertIn('rate-form', body)
        self.assertIn('Menulis pesan akan membuka kembali', body)
        for rating in ['0', '6', 'abc', '']:
            response = client.post(TICKET % ticket_id + '/rate',
                {'rating': rating, 'comment': "Cepat"})
            self.assertEqual(response.status_code, 400, rating)
            self.assertIn('Pilih 1 sampai 5', response.get_data(
                    as_text=True))
        response = client.post(TICKET % ticket_id + '/rate',
            {'rating': '4', 'comment': " Cepat dan ramah "})
        self.assertEqual(response.status_code, 303)
        body = self.page(client, TICKET % ticket_id + '?done=rated')
        self.assertIn('4 dari 5', body)
        self.assertIn('Terima kasih atas penilaian Anda.', body)
        response = client.post(TICKET % ticket_id + '/rate',
            {'rating': '1'})
        self.assertEqual(response.status_code, 400)
        with Transaction().start(DB_NAME, 0):
            Ticket = Pool().get('isp.helpdesk.ticket')
            ticket = Ticket(ticket_id)
            self.assertEqual((ticket.rating, ticket.rating_comment),
                (4, "Cepat dan ramah"))
            self.assertEqual(ticket.activities[-1].kind, 'rating')

    def test_reply_closed_refused(self):
        """A reply to a resolved ticket of a category that refuses them:
        400, nothing written; Budi's notice is in English"""
        client = self.portal('budi@hd.test')
        ticket_id = self.open_ticket(client, category=self.ids['billing'])
        with self.staff():
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Notice = pool.get('isp.message')
            Ticket.resolve([Ticket(ticket_id)])
            notice, = Notice.search([('origin', '=', 'isp.helpdesk.ticket,%d'
                        % ticket_id), ('event', '=', 'ticket_resolved')])
            self.assertEqual(notice.language.code, 'en')
            self.assertIn('is resolved. Please rate our service', notice.body)
        body = self.page(client, TICKET % ticket_id)
        self.assertNotIn('reply-form', body)
        before = self.counts()
        response = client.post(TICKET % ticket_id + '/reply',
            {'body': "Still wrong"})
        self.assertEqual(response.status_code, 400)
        self.assertIn('This ticket is closed', response.get_data(
                as_text=True))
        self.assertEqual(self.counts(), before)

    def test_catalog_complete(self):
        "Every message of the helpdesk pages has its Indonesian translation"
        import os
        self.assertEqual(untranslated(
                os.path.dirname(helpdesk_web.__file__)), [])

    @unittest.skipIf(sync_playwright is None or not os.path.exists(CHROMIUM),
        "Chromium and Playwright are needed")
    def test_browser(self):
        """The helpdesk pages in Chromium at 360 px in Indonesian (Siti)
        and on a desktop in English (John): open a ticket, the
        list, the staff's reply, resolved, rated; no horizontal scroll
        (docs/img/portal-helpdesk*.png)"""
        from trytond.protocols.wrappers import Response
        from trytond.wsgi import app
        from werkzeug.test import Client
        self.failures = []
        serve = browser_route(Client(app, Response, use_cookies=False),
            self.failures, follow=True)
        IMG.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                args=CHROMIUM_ARGS)
            try:
                for login, host, lang, size, suffix in [
                        ('siti@hd.test', A_HOST, 'id', (360, 740), 'phone'),
                        ('john@hd.test', B_HOST, 'en', (1280, 800),
                            'desktop')]:
                    with self.subTest(lang=lang):
                        self.browse(browser, serve, host, login, lang, size,
                            suffix)
            finally:
                browser.close()
        self.assertEqual(self.failures, [])

    def browse(self, browser, serve, host, login, lang, size, suffix):
        width, height = size
        base = 'http://%s/%s' % (host, DB_NAME)
        context = browser.new_context(viewport={
                'width': width, 'height': height}, locale=lang,
            extra_http_headers={'Accept-Language': lang})

        def submit(selector):
            with page.expect_navigation():
                page.click(selector)

        def fits():
            self.assertLessEqual(page.evaluate(
                    "document.documentElement.scrollWidth"), width)
        try:
            page = context.new_page()
            page.route('**/*', serve)
            page.goto(base + '/isp_base/portal/login?next=/%s%s' % (
                    DB_NAME, LIST))
            page.fill('#login', login)
            page.fill('#password', PASSWORD)
            submit('button.primary')
            self.assertEqual(page.locator('html').get_attribute('lang'),
                lang)
            self.assertEqual(page.locator(
                    '[data-nav="helpdesk"][aria-current="page"]').count(), 1)
            submit('#new-ticket')
            page.select_option('#category', index=1)
            page.fill('#subject', "Modem mati" if lang == 'id'
                else "Router off")
            page.fill('#description', "Lampu power mati" if lang == 'id'
                else "No power light")
            # (no file: Chromium hands no file part of a multipart body to
            # an intercepted request; the uploads are the route tests')
            submit('#ticket-form button.primary')
            # (the route follows the redirect: the URL stays the form's)
            self.assertEqual(page.locator('main .notice').count(), 1)
            fits()
            ticket_id = int(re.search(r'/ticket/(\d+)/reply',
                    page.get_attribute('#reply-form', 'action')).group(1))
            with Transaction().start(DB_NAME, 0):
                pool = Pool()
                Ticket = pool.get('isp.helpdesk.ticket')
                Attachment = pool.get('ir.attachment')
                Message = pool.get('isp.helpdesk.ticket.message')
                ticket = Ticket(ticket_id)
                self.assertEqual(Attachment.search([
                            ('resource', '=', str(ticket))], count=True), 0)
                self.assertEqual((ticket.channel, ticket.subscriber.email),
                    ('portal', login))
                with Transaction().set_context(company=ticket.company.id):
                    Message.create([{'ticket': ticket.id, 'kind': 'public',
                                'body': "Teknisi menuju lokasi" if lang == 'id'
                                else "A technician is on the way"}])
                    Ticket.resolve([ticket])
                Transaction().commit()
            page.goto(base + TICKET % ticket_id)
            page.locator('#rate-form input[value="5"]').check()
            page.fill('#comment', "Cepat!" if lang == 'id' else "Quick!")
            submit('#rate-form button.primary')
            self.assertEqual(page.locator('#rating').count(), 1)
            self.assertEqual(page.locator('#rate-form').count(), 0)
            self.assertEqual(page.locator('#messages li').count(), 1)
            fits()
            page.screenshot(path=str(IMG / ('portal-helpdesk-ticket-%s.png'
                        % suffix)), full_page=True)
            page.goto(base + LIST)
            self.assertGreaterEqual(page.locator('#tickets li').count(), 1)
            fits()
            page.screenshot(path=str(IMG / ('portal-helpdesk-%s.png'
                        % suffix)), full_page=True)
        finally:
            context.close()
