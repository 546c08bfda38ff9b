# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Message providers' wire protocols and the template renderer.

Plain Python, no ORM: each adapter turns "send this text to this address"
into the provider's documented HTTP (or SMTP) request and classifies the
answer, so the models decide what to do with it:

- ``sent``: accepted, with the provider's message id;
- ``recipient``: the message itself cannot be delivered (invalid number,
  address refused): no other provider will do better, it fails at once;
- ``provider``: this provider failed (down, time-out, bad credentials,
  5xx): try another one, then retry later;
- ``rate_limited``: the provider refused because of its rate (HTTP 429 or
  its rate-limit codes): pause it and try another one.

Credentials go in headers or bodies, never into the answers, reasons or
logs kept here.  Webhook parsers return plain dicts for the models.
"""
import hashlib
import hmac
import json
import re
import smtplib
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import requests

SENT = 'sent'
RECIPIENT = 'recipient'
PROVIDER = 'provider'
RATE_LIMITED = 'rate_limited'

ANSWER_LIMIT = 2000
USER_AGENT = 'isp-suite-notify/8.0'


@dataclass
class SendResult:
    "What a provider answered to one message"
    outcome: str
    message_id: str | None = None
    answer: str | None = None
    reason: str | None = None
    http_status: int | None = None
    retry_after: int | None = None
    duration: int | None = None


class TemplateError(ValueError):
    "A template cannot be rendered; `reason` says why"

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


# -- template rendering -------------------------------------------------------

_FORMATTER = string.Formatter()


def template_fields(text):
    """Return the placeholder names used in `text` (str.format syntax).

    Only plain names are allowed: no positional fields, attribute or index
    access, conversions or nested fields, so staff-edited templates cannot
    reach anything but the values they are given.
    """
    names = []
    try:
        parsed = list(_FORMATTER.parse(text or ''))
    except ValueError as exception:
        raise TemplateError(str(exception)) from exception
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise TemplateError(
                "{%s} is not a plain placeholder name" % name)
        if conversion is not None or (spec and '{' in spec):
            raise TemplateError(
                "{%s} may not use conversions or nested fields" % name)
        names.append(name)
    return names


def render(text, values, strict=False):
    """Render `text` with `values` (a dict of names to values).

    Missing values render empty and a value that does not fit its format
    spec renders as plain text, unless `strict` (used at save time), where
    both raise TemplateError.
    """
    template_fields(text)
    result = []
    for literal, name, spec, _ in _FORMATTER.parse(text or ''):
        result.append(literal)
        if name is None:
            continue
        if name not in values:
            if strict:
                raise TemplateError("{%s} is not a known value" % name)
            continue
        value = values[name]
        if value is None:
            value = ''
        try:
            result.append(format(value, spec or ''))
        except (ValueError, TypeError) as exception:
            if strict:
                raise TemplateError(
                    "{%s:%s}: %s" % (name, spec, exception)) from exception
            result.append(str(value))
    return ''.join(result)


# -- HTTP helpers -------------------------------------------------------------

_local = threading.local()


def session():
    "A requests session per thread: keeps connections to the providers open"
    if getattr(_local, 'session', None) is None:
        _local.session = requests.Session()
        _local.session.headers['User-Agent'] = USER_AGENT
    return _local.session


def _answer(response):
    return (response.text or '')[:ANSWER_LIMIT]


def _json(response):
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response, default=60):
    value = response.headers.get('Retry-After')
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def digits(number):
    "An E.164 number without its '+', as most gateways want it"
    return str(number or '').lstrip('+')


def same_secret(given, expected):
    """Compare a secret received from outside with the stored one in
    constant time; any text (non-ASCII included) is compared as UTF-8
    bytes, and an empty or missing one never matches."""
    if not (isinstance(given, str) and isinstance(expected, str)
            and given and expected):
        return False
    return hmac.compare_digest(
        given.encode('utf-8', 'surrogatepass'),
        expected.encode('utf-8', 'surrogatepass'))


#: The longest text kept of a callback's values (Text fields excepted).
CALLBACK_VALUE_LIMIT = 512
CALLBACK_TEXT_LIMIT = 65536


def clean_text(value, limit=CALLBACK_VALUE_LIMIT):
    """A value read from a callback as text fit to store: None for what
    is not a string or a number, without NUL characters, cut to `limit`"""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.replace('\x00', '\ufffd')[:limit]


def clean_callback(inbound, statuses):
    """The parsers' results with every value made plain text (providers'
    JSON may hold numbers, lists or NULs where text is expected)"""
    def clean(item):
        return {k: clean_text(v, CALLBACK_TEXT_LIMIT if k == 'text'
                else CALLBACK_VALUE_LIMIT) for k, v in item.items()}
    return [clean(i) for i in inbound], [clean(s) for s in statuses]


#: The shortest start of a credential masked where it is found.
SECRET_PREFIX = 6


def redact_secrets(text, secrets):
    """`text` without the `secrets` (the provider's credentials): each one,
    as it is or URL-encoded, and any word starting with its first
    SECRET_PREFIX characters (providers echo truncated keys), becomes ***"""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, urllib.parse.quote(secret, safe='')}:
            text = text.replace(form, '***')
            if len(form) >= SECRET_PREFIX:
                text = re.sub(
                    re.escape(form[:SECRET_PREFIX]) + r'\S*', '***', text)
    return text


class Adapter:
    "Base adapter: subclasses implement `_send` and the webhook parsers"
    channel = None
    default_base_url = None

    def __init__(self, base_url=None, token=None, account=None,
            sender=None, timeout=10, secrets=()):
        self.base_url = (base_url or self.default_base_url or '').rstrip('/')
        self.token = token
        self.account = account
        self.sender = sender
        self.timeout = timeout or 10
        #: the credentials never to keep in answers, reasons or logs
        self.secrets = tuple(s for s in secrets if s)

    def _redact(self, result):
        "The result without the provider's credentials"
        result.reason = redact_secrets(result.reason, self.secrets)
        result.answer = redact_secrets(result.answer, self.secrets)
        return result

    def send(self, to, body, subject=None, template=None):
        """Send `body` to `to` and return a SendResult (never raises for
        network or provider errors)."""
        start = time.monotonic()
        try:
            result = self._send(to, body, subject=subject, template=template)
        except requests.Timeout:
            result = SendResult(PROVIDER, reason="time-out after %ss"
                % self.timeout)
        except requests.ConnectionError as exception:
            result = SendResult(PROVIDER, reason="connection failed: %s"
                % type(exception).__name__)
        except requests.RequestException as exception:
            result = SendResult(PROVIDER, reason="request failed: %s"
                % type(exception).__name__)
        result.duration = int((time.monotonic() - start) * 1000)
        return self._redact(result)

    def _send(self, to, body, subject=None, template=None):
        raise NotImplementedError

    def _post(self, url, **kwargs):
        kwargs.setdefault('timeout', self.timeout)
        return session().post(url, **kwargs)

    @classmethod
    def parse_callback(cls, data):
        """Return (inbound, statuses) from a callback's decoded `data`.

        inbound: dicts with id, sender (E.164), text, name, timestamp;
        statuses: dicts with id, status (sent, delivered, read, failed),
        reason, timestamp.
        """
        return [], []


# -- Meta WhatsApp Cloud API --------------------------------------------------

# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
META_RATE_CODES = {4, 80007, 130429, 131048, 131056}
META_RECIPIENT_CODES = {100, 131008, 131009, 131021, 131026, 131051}


class MetaWhatsApp(Adapter):
    """WhatsApp Cloud API: POST {base}/{phone_number_id}/messages with a
    Bearer token; `account` is the phone number id."""
    channel = 'whatsapp'
    default_base_url = 'https://graph.facebook.com/v21.0'

    def _payload(self, to, body, template=None):
        payload = {
            'messaging_product': 'whatsapp',
            'recipient_type': 'individual',
            'to': digits(to),
            }
        if template:
            name, language, parameters = template
            payload['type'] = 'template'
            payload['template'] = {
                'name': name,
                'language': {'code': language},
                'components': [{
                        'type': 'body',
                        'parameters': [
                            {'type': 'text', 'text': str(p)}
                            for p in parameters],
                        }],
                }
        else:
            payload['type'] = 'text'
            payload['text'] = {'preview_url': False, 'body': body}
        return payload

    def _send(self, to, body, subject=None, template=None):
        response = self._post(
            '%s/%s/messages' % (self.base_url, self.account),
            json=self._payload(to, body, template=template),
            headers={'Authorization': 'Bearer %s' % self.token})
        data = _json(response) or {}
        answer = _answer(response)
        if response.status_code == 200 and data.get('messages'):
            return SendResult(SENT, message_id=data['messages'][0].get('id'),
                answer=answer, http_status=200)
        error = data.get('error') or {}
        code = error.get('code')
        reason = error.get('message') or (
            "HTTP %s" % response.status_code)
        if response.status_code == 429 or code in META_RATE_CODES:
            return SendResult(RATE_LIMITED, answer=answer, reason=reason,
                http_status=response.status_code,
                retry_after=_retry_after(response))
        if code in META_RECIPIENT_CODES:
            return SendResult(RECIPIENT, answer=answer, reason=reason,
                http_status=response.status_code)
        return SendResult(PROVIDER, answer=answer, reason=reason,
            http_status=response.status_code)

    @staticmethod
    def check_signature(body, header, secret):
        "Check X-Hub-Signature-256: sha256=HMAC-SHA256(app secret, body)"
        if not (secret and header and header.startswith('sha256=')):
            return False
        expected = hmac.new(
            secret.encode(), body, hashlib.sha256).hexdigest()
        return same_secret(header[len('sha256='):], expected)

    @classmethod
    def parse_callback(cls, data):
        inbound, statuses = [], []
        for entry in (data or {}).get('entry') or []:
            for change in entry.get('changes') or []:
                value = change.get('value') or {}
                names = {
                    c.get('wa_id'): (c.get('profile') or {}).get('name')
                    for c in value.get('contacts') or []}
                for message in value.get('messages') or []:
                    kind = message.get('type')
                    if kind == 'text':
                        text = (message.get('text') or {}).get('body')
                    elif kind == 'button':
                        text = (message.get('button') or {}).get('text')
                    else:
                        text = '[%s]' % kind
                    inbound.append({
                            'id': message.get('id'),
                            'sender': '+' + digits(message.get('from')),
                            'text': text or '',
                            'name': names.get(message.get('from')),
                            'timestamp': message.get('timestamp'),
                            })
                for status in value.get('statuses') or []:
                    errors = status.get('errors') or []
                    statuses.append({
                            'id': status.get('id'),
                            'status': status.get('status'),
                            'reason': '; '.join(
                                '(#%s) %s' % (e.get('code'),
                                    e.get('title') or e.get('message'))
                                for e in errors) or None,
                            'timestamp': status.get('timestamp'),
                            })
        return inbound, statuses


# -- Token gateways (Fonnte style) --------------------------------------------

TOKEN_RECIPIENT_REASONS = ('target invalid', 'invalid target',
    'number not registered', 'not registered on whatsapp', 'invalid number')
TOKEN_STATUS = {
    'sent': 'sent', 'delivered': 'delivered', 'read': 'read',
    'failed': 'failed', 'invalid': 'failed', 'expired': 'failed',
    }


class TokenWhatsApp(Adapter):
    """Indonesian token gateways (Fonnte): POST {base}/send with the device
    token in the Authorization header and form data target, message."""
    channel = 'whatsapp'
    default_base_url = 'https://api.fonnte.com'

    def _send(self, to, body, subject=None, template=None):
        response = self._post(
            self.base_url + '/send',
            data={'target': digits(to), 'message': body, 'countryCode': '0'},
            headers={'Authorization': self.token or ''})
        data = _json(response) or {}
        answer = _answer(response)
        if response.status_code == 429:
            return SendResult(RATE_LIMITED, answer=answer,
                reason=data.get('reason') or "HTTP 429", http_status=429,
                retry_after=_retry_after(response))
        if response.status_code == 200 and data.get('status') is True:
            ids = data.get('id') or []
            if not isinstance(ids, list):
                ids = [ids]
            return SendResult(SENT, message_id=str(ids[0]) if ids else None,
                answer=answer, http_status=200)
        reason = (data.get('reason') or data.get('detail')
            or "HTTP %s" % response.status_code)
        if any(r in reason.lower() for r in TOKEN_RECIPIENT_REASONS):
            return SendResult(RECIPIENT, answer=answer, reason=reason,
                http_status=response.status_code)
        if 'rate' in reason.lower() or 'too many' in reason.lower():
            return SendResult(RATE_LIMITED, answer=answer, reason=reason,
                http_status=response.status_code, retry_after=60)
        return SendResult(PROVIDER, answer=answer, reason=reason,
            http_status=response.status_code)

    @classmethod
    def parse_callback(cls, data):
        "Fonnte posts inbound messages (sender, message) and status updates"
        inbound, statuses = [], []
        if not isinstance(data, dict):
            return inbound, statuses
        if data.get('sender') and 'message' in data:
            inbound.append({
                    'id': data.get('inboxid') or data.get('id'),
                    'sender': '+' + digits(str(data['sender'])),
                    'text': data.get('message') or '',
                    'name': data.get('name'),
                    'timestamp': data.get('timestamp'),
                    })
        elif data.get('id') and (data.get('status') or data.get('state')):
            status = str(data.get('state') or data.get('status')).lower()
            statuses.append({
                    'id': str(data['id']),
                    'status': TOKEN_STATUS.get(status, status),
                    'reason': data.get('reason'),
                    'timestamp': None,
                    })
        return inbound, statuses


# -- Africa's Talking SMS -----------------------------------------------------

# https://developers.africastalking.com/docs/sms/sending/bulk
AT_SENT_CODES = {100, 101, 102}
AT_RECIPIENT_CODES = {403, 404, 406, 409}
AT_STATUS = {
    'Success': 'delivered', 'Sent': 'sent', 'Submitted': 'sent',
    'Buffered': 'sent', 'Rejected': 'failed', 'Failed': 'failed',
    'AbsentSubscriber': 'failed', 'Expired': 'failed',
    }


class AfricasTalkingSMS(Adapter):
    """Africa's Talking bulk SMS: POST {base}/version1/messaging with the
    apiKey header and form data username, to, message[, from]."""
    channel = 'sms'
    default_base_url = 'https://api.africastalking.com'

    def _send(self, to, body, subject=None, template=None):
        data = {'username': self.account or '', 'to': to, 'message': body}
        if self.sender:
            data['from'] = self.sender
        response = self._post(
            self.base_url + '/version1/messaging', data=data,
            headers={'apiKey': self.token or '',
                'Accept': 'application/json'})
        answer = _answer(response)
        if response.status_code == 429:
            return SendResult(RATE_LIMITED, answer=answer, reason="HTTP 429",
                http_status=429, retry_after=_retry_after(response))
        payload = _json(response)
        if response.status_code not in {200, 201} or not payload:
            return SendResult(PROVIDER, answer=answer,
                reason=(response.text or '').strip()[:200]
                or "HTTP %s" % response.status_code,
                http_status=response.status_code)
        sms = payload.get('SMSMessageData') or {}
        recipients = sms.get('Recipients') or []
        if not recipients:
            reason = sms.get('Message') or "no recipient accepted"
            outcome = RECIPIENT if 'invalid' in reason.lower() else PROVIDER
            return SendResult(outcome, answer=answer, reason=reason,
                http_status=response.status_code)
        recipient = recipients[0]
        code = recipient.get('statusCode')
        if code in AT_SENT_CODES:
            return SendResult(SENT, message_id=recipient.get('messageId'),
                answer=answer, http_status=response.status_code)
        reason = '%s (%s)' % (recipient.get('status'), code)
        outcome = RECIPIENT if code in AT_RECIPIENT_CODES else PROVIDER
        return SendResult(outcome, answer=answer, reason=reason,
            http_status=response.status_code)

    @classmethod
    def parse_callback(cls, data):
        "Delivery reports (id, status) and incoming SMS (from, text)"
        inbound, statuses = [], []
        if not isinstance(data, dict):
            return inbound, statuses
        if data.get('from') and 'text' in data:
            inbound.append({
                    'id': data.get('id'),
                    'sender': data['from'],
                    'text': data.get('text') or '',
                    'name': None,
                    'timestamp': None,
                    })
        elif data.get('id') and data.get('status'):
            statuses.append({
                    'id': data['id'],
                    'status': AT_STATUS.get(data['status'], 'sent'),
                    'reason': data.get('failureReason') or None,
                    'timestamp': None,
                    })
        return inbound, statuses


# -- E-mail through Tryton's SMTP ---------------------------------------------

class Email(Adapter):
    """E-mail through trytond.sendmail: `base_url` is an SMTP URI
    (smtp://, smtps://, smtp+tls://; empty: the server's [email] uri) and
    `sender` the From address (empty: [email] from)."""
    channel = 'email'

    def send(self, to, body, subject=None, template=None):
        import trytond.config as config
        from trytond.sendmail import get_smtp_server, send_message
        start = time.monotonic()
        message = EmailMessage()
        sender = self.sender or config.get('email', 'from')
        message['From'] = sender
        message['To'] = to
        message['Subject'] = subject or ''
        message['Message-ID'] = make_msgid(
            domain=(sender or '').rpartition('@')[2].strip('>') or 'isp')
        message.set_content(body)
        uri = self.base_url or config.get('email', 'uri')
        if self.timeout and uri and 'timeout=' not in uri:
            uri += ('&' if '?' in uri else '?') + 'timeout=%d' % self.timeout
        try:
            server = get_smtp_server(uri, strict=True)
            try:
                send_message(message, server=server, strict=True)
            finally:
                try:
                    server.quit()
                except smtplib.SMTPException:
                    pass
        except smtplib.SMTPRecipientsRefused as exception:
            codes = [c for c, _ in exception.recipients.values()]
            outcome = (RECIPIENT if codes and all(c >= 500 for c in codes)
                else PROVIDER)
            result = SendResult(outcome, reason='; '.join(
                    '%s %s' % (c, m.decode(errors='replace'))
                    for c, m in exception.recipients.values()))
        except smtplib.SMTPResponseException as exception:
            result = SendResult(PROVIDER, reason='%s %s' % (
                    exception.smtp_code,
                    exception.smtp_error.decode(errors='replace')
                    if isinstance(exception.smtp_error, bytes)
                    else exception.smtp_error))
        except (smtplib.SMTPException, OSError) as exception:
            result = SendResult(PROVIDER, reason="SMTP failed: %s"
                % type(exception).__name__)
        else:
            result = SendResult(SENT, message_id=message['Message-ID'],
                answer="250 accepted")
        result.duration = int((time.monotonic() - start) * 1000)
        return self._redact(result)


ADAPTERS = {
    'whatsapp_meta': MetaWhatsApp,
    'whatsapp_token': TokenWhatsApp,
    'sms_africastalking': AfricasTalkingSMS,
    'email': Email,
    }


def parse_body(content_type, body):
    "Decode a callback body: JSON, or URL-encoded form fields"
    if content_type and 'json' in content_type:
        try:
            return json.loads(body or b'{}')
        except (ValueError, RecursionError):
            # RecursionError: nested deeper than the interpreter allows
            return None
    try:
        text = (body or b'').decode('utf-8')
    except UnicodeDecodeError:
        return None
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
