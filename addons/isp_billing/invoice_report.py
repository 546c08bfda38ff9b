# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The PDF of service invoices: an HTML template rendered with WeasyPrint,
in the subscriber's language (Indonesian or English), with the customer ID,
the billed periods and a QR code to pay (dynamic QRIS of the amount to pay,
or the payment link).

Service invoices are rendered when printed (never at posting, see
`Invoice.print_invoice`) and every time: the amount to pay and its QR code
follow the payments received, so the stock report cache is not used for
them; the portal keeps the PDF it served with the key of what it shows
(`isp.invoice.pdf`).  The WeasyPrint conversion runs in a process of its
own (`html_to_pdf`).  See docs/invoice-pdf.md.
"""
import atexit
import base64
import concurrent.futures
import hashlib
import io
import logging
import multiprocessing
import os
import threading

import qrcode
from genshi.template import MarkupTemplate
from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, fields
from trytond.pool import Pool, PoolMeta
from trytond.report import Report
from trytond.transaction import Transaction

from . import qris
from .exceptions import BillingError

#: The labels of the PDF per language (the first part of the ir.lang code);
#: a language without labels prints in English.
LABELS = {
    'en': {
        'title': "Invoice",
        'number': "Invoice number",
        'invoice_date': "Invoice date",
        'due_date': "Due date",
        'subscriber': "Subscriber",
        'customer_id': "Customer ID",
        'period': "Period",
        'tax_identifier': "Tax ID",
        'description': "Description",
        'amount': "Amount",
        'untaxed': "Untaxed amount",
        'taxes': "Taxes",
        'total': "Total",
        'paid': "Already paid",
        'amount_to_pay': "Amount to pay",
        'how_to_pay': "How to pay",
        'pay_qris': "Scan this QRIS code with any mobile banking or "
        "e-wallet app: the amount is filled in.",
        'pay_link': "Scan this code or open the link below to pay online:",
        'pay_quote': "For a bank transfer or a payment at our office, "
        "quote your customer ID {customer_id} and the invoice number "
        "{number}.",
        'pay_nothing': "Nothing is left to pay on this invoice. Thank you.",
        'thanks': "Thank you for being our subscriber.",
        'state_draft': "DRAFT",
        'state_paid': "PAID",
        'state_cancelled': "CANCELLED",
        },
    'id': {
        'title': "Tagihan",
        'number': "Nomor tagihan",
        'invoice_date': "Tanggal tagihan",
        'due_date': "Jatuh tempo",
        'subscriber': "Pelanggan",
        'customer_id': "ID pelanggan",
        'period': "Periode",
        'tax_identifier': "NPWP",
        'description': "Keterangan",
        'amount': "Jumlah",
        'untaxed': "Jumlah sebelum pajak",
        'taxes': "Pajak",
        'total': "Total",
        'paid': "Sudah dibayar",
        'amount_to_pay': "Jumlah yang harus dibayar",
        'how_to_pay': "Cara pembayaran",
        'pay_qris': "Pindai kode QRIS ini dengan aplikasi mobile banking "
        "atau dompet digital apa pun: jumlah tagihan terisi otomatis.",
        'pay_link': "Pindai kode ini atau buka tautan berikut untuk "
        "membayar online:",
        'pay_quote': "Untuk transfer bank atau pembayaran di kantor kami, "
        "cantumkan ID pelanggan {customer_id} dan nomor tagihan {number}.",
        'pay_nothing': "Tidak ada lagi yang harus dibayar untuk tagihan "
        "ini. Terima kasih.",
        'thanks': "Terima kasih telah berlangganan.",
        'state_draft': "DRAF",
        'state_paid': "LUNAS",
        'state_cancelled': "DIBATALKAN",
        },
    }
DEFAULT_LANGUAGE = 'en'
#: ISO 4217 numeric codes of the currencies QRIS may carry (when the
#: currency record has no numeric code)
NUMERIC_CODES = {'IDR': '360'}
#: Size of the QR code image: pixels per module and quiet zone in modules
QR_BOX_SIZE = 8
QR_BORDER = 4
logger = logging.getLogger(__name__)


def _template_version():
    "A hash of the PDF's template (a kept PDF of another template is stale)"
    path = os.path.join(os.path.dirname(__file__), 'report', 'invoice.html')
    with open(path, 'rb') as file:
        return hashlib.sha256(file.read()).hexdigest()[:16]


TEMPLATE_VERSION = _template_version()


def labels(code):
    "The labels of the language `code` (``id``, ``id_ID``, ``en``...)"
    base = (code or DEFAULT_LANGUAGE).replace('-', '_').split('_')[0]
    return LABELS.get(base, LABELS[DEFAULT_LANGUAGE])


def qr_png(text):
    "A PNG image (bytes) of the QR code of `text` (error correction M)"
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=QR_BOX_SIZE, border=QR_BORDER)
    code.add_data(text)
    code.make(fit=True)
    output = io.BytesIO()
    code.make_image().save(output)
    return output.getvalue()


def data_uri(content, mimetype='image/png'):
    return 'data:%s;base64,%s' % (
        mimetype, base64.b64encode(content).decode('ascii'))


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    def isp_report_language(self):
        """The code of the language of the invoice PDF, the same as its
        notices' (isp.message notice_language): the subscriber's, else the
        branch's (its party's, else Indonesian for a branch in Indonesia),
        else English"""
        Message = Pool().get('isp.message')
        lang = Message.notice_language(self.party, self.company)
        return lang.code if lang else DEFAULT_LANGUAGE

    def isp_qris_payload(self):
        """The dynamic QRIS of the amount to pay, built from the branch's
        static QRIS payload (None when the branch has none, or when the
        invoice's currency is not the payload's)"""
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        static = Configuration.get_value(self.company, 'qris_payload')
        if not static:
            return None
        try:
            payload_currency = qris.currency(static)
            numeric = (self.currency.numeric_code
                or NUMERIC_CODES.get(self.currency.code))
            if payload_currency != numeric:
                return None
            return qris.dynamic(static, self.amount_to_pay)
        except qris.QRISError as exception:
            raise BillingError(gettext(
                    'isp_billing.msg_qris_payload_invalid',
                    company=self.company.rec_name,
                    error=str(exception))) from exception

    def isp_pdf_key(self):
        """What the PDF shows that may change once the invoice is posted
        (its state, amount to pay and QR code, language, the invoice's and
        its branch's last change, the template), hashed: the key of the
        PDF kept in isp.invoice.pdf"""
        company = self.company
        parts = (TEMPLATE_VERSION, self.id, self.state,
            str(self.amount_to_pay), self.isp_payment_qr(),
            str(self.write_date or self.create_date),
            str(company.write_date or company.create_date),
            str(company.party.write_date or company.party.create_date),
            self.isp_report_language())
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def isp_payment_qr(self):
        """What the QR code of the PDF holds: ('qris', payload),
        ('link', url) or (None, None) when there is nothing to pay online"""
        if (self.type != 'out' or self.state != 'posted'
                or self.amount_to_pay <= 0):
            return None, None
        payload = self.isp_qris_payload()
        if payload:
            return 'qris', payload
        url = self.isp_pay_url()
        if url:
            return 'link', url
        return None, None


class InvoiceReport(Report):
    "ISP Invoice"
    __name__ = 'isp_billing.invoice'

    @classmethod
    def execute(cls, ids, data):
        with Transaction().set_context(address_with_party=True):
            return super().execute(ids, data)

    @classmethod
    def get_context(cls, records, header, data):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Lang = pool.get('ir.lang')
        context = super().get_context(records, header, data)
        invoice = context['record']
        if invoice is None:
            return context
        code = Invoice(invoice.id).isp_report_language()
        # the transaction language is restored by Report._execute
        Transaction().set_context(language=code)
        invoice = Invoice(invoice.id)
        lang = Lang.get(code)
        context['invoice'] = invoice
        context['lang'] = lang
        context['labels'] = labels(code)
        context['doc'] = cls.isp_document(invoice, lang, context['labels'])
        return context

    @classmethod
    def isp_document(cls, invoice, lang, text):
        "The values printed for `invoice`, formatted in `lang`"
        currency = invoice.currency

        def amount(value):
            return lang.currency(value, currency, symbol=True, grouping=True)

        def date(value):
            return lang.strftime(value) if value else ''

        def period(start, end):
            if start and end:
                return '%s - %s' % (date(start), date(end))
            return date(start or end)

        company_party = invoice.company.party
        company_address = company_party.address_get()
        lines = []
        for line in invoice.lines:
            if line.type != 'line':
                continue
            lines.append({
                    'description': (line.description
                        or (line.product.rec_name if line.product else '')),
                    'period': period(
                        getattr(line, 'isp_period_start', None),
                        getattr(line, 'isp_period_end', None)),
                    'amount': amount(line.amount),
                    })
        starts = [line_.isp_period_start for line_ in invoice.lines
            if getattr(line_, 'isp_period_start', None)]
        ends = [line_.isp_period_end for line_ in invoice.lines
            if getattr(line_, 'isp_period_end', None)]
        kind, payload = invoice.isp_payment_qr()
        paid = invoice.total_amount - invoice.amount_to_pay
        state = {
            'draft': 'state_draft', 'validated': 'state_draft',
            'paid': 'state_paid', 'cancelled': 'state_cancelled',
            }.get(invoice.state)
        return {
            'company': invoice.company.rec_name,
            'company_address': _address_lines(company_address, skip=(
                    company_party.name,)),
            'company_tax_identifier': (invoice.tax_identifier.code
                if invoice.tax_identifier else ''),
            'number': invoice.number or '',
            'invoice_date': date(invoice.invoice_date),
            'due_date': date(invoice.isp_due_date),
            'subscriber': invoice.party.rec_name,
            'subscriber_address': _address_lines(
                invoice.invoice_address, skip=(invoice.party.name,)),
            'customer_id': invoice.isp_customer_id or '',
            'period': period(
                min(starts) if starts else None,
                max(ends) if ends else None),
            'lines': lines,
            'untaxed': amount(invoice.untaxed_amount),
            'taxes': [{
                    'description': tax.description or (
                        tax.tax.rec_name if tax.tax else ''),
                    'amount': amount(tax.amount),
                    } for tax in invoice.taxes],
            'tax': amount(invoice.tax_amount),
            'total': amount(invoice.total_amount),
            'paid': (amount(paid) if invoice.state == 'posted'
                and not currency.is_zero(paid) else ''),
            'amount_to_pay': amount(
                invoice.amount_to_pay if invoice.state == 'posted'
                else (0 if invoice.state in {'paid', 'cancelled'}
                    else invoice.total_amount)),
            'state': text[state] if state else '',
            'qr_kind': kind or '',
            'qr_payload': payload or '',
            'qr_image': data_uri(qr_png(payload)) if payload else '',
            'qr_caption': ('QRIS - %s' % dict(qris.parse(payload)).get(
                    '59', '') if kind == 'qris' else ''),
            'pay_url': (payload if kind == 'link' else ''),
            'pay_text': (text['pay_qris'] if kind == 'qris'
                else text['pay_link'] if kind == 'link'
                else text['pay_nothing'] if invoice.state == 'paid'
                else ''),
            'pay_quote': (text['pay_quote'].format(
                    customer_id=invoice.isp_customer_id or '-',
                    number=invoice.number or '-')
                if invoice.state == 'posted' else ''),
            }

    @classmethod
    def render(cls, report, report_context):
        """Render the template as HTML (Tryton's default is XML, whose empty
        elements, <td/>, HTML parsers misread)"""
        template = report.get_template_cached()
        if template is None:
            template = _HTMLTemplate(io.BytesIO(report.report_content))
            report.set_template_cached(template)
        translate = cls._callback_loader(report, template)
        if translate:
            report_context = report_context.copy()
            report_context['gettext'] = translate.gettext
            report_context['ngettext'] = translate.ngettext
        return template.generate(**report_context).render()

    @classmethod
    def convert(cls, report, data, timeout=5 * 60, retry=5):
        """To PDF with WeasyPrint, fetching nothing but the template's own
        data: URIs (the QR code); Tryton's default fetcher refuses them"""
        if (report.template_extension in {'html', 'xhtml'}
                and (report.extension or report.template_extension)
                == 'pdf'):
            return 'pdf', html_to_pdf(data)
        return super().convert(report, data, timeout=timeout, retry=retry)

    @classmethod
    def isp_render(cls, records, header, data):
        "Render `records` with the ISP invoice action (for the stock report)"
        pool = Pool()
        ActionReport = pool.get('ir.action.report')
        action, = ActionReport.search([
                ('report_name', '=', cls.__name__),
                ], limit=1)
        return cls._execute(records, header, data, action)


def _weasyprint(data):
    """The PDF of the HTML `data` (WeasyPrint, fetching nothing but the
    template's own data: URIs)"""
    import weasyprint
    return weasyprint.HTML(string=data,
        url_fetcher=weasyprint.URLFetcher(allowed_protocols={'data'}),
        ).write_pdf()


def _warm():
    "Load WeasyPrint and its fonts in the conversion process as it starts"
    _weasyprint('<p>warm</p>')


#: the conversion process pool of this process (a forked child makes its
#: own: `pid`)
_CONVERTER = {'executor': None, 'pid': None}
_CONVERTER_LOCK = threading.Lock()


def html_to_pdf(data):
    """The PDF of the HTML `data`, converted in a process of its own
    (`[isp_billing] pdf_processes`, 1 per server process; 0: in this
    process): WeasyPrint's layout holds the GIL for a tenth of a second or
    more, which the other requests of a threaded server process would wait
    for.  The process is started at the first PDF and kept."""
    processes = config.getint('isp_billing', 'pdf_processes', default=1)
    if processes <= 0 or multiprocessing.current_process().daemon:
        # (a daemonic process may not have children)
        return _weasyprint(data)
    with _CONVERTER_LOCK:
        executor = _CONVERTER['executor']
        if executor is None or _CONVERTER['pid'] != os.getpid():
            executor = _CONVERTER['executor'] = (
                concurrent.futures.ProcessPoolExecutor(
                    max_workers=processes, initializer=_warm,
                    mp_context=multiprocessing.get_context('spawn')))
            _CONVERTER['pid'] = os.getpid()
            atexit.register(executor.shutdown)
    try:
        future = executor.submit(_weasyprint, data)
    except (RuntimeError, OSError):
        logger.warning("no PDF conversion process, converting here",
            exc_info=True)
        return _weasyprint(data)
    try:
        return future.result()
    except concurrent.futures.process.BrokenProcessPool:
        logger.warning("PDF conversion process lost, converting here")
        with _CONVERTER_LOCK:
            if _CONVERTER['executor'] is executor:
                _CONVERTER['executor'] = None
        executor.shutdown(wait=False)
        return _weasyprint(data)


class InvoicePDF(ModelSQL):
    """Invoice PDF: the PDF of a posted service invoice as last rendered,
    with the key of what it shows (`account.invoice.isp_pdf_key`); served
    again while the key is the same (the customer portal).  Service
    invoices do not use the stock `invoice_report_cache`, kept forever
    from posting: their amount to pay and QR code change."""
    __name__ = 'isp.invoice.pdf'
    invoice = fields.Many2One('account.invoice', "Invoice", required=True,
        ondelete='CASCADE')
    key = fields.Char("Key", required=True)
    pdf = fields.Binary("PDF")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        table = cls.__table__()
        cls._sql_indexes.add(Index(table,
                (table.invoice, Index.Range()),
                (table.key, Index.Equality())))

    @classmethod
    def fetch(cls, invoice, key):
        "The kept PDF (bytes) of `invoice` with `key`, else None (1 query)"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.pdf,
                where=(table.invoice == invoice.id) & (table.key == key),
                limit=1))
        row = cursor.fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    @classmethod
    def keep(cls, invoice, key, content):
        """Keep `content` as the PDF of `invoice` with `key`, in a
        transaction of its own (the page's may be read-only); a failure
        (a lock, the same PDF kept at once by another request) only
        loses the copy"""
        try:
            with Transaction().new_transaction() as transaction:
                old = cls.search([('invoice', '=', invoice.id)])
                if old:
                    cls.delete(old)
                cls.create([{
                            'invoice': invoice.id,
                            'key': key,
                            'pdf': content,
                            }])
                transaction.commit()
        except backend.DatabaseOperationalError:
            logger.info("invoice %s: PDF not kept", invoice.id,
                exc_info=True)

    @classmethod
    def get_pdf(cls, invoice):
        """The PDF of `invoice`: the kept one while what it shows is the
        same, else rendered (by the ISP invoice report) and kept"""
        pool = Pool()
        Report = pool.get('isp_billing.invoice', type='report')
        key = invoice.isp_pdf_key()
        content = cls.fetch(invoice, key)
        if content is None:
            _, content, _, _ = Report.execute([invoice.id], {})
            content = bytes(content)
            if invoice.state in {'posted', 'paid', 'cancelled'}:
                cls.keep(invoice, key, content)
        return content


class _HTMLTemplate(MarkupTemplate):
    serializer = 'html'


def _address_lines(address, skip=()):
    "The lines of `address` without empty ones and the party's name"
    if not address:
        return []
    text = address.full_address or ''
    return [line_.strip() for line_ in text.splitlines()
        if line_.strip() and line_.strip() not in skip]


class AccountInvoiceReport(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    @classmethod
    def _execute(cls, records, header, data, action):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        InvoiceReport = pool.get('isp_billing.invoice', type='report')
        invoice, = Invoice.browse(records)
        if invoice.is_isp:
            # service invoices print with the ISP template, rendered anew
            # each time (the amount to pay and its QR code change)
            return InvoiceReport.isp_render(records, header, data)
        return super()._execute(records, header, data, action)
