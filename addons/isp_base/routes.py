# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Webhooks of the message providers: inbound messages and delivery
statuses.

Routes run as root: each one authenticates the provider first (Meta's
X-Hub-Signature-256, or the secret in the callback URL of gateways that do
not sign), answers 4xx without side effects otherwise, and 200 only once
the callback is stored.
"""
import hmac
import logging

from trytond.protocols.wrappers import (
    HTTPStatus,
    Response,
    with_pool,
    with_transaction,
)
from trytond.wsgi import app
from werkzeug.exceptions import abort

from .messaging import ADAPTERS, MetaWhatsApp, parse_body

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def _provider(pool, provider_id, meta):
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
    inbound, statuses = ADAPTERS[provider.type].parse_callback(data)
    Message.update_statuses(provider, statuses)
    Inbound.receive(provider, inbound, raw=raw)
    return Response('OK', status=HTTPStatus.OK, content_type='text/plain')


@app.route('/<database_name>/isp_base/notify/meta/<int:provider_id>',
    methods={'GET', 'POST'})
@with_pool
@with_transaction()
def meta_webhook(request, pool, provider_id):
    "Meta WhatsApp Cloud API webhook: verification (GET) and events (POST)"
    provider = _provider(pool, provider_id, meta=True)
    if request.method == 'GET':
        args = request.args
        token = args.get('hub.verify_token', '')
        if (args.get('hub.mode') == 'subscribe' and provider.verify_token
                and hmac.compare_digest(token, provider.verify_token)):
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
        abort(HTTPStatus.BAD_REQUEST)
    return _apply(pool, provider, data, body.decode('utf-8', 'replace'))


@app.route(
    '/<database_name>/isp_base/notify/callback/<int:provider_id>/<secret>',
    methods={'POST'})
@with_pool
@with_transaction()
def provider_callback(request, pool, provider_id, secret):
    """Callbacks of gateways that do not sign (Fonnte, Africa's Talking):
    the secret of the URL authenticates them."""
    provider = _provider(pool, provider_id, meta=False)
    if not (provider.callback_secret
            and hmac.compare_digest(secret, provider.callback_secret)):
        abort(HTTPStatus.FORBIDDEN)
    body = request.get_data(cache=True)
    if len(body) > MAX_BODY:
        abort(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    data = parse_body(request.content_type, body)
    if not isinstance(data, dict):
        abort(HTTPStatus.BAD_REQUEST)
    return _apply(pool, provider, data, body.decode('utf-8', 'replace'))
