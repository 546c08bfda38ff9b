# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The subscriber's dashboard and invoices in the customer portal
(docs/portal.md): services with their live status and usage, invoices,
their PDF, paying online and the payments received.

Pages run as root: every query filters on the tenant and the subscriber
(`page.search_own`, `page.get_own`); records reached through those are the
subscriber's."""
import datetime as dt
import re
from decimal import Decimal

from trytond.protocols.wrappers import HTTPStatus, Response

from trytond.modules.isp_base.web import N_, local_time, portal_page
from trytond.modules.isp_base.web.routes import _base_url

from ..exceptions import PaymentGatewayError, PaymentOnlineError

DASHBOARD = '/isp_billing/portal/dashboard'
INVOICES = '/isp_billing/portal/invoices'
INVOICE = '/isp_billing/portal/invoice/%d'
#: The invoices a subscriber sees (drafts are not theirs yet)
SHOWN = ['posted', 'paid', 'cancelled']
#: The latest invoices and payments listed
LIST_LIMIT = 60
#: A payment reference as the return URL carries it
REFERENCE = re.compile(r'[A-Za-z0-9]{4,32}')
GB = Decimal(10 ** 9)


def _today(page):
    return page.pool.get('ir.date').today()


def _own_invoices(page, domain, **kw):
    Invoice = page.pool.get('account.invoice')
    return page.search_own(Invoice, [
            ('type', '=', 'out'),
            ('state', 'in', SHOWN),
            domain,
            ], **kw)


def _own_invoice(page, invoice_id):
    "The subscriber's shown invoice `invoice_id`, else 404"
    Invoice = page.pool.get('account.invoice')
    invoice = page.get_own(Invoice, invoice_id)
    if invoice.type != 'out' or invoice.state not in SHOWN:
        raise page.not_found()
    return invoice


def invoice_status(invoice, today):
    "(key, label, badge class) of an invoice for the subscriber"
    if invoice.state == 'cancelled':
        return 'cancelled', N_("Cancelled"), ''
    if invoice.state == 'paid' or invoice.amount_to_pay <= 0:
        return 'paid', N_("Paid"), 'ok'
    due = invoice.isp_due_date
    if due and due < today:
        return 'overdue', N_("Overdue"), 'bad'
    return 'unpaid', N_("Unpaid"), 'warn'


def _payable(invoice):
    return (invoice.state == 'posted' and invoice.amount_to_pay > 0
        and bool(invoice.isp_payment_gateways()))


# -- dashboard ----------------------------------------------------------------

def service_status(service):
    "(key, label, badge class): online, offline or isolated"
    if service.state == 'isolated':
        return 'isolated', N_("Isolated"), 'bad'
    if service.live_status == 'online':
        return 'online', N_("Online"), 'ok'
    return 'offline', N_("Offline"), 'warn'


def _usage(services, today):
    """{service id: (bytes used this cycle, quota in bytes or None, percent
    of the quota or None, cycle start)}"""
    from trytond.pool import Pool
    Usage = Pool().get('isp.service.usage')
    starts = {s.id: s.get_usage_cycle_start(today) for s in services}
    totals = Usage.totals(starts)
    result = {}
    for service in services:
        used = totals.get(service.id, 0)
        quota = service.plan.quota
        quota_bytes = quota * 10 ** 9 if quota else None
        percent = min(100, round(100 * used / quota_bytes)) \
            if quota_bytes else None
        result[service.id] = (used, quota_bytes, percent,
            starts[service.id])
    return result


def _next_amount(plan, company, date):
    """The plan's monthly price with its taxes (as the billing run puts
    them on the invoice)"""
    from trytond.pool import Pool
    pool = Pool()
    Tax = pool.get('account.tax')
    Configuration = pool.get('isp.billing.configuration')
    price = plan.list_price or Decimal(0)
    taxes = []
    product = plan.products[0] if plan.products else None
    if product is not None:
        taxes = list(product.customer_taxes_used)
    else:
        tax = Configuration.get_values(company).get('tax')
        taxes = [tax] if tax else []
    total = price + sum((t['amount'] for t in Tax.compute(
                    taxes, price, 1, date)), Decimal(0))
    return company.currency.round(total)


@portal_page(DASHBOARD, nav='dashboard')
def dashboard(page):
    "Each service, its live status, usage, next invoice; what is overdue"
    Service = page.pool.get('isp.service')
    today = _today(page)
    services = page.search_own(Service, [
            ('state', 'in', ['active', 'isolated']),
            ], party_field='subscriber',
        order=[('activation_date', 'ASC'), ('id', 'ASC')])
    usage = _usage(services, today)
    rows = []
    for service in services:
        next_date = (service.billed_until + dt.timedelta(days=1)
            if service.billed_until else None)
        rows.append({
                'service': service,
                'status': service_status(service),
                'since': local_time(page.company, service.live_since),
                'last_online': local_time(page.company,
                    service.last_online or service.live_since),
                'usage': usage[service.id],
                'next_date': next_date,
                'next_amount': _next_amount(service.plan, page.company,
                    next_date or today),
                })
    open_ = _own_invoices(page, [('state', '=', 'posted')],
        order=[('invoice_date', 'ASC'), ('id', 'ASC')])
    overdue = [i for i in open_
        if invoice_status(i, today)[0] == 'overdue']
    return page.render('isp_billing/dashboard.html', rows=rows,
        overdue=overdue, open_invoices=[i for i in open_
            if i.amount_to_pay > 0],
        overdue_total=sum((i.amount_to_pay for i in overdue), Decimal(0)),
        currency=page.company.currency, payable=_payable,
        today=today, GB=GB)


# -- invoices -----------------------------------------------------------------

def _payments(page):
    "The payments received from the subscriber (receivable credits)"
    MoveLine = page.pool.get('account.move.line')
    return page.search_own(MoveLine, [
            ('account.type.receivable', '=', True),
            ('move.state', '=', 'posted'),
            ['OR', ('credit', '>', 0), ('debit', '<', 0)],
            ], company_field='move.company',
        order=[('date', 'DESC'), ('id', 'DESC')], limit=LIST_LIMIT)


@portal_page(INVOICES, nav='invoices')
def invoices(page):
    "The invoices with their state and amount due; the payments received"
    today = _today(page)
    records = _own_invoices(page, [],
        order=[('invoice_date', 'DESC'), ('id', 'DESC')], limit=LIST_LIMIT)
    return page.render('isp_billing/invoices.html',
        invoices=[(i, invoice_status(i, today)) for i in records],
        payments=_payments(page), payable=_payable)


def _payment_result(page, invoice):
    """The notice or error of the payment the gateway sent the subscriber
    back from (`?payment=<reference>`): its state as recorded here"""
    reference = page.request.args.get('payment') or ''
    if not REFERENCE.fullmatch(reference):
        return None, None
    PaymentTransaction = page.pool.get('isp.payment.transaction')
    found = page.search_tenant(PaymentTransaction, [
            ('reference', '=', reference),
            ('document', '=', str(invoice)),
            ], limit=1)
    if not found:
        return None, None
    state = found[0].state
    if state == 'paid':
        return page.gettext(N_("Thank you: your payment was received.")), None
    if state == 'pending':
        return page.gettext(N_("Your payment is being confirmed by the "
                "payment service. This page shows it once received.")), None
    return None, page.gettext(N_("The payment did not go through. You can "
            "try again."))


@portal_page('/isp_billing/portal/invoice/<int:invoice_id>')
def invoice(page, invoice_id):
    "An invoice: its lines, amounts, PDF, Pay button"
    invoice = _own_invoice(page, invoice_id)
    notice, error = _payment_result(page, invoice)
    return page.render('isp_billing/invoice.html', invoice=invoice,
        state=invoice_status(invoice, _today(page)),
        payable=_payable(invoice), notice=notice, error=error)


@portal_page('/isp_billing/portal/invoice/<int:invoice_id>/pdf')
def invoice_pdf(page, invoice_id):
    "The invoice PDF (the back office's report)"
    invoice = _own_invoice(page, invoice_id)
    # kept while what it shows is the same (rendered at the first ask,
    # WeasyPrint in a process of its own: isp.invoice.pdf)
    content = page.pool.get('isp.invoice.pdf').get_pdf(invoice)
    name = re.sub(r'[^A-Za-z0-9_.-]', '_', invoice.number or str(invoice.id))
    return Response(content, status=HTTPStatus.OK,
        content_type='application/pdf',
        headers={'Content-Disposition': 'inline; filename="%s.pdf"' % name})


@portal_page('/isp_billing/portal/invoice/<int:invoice_id>/pay',
    methods=('POST',))
def invoice_pay(page, invoice_id):
    """Pay online: the payment opened at the branch's gateway (as the pay
    link does), the subscriber sent to its page and back to the invoice"""
    Invoice = page.pool.get('account.invoice')
    invoice = _own_invoice(page, invoice_id)
    if invoice.state != 'posted' or invoice.amount_to_pay <= 0:
        return page.redirect(INVOICE % invoice.id)
    back = _base_url(page) + page.url(INVOICE % invoice.id)
    try:
        payment = Invoice.isp_open_payment(invoice,
            return_url=back + '?payment={reference}')
    except PaymentOnlineError:
        raise page.refuse(409, N_("This invoice cannot be paid online. "
                "Please contact us.")) from None
    except PaymentGatewayError:
        raise page.refuse(503, N_("The payment service is not available "
                "now, please try again in a few minutes.")) from None
    if payment.payment_url:
        return Response(status=HTTPStatus.SEE_OTHER,
            headers={'Location': payment.payment_url})
    # M-Pesa: the prompt is on the subscriber's phone
    return page.redirect(INVOICE % invoice.id, payment=payment.reference)
