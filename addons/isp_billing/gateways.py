# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Payment gateway adapters (pure Python, no Tryton).

One class per provider, all with the same interface, each speaking the
provider's documented HTTP API with `requests`:

- `MidtransAdapter`: Snap (``POST /snap/v1/transactions``), status
  (``GET /v2/{order_id}/status`` on the API host), HTTP notifications signed
  with ``signature_key`` = SHA-512(order_id + status_code + gross_amount +
  server key);
- `XenditAdapter`: Invoices (``POST /v2/invoices``, ``GET /v2/invoices/{id}``),
  callbacks authenticated by the ``x-callback-token`` header;
- `DuitkuAdapter`: ``POST /webapi/api/merchant/v2/inquiry``,
  ``POST /webapi/api/merchant/transactionStatus``, form-encoded callbacks
  signed with MD5(merchantCode + amount + merchantOrderId + apiKey);
- `MpesaAdapter`: Daraja OAuth (cached token), M-Pesa Express (STK push)
  and its status query; callbacks carry no signature, so the callback URL
  holds a per-reference secret token.

Authenticating a notification (`verify_notification`) never makes it true:
a signature covers some fields only (Midtrans: order_id, status_code and
gross_amount; Duitku: merchantCode, amount and merchantOrderId), Xendit's
token and M-Pesa's URL token only say who sent it.  The Tryton side applies
a change of state only as `query_status` reports it (docs/payments.md).

The interface::

    adapter = MidtransAdapter(base_url, credentials, sandbox=True, timeout=10,
        secrets=())                          # masked in errors and logs
    request = adapter.create_payment(reference, amount, currency, customer,
        callback_url, return_url)            # -> PaymentRequest
    adapter.query_status(reference, provider_id=None)   # -> Notification
    adapter.verify_notification(headers, body, url=None)  # -> bool
    adapter.parse_notification(headers, body, url=None)   # -> Notification
    adapter.answer(200)                      # -> HTTPAnswer for the provider

`customer` is ``{'name', 'email', 'phone'}`` (each optional, M-Pesa needs
the phone). Amounts are `Decimal`; these providers take whole IDR (Midtrans,
Xendit, Duitku) or whole KES (M-Pesa): an amount with a fraction is refused,
never rounded. `Notification.state` is one of `STATES`; the provider's own
status is kept in `provider_status` and the decoded payload in `raw`.

Errors raise `GatewayError` (provider, message, HTTP status, provider code);
messages and log lines never contain credentials: the provider's own
message is kept without the `secrets` given to the adapter (the values of
the account's credential fields, `Gateway.CREDENTIAL_FIELDS`).
"""
import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import requests

from trytond.modules.isp_base.messaging import redact_secrets

__all__ = [
    'ADAPTERS', 'STATES', 'Adapter', 'DuitkuAdapter', 'GatewayError',
    'HTTPAnswer', 'InvalidRequest', 'MidtransAdapter', 'MpesaAdapter',
    'Notification', 'NotificationError', 'PaymentRequest',
    'TransactionNotFound', 'XenditAdapter', 'get_adapter', 'normalize_msisdn',
    ]

logger = logging.getLogger(__name__)

PAID, PENDING, FAILED, EXPIRED = 'paid', 'pending', 'failed', 'expired'
STATES = (PAID, PENDING, FAILED, EXPIRED)


class GatewayError(Exception):
    """A gateway refused a request, answered nonsense or could not be reached.

    `message` is the provider's own message when it gave one; `status` the
    HTTP status and `code` the provider's error code, when known.
    """

    def __init__(self, provider, message, status=None, code=None):
        self.provider = provider
        self.message = message
        self.status = status
        self.code = code
        text = '%s: %s' % (provider, message)
        details = []
        if status:
            details.append('HTTP %s' % status)
        if code not in (None, ''):
            details.append('code %s' % code)
        if details:
            text += ' (%s)' % ', '.join(details)
        super().__init__(text)


class InvalidRequest(GatewayError, ValueError):
    "The arguments cannot be sent to this provider (nothing was sent)"


class TransactionNotFound(GatewayError):
    "The provider does not know the transaction (yet)"


class NotificationError(GatewayError, ValueError):
    "A notification body cannot be decoded"


@dataclass(frozen=True)
class PaymentRequest:
    """A payment opened at the provider.

    `redirect_url` is the buyer's payment page (none for an STK push, which
    prompts the phone), `token` the Snap token for Snap.js, `provider_id` the
    provider's id of the transaction when it gives one at creation (Xendit
    invoice id, Duitku reference, M-Pesa CheckoutRequestID).
    """
    reference: str
    provider_id: str | None
    redirect_url: str | None = None
    token: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Notification:
    """A transaction's state as a notification or a status query tells it.

    `amount` is None when the provider does not say it (M-Pesa status query).
    `reference` is None when the provider does not echo it (an M-Pesa
    callback parsed without its URL).  `reversal` is True when a failed
    state undoes a payment (Midtrans refund, chargeback, cancel of a
    capture); `receipt` is the provider's receipt number of a payment
    (M-Pesa's MpesaReceiptNumber).
    """
    reference: str | None
    state: str
    amount: Decimal | None
    currency: str | None
    provider_id: str | None
    provider_status: str = ''
    message: str = ''
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    reversal: bool = False
    receipt: str = ''


@dataclass(frozen=True)
class HTTPAnswer:
    "What a webhook route sends back to the provider"
    status: int
    content_type: str
    body: bytes


def _lower_headers(headers):
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, 'items') else headers
    return {str(k).lower(): str(v) for k, v in items}


def _same(given, expected):
    "Constant-time comparison of two strings (False for anything else)"
    if not isinstance(given, str) or not isinstance(expected, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _text(value):
    if value is None:
        return ''
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return str(value)


def _string(value):
    "A text field of a decoded body: '' for anything that is not text"
    return value if isinstance(value, str) else ''


def _json_body(body, provider):
    try:
        data = json.loads(_text(body) or 'null')
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than the interpreter's stack
        raise NotificationError(provider, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise NotificationError(provider, "the body is not a JSON object")
    return data


#: The largest amount a notification may tell (and its most decimals):
#: anything beyond is not a payment and would not fit the database.
MAX_AMOUNT = Decimal(10) ** 15
MAX_DECIMALS = 6


def _decimal(value, provider, what='amount'):
    if value is None or value == '':
        return None
    if isinstance(value, bool) or not isinstance(
            value, str | int | float | Decimal):
        raise NotificationError(provider, "%s is not a number" % what)
    try:
        result = Decimal(str(value)[:100])
    except (InvalidOperation, ValueError):
        raise NotificationError(provider, "%s is not a number"
            % what) from None
    if (not result.is_finite() or abs(result) >= MAX_AMOUNT
            or result.as_tuple().exponent < -MAX_DECIMALS):
        raise NotificationError(provider, "%s is out of bounds" % what)
    return result


class Adapter:
    """Common part of the adapters.

    `base_url` overrides the provider's host (the fakes, a proxy); without it
    `sandbox` chooses the provider's sandbox or production host.
    `credentials` is a dict whose keys each adapter lists in
    `required_credentials` (plus optional settings it documents).
    """
    provider = ''
    currencies = ()
    sandbox_url = production_url = ''
    required_credentials = ()
    #: Whether the provider's id of a payment is known from its creation
    #: (a notification must then carry that same id)
    binds_provider_id = True

    def __init__(self, base_url=None, credentials=None, sandbox=True,
            timeout=10.0, session=None, secrets=()):
        credentials = dict(credentials or {})
        missing = [k for k in self.required_credentials
            if not credentials.get(k)]
        if missing:
            raise InvalidRequest(self.provider,
                "missing credentials: %s" % ', '.join(missing))
        self.credentials = credentials
        self.sandbox = sandbox
        default = self.sandbox_url if sandbox else self.production_url
        self.base_url = (base_url or default).rstrip('/')
        self.timeout = timeout
        self.session = session or requests.Session()
        #: the credentials never to keep in errors or logs
        self.secrets = tuple(s for s in secrets if s)

    def __repr__(self):
        return '<%s %s>' % (self.__class__.__name__, self.base_url)

    # -- interface
    def create_payment(self, reference, amount, currency, customer,
            callback_url, return_url, description=None, expiry_minutes=None):
        "Open a payment for `reference` and return a `PaymentRequest`"
        raise NotImplementedError

    def query_status(self, reference, provider_id=None):
        "Ask the provider for the transaction's state (a `Notification`)"
        raise NotImplementedError

    def verify_notification(self, headers, body, url=None):
        "Whether the notification really comes from the provider"
        raise NotImplementedError

    def parse_notification(self, headers, body, url=None):
        "Decode a notification (verify it first) into a `Notification`"
        raise NotImplementedError

    def answer(self, status=200, reason=''):
        "The HTTP answer the provider expects from a webhook route"
        if 200 <= status < 300:
            payload = {'status': 'OK'}
        else:
            payload = {'status': 'ERROR', 'message': reason or 'rejected'}
        return HTTPAnswer(status, 'application/json',
            json.dumps(payload).encode())

    # -- helpers
    def whole_amount(self, amount, currency):
        """The amount as the integer the provider takes; refuses another
        currency or a fraction (money is never rounded here)."""
        if currency not in self.currencies:
            raise InvalidRequest(self.provider,
                "currency %s is not supported (only %s)"
                % (currency, ', '.join(self.currencies)))
        if isinstance(amount, float) or amount is None:
            raise InvalidRequest(self.provider,
                "amount must be a Decimal, not %r" % (amount,))
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError):
            raise InvalidRequest(self.provider,
                "amount %r is not a number" % (amount,)) from None
        if not value.is_finite() or value <= 0:
            raise InvalidRequest(self.provider,
                "amount must be positive, not %s" % value)
        if value != value.to_integral_value():
            raise InvalidRequest(self.provider,
                "%s amounts are whole numbers, not %s" % (currency, value))
        return int(value)

    def _request(self, method, url, **kwargs):
        "Send a request; return (response, decoded JSON or None)"
        kwargs.setdefault('timeout', self.timeout)
        path = urllib.parse.urlsplit(url).path
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout:
            logger.warning('%s %s %s: timed out', self.provider, method, path)
            raise GatewayError(self.provider,
                "no answer within %s s" % self.timeout) from None
        except requests.RequestException as exception:
            logger.warning('%s %s %s: %s', self.provider, method, path,
                type(exception).__name__)
            raise GatewayError(self.provider, "cannot reach %s (%s)"
                % (urllib.parse.urlsplit(url).netloc,
                    type(exception).__name__)) from None
        logger.debug('%s %s %s -> %s', self.provider, method, path,
            response.status_code)
        try:
            data = response.json()
        except ValueError:
            data = None
        return response, data

    def _error(self, response, data, default="unexpected answer",
            cls=GatewayError):
        "The error of an answer, without the credentials it may echo"
        message, code = self._error_details(data)
        if not message:
            message = (response.text or '').strip()[:200] or default
        message = redact_secrets(_text(message)[:500], self.secrets)
        if code is not None:
            code = redact_secrets(_text(code)[:100], self.secrets)
        return cls(self.provider, message, status=response.status_code,
            code=code)

    def _error_details(self, data):
        "(message, code) from an error body"
        return None, None


# -- Midtrans -----------------------------------------------------------------

class MidtransAdapter(Adapter):
    """Midtrans Snap.

    credentials: ``server_key``. The notification URL of each transaction is
    sent in the ``X-Override-Notification`` header (it replaces the one of
    the dashboard); `return_url` becomes Snap's ``callbacks.finish``.
    `api_base_url` is the Core API host of the status query (default: the
    same as `base_url` when that is given, else Midtrans' API host).
    """
    provider = 'midtrans'
    currencies = ('IDR',)
    sandbox_url = 'https://app.sandbox.midtrans.com'
    production_url = 'https://app.midtrans.com'
    sandbox_api_url = 'https://api.sandbox.midtrans.com'
    production_api_url = 'https://api.midtrans.com'
    required_credentials = ('server_key',)
    # transaction_id is learnt from the notifications, several per order
    binds_provider_id = False
    #: transaction_status: the status_codes Midtrans sends with it in a
    #: notification (the status_code is signed, transaction_status is not)
    STATUS_CODES = {
        'settlement': {'200'},
        'pending': {'201'},
        'authorize': {'200'},
        'deny': {'202'},
        'expire': {'202'},
        'cancel': {'200', '202'},
        'failure': {'202'},
        'refund': {'200'},
        'partial_refund': {'200'},
        'chargeback': {'200'},
        'partial_chargeback': {'200'},
        }
    #: capture: its status_code by fraud_status (also unsigned)
    CAPTURE_CODES = {'accept': '200', 'challenge': '201', 'deny': '202'}
    #: Statuses that undo a payment (after a capture or a settlement)
    REVERSALS = {'refund', 'partial_refund', 'chargeback',
        'partial_chargeback', 'cancel'}

    def __init__(self, base_url=None, credentials=None, sandbox=True,
            timeout=10.0, session=None, api_base_url=None, secrets=()):
        super().__init__(base_url, credentials, sandbox=sandbox,
            timeout=timeout, session=session, secrets=secrets)
        default = self.sandbox_api_url if sandbox else self.production_api_url
        self.api_base_url = (api_base_url or base_url or default).rstrip('/')

    @property
    def _auth(self):
        return (self.credentials['server_key'], '')

    def _error_details(self, data):
        if not isinstance(data, dict):
            return None, None
        if data.get('error_messages'):
            return '; '.join(map(str, data['error_messages'])), None
        return data.get('status_message'), data.get('status_code')

    @staticmethod
    def customer_details(customer):
        customer = customer or {}
        name = (customer.get('name') or '').strip()
        first, _, last = name.partition(' ')
        details = {
            'first_name': customer.get('first_name') or first,
            'last_name': customer.get('last_name') or last.strip(),
            'email': customer.get('email'),
            'phone': customer.get('phone'),
            }
        return {k: v for k, v in details.items() if v}

    def create_payment(self, reference, amount, currency, customer,
            callback_url, return_url, description=None, expiry_minutes=None):
        gross_amount = self.whole_amount(amount, currency)
        body = {
            'transaction_details': {
                'order_id': reference,
                'gross_amount': gross_amount,
                },
            'customer_details': self.customer_details(customer),
            }
        if description:
            body['item_details'] = [{
                    'id': reference[:50],
                    'price': gross_amount,
                    'quantity': 1,
                    'name': description[:50],
                    }]
        if return_url:
            body['callbacks'] = {'finish': return_url}
        if expiry_minutes:
            body['expiry'] = {'unit': 'minutes',
                'duration': int(expiry_minutes)}
        headers = {'Accept': 'application/json'}
        if callback_url:
            headers['X-Override-Notification'] = callback_url
        response, data = self._request('POST',
            self.base_url + '/snap/v1/transactions', json=body,
            auth=self._auth, headers=headers)
        if (response.status_code not in {200, 201}
                or not isinstance(data, dict) or not data.get('token')):
            raise self._error(response, data)
        return PaymentRequest(reference, None,
            redirect_url=data.get('redirect_url'), token=data['token'],
            raw=data)

    def query_status(self, reference, provider_id=None):
        # by order_id, ours: a transaction_id comes from unsigned fields
        url = '%s/v2/%s/status' % (self.api_base_url,
            urllib.parse.quote(reference, safe=''))
        response, data = self._request('GET', url, auth=self._auth,
            headers={'Accept': 'application/json'})
        code = str((data or {}).get('status_code') or '')
        if response.status_code == 404 or code == '404':
            raise self._error(response, data, cls=TransactionNotFound)
        if (response.status_code >= 400 or not isinstance(data, dict)
                or (code.isdigit() and int(code) >= 400 and code != '407')):
            raise self._error(response, data)
        return self._notification(data)

    def signature(self, order_id, status_code, gross_amount):
        "Midtrans' signature_key of a notification"
        text = '%s%s%s%s' % (order_id, status_code, gross_amount,
            self.credentials['server_key'])
        return hashlib.sha512(text.encode()).hexdigest()

    def verify_notification(self, headers, body, url=None):
        try:
            data = _json_body(body, self.provider)
        except NotificationError:
            return False
        fields = [data.get(k) for k in (
                'order_id', 'status_code', 'gross_amount', 'signature_key')]
        if not all(isinstance(v, str) and v for v in fields):
            return False
        order_id, status_code, gross_amount, signature = fields
        if not _same(signature,
                self.signature(order_id, status_code, gross_amount)):
            return False
        # transaction_status and fraud_status are not signed: they must
        # tell the state of the signed status_code
        return status_code in self.status_codes(
            _string(data.get('transaction_status')),
            _string(data.get('fraud_status')))

    @classmethod
    def status_codes(cls, transaction_status, fraud_status=None):
        "The status_codes a notification of this status may carry"
        if transaction_status == 'capture':
            code = cls.CAPTURE_CODES.get(fraud_status or 'accept')
            return {code} if code else set()
        if transaction_status == 'settlement' and fraud_status == 'deny':
            return set()
        return cls.STATUS_CODES.get(transaction_status, set())

    def parse_notification(self, headers, body, url=None):
        data = _json_body(body, self.provider)
        if not (_string(data.get('order_id'))
                and _string(data.get('transaction_status'))):
            raise NotificationError(self.provider,
                "order_id or transaction_status is missing")
        return self._notification(data)

    @staticmethod
    def state(transaction_status, fraud_status=None):
        "Our state for Midtrans' transaction_status and fraud_status"
        if transaction_status == 'capture':
            return {'challenge': PENDING, 'deny': FAILED}.get(
                fraud_status, PAID)
        if transaction_status == 'settlement':
            return FAILED if fraud_status == 'deny' else PAID
        if transaction_status in {'pending', 'authorize'}:
            return PENDING
        if transaction_status == 'expire':
            return EXPIRED
        # deny, cancel, failure; refund, partial_refund, chargeback... undo
        # a payment: never read them as paid
        return FAILED

    def _notification(self, data):
        status = _string(data.get('transaction_status'))
        fraud = _string(data.get('fraud_status'))
        state = self.state(status, fraud)
        return Notification(
            reference=_string(data.get('order_id')) or None,
            state=state,
            amount=_decimal(data.get('gross_amount'), self.provider),
            currency=_string(data.get('currency')) or 'IDR',
            provider_id=_string(data.get('transaction_id')) or None,
            provider_status=status + ('/' + fraud if fraud else ''),
            message=_string(data.get('status_message')),
            raw=data,
            reversal=state == FAILED and status in self.REVERSALS)


# -- Xendit -------------------------------------------------------------------

class XenditAdapter(Adapter):
    """Xendit Invoices.

    credentials: ``secret_key`` (API key, Basic auth) and ``callback_token``
    (the account's callback verification token). Xendit posts invoice
    callbacks to the URL set in its dashboard or with `set_callback_url`, not
    per invoice: `callback_url` of `create_payment` is not sent.
    """
    provider = 'xendit'
    currencies = ('IDR',)
    sandbox_url = production_url = 'https://api.xendit.co'
    required_credentials = ('secret_key', 'callback_token')

    @property
    def _auth(self):
        return (self.credentials['secret_key'], '')

    def _error_details(self, data):
        if not isinstance(data, dict):
            return None, None
        return data.get('message'), data.get('error_code')

    def create_payment(self, reference, amount, currency, customer,
            callback_url, return_url, description=None, expiry_minutes=None):
        body = {
            'external_id': reference,
            'amount': self.whole_amount(amount, currency),
            'currency': currency,
            'description': description or reference,
            }
        customer = customer or {}
        name = (customer.get('name') or '').strip()
        given, _, surname = name.partition(' ')
        details = {
            'given_names': given,
            'surname': surname.strip(),
            'email': customer.get('email'),
            'mobile_number': customer.get('phone'),
            }
        details = {k: v for k, v in details.items() if v}
        if details:
            body['customer'] = details
        if customer.get('email'):
            body['payer_email'] = customer['email']
        if return_url:
            body['success_redirect_url'] = return_url
            body['failure_redirect_url'] = return_url
        if expiry_minutes:
            body['invoice_duration'] = int(expiry_minutes) * 60
        response, data = self._request('POST', self.base_url + '/v2/invoices',
            json=body, auth=self._auth)
        if (response.status_code not in {200, 201}
                or not isinstance(data, dict) or not data.get('id')):
            raise self._error(response, data)
        return PaymentRequest(reference, data['id'],
            redirect_url=data.get('invoice_url'), raw=data)

    def set_callback_url(self, url, kind='invoice'):
        "Set the account's callback URL for invoices (Xendit's API for it)"
        response, data = self._request('POST',
            '%s/callback_urls/%s' % (self.base_url, kind),
            json={'url': url}, auth=self._auth)
        if response.status_code not in {200, 201}:
            raise self._error(response, data)
        return data

    def query_status(self, reference, provider_id=None):
        if provider_id:
            response, data = self._request('GET', '%s/v2/invoices/%s' % (
                    self.base_url, urllib.parse.quote(provider_id, safe='')),
                auth=self._auth)
            if response.status_code == 404:
                raise self._error(response, data, cls=TransactionNotFound)
            if response.status_code != 200 or not isinstance(data, dict):
                raise self._error(response, data)
            return self._notification(data)
        response, data = self._request('GET', self.base_url + '/v2/invoices',
            params={'external_id': reference}, auth=self._auth)
        if response.status_code == 404:
            raise self._error(response, data, cls=TransactionNotFound)
        if response.status_code != 200 or not isinstance(data, list):
            raise self._error(response, data)
        invoices = [i for i in data if isinstance(i, dict)]
        if not invoices:
            raise TransactionNotFound(self.provider,
                "no invoice for external_id %s" % reference)
        # several invoices may share an external_id: a paid one wins
        paid = [i for i in invoices
            if self.state(i.get('status')) == PAID]
        latest = max(paid or invoices, key=lambda i: i.get('created') or '')
        return self._notification(latest)

    def verify_notification(self, headers, body, url=None):
        token = _lower_headers(headers).get('x-callback-token')
        return _same(token, self.credentials['callback_token'])

    def parse_notification(self, headers, body, url=None):
        data = _json_body(body, self.provider)
        if not (_string(data.get('external_id'))
                and _string(data.get('status'))):
            raise NotificationError(self.provider,
                "external_id or status is missing")
        return self._notification(data)

    @staticmethod
    def state(status):
        status = (status or '').upper()
        if status in {'PAID', 'SETTLED'}:
            return PAID
        if status == 'EXPIRED':
            return EXPIRED
        if status == 'PENDING':
            return PENDING
        return FAILED

    def _notification(self, data):
        status = _string(data.get('status')).upper()
        amount = data.get('amount')
        if self.state(status) == PAID and data.get('paid_amount') is not None:
            amount = data['paid_amount']
        return Notification(
            reference=_string(data.get('external_id')) or None,
            state=self.state(status),
            amount=_decimal(amount, self.provider),
            currency=_string(data.get('currency')) or 'IDR',
            provider_id=_string(data.get('id')) or None,
            provider_status=status,
            message=_string(data.get('payment_method')),
            raw=data)


# -- Duitku -------------------------------------------------------------------

class DuitkuAdapter(Adapter):
    """Duitku API (v2 inquiry).

    credentials: ``merchant_code`` and ``api_key``; optional
    ``payment_method`` (Duitku's channel code, mandatory in a v2 inquiry;
    default ``SP``, QRIS) and ``expiry_minutes``.
    """
    provider = 'duitku'
    currencies = ('IDR',)
    sandbox_url = 'https://sandbox.duitku.com'
    production_url = 'https://passport.duitku.com'
    required_credentials = ('merchant_code', 'api_key')
    default_payment_method = 'SP'

    def _error_details(self, data):
        if not isinstance(data, dict):
            return None, None
        message = (data.get('Message') or data.get('message')
            or data.get('statusMessage') or data.get('responseDesc'))
        return message, data.get('statusCode') or data.get('responseCode')

    def _md5(self, *parts):
        text = ''.join(map(str, parts)) + self.credentials['api_key']
        return hashlib.md5(text.encode()).hexdigest()

    def create_payment(self, reference, amount, currency, customer,
            callback_url, return_url, description=None, expiry_minutes=None):
        code = self.credentials['merchant_code']
        payment_amount = self.whole_amount(amount, currency)
        customer = customer or {}
        body = {
            'merchantCode': code,
            'paymentAmount': payment_amount,
            'paymentMethod': self.credentials.get('payment_method')
            or self.default_payment_method,
            'merchantOrderId': reference,
            'productDetails': description or reference,
            'email': customer.get('email') or '',
            'customerVaName': customer.get('name') or reference,
            'callbackUrl': callback_url,
            'returnUrl': return_url,
            'signature': self._md5(code, reference, payment_amount),
            }
        if customer.get('phone'):
            body['phoneNumber'] = customer['phone']
        expiry = expiry_minutes or self.credentials.get('expiry_minutes')
        if expiry:
            body['expiryPeriod'] = int(expiry)
        response, data = self._request('POST',
            self.base_url + '/webapi/api/merchant/v2/inquiry', json=body)
        if (response.status_code != 200 or not isinstance(data, dict)
                or data.get('statusCode', '00') != '00'
                or not data.get('reference')):
            raise self._error(response, data)
        return PaymentRequest(reference, data['reference'],
            redirect_url=data.get('paymentUrl'), raw=data)

    def query_status(self, reference, provider_id=None):
        code = self.credentials['merchant_code']
        body = {
            'merchantCode': code,
            'merchantOrderId': reference,
            'signature': self._md5(code, reference),
            }
        response, data = self._request('POST',
            self.base_url + '/webapi/api/merchant/transactionStatus',
            json=body)
        if response.status_code == 404:
            raise self._error(response, data, cls=TransactionNotFound)
        if response.status_code != 200 or not isinstance(data, dict):
            raise self._error(response, data)
        status = _string(data.get('statusCode'))
        message = _string(data.get('statusMessage'))
        if status == '00':
            state = PAID
        elif status == '01':
            state = PENDING
        elif 'EXPIRE' in message.upper():
            state = EXPIRED
        else:
            state = FAILED
        return Notification(
            reference=_string(data.get('merchantOrderId')) or reference,
            state=state,
            amount=_decimal(data.get('amount'), self.provider),
            currency='IDR',
            provider_id=_string(data.get('reference')) or None,
            provider_status=status,
            message=message,
            raw=data)

    def _form(self, body):
        text = _text(body).strip()
        if text.startswith('{'):
            data = _json_body(text, self.provider)
            return {k: v if isinstance(v, str) else (
                    '' if v is None or isinstance(v, dict | list) else str(v))
                for k, v in data.items()}
        try:
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True,
                strict_parsing=bool(text))
        except ValueError:
            raise NotificationError(self.provider,
                "the body is not form data") from None
        return dict(pairs)

    def verify_notification(self, headers, body, url=None):
        try:
            data = self._form(body)
        except NotificationError:
            return False
        code, amount, order, signature = (_string(data.get(k)) for k in (
                'merchantCode', 'amount', 'merchantOrderId', 'signature'))
        if not (code and amount and order and signature):
            return False
        if not _same(code, self.credentials['merchant_code']):
            return False
        return _same(signature.lower(), self._md5(code, amount, order))

    def parse_notification(self, headers, body, url=None):
        data = self._form(body)
        if not data.get('merchantOrderId') or not data.get('resultCode'):
            raise NotificationError(self.provider,
                "merchantOrderId or resultCode is missing")
        result = data['resultCode']
        return Notification(
            reference=data['merchantOrderId'],
            state=PAID if result == '00' else FAILED,
            amount=_decimal(data.get('amount'), self.provider),
            currency='IDR',
            provider_id=data.get('reference') or None,
            provider_status=result,
            message=data.get('paymentCode') or '',
            raw=data)

    def answer(self, status=200, reason=''):
        body = b'SUCCESS' if 200 <= status < 300 else (
            reason or 'rejected').encode()
        return HTTPAnswer(status, 'text/plain', body)


# -- M-Pesa (Daraja) ----------------------------------------------------------

EAT = timezone(timedelta(hours=3), 'EAT')
MSISDN = re.compile(r'^254[17]\d{8}$')

# Daraja access tokens, shared by the adapters of one account:
# (base_url, consumer_key, digest of the secret) -> (token, monotonic expiry)
_TOKENS = {}
_TOKENS_LOCK = threading.Lock()


def normalize_msisdn(phone):
    "Kenyan mobile number as Daraja wants it (2547XXXXXXXX), or None"
    digits = re.sub(r'[^\d]', '', _text(phone))
    if digits.startswith('0') and len(digits) == 10:
        digits = '254' + digits[1:]
    elif len(digits) == 9 and digits[0] in '17':
        digits = '254' + digits
    return digits if MSISDN.match(digits) else None


class MpesaAdapter(Adapter):
    """Safaricom Daraja M-Pesa Express (STK push).

    credentials: ``consumer_key``, ``consumer_secret`` (OAuth),
    ``shortcode`` (BusinessShortCode), ``passkey`` and ``callback_secret``
    (keys the token put in each callback URL); optional
    ``transaction_type`` (default ``CustomerPayBillOnline``) and ``party_b``
    (default the shortcode; a till number for ``CustomerBuyGoodsOnline``).

    The callback URL sent to Daraja is `callback_url` plus the query
    ``reference=<reference>&token=<HMAC-SHA256(callback_secret,
    reference)>``: `verify_notification` and `parse_notification` need that
    URL (``url=``, full or path and query) as the route received it.
    """
    provider = 'mpesa'
    currencies = ('KES',)
    sandbox_url = 'https://sandbox.safaricom.co.ke'
    production_url = 'https://api.safaricom.co.ke'
    required_credentials = ('consumer_key', 'consumer_secret', 'shortcode',
        'passkey', 'callback_secret')
    token_margin = 60  # seconds: renew a token this long before it expires
    PROCESSING = '500.001.1001'
    INVALID_TOKEN = {'404.001.03', '400.003.01'}

    def _error_details(self, data):
        if not isinstance(data, dict):
            return None, None
        return (data.get('errorMessage') or data.get('ResponseDescription')
            or data.get('ResultDesc'),
            data.get('errorCode') or data.get('ResponseCode'))

    # -- OAuth
    @property
    def _token_key(self):
        secret = hashlib.sha256(
            self.credentials['consumer_secret'].encode()).hexdigest()
        return (self.base_url, self.credentials['consumer_key'], secret)

    def access_token(self, renew=False):
        "A valid OAuth access token, from the cache while it lasts"
        key = self._token_key
        with _TOKENS_LOCK:
            cached = _TOKENS.get(key)
            if (cached and not renew
                    and cached[1] - self.token_margin > time.monotonic()):
                return cached[0]
        response, data = self._request('GET',
            self.base_url + '/oauth/v1/generate',
            params={'grant_type': 'client_credentials'},
            auth=(self.credentials['consumer_key'],
                self.credentials['consumer_secret']))
        if (response.status_code != 200 or not isinstance(data, dict)
                or not data.get('access_token')):
            raise self._error(response, data, default="authentication failed")
        try:
            expires_in = int(data.get('expires_in') or 3599)
        except (TypeError, ValueError):
            expires_in = 3599
        token = data['access_token']
        with _TOKENS_LOCK:
            _TOKENS[key] = (token, time.monotonic() + expires_in)
        return token

    def forget_token(self):
        with _TOKENS_LOCK:
            _TOKENS.pop(self._token_key, None)

    def _post(self, path, body):
        "POST with the bearer token; renew it once when Daraja refuses it"
        for attempt in range(2):
            token = self.access_token(renew=bool(attempt))
            response, data = self._request('POST', self.base_url + path,
                json=body, headers={'Authorization': 'Bearer ' + token})
            code = (data or {}).get('errorCode') if isinstance(
                data, dict) else None
            if response.status_code == 401 or code in self.INVALID_TOKEN:
                self.forget_token()
                continue
            break
        return response, data

    # -- STK push
    def password(self, timestamp):
        text = '%s%s%s' % (self.credentials['shortcode'],
            self.credentials['passkey'], timestamp)
        return base64.b64encode(text.encode()).decode()

    @staticmethod
    def timestamp(now=None):
        return (now or datetime.now(EAT)).astimezone(EAT).strftime(
            '%Y%m%d%H%M%S')

    def callback_token(self, reference):
        return hmac.new(self.credentials['callback_secret'].encode(),
            _text(reference).encode(), hashlib.sha256).hexdigest()

    def callback_url(self, callback_url, reference):
        "`callback_url` with the reference and its secret token"
        parts = urllib.parse.urlsplit(callback_url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k not in {'reference', 'token'}]
        query += [('reference', reference),
            ('token', self.callback_token(reference))]
        return urllib.parse.urlunsplit(parts._replace(
                query=urllib.parse.urlencode(query)))

    def create_payment(self, reference, amount, currency, customer,
            callback_url, return_url=None, description=None,
            expiry_minutes=None):
        whole = self.whole_amount(amount, currency)
        phone = normalize_msisdn((customer or {}).get('phone'))
        if not phone:
            raise InvalidRequest(self.provider,
                "a Safaricom mobile number (2547XXXXXXXX) is required")
        if not callback_url:
            raise InvalidRequest(self.provider, "a callback URL is required")
        timestamp = self.timestamp()
        shortcode = str(self.credentials['shortcode'])
        body = {
            'BusinessShortCode': shortcode,
            'Password': self.password(timestamp),
            'Timestamp': timestamp,
            'TransactionType': self.credentials.get('transaction_type')
            or 'CustomerPayBillOnline',
            'Amount': whole,
            'PartyA': phone,
            'PartyB': str(self.credentials.get('party_b') or shortcode),
            'PhoneNumber': phone,
            'CallBackURL': self.callback_url(callback_url, reference),
            # Daraja limits: 12 characters, 13 for the description
            'AccountReference': reference[:12],
            'TransactionDesc': (description or 'Payment')[:13],
            }
        response, data = self._post('/mpesa/stkpush/v1/processrequest', body)
        if (response.status_code != 200 or not isinstance(data, dict)
                or str(data.get('ResponseCode')) != '0'
                or not data.get('CheckoutRequestID')):
            raise self._error(response, data)
        return PaymentRequest(reference, data['CheckoutRequestID'], raw=data)

    @staticmethod
    def state(result_code):
        code = _text(result_code).strip()
        if code == '0':
            return PAID
        if code in {'1037', '1019'}:   # no answer from the phone, expired
            return EXPIRED
        return FAILED

    def query_status(self, reference, provider_id=None):
        if not provider_id:
            raise InvalidRequest(self.provider,
                "the status query needs the CheckoutRequestID")
        timestamp = self.timestamp()
        body = {
            'BusinessShortCode': str(self.credentials['shortcode']),
            'Password': self.password(timestamp),
            'Timestamp': timestamp,
            'CheckoutRequestID': provider_id,
            }
        response, data = self._post('/mpesa/stkpushquery/v1/query', body)
        data = data if isinstance(data, dict) else {}
        if (data.get('errorCode') == self.PROCESSING
                and 'process' in _text(data.get('errorMessage')).lower()):
            return Notification(reference, PENDING, None, 'KES', provider_id,
                provider_status=self.PROCESSING,
                message=data.get('errorMessage', ''), raw=data)
        if (response.status_code != 200 or 'ResultCode' not in data
                or str(data.get('ResponseCode', '0')) != '0'):
            raise self._error(response, data)
        return Notification(reference, self.state(data['ResultCode']), None,
            'KES', data.get('CheckoutRequestID') or provider_id,
            provider_status=_text(data['ResultCode']),
            message=data.get('ResultDesc') or '', raw=data)

    # -- callbacks
    @staticmethod
    def _url_query(url):
        if not url:
            return {}
        url = _text(url)
        query = urllib.parse.urlsplit(url).query if '?' in url else url
        return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))

    def _callback(self, body):
        data = _json_body(body, self.provider)
        callback = (data.get('Body') or {}).get('stkCallback') if isinstance(
            data.get('Body'), dict) else None
        if (not isinstance(callback, dict)
                or not _string(callback.get('CheckoutRequestID'))
                or not isinstance(callback.get('ResultCode'), int | str)):
            raise NotificationError(self.provider,
                "Body.stkCallback with CheckoutRequestID and ResultCode "
                "is missing")
        return data, callback

    def verify_notification(self, headers, body, url=None):
        """The token of the callback URL matches its reference (it says the
        URL came from us, nothing about the body: the Tryton side binds the
        body's CheckoutRequestID to the payment and confirms its outcome
        with a status query)."""
        query = self._url_query(url)
        reference, token = query.get('reference'), query.get('token')
        return bool(reference) and _same(
            token, self.callback_token(reference))

    def parse_notification(self, headers, body, url=None):
        data, callback = self._callback(body)
        metadata = callback.get('CallbackMetadata')
        items = metadata.get('Item') if isinstance(metadata, dict) else None
        metadata = {i.get('Name'): i.get('Value')
            for i in items if isinstance(i, dict)
            and isinstance(i.get('Name'), str)} if isinstance(
                items, list) else {}
        result = _text(callback['ResultCode'])
        state = self.state(result)
        receipt = metadata.get('MpesaReceiptNumber')
        return Notification(
            reference=self._url_query(url).get('reference'),
            state=state,
            amount=_decimal(metadata.get('Amount'), self.provider),
            currency='KES',
            provider_id=callback['CheckoutRequestID'],
            provider_status=result,
            message=_text(callback.get('ResultDesc')),
            raw=data,
            receipt=receipt if state == PAID and isinstance(receipt, str)
            else '')

    def answer(self, status=200, reason=''):
        if 200 <= status < 300:
            payload = {'ResultCode': 0, 'ResultDesc': 'Accepted'}
        else:
            payload = {'ResultCode': 1, 'ResultDesc': reason or 'Rejected'}
        return HTTPAnswer(status, 'application/json',
            json.dumps(payload).encode())


ADAPTERS = {
    'midtrans': MidtransAdapter,
    'xendit': XenditAdapter,
    'duitku': DuitkuAdapter,
    'mpesa': MpesaAdapter,
    }


def get_adapter(provider, *args, **kwargs):
    "The adapter of `provider` ('midtrans', 'xendit', 'duitku', 'mpesa')"
    try:
        cls = ADAPTERS[provider]
    except KeyError:
        raise InvalidRequest(provider, "unknown gateway") from None
    return cls(*args, **kwargs)
