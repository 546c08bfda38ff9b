# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The invoice PDF (isp_billing.invoice): QRIS payloads (pure), then PDFs of
posted service invoices read back with pypdf: labels in the subscriber's
language, customer ID, period, number, amounts, and the QR code (dynamic
QRIS or payment link) compared module by module with the expected one."""
import binascii
import datetime as dt
import io
import random
import unittest
from decimal import Decimal

import pypdf
import qrcode
from trytond.exceptions import UserError
from trytond.pool import Pool
from trytond.tests.test_tryton import TestCase, with_transaction
from trytond.transaction import Transaction, check_access

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing import qris
from trytond.modules.isp_billing.invoice_report import (
    QR_BORDER,
    QR_BOX_SIZE,
    labels,
)

from .payment_setup import SETUP_TABLES, create_branch

#: A static QRIS made up for the tests (merchant account templates 26 and
#: 51, MCC 4899, IDR, Indonesia); its CRC comes from binascii below.
STATIC_BODY = (
    '000201' '010211'
    '2650' '0017ID.CO.EXAMPLE.WWW' '0118936000990000012345' '0303UMI'
    '5144' '0014ID.CO.QRIS.WWW' '0215ID1026000012345' '0303UMI'
    '52044899' '5303360' '5802ID' '5913NET JAKARTA 1' '6007JAKARTA'
    '61051234' '5'
    '62070703A01' '6304')
STATIC = STATIC_BODY + '%04X' % binascii.crc_hqx(
    STATIC_BODY.encode(), 0xFFFF)
#: The BR Code example of Banco Central do Brasil's Pix manual (EMVCo
#: merchant-presented QR, same CRC-16/CCITT-FALSE): published CRC 1D3D.
PIX_EXAMPLE = (
    '00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000'
    '5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D')


def independent_crc(text):
    "The CRC by Python's own CRC-CCITT (binascii), initial value 0xFFFF"
    return '%04X' % binascii.crc_hqx(text.encode('utf-8'), 0xFFFF)


class QRISTestCase(unittest.TestCase):
    "QRIS payloads: CRC, TLV parsing and building, dynamic amount"

    def test_crc_check_value(self):
        "CRC-16/CCITT-FALSE of '123456789' is 29B1 (the catalogue value)"
        self.assertEqual(qris.crc16('123456789'), 0x29B1)
        self.assertEqual(qris.crc_hex(b'123456789'), '29B1')

    def test_crc_published_example(self):
        "The published Pix example's CRC is found, and the payload checks"
        self.assertEqual(qris.crc_hex(PIX_EXAMPLE[:-4]), '1D3D')
        fields = qris.check(PIX_EXAMPLE)
        self.assertEqual(fields[-1], ('63', '1D3D'))

    def test_crc_random(self):
        "The CRC equals binascii's on random payloads"
        generator = random.Random(42)
        for _ in range(200):
            text = ''.join(generator.choice(
                    '0123456789ABCDEFGHIJ .-') for _ in range(
                    generator.randint(0, 200)))
            self.assertEqual(qris.crc_hex(text), independent_crc(text))

    def test_parse_build(self):
        "Parsing then building gives the payload back"
        fields = qris.parse(STATIC)
        self.assertEqual(fields[:2], [('00', '01'), ('01', '11')])
        self.assertEqual(dict(fields)['53'], '360')
        self.assertEqual(qris.build(fields), STATIC)
        self.assertEqual(qris.check(STATIC), fields)
        self.assertEqual(qris.currency(STATIC), '360')

    def test_dynamic(self):
        "Dynamic payload: 01=12, 54=amount after 53, CRC recomputed"
        payload = qris.dynamic(STATIC, Decimal('266400'))
        fields = qris.check(payload)
        values = dict(fields)
        self.assertEqual(values['01'], '12')
        self.assertEqual(values['54'], '266400')
        tags = [tag for tag, _ in fields]
        self.assertEqual(tags.index('54'), tags.index('53') + 1)
        self.assertEqual(payload[-8:-4], '6304')
        self.assertEqual(values['63'], independent_crc(payload[:-4]))
        self.assertIn('5303360' '5406266400' '5802ID', payload)
        # everything else is kept as it was
        self.assertEqual(
            [f for f in fields if f[0] not in {'01', '54', '63'}],
            [f for f in qris.parse(STATIC) if f[0] not in {'01', '63'}])

        # a payload that already has an amount gets the new one only
        again = qris.dynamic(payload, Decimal('1500.5'))
        tags = [tag for tag, _ in qris.check(again)]
        self.assertEqual(tags.count('54'), 1)
        self.assertEqual(tags.count('01'), 1)
        self.assertEqual(dict(qris.parse(again))['54'], '1500.50')

    def test_format_amount(self):
        "Whole amounts without decimals, others with two"
        self.assertEqual(qris.format_amount(Decimal('150000.00')), '150000')
        self.assertEqual(qris.format_amount(150000), '150000')
        self.assertEqual(qris.format_amount(Decimal('99.5')), '99.50')
        for amount in [0, -1, Decimal('1e13'), 'abc', None]:
            with self.assertRaises(qris.QRISError):
                qris.format_amount(amount)

    def test_bad_payloads(self):
        "Truncated, altered or incomplete payloads are refused, saying why"
        body_without = STATIC_BODY.replace('5802ID', '')
        cases = {
            '': 'empty',
            'hello': 'no tag and length',
            STATIC[:-10]: 'announces',
            STATIC[:-1] + ('0' if STATIC[-1] != '0' else '1'): 'CRC',
            STATIC + '\n': 'control',
            STATIC.replace('000201', '000202', 1): 'format indicator',
            body_without + independent_crc(body_without): 'country code',
            }
        no_account = ('000201010211' '52044899' '5303360' '5802ID'
            '5903NET' '6007JAKARTA' '6304')
        cases[no_account + independent_crc(no_account)] = 'merchant account'
        twice = STATIC_BODY.replace('5802ID', '5802ID5802ID')
        cases[twice + independent_crc(twice)] = 'appears 2 times'
        for payload, reason in cases.items():
            with self.subTest(payload=payload):
                with self.assertRaisesRegex(qris.QRISError, reason):
                    qris.check(payload)
                with self.assertRaises(qris.QRISError):
                    qris.dynamic(payload, 1000)
        with self.assertRaises(qris.QRISError):
            qris.dynamic(STATIC, 0)

    def test_labels(self):
        "Indonesian and English labels, English for other languages"
        self.assertEqual(labels('id')['customer_id'], "ID pelanggan")
        self.assertEqual(labels('id_ID')['title'], "Tagihan")
        self.assertEqual(labels('en')['customer_id'], "Customer ID")
        self.assertEqual(labels('fr')['title'], "Invoice")
        self.assertEqual(labels(None)['title'], "Invoice")
        self.assertEqual(set(labels('id')), set(labels('en')))


def pdf_text(content):
    "The text of the PDF, lines joined again where the layout wrapped them"
    reader = pypdf.PdfReader(io.BytesIO(content))
    text = '\n'.join(page.extract_text() for page in reader.pages)
    return ' '.join(text.replace('-\n', '-').split())


def pdf_images(content):
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [image for page in reader.pages for image in page.images]


def qr_modules(image):
    "The dark modules of a QR code image drawn with QR_BOX_SIZE pixels each"
    image = image.convert('L')
    width, height = image.size
    count = width // QR_BOX_SIZE
    return [[image.getpixel((x * QR_BOX_SIZE + QR_BOX_SIZE // 2,
                    y * QR_BOX_SIZE + QR_BOX_SIZE // 2)) < 128
            for x in range(count)] for y in range(count)]


def expected_modules(text):
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=QR_BOX_SIZE, border=QR_BORDER)
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


class InvoiceReportTestCase(ClassSetupMixin, TestCase):
    "The invoice PDF of posted service invoices"
    setup_modules = ['isp_billing']
    setup_lock_tables = SETUP_TABLES

    def branch(self, qris_payload=None, pay_url=None):
        """A branch in IDR with PPN 11 %, a plan, a router and a location
        (made once for the class); its billing configuration with
        `qris_payload` and `pay_url`"""
        Configuration = Pool().get('isp.billing.configuration')
        data = self.class_data()
        company = self.company = data['company']
        self.plan = data['plan']
        self.router = data['router']
        self.location = data['location']
        with Transaction().set_context(company=company.id):
            Configuration.write([Configuration(1)], {
                    'qris_payload': qris_payload,
                    'pay_url': pay_url,
                    })
        return company

    @classmethod
    def setup_class_data(cls):
        pool = Pool()
        Account = pool.get('account.account')
        Tax = pool.get('account.tax')
        Configuration = pool.get('isp.billing.configuration')
        Location = pool.get('isp.location')
        Router = pool.get('isp.router')
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        Address = pool.get('party.address')
        company = create_branch("Net Jakarta")
        Address.write(list(company.party.addresses) or Address.create([{
                        'party': company.party.id}]), {
                'street': "Jl. Kecubung 7", 'city': "Jakarta"})
        with Transaction().set_context(company=company.id):
            tax_account, = Account.search([
                    ('company', '=', company.id),
                    ('code', '=', '6.3.6'),
                    ])
            tax, = Tax.create([{
                        'name': "PPN 11%", 'description': "PPN 11%",
                        'type': 'percentage', 'rate': Decimal('0.11'),
                        'company': company.id,
                        'invoice_account': tax_account.id,
                        'credit_note_account': tax_account.id,
                        }])
            Configuration.write([Configuration(1)], {'tax': tax.id})
            unit, = Uom.search([('name', '=', 'Unit')])
            plan, = Template.create([{
                        'name': "Home 20", 'type': 'service',
                        'default_uom': unit.id, 'isp_plan': True,
                        'download_rate': 20000, 'upload_rate': 5000,
                        'list_price': Decimal('300000'),
                        }])
            router, = Router.create([{
                        'name': "Cikopo", 'code': 'CKP',
                        'host': '192.0.2.1', 'port': 8728,
                        'api_username': 'admin', 'api_password': 'x',
                        'timeout': 1,
                        }])
            location, = Location.create([{
                        'code': 'KCB', 'name': "Kecubung"}])
        return {'company': company, 'plan': plan, 'router': router,
            'location': location}

    def service_invoice(self, name, lang_code, customer_id, username):
        """The posted invoice of the current month of a new active service
        of a subscriber speaking `lang_code` (None: no language)"""
        pool = Pool()
        Party = pool.get('party.party')
        Lang = pool.get('ir.lang')
        Service = pool.get('isp.service')
        Date = pool.get('ir.date')
        company = self.company
        with Transaction().set_context(company=company.id):
            today = Date.today()
            party, = Party.create([{
                        'name': name,
                        'is_subscriber': True,
                        'isp_company': company.id,
                        'lang': Lang.get(lang_code).id if lang_code else None,
                        'addresses': [('create', [{
                                        'street': "Jl. Melati 12",
                                        'city': "Bekasi"}])],
                        }])
            service, = Service.create([{
                        'company': company.id, 'subscriber': party.id,
                        'location': self.location.id, 'plan': self.plan.id,
                        'router': self.router.id, 'username': username,
                        'password': 'Secret12', 'customer_id': customer_id,
                        'state': 'active', 'billing_day': 1,
                        'activation_date': today.replace(day=1),
                        }])
            invoice, = Service.isp_bill([service], today)
        self.assertEqual(invoice.state, 'posted')
        self.assertTrue(invoice.is_isp)
        return invoice

    def render(self, invoice, report='isp_billing.invoice'):
        pool = Pool()
        Report = pool.get(report, type='report')
        Invoice = pool.get('account.invoice')
        invoice = Invoice(invoice.id)
        ext, content, _, name = Report.execute([invoice.id], {})
        self.assertEqual(ext, 'pdf')
        self.assertTrue(content.startswith(b'%PDF'))
        return bytes(content), name

    def period(self, lang_code, invoice):
        pool = Pool()
        Lang = pool.get('ir.lang')
        lang = Lang.get(lang_code)
        line, = invoice.lines
        return '%s - %s' % (lang.strftime(line.isp_period_start),
            lang.strftime(line.isp_period_end))

    def assert_qr(self, content, text):
        "The PDF has one image: the QR code of `text`"
        images = pdf_images(content)
        self.assertEqual(len(images), 1)
        self.assertEqual(qr_modules(images[0].image), expected_modules(text))

    @with_transaction()
    def test_indonesian_qris(self):
        "Indonesian subscriber, branch with QRIS: labels, amounts, QRIS"
        pool = Pool()
        Lang = pool.get('ir.lang')
        self.branch(qris_payload=STATIC,
            pay_url='https://pay.example.net/{number}')
        invoice = self.service_invoice(
            "Budi Santoso", 'id', 'KCB-CKP011126-001', 'CKP001')
        self.assertEqual(invoice.total_amount, Decimal('333000'))

        content, name = self.render(invoice)
        text = pdf_text(content)
        lang = Lang.get('id')
        for value in [
                "Tagihan", "Nomor tagihan", "Tanggal tagihan", "Jatuh tempo",
                "ID pelanggan", "Periode", "Jumlah yang harus dibayar",
                "Cara pembayaran", "Pindai kode QRIS",
                "Net Jakarta", "Jl. Kecubung 7", "Budi Santoso",
                "Jl. Melati 12", "KCB-CKP011126-001", invoice.number,
                lang.strftime(invoice.invoice_date),
                lang.strftime(invoice.isp_due_date),
                self.period('id', invoice), "PPN 11%",
                lang.currency(
                    Decimal('300000'), invoice.currency, grouping=True),
                lang.currency(
                    Decimal('33000'), invoice.currency, grouping=True),
                lang.currency(
                    Decimal('333000'), invoice.currency, grouping=True),
                ]:
            self.assertIn(value, text)
        # Indonesian formats: day first, dots between thousands
        self.assertIn('333.000', text)
        self.assertRegex(self.period('id', invoice),
            r'^01/\d\d/\d{4} - \d\d/\d\d/\d{4}$')
        for english in ["Customer ID", "Amount to pay", "Due date"]:
            self.assertNotIn(english, text)

        kind, payload = invoice.isp_payment_qr()
        self.assertEqual(kind, 'qris')
        values = dict(qris.check(payload))
        self.assertEqual(values['01'], '12')
        self.assertEqual(values['54'], '333000')
        self.assertEqual(values['63'], independent_crc(payload[:-4]))
        self.assert_qr(content, payload)
        # the payment link is not printed when QRIS is there
        self.assertNotIn('https://pay.example.net', text)

    @with_transaction()
    def test_english_payment_link(self):
        "English subscriber, no QRIS: labels in English, QR of the link"
        pool = Pool()
        Lang = pool.get('ir.lang')
        self.branch(pay_url='https://pay.example.net/{number}')
        invoice = self.service_invoice(
            "John Smith", 'en', 'KCB-CKP011126-002', 'CKP002')

        content, _ = self.render(invoice)
        text = pdf_text(content)
        lang = Lang.get('en')
        url = 'https://pay.example.net/%s' % invoice.number
        for value in [
                "Invoice", "Invoice number", "Due date", "Customer ID",
                "Period", "Amount to pay", "How to pay",
                "KCB-CKP011126-002", invoice.number, "John Smith",
                self.period('en', invoice),
                lang.strftime(invoice.isp_due_date),
                lang.currency(
                    Decimal('333000'), invoice.currency, grouping=True),
                url,
                ]:
            self.assertIn(value, text)
        self.assertIn('333,000', text)
        for indonesian in ["ID pelanggan", "Jatuh tempo", "Tagihan"]:
            self.assertNotIn(indonesian, text)
        self.assertEqual(invoice.isp_payment_qr(), ('link', url))
        self.assert_qr(content, url)

    @with_transaction()
    def test_language_fallback_and_no_qr(self):
        """No language: the branch's (Indonesian); nothing to pay online:
        no QR code; paid: no QR code either"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        Party = pool.get('party.party')
        Invoice = pool.get('account.invoice')
        company = self.branch()
        Party.write([company.party], {'lang': Lang.get('id').id})
        invoice = self.service_invoice(
            "Siti Aminah", None, 'KCB-CKP011126-003', 'CKP003')
        self.assertEqual(invoice.isp_report_language(), 'id')
        self.assertEqual(invoice.isp_payment_qr(), (None, None))
        content, _ = self.render(invoice)
        text = pdf_text(content)
        self.assertIn("ID pelanggan", text)
        self.assertIn("KCB-CKP011126-003", text)
        self.assertIn("cantumkan ID pelanggan KCB-CKP011126-003", text)
        self.assertEqual(pdf_images(content), [])

        Party.write([company.party], {'lang': None})
        self.assertEqual(Invoice(invoice.id).isp_report_language(), 'en')
        # no language: the branch's country's, as its notices
        Country = pool.get('country.country')
        for code, expected in [('ID', 'id'), ('KE', 'en')]:
            country = Country.search([('code', '=', code)]) or \
                Country.create([{'name': code, 'code': code}])
            company.isp_country = country[0]
            company.save()
            with Transaction().set_context(language='en' if expected == 'id'
                    else 'id'):
                self.assertEqual(
                    Invoice(invoice.id).isp_report_language(), expected)
                # the payment notice's values in the same language
                values = Invoice._isp_payment_event(Invoice(invoice.id),
                    Decimal('333000'), dt.date(2026, 11, 13))['values']
                self.assertEqual(values['payment_date'],
                    {'id': '13/11/2026', 'en': '11/13/2026'}[expected])
                self.assertIn({'id': '333.000', 'en': '333,000'}[expected],
                    values['amount'])
        company.isp_country = None
        company.save()

        Invoice.isp_record_payment(
            invoice, invoice.total_amount, method='gateway')
        # the queued task that marks reconciled invoices paid
        Invoice.process([invoice])
        invoice = Invoice(invoice.id)
        self.assertEqual(invoice.state, 'paid')
        content, _ = self.render(invoice)
        text = pdf_text(content)
        self.assertIn("PAID", text)
        self.assertEqual(pdf_images(content), [])

    @with_transaction()
    def test_partial_payment_amount(self):
        "After a partial payment the QRIS asks for the rest"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        self.branch(qris_payload=STATIC)
        invoice = self.service_invoice(
            "Budi Santoso", 'id', 'KCB-CKP011126-004', 'CKP004')
        Invoice.isp_record_payment(
            invoice, Decimal('100000'), method='gateway')
        invoice = Invoice(invoice.id)
        kind, payload = invoice.isp_payment_qr()
        self.assertEqual(dict(qris.check(payload))['54'], '233000')
        content, _ = self.render(invoice)
        text = pdf_text(content)
        self.assertIn("Sudah dibayar", text)
        self.assertIn('233.000', text)
        self.assert_qr(content, payload)

    @with_transaction()
    def test_stock_report_and_posting(self):
        """The stock Invoice report prints service invoices with the ISP
        template, rendered each time; posting rendered nothing"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        self.branch(qris_payload=STATIC)
        invoice = self.service_invoice(
            "Budi Santoso", 'id', 'KCB-CKP011126-005', 'CKP005')
        self.assertFalse(Invoice(invoice.id).invoice_report_cache)

        content, name = self.render(invoice, report='account.invoice')
        text = pdf_text(content)
        self.assertIn("ID pelanggan", text)
        self.assertIn("KCB-CKP011126-005", text)
        self.assertEqual(len(pdf_images(content)), 1)
        self.assertFalse(Invoice(invoice.id).invoice_report_cache)

    @with_transaction()
    def test_print_as_staff(self):
        "Customer service and finance users of the branch print the PDF"
        pool = Pool()
        User = pool.get('res.user')
        Group = pool.get('res.group')
        Report = pool.get('isp_billing.invoice', type='report')
        company = self.branch(qris_payload=STATIC)
        invoice = self.service_invoice(
            "Budi Santoso", 'id', 'KCB-CKP011126-007', 'CKP007')
        for login, group_name in [('cs', "ISP Customer Service"),
                ('finance', "ISP Finance")]:
            group, = Group.search([('name', '=', group_name)])
            user, = User.create([{
                        'name': login, 'login': login,
                        'groups': [('add', [group.id])],
                        'companies': [('add', [company.id])],
                        'company': company.id,
                        }])
            with Transaction().set_user(user.id), \
                    Transaction().set_context(
                        User.get_preferences(context_only=True)), \
                    check_access():
                _, content, _, _ = Report.execute([invoice.id], {})
            text = pdf_text(bytes(content))
            self.assertIn("KCB-CKP011126-007", text)
            self.assertEqual(len(pdf_images(bytes(content))), 1)

    @with_transaction()
    def test_configuration_qris_payload(self):
        "The configuration refuses an invalid QRIS payload"
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        company = create_branch("Net Bogor")
        with Transaction().set_context(company=company.id):
            config = Configuration(1)
            config.qris_payload = STATIC
            config.save()
            self.assertEqual(
                Configuration(1).get_multivalue(
                    'qris_payload', company=company.id), STATIC)
            broken = STATIC[:-1] + ('0' if STATIC[-1] != '0' else '1')
            for payload in [broken, STATIC[:40], 'https://pay.example.net']:
                config = Configuration(1)
                config.qris_payload = payload
                with self.assertRaises(UserError) as context:
                    config.save()
                self.assertIn("QRIS", context.exception.message)
                self.assertIn("Net Bogor", context.exception.message)
            # an empty payload is fine (the PDF prints the payment link)
            config = Configuration(1)
            config.qris_payload = None
            config.save()

    @with_transaction()
    def test_other_currency_uses_link(self):
        "A QRIS payload (IDR) is not used for an invoice in another currency"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Currency = pool.get('currency.currency')
        self.branch(qris_payload=STATIC,
            pay_url='https://pay.example.net/{number}')
        invoice = self.service_invoice(
            "Budi Santoso", 'id', 'KCB-CKP011126-006', 'CKP006')
        usd, = Currency.create([{
                    'name': "US Dollar", 'code': 'USD', 'symbol': '$',
                    'numeric_code': '840', 'digits': 2,
                    'rounding': Decimal('0.01')}])
        invoice = Invoice(invoice.id)
        invoice.currency = usd
        self.assertIsNone(invoice.isp_qris_payload())
        self.assertEqual(invoice.isp_payment_qr()[0], 'link')
