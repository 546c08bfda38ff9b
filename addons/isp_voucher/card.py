# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Printed voucher cards: A4 sheets of 8, 24 or 48 cards, each with the
branch name, the price, the validity, the code (and its password when it
has its own) and a QR code opening the hotspot login with them filled in.

WeasyPrint lays out and draws, as for the invoices, the sheet of a kind of
card (an HTML document, a CSS grid of cards with the branch, the price and
the validity: the same on every card of a batch), once.  Every page of the
PDF draws that sheet (one content stream shared by the pages) and, over
it, the codes of its cards (Helvetica-Bold, the codes are ASCII) and their
QR codes (images of one pixel a module, drawn unscaled-smooth).  WeasyPrint
laying out each card costs 5 to 15 ms a card (10,000 cards: minutes, and
650 MB); this path prints them in well under a minute with a tenth of the
memory (docs/vouchers.md, docs/benchmarks.md).

The QR codes of a batch have the same length, so the version and mask of
the first are used for the others (qrcode's fitting and its eight trial
masks are most of its time).  Big batches print in a queue task that
attaches the PDF to the batch."""
import io
import re
import urllib.parse
from html import escape
from itertools import groupby

import qrcode
from qrcode.exceptions import DataOverflowError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.report import Report
from trytond.tools import slugify
from trytond.transaction import Transaction, check_access
from trytond.wizard import (
    Button,
    StateReport,
    StateTransition,
    StateView,
    Wizard,
)

from trytond.modules.isp_base.tenancy import BranchWizardMixin

from .exceptions import CardError, ProfileValidationError

#: cards per A4 page: (columns, rows, font size in pt)
LAYOUTS = {
    8: (2, 4, 13),
    24: (3, 8, 8.5),
    48: (4, 12, 6.5),
    }
DEFAULT_LAYOUT = 24
PAGE_MARGIN_MM = 8
PAGE_WIDTH_MM, PAGE_HEIGHT_MM = 210, 297
#: a host name (RFC 1123): labels of letters, digits and hyphens
HOST_NAME = re.compile(
    r'^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)'
    r'(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$')


def valid_host_name(value):
    "Whether `value` is a host name (not an IP address's only digits)"
    return bool(value and HOST_NAME.match(value)
        and not value.replace('.', '').isdigit())


def login_url(host, code, password):
    "The hotspot login URL with the code and password filled in"
    return 'http://%s/login?%s' % (host, urllib.parse.urlencode(
            [('username', code), ('password', password)]))


class QRMaker:
    """QR codes of texts of one length: the version and the mask of the
    first are used for the others (a text that does not fit is fitted)"""

    def __init__(self):
        self.version = None
        self.mask = None

    def matrix(self, text):
        "The modules of the QR code of `text`, with a 1-module border"
        code = qrcode.QRCode(
            version=self.version,
            error_correction=qrcode.constants.ERROR_CORRECT_L,
            border=1, mask_pattern=self.mask)
        code.add_data(text)
        try:
            code.make(fit=self.version is None)
        except DataOverflowError:
            code = qrcode.QRCode(
                error_correction=qrcode.constants.ERROR_CORRECT_L,
                border=1)
            code.add_data(text)
            code.make(fit=True)
            return code.get_matrix()
        if self.version is None:
            self.version = code.version
            self.mask = code.best_mask_pattern()
        return code.get_matrix()


def stylesheet(per_page):
    "The CSS of sheets of `per_page` cards (see SheetGeometry)"
    geometry = SheetGeometry(per_page)
    return (
        '@page{size:A4;margin:%(margin)smm}'
        'body{margin:0;font-family:sans-serif;font-size:%(font)spt}'
        '.sheet{display:grid;'
        'grid-template-columns:repeat(%(columns)d,%(width).2fmm);'
        'grid-template-rows:repeat(%(rows)d,%(height).2fmm)}'
        '.card{box-sizing:border-box;overflow:hidden;'
        'border:0.2mm dashed #888;padding:1.2mm 1.5mm;'
        'padding-right:%(text_right).2fmm;white-space:pre-line;'
        'line-height:1.25}'
        ) % {
        'margin': PAGE_MARGIN_MM, 'font': geometry.font,
        'columns': geometry.columns, 'rows': geometry.rows,
        'width': geometry.card_width, 'height': geometry.card_height,
        'text_right': geometry.qr + 2.5,
        }


def to_pdf(html):
    "The PDF of `html` (WeasyPrint, fetching nothing but data: URIs)"
    import weasyprint
    return weasyprint.HTML(
        string=html,
        url_fetcher=weasyprint.URLFetcher(allowed_protocols={'data'}),
        ).write_pdf()


MM = 72 / 25.4
#: the bold base-14 font of the codes drawn over the sheets (ASCII codes)
CODE_FONT = b'/ISPCode'
#: Helvetica-Bold's average advance of upper-case letters and digits (em)
CODE_ADVANCE = 0.70


class SheetGeometry:
    "Where a layout's cards, QR codes and code lines are on the page (pt)"

    def __init__(self, per_page):
        self.columns, self.rows, self.font = LAYOUTS[per_page]
        self.per_page = per_page
        # a little less than the page: rounding must not push a row over
        self.card_height = (PAGE_HEIGHT_MM - 2 * PAGE_MARGIN_MM - 1) / (
            self.rows)
        self.card_width = (PAGE_WIDTH_MM - 2 * PAGE_MARGIN_MM - 1) / (
            self.columns)
        self.qr = min(self.card_height - 3, self.card_width * 0.42)

    def card_origin(self, index):
        "The top left corner of card `index` of a page, in mm from the top"
        row, column = divmod(index, self.columns)
        return (PAGE_MARGIN_MM + column * self.card_width,
            PAGE_MARGIN_MM + row * self.card_height)

    def qr_box(self, index):
        "x, y (bottom left, pt) and size (pt) of the QR code of card `index`"
        left, top = self.card_origin(index)
        x = left + self.card_width - 1.2 - self.qr
        bottom = top + 1.2 + self.qr
        return x * MM, (PAGE_HEIGHT_MM - bottom) * MM, self.qr * MM

    def code_lines(self, index, lines):
        """[(x, y, size, text)] of the login lines of card `index`, bottom
        left of the card, the font shrunk to fit beside the QR code"""
        left, top = self.card_origin(index)
        width = (self.card_width - 3 - self.qr - 1) * MM
        size = self.font * 1.3
        longest = max(len(line) for line in lines)
        size = min(size, width / (CODE_ADVANCE * longest))
        leading = size * 1.2
        bottom = (PAGE_HEIGHT_MM - top - self.card_height + 1.8) * MM
        return [(left * MM + 1.5 * MM,
                bottom + (len(lines) - 1 - i) * leading, size, line)
            for i, line in enumerate(lines)]


def static_html(card, count, per_page):
    """One sheet of `count` cards without their codes and QR codes: the
    frames, branch, price and validity (the same on every card)"""
    text = '%s\n%s \u00b7 %s' % (escape(card['branch']),
        escape(card['price']), escape(card['validity']))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<style>%s</style></head><body><div class="sheet">%s</div>'
        '</body></html>') % (stylesheet(per_page),
        ''.join('<div class="card">%s</div>' % text for _ in range(count)))


def _pdf_text(text):
    "`text` as a PDF literal string in WinAnsi (others: ?)"
    data = text.encode('cp1252', 'replace')
    return b'(' + data.replace(b'\\', b'\\\\').replace(
        b'(', b'\\(').replace(b')', b'\\)') + b')'


def cards_pdf(cards, per_page, labels, title=''):
    """The PDF of `cards` (dicts, see `card_html`), `per_page` to a page.

    WeasyPrint lays out and draws the sheet once for each kind of card
    (branch, price, validity: a batch has one); every page draws that
    sheet's content (one shared stream) and, over it, the codes of its
    cards in Helvetica-Bold and their QR codes as 1-pixel-a-module images.
    Laying out 10,000 cards with WeasyPrint costs minutes, this seconds
    (docs/vouchers.md)."""
    import pypdf
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
    )
    geometry = SheetGeometry(per_page)
    maker = QRMaker()
    writer = pypdf.PdfWriter()
    if title:
        writer.add_metadata({'/Title': title})
    font = writer._add_object(DictionaryObject({
                NameObject('/Type'): NameObject('/Font'),
                NameObject('/Subtype'): NameObject('/Type1'),
                NameObject('/BaseFont'): NameObject('/Helvetica-Bold'),
                NameObject('/Encoding'): NameObject('/WinAnsiEncoding'),
                }))
    sheets = {}

    def sheet(card, count):
        "The content and resources of the static sheet of `count` cards"
        key = (card['branch'], card['price'], card['validity'], count)
        if key not in sheets:
            page = writer.add_page(pypdf.PdfReader(io.BytesIO(to_pdf(
                            static_html(card, count, per_page)))).pages[0])
            contents = page[NameObject('/Contents')]
            if not isinstance(contents, ArrayObject):
                contents = ArrayObject([page.raw_get('/Contents')])
            sheets[key] = (page, list(contents),
                page[NameObject('/Resources')])
            return page, sheets[key][1], sheets[key][2]
        _, contents, resources = sheets[key]
        return None, contents, resources

    def image(matrix):
        size = len(matrix)
        stream = DecodedStreamObject()
        stream.set_data(b''.join(
                bytes(0 if dark else 255 for dark in row)
                for row in matrix))
        stream.update({
                NameObject('/Type'): NameObject('/XObject'),
                NameObject('/Subtype'): NameObject('/Image'),
                NameObject('/Width'): NumberObject(size),
                NameObject('/Height'): NumberObject(size),
                NameObject('/ColorSpace'): NameObject('/DeviceGray'),
                NameObject('/BitsPerComponent'): NumberObject(8),
                NameObject('/Interpolate'): pypdf.generic.BooleanObject(
                    False),
                })
        return writer._add_object(stream.flate_encode())

    def emit(page_cards):
        page, contents, resources = sheet(page_cards[0], len(page_cards))
        if page is None:
            page = writer.add_blank_page(
                PAGE_WIDTH_MM * MM, PAGE_HEIGHT_MM * MM)
        ops = []
        xobjects = DictionaryObject(
            resources.get('/XObject', DictionaryObject()))
        for index, card_ in enumerate(page_cards):
            code, password = card_['code'], card_['password']
            name = '/QR%d' % index
            xobjects[NameObject(name)] = image(maker.matrix(
                    login_url(card_['host'], code, password or code)))
            x, y, size = geometry.qr_box(index)
            ops.append(b'q %.2f 0 0 %.2f %.2f %.2f cm %s Do Q' % (
                    size, size, x, y, name.encode()))
            if password and password != code:
                lines = ['%s %s' % (labels['code'], code),
                    '%s %s' % (labels['password'], password)]
            else:
                lines = [code]
            for x, y, size, line in geometry.code_lines(index, lines):
                ops.append(b'BT %s %.2f Tf %.2f %.2f Td %s Tj ET' % (
                        CODE_FONT, size, x, y, _pdf_text(line)))
        overlay = DecodedStreamObject()
        overlay.set_data(b'\n'.join(ops))
        fonts = DictionaryObject(resources.get('/Font', DictionaryObject()))
        fonts[NameObject(CODE_FONT.decode())] = font
        page_resources = DictionaryObject(resources)
        page_resources[NameObject('/XObject')] = xobjects
        page_resources[NameObject('/Font')] = fonts
        page[NameObject('/Resources')] = page_resources
        page[NameObject('/Contents')] = ArrayObject(
            contents + [writer._add_object(overlay.flate_encode())])

    page_cards = []
    for card_ in cards:
        if page_cards and (len(page_cards) == per_page
                or _static_key(card_) != _static_key(page_cards[0])):
            emit(page_cards)
            page_cards = []
        page_cards.append(card_)
    if page_cards:
        emit(page_cards)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _static_key(card):
    return card['branch'], card['price'], card['validity']


# -- Tryton models ------------------------------------------------------------

#: Batches of more vouchers print in a queue task (the PDF attached)
DIRECT_LIMIT = 500
#: The voucher states printed: those that can still be sold or handed out
PRINTED_STATES = ('new', 'sold')
_CARDS_PER_PAGE = [
    ('8', "8 per Page"),
    ('24', "24 per Page"),
    ('48', "48 per Page"),
    ]


class Profile(metaclass=PoolMeta):
    __name__ = 'isp.voucher.profile'

    hotspot_dns_name = fields.Char(
        "Hotspot DNS Name", strip=True,
        help="The DNS name of the routers' hotspot login page (the "
        "hotspot profile's dns-name), e.g. hotspot.netkita.id: the QR code "
        "of a card opens http://<name>/login with the code filled in.")
    cards_per_page = fields.Selection(
        _CARDS_PER_PAGE, "Cards per Page", required=True, sort=False,
        help="How many cards an A4 page of printed vouchers holds.")

    @classmethod
    def default_cards_per_page(cls):
        return str(DEFAULT_LAYOUT)

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(), 'hotspot_dns_name': (None, 253)}

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('hotspot_dns_name'):
            values['hotspot_dns_name'] = (
                values['hotspot_dns_name'].strip().lower().rstrip('.'))
        return values

    def check_limits(self):
        super().check_limits()
        if self.hotspot_dns_name and not valid_host_name(
                self.hotspot_dns_name):
            raise ProfileValidationError(gettext(
                    'isp_voucher.msg_profile_hotspot_dns_name',
                    profile=self.rec_name, name=self.hotspot_dns_name,
                    field=self.__names__('hotspot_dns_name')['field']))

    def check_printable(self):
        "The cards of the profile's vouchers can be printed (QR code)"
        if not self.hotspot_dns_name:
            raise CardError(gettext(
                    'isp_voucher.msg_cards_no_hotspot_dns_name',
                    profile=self.rec_name,
                    field=self.__names__('hotspot_dns_name')['field']))

    def validity_text(self):
        count = self.validity
        return gettext('isp_voucher.msg_card_%s%s' % (
                self.validity_unit[:-1], '' if count == 1 else 's'),
            count=count)

    def card_values(self, rows):
        """The dicts of the cards (see `card_html`) of the (code, password)
        `rows` of the profile's vouchers"""
        self.check_printable()
        company = self.company
        lang = branch_lang(company)
        with Transaction().set_context(company=company.id):
            price = self.__class__.get_prices(
                [self], ['price_with_tax'])['price_with_tax'][self.id]
        with Transaction().set_context(language=lang.code):
            validity = self.validity_text()
        common = {
            'branch': company.rec_name,
            'price': lang.currency(
                price, company.currency, symbol=True, grouping=True),
            'validity': validity,
            'host': self.hotspot_dns_name,
            }
        for code, password in rows:
            yield {**common, 'code': code,
                'password': None if password == code else password}


class Batch(metaclass=PoolMeta):
    __name__ = 'isp.voucher.batch'

    cards_per_page = fields.Selection(
        [(None, "")] + _CARDS_PER_PAGE, "Cards per Page", sort=False,
        help="The layout of the printed cards; empty: the profile's.")

    @property
    def cards_layout(self):
        "The number of cards a printed page of the batch holds"
        return int(self.cards_per_page or self.profile.cards_per_page
            or DEFAULT_LAYOUT)

    @classmethod
    def printed_vouchers(cls, batches):
        """{batch id: [(code, password)]} of the vouchers of `batches` that
        are printed, in the order of their ids (one query per batch, no
        record instantiated: a batch holds up to 100,000)"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        table = Voucher.__table__()
        cursor = Transaction().connection.cursor()
        result = {}
        for batch in batches:
            cursor.execute(*table.select(table.code, table.password,
                    where=(table.batch == batch.id)
                    & table.state.in_(list(PRINTED_STATES)),
                    order_by=[table.id.asc]))
            result[batch.id] = cursor.fetchall()
        return result

    @classmethod
    def check_printable(cls, batches):
        """The cards of `batches` may be printed: not those of the online
        shop's stock (their codes are sold by the shop: a printed card
        would sell them twice)"""
        for batch in batches:
            if batch.shop:
                raise CardError(gettext('isp_voucher.msg_cards_shop_batch',
                        batch=batch.rec_name))

    @classmethod
    def cards_pdf(cls, batches):
        "The PDF of the cards of `batches` (the layout of the first)"
        cls.check_printable(batches)
        rows = cls.printed_vouchers(batches)
        cards = (card for batch in batches
            for card in batch.profile.card_values(rows[batch.id]))
        return cards_pdf(
            cards, batches[0].cards_layout if batches else DEFAULT_LAYOUT,
            card_labels(batches[0].company if batches else None),
            title=', '.join(b.rec_name for b in batches))

    @classmethod
    def attach_cards(cls, batches):
        """Queue task: attach the PDF of each batch's cards to it"""
        pool = Pool()
        Attachment = pool.get('ir.attachment')
        for batch in cls.browse(batches):
            with Transaction().set_context(company=batch.company.id):
                pdf = cls.cards_pdf([batch])
                Attachment.create([{
                            'resource': str(batch),
                            'name': '%s.pdf' % slugify(gettext(
                                    'isp_voucher.msg_cards_file',
                                    batch=batch.name)),
                            'type': 'data',
                            'data': pdf,
                            }])


def branch_lang(company):
    """The ir.lang the cards of `company` (a branch) are printed in: its
    party's language (the buyers' language, not the printing user's); the
    default one when it has none"""
    Lang = Pool().get('ir.lang')
    return Lang.get(company.party.lang.code
        if company and company.party.lang else None)


def card_labels(company=None):
    "The labels of the cards of `company`, in its language (branch_lang)"
    with Transaction().set_context(language=branch_lang(company).code):
        return {
            'code': gettext('isp_voucher.msg_card_user'),
            'password': gettext('isp_voucher.msg_card_password'),
            }


class CardReport(Report):
    """Voucher cards: a PDF of the printed vouchers of batches, or of the
    vouchers selected"""
    __name__ = 'isp_voucher.cards'

    @classmethod
    def execute(cls, ids, data):
        """The report action is found whatever the user's groups (stock
        code asserts it finds it, which a user outside its groups does not:
        an error instead of the refusal `check_access` gives)"""
        pool = Pool()
        ActionReport = pool.get('ir.action.report')
        if data.get('action_id') is None:
            with Transaction().set_user(0):
                action, = ActionReport.search([
                        ('report_name', '=', cls.__name__),
                        ], limit=1)
            data = {**data, 'action_id': action.id}
        return super().execute(ids, data)

    @classmethod
    def check_access(cls, action, model, ids):
        """Only the groups that may read the codes and passwords (field
        access) print them, and only their branches' records"""
        pool = Pool()
        Model = pool.get(model) if model else None
        super().check_access(action, model, ids)
        if Transaction().user == 0:
            return
        cls.check_cards_access()
        with check_access():
            if Model is not None:
                # the read rules of the records: another branch's ids
                # raise AccessError
                Model.read(list(ids), ['id'])

    @classmethod
    def check_cards_access(cls):
        "The user's groups may read the codes and passwords"
        pool = Pool()
        FieldAccess = pool.get('ir.model.field.access')
        if Transaction().user == 0:
            return
        with check_access():
            FieldAccess.check('isp.voucher', ['code', 'password'], 'read')

    @classmethod
    def _execute(cls, records, header, data, action):
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        if not records:
            return 'pdf', b''
        if records[0].__name__ == 'isp.voucher.batch':
            return 'pdf', Batch.cards_pdf(records)
        return 'pdf', cls.vouchers_pdf(records)

    @classmethod
    def vouchers_pdf(cls, vouchers):
        "The PDF of the cards of `vouchers`, in the layout of the first"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Batch = pool.get('isp.voucher.batch')
        vouchers = sorted(vouchers, key=lambda v: v.id)
        Batch.check_printable({v.batch for v in vouchers if v.batch})
        rows = Voucher.read([v.id for v in vouchers],
            ['code', 'password', 'profile', 'batch'])
        by_id = {v.id: v for v in vouchers}
        cards = []
        for profile, p_rows in groupby(rows, key=lambda r: r['profile']):
            p_rows = list(p_rows)
            profile = by_id[p_rows[0]['id']].profile
            cards.extend(profile.card_values(
                    [(r['code'], r['password']) for r in p_rows]))
        layout = vouchers[0].batch.cards_layout
        return cards_pdf(cards, layout, card_labels(vouchers[0].company))


class BatchCardReport(CardReport):
    "Voucher cards of batches"
    __name__ = 'isp_voucher.batch_cards'


class PrintCardsStart(ModelView):
    "Print Voucher Cards"
    __name__ = 'isp.voucher.batch.print_cards.start'

    message = fields.Text("Message", readonly=True)


class PrintCards(BranchWizardMixin, Wizard):
    """Print the cards of a batch: at once up to DIRECT_LIMIT vouchers,
    else in a queue task attaching the PDF to the batch"""
    __name__ = 'isp.voucher.batch.print_cards'
    start_state = 'decide'
    decide = StateTransition()
    print_ = StateReport('isp_voucher.batch_cards')
    queued = StateView('isp.voucher.batch.print_cards.start',
        'isp_voucher.batch_print_cards_start_view_form', [
            Button("OK", 'end', 'tryton-ok', default=True),
            ])

    def transition_decide(self):
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        batches = list(self.records)
        CardReport.check_cards_access()
        Batch.check_printable(batches)
        for batch in batches:
            batch.profile.check_printable()
        rows = Batch.printed_vouchers(batches)
        if sum(len(r) for r in rows.values()) <= DIRECT_LIMIT:
            return 'print_'
        with Transaction().set_context(queue_name='isp_voucher_cards'):
            Batch.__queue__.attach_cards(batches)
        return 'queued'

    def do_print_(self, action):
        return action, {
            'ids': [r.id for r in self.records],
            'model': 'isp.voucher.batch',
            }

    def default_queued(self, fields):
        return {'message': gettext('isp_voucher.msg_cards_queued',
                batches=', '.join(r.rec_name for r in self.records))}
