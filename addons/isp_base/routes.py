# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Webhooks of the message providers: inbound messages and delivery
statuses.

Routes run as root: each one authenticates the provider first (Meta's
X-Hub-Signature-256, or the secret in the callback URL of gateways that do
not sign), answers 4xx without side effects otherwise, and 200 only once
the callback is stored.  Malformed input (ids out of range, non-ASCII
secrets, bodies that are not JSON or nested too deep, values of the wrong
type, NUL characters) gets a 4xx with a short reason, never a 500 or an
exception text.
"""
import logging

from trytond.protocols.wrappers import (
    HTTPStatus,
    Response,
    with_pool,
    with_transaction,
)
from trytond.wsgi import app
from werkzeug.exceptions import abort

from . import accesslog
from .messaging import (
    ADAPTERS,
    MetaWhatsApp,
    clean_callback,
    clean_text,
    parse_body,
    same_secret,
)
from .metrics import observe_webhook, refused

logger = logging.getLogger(__name__)
accesslog.install()
MAX_BODY = 1024 * 1024
#: The largest id a database integer holds (PostgreSQL's integer).
MAX_ID = 2 ** 31 - 1


def _refuse(status, reason):
    "A 4xx answer with a short reason"
    return refused(Response(reason, status=status,
            content_type='text/plain'), reason)


def _provider(pool, provider_id, meta):
    if not 0 < provider_id <= MAX_ID:
        abort(_refuse(HTTPStatus.NOT_FOUND, 'unknown provider'))
    try:
        Provider = pool.get('isp.message.provider')
    except KeyError:
        abort(HTTPStatus.NOT_FOUND)
    providers = Provider.search([('id', '=', provider_id)], limit=1)
    if not providers:
        abort(HTTPStatus.NOT_FOUND)
    provider, = providers
    if (provider.type == 'whatsapp_meta') != meta:
        abort(HTTPStatus.NOT_FOUND)
    return provider


def _apply(pool, provider, data, raw):
    Message = pool.get('isp.message')
    Inbound = pool.get('isp.message.inbound')
    try:
        inbound, statuses = ADAPTERS[provider.type].parse_callback(data)
    except (AttributeError, TypeError, ValueError, KeyError):
        # a value of the wrong type where the provider's format has an
        # object, a list or text
        return _refuse(HTTPStatus.BAD_REQUEST, 'malformed callback')
    inbound, statuses = clean_callback(inbound, statuses)
    Message.update_statuses(provider, statuses)
    Inbound.receive(provider, inbound,
        raw=clean_text(raw, limit=MAX_BODY))
    return Response('OK', status=HTTPStatus.OK, content_type='text/plain')


@app.route('/<database_name>/isp_base/notify/meta/<int:provider_id>',
    methods={'GET', 'POST'})
@observe_webhook('message', 'whatsapp_meta')
@with_pool
@with_transaction()
def meta_webhook(request, pool, provider_id):
    "Meta WhatsApp Cloud API webhook: verification (GET) and events (POST)"
    provider = _provider(pool, provider_id, meta=True)
    if request.method == 'GET':
        args = request.args
        token = args.get('hub.verify_token', '')
        if (args.get('hub.mode') == 'subscribe'
                and same_secret(token, provider.verify_token)):
            return Response(args.get('hub.challenge', ''),
                status=HTTPStatus.OK, content_type='text/plain')
        abort(HTTPStatus.FORBIDDEN)
    body = request.get_data(cache=True)
    if len(body) > MAX_BODY:
        abort(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if not MetaWhatsApp.check_signature(body,
            request.headers.get('X-Hub-Signature-256'), provider.app_secret):
        logger.info("meta webhook: bad signature for provider %d",
            provider_id)
        abort(HTTPStatus.FORBIDDEN)
    data = parse_body('application/json', body)
    if not isinstance(data, dict):
        return _refuse(HTTPStatus.BAD_REQUEST, 'malformed body')
    return _apply(pool, provider, data, body.decode('utf-8', 'replace'))



@app.route(
    '/<database_name>/isp_base/notify/callback/<int:provider_id>/<secret>',
    methods={'POST'})
@observe_webhook('message', 'callback')
@with_pool
@with_transaction()
def provider_callback(request, pool, provider_id, secret):
    """Callbacks of gateways that do not sign (Fonnte, Africa's Talking):
    the secret of the URL authenticates them."""
    provider = _provider(pool, provider_id, meta=False)
    if not same_secret(secret, provider.callback_secret):
        abort(HTTPStatus.FORBIDDEN)
    body = request.get_data(cache=True)
    if len(body) > MAX_BODY:
        abort(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    data = parse_body(request.content_type, body)
    if not isinstance(data, dict):
        return _refuse(HTTPStatus.BAD_REQUEST, 'malformed body')
    return _apply(pool, provider, data, body.decode('utf-8', 'replace'))


# A size of their own keeps trytond from reading the request's user: it
# would try to log in with any Authorization header sent (a login attempt
# per request, and a 500 on a malformed header).
meta_webhook.max_request_size = MAX_BODY
provider_callback.max_request_size = MAX_BODY
