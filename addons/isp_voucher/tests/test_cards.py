# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Printed voucher cards: 8, 24 or 48 a page, the code, password, price,
validity and branch on each, a QR code of the hotspot login URL; small
batches printed at once, big ones in a queue task attaching the PDF."""
import io
import math
import unittest
from decimal import Decimal

import pypdf
import qrcode
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_voucher.card import (
    DIRECT_LIMIT,
    cards_pdf,
    login_url,
    static_html,
    valid_host_name,
)

from .voucher_setup import create_batch, create_profile

HOST = 'hotspot.netkita.id'
LABELS = {'code': 'User', 'password': 'Password'}


def pdf_pages(data):
    "[(text, [QR images])] of the pages of the PDF `data`"
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = []
    for page in reader.pages:
        # the pages share their resources: the images a page draws
        content = pypdf.generic.ContentStream(page.get_contents(), reader)
        drawn = [operands[0][1:] for operands, operator
            in content.operations if operator == b'Do']
        images = {image.name.rsplit('.', 1)[0]: image
            for image in page.images}
        pages.append((' '.join(page.extract_text().split()),
                [images[name].image for name in drawn]))
    return pages


def qr_modules(text):
    "The modules of the QR code of `text` with a 1-module border"
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_L, border=1)
    code.add_data(text)
    code.make(fit=True)
    return code


def image_matrix(image):
    "The dark pixels of a one-pixel-a-module QR image, as booleans"
    image = image.convert('L')
    width, height = image.size
    pixels = image.load()
    return [[pixels[x, y] < 128 for x in range(width)]
        for y in range(height)]


def decode_matrix(matrix, candidates):
    """The text of `candidates` whose QR code (any mask: the printed ones
    use the first card's) has the modules of `matrix`: the function
    patterns, version and the data read back through the mask the image
    carries"""
    found = []
    for text in candidates:
        for mask in range(8):
            code = qrcode.QRCode(
                error_correction=qrcode.constants.ERROR_CORRECT_L,
                border=1, mask_pattern=mask)
            code.add_data(text)
            code.make(fit=True)
            if code.get_matrix() == matrix:
                found.append(text)
                break
    return found


class CardRenderingTestCase(unittest.TestCase):
    "The sheets as HTML and PDF, without a database"

    def cards(self, count, separate=False):
        return [{
                'branch': "NetKita Kecubung", 'price': "Rp 5.550",
                'validity': "1 day", 'code': 'HS%06d' % i,
                'password': 'PW%04d' % i if separate else None,
                'host': HOST} for i in range(count)]

    def test_layouts(self):
        "8, 24 and 48 cards a page, each with its code and its QR code"
        for per_page in [8, 24, 48]:
            count = per_page * 2 + 3
            with self.subTest(per_page=per_page):
                cards = self.cards(count)
                pages = pdf_pages(cards_pdf(cards, per_page, LABELS))
                self.assertEqual(len(pages), math.ceil(count / per_page))
                for number, (text, images) in enumerate(pages):
                    expected = cards[
                        number * per_page:(number + 1) * per_page]
                    self.assertEqual(len(images), len(expected))
                    for card_ in expected:
                        self.assertIn(card_['code'], text)
                    self.assertEqual(
                        text.count("NetKita Kecubung"), len(expected))
                    self.assertEqual(text.count("Rp 5.550"), len(expected))
                # the QR code of a card is the login URL with its code
                text, images = pages[1]
                first = cards[per_page]
                self.assertEqual(decode_matrix(
                        image_matrix(images[0]),
                        [login_url(HOST, c['code'], c['code'])
                            for c in cards[per_page - 1:per_page + 2]]),
                    [login_url(HOST, first['code'], first['code'])])

    def test_separate_password(self):
        "A card with its own password shows both and its QR holds both"
        cards = self.cards(3, separate=True)
        (text, images), = pdf_pages(cards_pdf(cards, 8, LABELS))
        for card_ in cards:
            self.assertIn('User %s' % card_['code'], text)
            self.assertIn('Password %s' % card_['password'], text)
        self.assertEqual(
            decode_matrix(image_matrix(images[2]), [
                    login_url(HOST, c['code'], p)
                    for c in cards for p in [c['code'], c['password']]]),
            [login_url(HOST, 'HS000002', 'PW0002')])

    def test_login_url(self):
        self.assertEqual(login_url(HOST, 'HS2345', 'AB&=C'),
            'http://hotspot.netkita.id/login?username=HS2345'
            '&password=AB%26%3DC')

    def test_text_escaped(self):
        "A branch name is text, never markup; a code is a PDF string"
        cards = self.cards(1)
        cards[0]['branch'] = '<b>Net</b> & "Kita"'
        html = static_html(cards[0], 1, 8)
        self.assertIn('&lt;b&gt;Net&lt;/b&gt; &amp; &quot;Kita&quot;', html)
        self.assertNotIn('<b>Net', html)
        cards[0]['code'] = 'A(B)\\C'
        (text, images), = pdf_pages(cards_pdf(cards, 8, LABELS))
        self.assertIn('A(B)\\C', text)
        self.assertIn('<b>Net</b> & "Kita"', text)

    def test_kinds_of_cards(self):
        """Cards of two profiles (another price) start a page of their
        own: a sheet is of one kind of card"""
        cards = self.cards(5)
        for card_ in cards[3:]:
            card_['price'] = "Rp 11.100"
        pages = pdf_pages(cards_pdf(cards, 8, LABELS))
        self.assertEqual([len(i) for _, i in pages], [3, 2])
        self.assertEqual(pages[0][0].count("Rp 5.550"), 3)
        self.assertEqual(pages[1][0].count("Rp 11.100"), 2)

    def test_valid_host_name(self):
        for name in [HOST, 'login.wifi', 'a', 'hs-1.example.co.id']:
            with self.subTest(name=name):
                self.assertTrue(valid_host_name(name))
        for name in ['', 'http://hotspot.id', 'hot spot', '-a.id',
                'a-.id', 'a..id', 'hotspot.id/login', '10.5.50.1',
                'a' * 64 + '.id', 'hot_spot.id', 'ä.id']:
            with self.subTest(name=name):
                self.assertFalse(valid_host_name(name))


class CardTestCase(RouteTestCase):
    "Cards of batches and vouchers, printed at once or in a queue task"
    module = 'isp_voucher'

    def branch(self, name="NetKita"):
        company = create_company(name)
        User = Pool().get('res.user')
        User.write([User(Transaction().user)], {
                'companies': [('add', [company.id])]})
        return company

    @with_transaction()
    def test_hotspot_dns_name(self):
        "A profile's hotspot DNS name must be a host name (lower case)"
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            self.assertEqual(profile.cards_per_page, '24')
            for name in ['http://hs.id', 'hs id', 'hs.id/login', '1.2.3.4']:
                with self.subTest(name=name), \
                        self.assertRaises(UserError) as cm:
                    Profile.write([Profile(profile.id)],
                        {'hotspot_dns_name': name})
                self.assertIn("Hotspot DNS Name", cm.exception.message)
                self.assertIn(name, cm.exception.message)
            Profile.write([profile], {'hotspot_dns_name': ' HotSpot.ID. '})
            self.assertEqual(profile.hotspot_dns_name, 'hotspot.id')

    @with_transaction()
    def test_profile_create_refused(self):
        """A profile created with a malformed rate limit, a bad hotspot DNS
        name or an unknown layout is refused naming it (nothing is created
        through the RPC: scenario_voucher_sales.rst)"""
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            for values, words in [
                    ({'rate_limit': '5 Mbps'}, "rate limit"),
                    ({'rate_limit': '2M/5M 4M/10M'}, "rate limit"),
                    ({'hotspot_dns_name': 'hs id'}, "Hotspot DNS Name"),
                    ({'cards_per_page': '12'}, "Cards per Page"),
                    ]:
                with self.subTest(values=values), \
                        self.assertRaises(UserError) as cm:
                    Profile.create([{
                                'company': company.id, 'name': "Bad",
                                'product': profile.product.id,
                                'router': profile.router.id,
                                'validity': 1, **values}])
                self.assertIn(words, cm.exception.message)

    @with_transaction()
    def test_print_batch(self):
        """The batch's cards at once: printed vouchers only, the profile's
        or the batch's layout, price with taxes, validity and branch"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Report = pool.get('isp_voucher.batch_cards', type='report')
        company = self.branch("NetKita Kecubung")
        with set_company(company):
            profile = create_profile(company, price='5000',
                hotspot_dns_name=HOST, cards_per_page='8',
                validity=3, validity_unit='hours')
            batch = create_batch(profile, 20,
                password_mode='separate', password_length=5)
            vouchers = Voucher.search(
                [('batch', '=', batch.id)], order=[('id', 'ASC')])
            Voucher.void(vouchers[:2])
            ext, data, _, name = Report.execute([batch.id], {})
            self.assertEqual(ext, 'pdf')
            pages = pdf_pages(data)
            self.assertEqual([len(i) for _, i in pages], [8, 8, 2])
            text = ''.join(t for t, _ in pages)
            for voucher in vouchers[2:]:
                self.assertIn('User %s' % voucher.code, text)
                self.assertIn('Password %s' % voucher.password, text)
            for voucher in vouchers[:2]:
                self.assertNotIn(voucher.code, text)
            self.assertEqual(text.count("NetKita Kecubung"), 18)
            self.assertEqual(text.count("3 hours"), 18)
            self.assertIn("5,000", text)

            batch.cards_per_page = '48'
            batch.save()
            _, data, _, _ = Report.execute([batch.id], {})
            self.assertEqual([len(i) for _, i in pdf_pages(data)], [18])

    @with_transaction()
    def test_print_in_branch_language(self):
        """The cards speak the branch's language and format, whoever
        prints them: an Indonesian branch's in Indonesian with Rp5.000 for
        a staff user working in English, an English branch's in English
        for a user working in Indonesian"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        Party = pool.get('party.party')
        Message = pool.get('ir.message')
        ModelData = pool.get('ir.model.data')
        Translation = pool.get('ir.translation')
        Report = pool.get('isp_voucher.batch_cards', type='report')
        # the Indonesian of two labels, as locale/id.po gives them
        Translation.create([{
                    'name': 'ir.message,text', 'type': 'model',
                    'res_id': ModelData.get_id('isp_voucher', name),
                    'lang': 'id', 'module': 'isp_voucher',
                    'src': Message(
                        ModelData.get_id('isp_voucher', name)).text,
                    'value': text}
                for name, text in [
                    ('msg_card_user', "Pengguna"),
                    ('msg_card_hours', "%(count)s jam")]])
        printed = {}
        for name, code, user_language in [
                ("NetKita Bandung", 'id', 'en'),
                ("NetKita Nairobi", 'en', 'id')]:
            company = self.branch(name)
            Party.write([company.party], {'lang': Lang.get(code).id})
            with set_company(company), \
                    Transaction().set_context(language=user_language):
                profile = create_profile(company, price='5000',
                    hotspot_dns_name=HOST, validity=3,
                    validity_unit='hours')
                batch = create_batch(profile, 2, password_mode='separate',
                    password_length=5)
                _, data, _, _ = Report.execute([batch.id], {})
                printed[code] = ''.join(t for t, _ in pdf_pages(data))
        self.assertEqual(printed['id'].count("Pengguna "), 2)
        self.assertEqual(printed['id'].count("3 jam"), 2)
        currency = company.currency
        self.assertIn(Lang.get('id').currency(
                Decimal(5000), currency, symbol=True, grouping=True),
            printed['id'])
        self.assertIn('5.000', printed['id'])
        self.assertNotIn('5,000', printed['id'])
        self.assertNotIn("User ", printed['id'])
        self.assertEqual(printed['en'].count("User "), 2)
        self.assertEqual(printed['en'].count("3 hours"), 2)
        self.assertIn(Lang.get('en').currency(
                Decimal(5000), currency, symbol=True, grouping=True),
            printed['en'])
        self.assertNotIn("Pengguna", printed['en'])

    @with_transaction()
    def test_print_vouchers(self):
        "A selection of vouchers prints their cards only"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Report = pool.get('isp_voucher.cards', type='report')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company, hotspot_dns_name=HOST)
            batch = create_batch(profile, 10)
            vouchers = Voucher.search([('batch', '=', batch.id)])
            chosen = vouchers[3:6]
            _, data, _, _ = Report.execute([v.id for v in chosen], {})
            (text, images), = pdf_pages(data)
            self.assertEqual(len(images), 3)
            self.assertEqual(
                sorted(v.code for v in vouchers if v.code in text),
                sorted(v.code for v in chosen))

    @with_transaction()
    def test_print_without_hotspot_dns_name(self):
        "No DNS name, no QR code: refused naming the field"
        pool = Pool()
        Report = pool.get('isp_voucher.batch_cards', type='report')
        company = self.branch()
        with set_company(company):
            batch = create_batch(create_profile(company), 3)
            with self.assertRaises(UserError) as cm:
                Report.execute([batch.id], {})
            self.assertIn("Hotspot DNS Name", cm.exception.message)

    @with_transaction()
    def test_print_shop_stock_refused(self):
        """The online shop's stock is never printed (the shop sells its
        codes): its batch, its vouchers (alone or with printable ones)
        and the wizard are refused with the message; another batch of the
        profile prints"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        BatchCards = pool.get('isp_voucher.batch_cards', type='report')
        Cards = pool.get('isp_voucher.cards', type='report')
        PrintCards = pool.get('isp.voucher.batch.print_cards', type='wizard')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company, hotspot_dns_name=HOST)
            shop = create_batch(profile, 3, shop=True)
            printed = create_batch(profile, 2)
            shop_vouchers = Voucher.search([('batch', '=', shop.id)])
            other = Voucher.search([('batch', '=', printed.id)])
            def wizard():
                with Transaction().set_context(
                        active_model='isp.voucher.batch',
                        active_id=shop.id, active_ids=[shop.id]):
                    session_id, _, _ = PrintCards.create()
                    return PrintCards(session_id).transition_decide()
            for name, call in [
                    ('batch', lambda: BatchCards.execute(
                            [printed.id, shop.id], {})),
                    ('vouchers', lambda: Cards.execute(
                            [v.id for v in other + shop_vouchers[:1]], {})),
                    ('wizard', wizard),
                    ]:
                with self.subTest(name), \
                        self.assertRaises(UserError) as cm:
                    call()
                self.assertEqual(cm.exception.message, gettext(
                        'isp_voucher.msg_cards_shop_batch',
                        batch=shop.rec_name))
            _, data, _, _ = BatchCards.execute([printed.id], {})
            (_, images), = pdf_pages(data)
            self.assertEqual(len(images), 2)

    @with_transaction()
    def test_print_wizard(self):
        """Up to DIRECT_LIMIT cards the wizard prints; above, it queues the
        task that attaches the PDF to the batch"""
        pool = Pool()
        PrintCards = pool.get('isp.voucher.batch.print_cards', type='wizard')
        Queue = pool.get('ir.queue')
        Attachment = pool.get('ir.attachment')
        Batch = pool.get('isp.voucher.batch')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company, hotspot_dns_name=HOST,
                cards_per_page='48')
            small = create_batch(profile, DIRECT_LIMIT)
            big = create_batch(profile, DIRECT_LIMIT + 1, code_length=6)
            for batch, state in [(small, 'print_'), (big, 'queued')]:
                with self.subTest(batch=batch.quantity), \
                        Transaction().set_context(
                            active_model='isp.voucher.batch',
                            active_id=batch.id, active_ids=[batch.id]):
                    session_id, _, _ = PrintCards.create()
                    wizard = PrintCards(session_id)
                    self.assertEqual(wizard.transition_decide(), state)
            task, = Queue.search([('name', '=', 'isp_voucher_cards')])
            self.assertEqual(task.data['model'], 'isp.voucher.batch')
            self.assertEqual(task.data['method'], 'attach_cards')
            self.assertEqual(list(task.data['instances']), [big.id])
            Batch.attach_cards([big])
            attachment, = Attachment.search(
                [('resource', '=', str(big))])
            self.assertTrue(attachment.name.endswith('.pdf'))
            pages = pdf_pages(attachment.data)
            self.assertEqual([len(i) for _, i in pages],
                [48] * 10 + [DIRECT_LIMIT + 1 - 480])

