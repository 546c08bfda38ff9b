# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Webhooks of the payment gateways: one route per provider for every tenant.

``POST /<database_name>/isp_billing/webhook/<provider>``, as root, hostile
input:

1. the body is size-limited and the order reference read from it (M-Pesa:
   from the callback URL); an unknown reference is answered 404 without any
   side effect;
2. the notification is verified with the account of THAT transaction
   (signature, callback token, or M-Pesa's URL token plus a status query,
   made outside any database transaction); forged: 403, nothing stored;
3. a database transaction starting with the transaction's row locked
   (``SELECT ... FOR UPDATE NOWAIT``, retried while a concurrent
   notification holds it) re-reads it, checks amount and currency, applies
   the notification at most once and stores it raw;
4. the answer leaves only once that is committed: 2xx when applied or
   already applied, 422 when refused (wrong amount or currency, flagged for
   staff), 503 when the lock or the provider could not be had (the provider
   retries, the reconciliation cron catches up).
"""
import json
import logging
import random
import time
import urllib.parse

from trytond import backend
from trytond.protocols.wrappers import HTTPStatus, Response, with_pool
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from .gateway import REFUSED
from .gateways import ADAPTERS, GatewayError, NotificationError

logger = logging.getLogger(__name__)

#: The largest body accepted (providers send a few kilobytes).
MAX_BODY = 64 * 1024
#: Seconds a notification waits for the row lock held by a concurrent one.
LOCK_WAIT = 15


def _answer(provider, status, reason=''):
    "The answer in the provider's format (no credentials are needed)"
    cls = ADAPTERS[provider]
    answer = cls.__new__(cls).answer(status, reason)
    return Response(answer.body, status=answer.status,
        content_type=answer.content_type)


def reference_of(provider, body, url):
    """The order reference a notification claims (not verified yet), or
    None"""
    if provider == 'mpesa':
        query = urllib.parse.urlsplit(url or '').query
        return dict(urllib.parse.parse_qsl(query)).get('reference') or None
    text = body.decode('utf-8', 'replace').strip()
    if provider == 'duitku' and not text.startswith('{'):
        data = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    else:
        try:
            data = json.loads(text or 'null')
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    key = {
        'midtrans': 'order_id',
        'xendit': 'external_id',
        'duitku': 'merchantOrderId',
        }[provider]
    value = data.get(key)
    return value if isinstance(value, str) and value else None


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
@with_pool
def webhook(request, pool, provider):
    "A notification of a payment gateway, for any tenant of the database"
    if provider not in ADAPTERS:
        return Response('unknown provider', status=HTTPStatus.NOT_FOUND,
            content_type='text/plain')
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

    # 1. which transaction, whose account (read only)
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
        record_id = record.id
        adapter = record.gateway.get_adapter()
        locks = PaymentTransaction.locks_for([record])

    # 2. genuine? (M-Pesa asks Daraja: no database transaction is held)
    try:
        genuine = adapter.verify_notification(headers, body, url=url)
    except GatewayError as exception:
        logger.warning("%s webhook %s: cannot verify now: %s", provider,
            reference, exception)
        return _answer(provider, HTTPStatus.SERVICE_UNAVAILABLE,
            'cannot verify now')
    if not genuine:
        logger.warning("%s webhook %s: not genuine, refused", provider,
            reference)
        return _answer(provider, HTTPStatus.FORBIDDEN, 'invalid signature')
    try:
        notification = adapter.parse_notification(headers, body, url=url)
    except NotificationError:
        return _answer(provider, HTTPStatus.BAD_REQUEST, 'malformed')
    if notification.reference not in {None, reference}:
        return _answer(provider, HTTPStatus.BAD_REQUEST, 'reference mismatch')

    # 3. apply once, under the row lock; answer once committed
    def apply():
        PaymentTransaction = pool.get('isp.payment.transaction')
        return PaymentTransaction.process_notification(
            PaymentTransaction(record_id), notification, source='webhook',
            headers=headers, body=body, url=url)
    try:
        verdict = run_locked(pool, context, locks, apply)
    except backend.DatabaseOperationalError:
        logger.warning("%s webhook %s: busy, asked to retry", provider,
            reference)
        return _answer(provider, HTTPStatus.SERVICE_UNAVAILABLE, 'busy')
    if verdict in REFUSED:
        return _answer(provider, HTTPStatus.UNPROCESSABLE_ENTITY, verdict)
    return _answer(provider, HTTPStatus.OK)
