# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The e-voucher shop on the branch's own domain (docs/shop.md): the
profiles sold online, the buy form (phone first, optional e-mail, the
gateway), the payment at the gateway and the order page that waits for
the payment and shows the code with its QR code.

Pages run as root: every query filters on the tenant (`page.search_tenant`);
an order is reached only by its id AND its secret token."""
import re
from decimal import Decimal, InvalidOperation

from trytond.protocols.wrappers import HTTPStatus, Response

from trytond.modules.isp_base.web import MAX_ID, N_, portal_page
from trytond.modules.isp_base.web.routes import _base_url
from trytond.modules.isp_billing.exceptions import PaymentGatewayError

from ..card import QRMaker

SHOP = '/isp_voucher/shop'
BUY = '/isp_voucher/shop/buy/%d'
ORDER = '/isp_voucher/shop/order/%d/%s'
TOKEN = re.compile(r'[A-Za-z0-9_-]{16,64}')
#: Seconds between two looks of the order page while the payment is awaited
REFRESH = 3


def _offers(page, domain=()):
    Profile = page.pool.get('isp.voucher.profile')
    return page.search_tenant(Profile, [
            ('shop', '=', True),
            list(domain),
            ], order=[('name', 'ASC'), ('id', 'ASC')])


def _offer(page, profile_id):
    "The tenant's profile sold online `profile_id`, else 404"
    if not 0 < profile_id <= MAX_ID:
        raise page.not_found()
    found = _offers(page, [('id', '=', profile_id)])
    if not found:
        raise page.not_found()
    return found[0]


def _gateways(page):
    Order = page.pool.get('isp.voucher.order')
    return Order.gateways(page.company)


@portal_page(SHOP, login=False)
def shop(page):
    "The profiles the branch sells online"
    return page.render('isp_voucher/shop.html', offers=_offers(page),
        open=bool(_gateways(page)))


@portal_page('/isp_voucher/shop/buy/<int:profile_id>',
    methods=('GET', 'POST'), login=False)
def buy(page, profile_id):
    """The buy form of a profile; its POST places the order and sends the
    buyer to the gateway's page (M-Pesa: the prompt goes to the phone)"""
    Order = page.pool.get('isp.voucher.order')
    profile = _offer(page, profile_id)
    gateways = _gateways(page)
    if not gateways:
        raise page.refuse(409, N_("Online payment is not available here "
                "now. Please contact us."))
    if page.request.method != 'POST':
        return _buy_form(page, profile, gateways)
    form = page.form
    values = {
        'phone': (form.get('phone') or '').strip(),
        'email': (form.get('email') or '').strip(),
        'gateway': form.get('gateway') or '',
        }
    gateway = {str(g.id): g for g in gateways}.get(values['gateway'])
    if gateway is None:
        return _buy_form(page, profile, gateways, values, status=400,
            errors={'gateway': page.gettext(N_("Choose a payment method."))})
    try:
        amount = Decimal(form.get('amount') or '')
    except (InvalidOperation, ValueError):
        amount = None
    problem, _ = Order.check_request(page.company, profile,
        values['phone'], values['email'], amount)
    if problem == 'phone':
        return _buy_form(page, profile, gateways, values, status=400,
            errors={'phone': page.gettext(N_("Enter a valid phone number "
                        "(e.g. 0812 3456 7890)."))})
    if problem == 'email':
        return _buy_form(page, profile, gateways, values, status=400,
            errors={'email': page.gettext(N_("Enter a valid e-mail "
                        "address or leave it empty."))})
    if problem == 'amount':
        return _buy_form(page, profile, gateways, values, status=409,
            error=page.gettext(N_("The price has changed: check it and "
                    "order again.")))
    if problem:
        raise page.not_found()
    order = Order.place(page.company, profile, values['phone'],
        values['email'], amount, gateway, language=page.language)
    back = _base_url(page) + page.url(ORDER % (order.id, order.token))
    try:
        payment = order.open_payment(return_url=back)
    except PaymentGatewayError:
        # the page's transaction is rolled back: no order is left
        raise page.refuse(503, N_("The payment service is not available "
                "now, please try again in a few minutes.")) from None
    if payment.payment_url:
        return Response(status=HTTPStatus.SEE_OTHER,
            headers={'Location': payment.payment_url})
    return page.redirect(ORDER % (order.id, order.token))


def _buy_form(page, profile, gateways, values=None, status=200,
        errors=None, error=None):
    values = values or {'phone': '', 'email': '',
        'gateway': str(gateways[0].id)}
    return page.render('isp_voucher/buy.html', status=status,
        profile=profile, gateways=gateways, values=values,
        errors=errors or {}, error=error)


@portal_page('/isp_voucher/shop/order/<int:order_id>/<token>', login=False)
def order(page, order_id, token):
    """The order: waiting for the payment (the page looks again every few
    seconds), the code with its QR code once paid, or cancelled"""
    Order = page.pool.get('isp.voucher.order')
    if not TOKEN.fullmatch(token or '') or not 0 < order_id <= MAX_ID:
        raise page.not_found()
    found = page.search_tenant(Order, [
            ('id', '=', order_id),
            ('token', '=', token),
            ], limit=1)
    if not found:
        raise page.not_found()
    order, = found
    qr = None
    if order.state == 'paid' and order.voucher:
        voucher = order.voucher
        qr = qr_svg(order.login_url() or voucher.code)
    return page.render('isp_voucher/order.html', order=order, qr=qr,
        refresh=REFRESH if order.state == 'pending' else None)


def qr_svg(text):
    """(size, path) of the QR code of `text` (the cards' QR maker) for an
    inline SVG: one unit square per dark module"""
    matrix = QRMaker().matrix(text)
    parts = []
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                parts.append('M%d %dh1v1h-1z' % (x, y))
    return len(matrix), ''.join(parts)
