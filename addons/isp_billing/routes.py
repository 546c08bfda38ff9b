# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Webhooks of the payment gateways: one route per provider for every tenant.

``POST /<database_name>/isp_billing/webhook/<provider>``, as root, hostile
input:

1. the body is size-limited and the order reference read from it (M-Pesa:
   from the callback URL); an unknown reference is answered 404 without any
   side effect;
2. the notification is authenticated with the account of THAT transaction
   (signature, callback token, M-Pesa's URL token; Midtrans: the signed
   status_code must be the one of the unsigned transaction_status); forged:
   403, nothing stored; a body about another payment (provider id) or with a
   receipt already used: 403 / 409, nothing stored;
3. a short database transaction records the notification 'queued' (text
   the database takes, without its signature) and queues
   ``isp.payment.transaction.apply_queued`` unless a run of it holds the
   branch (checked again once committed); the answer (2xx) leaves only
   once that is committed (503 when the database is busy);
4. the queue task (in the request after the commit when no worker runs;
   with workers one run per branch at a time, batch after batch until
   none is left) takes every queued notification of the branch: the
   provider's status API is asked for those that would change their
   payment (what it answers is applied, never the notification's unsigned
   fields), the payments, invoices and move sequence are locked once, and
   each notification is applied at most once and gets its verdict
   (applied, duplicate, ignored, unconfirmed, wrong amount or currency
   flagged for staff); one the API could not confirm now stays 'queued'
   and the reconciliation cron queues the task again.

``GET /<database_name>/isp_billing/pay/<token>``: the public payment link of
an invoice (sent in the notices, printed as the QR code): opens an online
payment of what is left to pay (or reuses the pending one) and redirects the
subscriber to the gateway's page (303); an M-Pesa prompt goes to the phone
and a page says so.  Paid, cancelled or unknown invoices get a page saying
so (200, 410, 404), in the subscriber's language.
"""
import html
import json
import logging
import random
import re
import time
import urllib.parse

from trytond import backend
from trytond.model.exceptions import SQLConstraintError
from trytond.protocols.wrappers import HTTPStatus, Response, with_pool
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from trytond.modules.isp_base.company import normalize_host
from trytond.modules.isp_base.metrics import observe_webhook, refused

from .exceptions import PaymentGatewayError, PaymentOnlineError
from .gateways import ADAPTERS, NotificationError

logger = logging.getLogger(__name__)

#: The largest body accepted (providers send a few kilobytes).
MAX_BODY = 64 * 1024
#: Seconds a notification waits for the row lock held by a concurrent one.
LOCK_WAIT = 15
#: What an order reference may look like (ours are 12 letters and digits)
REFERENCE = re.compile(r'[A-Za-z0-9_.~-]{1,64}')


def _answer(provider, status, reason=''):
    "The answer in the provider's format (no credentials are needed)"
    cls = ADAPTERS[provider]
    answer = cls.__new__(cls).answer(status, reason)
    return refused(Response(answer.body, status=answer.status,
            content_type=answer.content_type), reason or None)


def reference_of(provider, body, url):
    """The order reference a notification claims (not verified yet), or
    None"""
    if provider == 'mpesa':
        query = urllib.parse.urlsplit(url or '').query
        value = dict(urllib.parse.parse_qsl(query)).get('reference')
        return value if value and REFERENCE.fullmatch(value) else None
    text = body.decode('utf-8', 'replace').strip()
    if provider == 'duitku' and not text.startswith('{'):
        data = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    else:
        try:
            data = json.loads(text or 'null')
        except (ValueError, RecursionError):
            return None
    if not isinstance(data, dict):
        return None
    key = {
        'midtrans': 'order_id',
        'xendit': 'external_id',
        'duitku': 'merchantOrderId',
        }[provider]
    value = data.get(key)
    return value if isinstance(value, str) and REFERENCE.fullmatch(
        value) else None


def run_locked(pool, context, locks, func, wait=LOCK_WAIT):
    """Run `func()` in a database transaction that starts with the rows
    `locks` ({table: [ids]}) locked, commit, run the tasks it queued (when
    no worker does), and return its result.

    The lock is NOWAIT: while another transaction holds it, wait and retry
    (up to `wait` seconds, then raise DatabaseOperationalError).  Locks
    asked for on the way (sequences when a move is posted) restart the
    transaction with them, as Tryton's own wrappers do."""
    from trytond.worker import run_task
    deadline = time.monotonic() + wait
    extras = {'_lock_records': {t: list(ids) for t, ids in locks.items()}}
    attempt = 0
    while True:
        try:
            with Transaction().start(pool.database_name, 0, context=context,
                    **extras) as transaction:
                try:
                    result = func()
                except TransactionError as exception:
                    transaction.rollback()
                    transaction.tasks.clear()
                    exception.fix(extras)
                    continue
                except Exception:
                    transaction.rollback()
                    transaction.tasks.clear()
                    raise
                transaction.commit()
        except backend.DatabaseOperationalError:
            attempt += 1
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(0.02 * 2 ** attempt, 0.5) * random.uniform(0.5, 1))
            continue
        while transaction.tasks:
            run_task(pool, transaction.tasks.pop())
        return result


@app.route('/<database_name>/isp_billing/webhook/<provider>',
    methods={'POST'})
@observe_webhook('payment', 'provider', providers=ADAPTERS)
@with_pool
def webhook(request, pool, provider):
    "A notification of a payment gateway, for any tenant of the database"
    if provider not in ADAPTERS:
        return refused(Response('unknown provider',
                status=HTTPStatus.NOT_FOUND, content_type='text/plain'),
            'unknown provider')
    if (request.content_length or 0) > MAX_BODY:
        return _answer(provider, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            'body too large')
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _answer(provider, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            'body too large')
    url = request.url
    headers = list(request.headers.items())
    context = {'_request': request.context}

    # 1. which transaction, whose account, genuine? (read only, no network)
    reference = reference_of(provider, body, url)
    if not reference:
        return _answer(provider, HTTPStatus.BAD_REQUEST, 'no reference')
    with Transaction().start(pool.database_name, 0, readonly=True,
            context=context):
        PaymentTransaction = pool.get('isp.payment.transaction')
        found = PaymentTransaction.search([
                ('reference', '=', reference),
                ('gateway.provider', '=', provider),
                ], limit=1)
        if not found:
            logger.info("%s webhook: unknown reference", provider)
            return _answer(provider, HTTPStatus.NOT_FOUND,
                'unknown reference')
        record, = found
        adapter = record.gateway.get_adapter()
        refusal = _refusal(record, adapter, headers, body, url)
        if isinstance(refusal, Response):
            return refusal
        notification = refusal
        record_id = record.id

    # 2. record it 'queued' and queue its application; answer once
    # committed (the task runs here, after the commit, when no worker does)
    def record_():
        PaymentTransaction = pool.get('isp.payment.transaction')
        return PaymentTransaction.record_notification(
            PaymentTransaction(record_id), notification, headers=headers,
            body=body, url=url)

    def apply_after_commit():
        PaymentTransaction = pool.get('isp.payment.transaction')
        PaymentTransaction.apply_after_commit(record_id)
    try:
        if run_locked(pool, context, {}, record_) is not None:
            # recorded while a run held the branch: unless it still
            # does (it looks again then), queue the task now
            try:
                run_locked(pool, context, {}, apply_after_commit)
            except backend.DatabaseOperationalError:
                logger.warning("%s webhook %s: recorded, its task left to "
                    "the reconciliation cron", provider, reference)
    except (SQLConstraintError, backend.DatabaseIntegrityError):
        logger.warning("%s webhook %s: not recorded", provider, reference,
            exc_info=True)
        return _answer(provider, HTTPStatus.CONFLICT, 'not recorded')
    except backend.DatabaseOperationalError:
        logger.warning("%s webhook %s: busy, asked to retry", provider,
            reference)
        return _answer(provider, HTTPStatus.SERVICE_UNAVAILABLE, 'busy')
    return _answer(provider, HTTPStatus.OK)


def _refusal(record, adapter, headers, body, url):
    """The answer refusing the notification for payment `record`, or the
    notification (authenticated, decoded and about that payment)"""
    provider, reference = adapter.provider, record.reference
    if not adapter.verify_notification(headers, body, url=url):
        logger.warning("%s webhook %s: not genuine, refused", provider,
            reference)
        return _answer(provider, HTTPStatus.FORBIDDEN, 'invalid signature')
    try:
        notification = adapter.parse_notification(headers, body, url=url)
    except NotificationError:
        return _answer(provider, HTTPStatus.BAD_REQUEST, 'malformed')
    if notification.reference not in {None, reference}:
        return _answer(provider, HTTPStatus.BAD_REQUEST, 'reference mismatch')
    if not record.binds(notification):
        # M-Pesa: the body of another payment sent to this payment's URL
        logger.warning("%s webhook %s: body of another payment, refused",
            provider, reference)
        return _answer(provider, HTTPStatus.FORBIDDEN,
            'not this payment')
    if notification.receipt and record.receipt_used(notification.receipt):
        logger.warning("%s webhook %s: receipt already used, refused",
            provider, reference)
        return _answer(provider, HTTPStatus.CONFLICT, 'receipt already used')
    return notification


# A size of its own keeps trytond from reading the request's user: it would
# try to log in with any Authorization header sent (a 500 on a malformed
# one); these routes authenticate nobody that way.
webhook.max_request_size = MAX_BODY


TOKEN = re.compile(r'[A-Za-z0-9_-]{16,64}')
PAGES = {
    'unknown': ("This payment link is not valid.",
        "Tautan pembayaran ini tidak berlaku."),
    'paid': ("Invoice {number} is paid. Thank you.",
        "Tagihan {number} sudah lunas. Terima kasih."),
    'cancelled': ("Invoice {number} was cancelled: nothing to pay.",
        "Tagihan {number} dibatalkan: tidak ada yang harus dibayar."),
    'no_gateway': ("Invoice {number} cannot be paid online: {reason}",
        "Tagihan {number} tidak dapat dibayar secara online: {reason}"),
    'unavailable': (
        "The payment service is not available now, please try again in a "
        "few minutes.",
        "Layanan pembayaran sedang tidak tersedia, silakan coba lagi "
        "beberapa menit lagi."),
    'prompt': ("A payment request of {amount} for invoice {number} was "
        "sent to your phone: confirm it there with your PIN.",
        "Permintaan pembayaran {amount} untuk tagihan {number} telah "
        "dikirim ke ponsel Anda: konfirmasikan dengan PIN Anda."),
    }


def _page(status, key, lang='en', **values):
    "A small HTML page for the subscriber, in English or Indonesian"
    english, indonesian = PAGES[key]
    text = (indonesian if (lang or '').startswith('id') else english).format(
        **{k: html.escape(str(v)) for k, v in values.items()})
    body = ('<!DOCTYPE html><html lang="%s"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, '
        'initial-scale=1"><title>%s</title></head><body><p>%s</p>'
        '</body></html>') % ('id' if lang.startswith('id') else 'en',
            html.escape(values.get('number', '') or 'Payment'), text)
    return Response(body, status=status,
        content_type='text/html; charset=utf-8')


def _served_here(pool, request, invoice):
    """Whether the request's host may serve `invoice`'s pay link: a host of
    another branch (its public pages' domain) never serves it, unless it is
    the host of the link the invoice's branch sends (its `pay_url`); a host
    of no branch (the server's own) serves every branch's links"""
    Company = pool.get('company.company')
    Configuration = pool.get('isp.billing.configuration')
    host = request.host or ''
    tenant = Company.isp_web_tenant(host)
    if tenant is None or tenant == invoice.company:
        return True
    pattern = Configuration.get_value(invoice.company, 'pay_url') or ''
    link = urllib.parse.urlsplit(pattern).netloc
    return bool(link) and normalize_host(link) == normalize_host(host)


@app.route('/<database_name>/isp_billing/pay/<token>', methods={'GET'})
@with_pool
def pay(request, pool, token):
    "The public payment link of an invoice: to the gateway's page"
    if not TOKEN.fullmatch(token):
        return _page(HTTPStatus.NOT_FOUND, 'unknown')
    context = {'_request': request.context}
    lang = 'en'
    try:
        with Transaction().start(pool.database_name, 0,
                context=context) as transaction:
            Invoice = pool.get('account.invoice')
            found = Invoice.search([
                    ('isp_pay_token', '=', token),
                    ('type', '=', 'out'),
                    ], limit=1)
            if not found or not _served_here(pool, request, found[0]):
                return _page(HTTPStatus.NOT_FOUND, 'unknown')
            invoice, = found
            party_lang = invoice.party.lang or invoice.company.party.lang
            lang = party_lang.code if party_lang else 'en'
            number = invoice.number or ''
            if invoice.state == 'paid' or (
                    invoice.state == 'posted' and invoice.amount_to_pay <= 0):
                return _page(HTTPStatus.OK, 'paid', lang, number=number)
            if invoice.state != 'posted':
                return _page(HTTPStatus.GONE, 'cancelled', lang,
                    number=number)
            try:
                payment = Invoice.isp_open_payment(invoice)
            except PaymentOnlineError as exception:
                transaction.rollback()
                return _page(HTTPStatus.CONFLICT, 'no_gateway', lang,
                    number=number, reason=exception.message)
            url = payment.payment_url
            Lang = pool.get('ir.lang')
            amount = Lang.get(lang).currency(payment.amount,
                payment.currency, symbol=True, grouping=True)
    except PaymentGatewayError:
        logger.warning("pay link: the gateway did not open the payment",
            exc_info=True)
        return _page(HTTPStatus.SERVICE_UNAVAILABLE, 'unavailable', lang)
    except backend.DatabaseOperationalError:
        return _page(HTTPStatus.SERVICE_UNAVAILABLE, 'unavailable', lang)
    if url:
        return Response(status=HTTPStatus.SEE_OTHER,
            headers={'Location': url})
    return _page(HTTPStatus.ACCEPTED, 'prompt', lang, number=number,
        amount=amount)


pay.max_request_size = MAX_BODY
