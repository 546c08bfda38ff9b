# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fake message providers on loopback (pure standard library).

They stand in for the real providers in the tests, the benchmark and the
demo, and speak the providers' documented requests and answers:

- ``FakeMeta``: WhatsApp Cloud API, ``POST /v{version}/{phone_number_id}/
  messages`` with ``Authorization: Bearer <token>`` and a JSON body, answering
  ``{"messages": [{"id": "wamid..."}]}`` or Graph errors
  ``{"error": {"message", "type", "code", "fbtrace_id"}}``; it can post
  signed status webhooks (``X-Hub-Signature-256``) back to the product;
- ``FakeFonnte``: token gateway, ``POST /send`` with ``Authorization: <token>``
  and form data ``target``, ``message``, answering ``{"status": true,
  "id": [...]}`` or ``{"status": false, "reason": ...}`` (with HTTP 200, as
  Fonnte does);
- ``FakeAfricasTalking``: ``POST /version1/messaging`` with the ``apiKey``
  header and form data ``username``, ``to``, ``message``, answering 201
  ``{"SMSMessageData": {"Message", "Recipients": [{statusCode, number,
  status, cost, messageId}]}}``;
- ``FakeSMTP``: a minimal SMTP server (EHLO, MAIL, RCPT, DATA, QUIT).

Each records every request and can be told to fail (HTTP 5xx or SMTP 451),
time out (answer 504 after a delay, sending nothing) or rate-limit (HTTP 429
with Retry-After), for the next N requests or until cleared, and to refuse
numbers::

    from tools.fake_messaging import FakeMeta

    with FakeMeta(token='T', phone_number_id='1055') as meta:
        meta.fail(2)                 # the next two requests answer 500
        meta.rate_limit(1, retry_after=30)
        meta.time_out(1, seconds=3)
        meta.invalid_numbers.add('6281200000000')
        ...
        meta.messages                # accepted messages: to, text, id

Command line (the demo)::

    python -m tools.fake_messaging --meta-port 18501 --fonnte-port 18502 \\
        --africastalking-port 18503 --smtp-port 18525

Each HTTP fake also answers ``GET /_fake/requests`` (the recorded requests
as JSON) and ``POST /_fake/fault`` (``{"kind": "error"|"timeout"|
"rate_limit"|"clear", "count": n, ...}``) to be driven from another process.
"""
import argparse
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import signal
import socketserver
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tools.fakehttp import LoopbackService

__all__ = [
    'FakeAfricasTalking', 'FakeFonnte', 'FakeMeta', 'FakeSMTP',
    'meta_inbound_payload', 'meta_signature', 'meta_status_payload',
    'post_webhook', 'main',
]

E164_DIGITS = re.compile(r'^\d{8,15}$')


@dataclass
class Recorded:
    "One request as the fake received it"
    method: str
    path: str
    headers: dict
    body: bytes
    at: float
    data: dict | None = None
    answer: int | None = None


@dataclass
class Fault:
    kind: str
    status: int = 500
    seconds: float = 0
    retry_after: int = 60
    extra: dict = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'FakeProvider/1.0'
    # headers and body go in separate writes: without this, Nagle's
    # algorithm and the client's delayed ACK add 40 ms to every answer
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _reply(self, status, body, content_type='application/json',
            headers=None):
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        fake = self.server.fake
        if self.path.startswith('/_fake/requests'):
            self._reply(200, [{
                        'method': r.method, 'path': r.path, 'at': r.at,
                        'data': r.data, 'answer': r.answer}
                    for r in fake.requests])
        else:
            self._reply(404, {'error': 'not found'})

    def do_POST(self):
        fake = self.server.fake
        body = self._body()
        if self.path == '/_fake/fault':
            fake.control(json.loads(body or b'{}'))
            self._reply(200, {'ok': True})
            return
        record = Recorded(self.command, self.path, dict(self.headers), body,
            time.time())
        with fake.lock:
            fake.requests.append(record)
        fault = fake.next_fault()
        if fault and fault.kind == 'timeout':
            # a hung upstream: the client gives up first, nothing is sent
            time.sleep(fault.seconds)
            fault = Fault('error', status=504)
        if fault:
            status, answer, headers = fake.fault_answer(fault)
        else:
            status, answer, headers = fake.handle(record)
        record.answer = status
        content_type = 'application/json'
        if isinstance(answer, str):
            content_type = 'text/plain'
            if answer.lstrip().startswith('<'):
                content_type = 'text/html'
        try:
            self._reply(status, answer, content_type=content_type,
                headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FakeHTTPProvider(LoopbackService):
    "Base of the HTTP fakes: a threaded server on loopback"
    name = 'fake'
    handler_class = _Handler

    def __init__(self, host='127.0.0.1', port=0):
        self.host = host
        self.port = port
        self.requests = []
        self.messages = []
        self.invalid_numbers = set()
        self.lock = threading.Lock()
        self._faults = deque()
        self._sticky = None
        self._server = None
        self._thread = None
        self._ids = itertools.count(1)

    # -- faults
    def fail(self, count=1, status=500):
        "Answer the next `count` requests with an HTTP error (None: always)"
        self._add(Fault('error', status=status), count)

    def time_out(self, count=1, seconds=2.0):
        "Answer the next `count` requests only after `seconds`"
        self._add(Fault('timeout', seconds=seconds), count)

    def rate_limit(self, count=1, retry_after=60):
        "Answer the next `count` requests with HTTP 429"
        self._add(Fault('rate_limit', status=429, retry_after=retry_after),
            count)

    def clear_faults(self):
        with self.lock:
            self._faults.clear()
            self._sticky = None

    def _add(self, fault, count):
        with self.lock:
            if count is None:
                self._sticky = fault
            else:
                self._faults.extend([fault] * count)

    def next_fault(self):
        with self.lock:
            if self._faults:
                return self._faults.popleft()
            return self._sticky

    def control(self, command):
        kind = command.get('kind')
        count = command.get('count', 1)
        if kind == 'clear':
            self.clear_faults()
        elif kind == 'error':
            self.fail(count, status=command.get('status', 500))
        elif kind == 'timeout':
            self.time_out(count, seconds=command.get('seconds', 2.0))
        elif kind == 'rate_limit':
            self.rate_limit(count, retry_after=command.get('retry_after', 60))
        if 'invalid_numbers' in command:
            self.invalid_numbers = set(command['invalid_numbers'])

    def reset(self):
        "Forget the recorded requests and the faults"
        with self.lock:
            self.requests.clear()
            self.messages.clear()
        self.clear_faults()

    def _accept(self, to, text, message_id):
        with self.lock:
            self.messages.append({'to': to, 'text': text, 'id': message_id,
                    'at': time.time()})

    # -- provider specific
    def handle(self, record):
        raise NotImplementedError

    def fault_answer(self, fault):
        raise NotImplementedError


def _form(record):
    content_type = record.headers.get('Content-Type', '')
    if 'json' in content_type:
        try:
            return json.loads(record.body or b'{}')
        except ValueError:
            return {}
    return dict(urllib.parse.parse_qsl(record.body.decode()))


def _trace_id():
    return base64.urlsafe_b64encode(secrets.token_bytes(9)).decode()


class FakeMeta(FakeHTTPProvider):
    """WhatsApp Cloud API (Graph) for one phone number id.

    With `webhook_url` and `app_secret` set, every accepted message is
    followed by signed 'sent' and 'delivered' status webhooks, as Meta does.
    """
    name = 'meta'
    PATH = re.compile(r'^/v(\d+\.\d+)/([^/]+)/messages$')

    def __init__(self, token='meta-token', phone_number_id='1055000001',
            webhook_url=None, app_secret=None, **kwargs):
        super().__init__(**kwargs)
        self.token = token
        self.phone_number_id = phone_number_id
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.webhooks = []

    @staticmethod
    def error(status, code, message, kind='OAuthException', details=None):
        error = {'message': message, 'type': kind, 'code': code,
            'fbtrace_id': _trace_id()}
        if details:
            error['error_data'] = {
                'messaging_product': 'whatsapp', 'details': details}
        return status, {'error': error}, {}

    def fault_answer(self, fault):
        if fault.kind == 'rate_limit':
            status, body, _ = self.error(429, 130429,
                "(#130429) Rate limit hit",
                details="Cloud API message throughput has been reached.")
            return status, body, {'Retry-After': fault.retry_after}
        return self.error(fault.status, 1, "An unknown error has occurred.")

    def handle(self, record):
        match = self.PATH.match(urllib.parse.urlsplit(record.path).path)
        if not match:
            return self.error(404, 100, "Unknown path components")
        if match.group(2) != self.phone_number_id:
            return self.error(400, 100, "Unsupported post request. Object "
                "with ID '%s' does not exist" % match.group(2),
                kind='GraphMethodException')
        auth = record.headers.get('Authorization', '')
        if auth != 'Bearer %s' % self.token:
            return self.error(401, 190,
                "Invalid OAuth access token - Cannot parse access token")
        try:
            data = json.loads(record.body or b'{}')
        except ValueError:
            return self.error(400, 100, "(#100) Invalid parameter")
        record.data = data
        to = str(data.get('to') or '').lstrip('+')
        kind = data.get('type', 'text')
        if data.get('messaging_product') != 'whatsapp':
            return self.error(400, 100, "(#100) The parameter "
                "messaging_product is required.")
        if not E164_DIGITS.match(to):
            return self.error(400, 100, "(#100) Invalid parameter",
                details="Invalid 'to' parameter.")
        if kind == 'text':
            text = (data.get('text') or {}).get('body')
        elif kind == 'template':
            template = data.get('template') or {}
            text = 'template:%s' % template.get('name')
        else:
            text = None
        if not text:
            return self.error(400, 131008, "(#131008) Required parameter "
                "is missing")
        if to in self.invalid_numbers:
            return self.error(400, 131026, "(#131026) Message Undeliverable.",
                details="Message Undeliverable.")
        message_id = 'wamid.HBgM%s%06d' % (to, next(self._ids))
        self._accept(to, text, message_id)
        if self.webhook_url and self.app_secret:
            threading.Thread(target=self._statuses, args=(message_id, to),
                daemon=True).start()
        return 200, {
            'messaging_product': 'whatsapp',
            'contacts': [{'input': data.get('to'), 'wa_id': to}],
            'messages': [{'id': message_id}],
            }, {}

    def _statuses(self, message_id, to):
        for status in ['sent', 'delivered']:
            payload = meta_status_payload(
                self.phone_number_id, message_id, to, status)
            try:
                self.webhooks.append(post_webhook(
                        self.webhook_url, payload, self.app_secret))
            except OSError as exception:
                self.webhooks.append(str(exception))


class FakeFonnte(FakeHTTPProvider):
    "Fonnte-style token gateway for one device token"
    name = 'fonnte'

    def __init__(self, token='fonnte-token', **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def fault_answer(self, fault):
        if fault.kind == 'rate_limit':
            return 429, {'reason': 'rate limit exceeded', 'status': False}, {
                'Retry-After': fault.retry_after}
        return fault.status, ('<html><head><title>%d Bad Gateway</title>'
            '</head><body>nginx</body></html>' % fault.status), {}

    def handle(self, record):
        if urllib.parse.urlsplit(record.path).path != '/send':
            return 404, {'reason': 'not found', 'status': False}, {}
        if record.headers.get('Authorization') != self.token:
            return 200, {'reason': 'invalid token', 'status': False}, {}
        data = _form(record)
        record.data = data
        targets = [t.strip().lstrip('+')
            for t in str(data.get('target') or '').split(',') if t.strip()]
        message = data.get('message')
        if not targets or not message:
            return 200, {'reason': 'input invalid', 'status': False}, {}
        if any(not E164_DIGITS.match(t) or t in self.invalid_numbers
                for t in targets):
            return 200, {'reason': 'target invalid', 'status': False}, {}
        ids = []
        for target in targets:
            message_id = str(80000000 + next(self._ids))
            ids.append(message_id)
            self._accept(target, message, message_id)
        return 200, {
            'detail': 'success! message in queue',
            'id': ids,
            'process': 'pending',
            'requestid': next(self._ids),
            'status': True,
            'target': targets,
            }, {}


class FakeAfricasTalking(FakeHTTPProvider):
    "Africa's Talking SMS API for one username and API key"
    name = 'africastalking'

    def __init__(self, username='sandbox', api_key='at-key', **kwargs):
        super().__init__(**kwargs)
        self.username = username
        self.api_key = api_key

    def fault_answer(self, fault):
        if fault.kind == 'rate_limit':
            return 429, 'Too Many Requests', {
                'Retry-After': fault.retry_after}
        return fault.status, 'Internal Server Error', {}

    def handle(self, record):
        if urllib.parse.urlsplit(record.path).path != '/version1/messaging':
            return 404, 'Not Found', {}
        data = _form(record)
        record.data = data
        if (record.headers.get('apiKey') != self.api_key
                or data.get('username') != self.username):
            return 401, 'The supplied authentication is invalid', {}
        if not data.get('to') or not data.get('message'):
            return 400, 'Request is missing required form field', {}
        recipients = []
        for number in data['to'].split(','):
            number = number.strip()
            digits = number.lstrip('+')
            if (not number.startswith('+') or not E164_DIGITS.match(digits)
                    or digits in self.invalid_numbers):
                recipients.append({'statusCode': 403, 'number': number,
                        'status': 'InvalidPhoneNumber', 'cost': '0',
                        'messageId': 'None'})
                continue
            message_id = 'ATXid_%s' % secrets.token_hex(12)
            self._accept(number, data['message'], message_id)
            recipients.append({'statusCode': 101, 'number': number,
                    'status': 'Success', 'cost': 'KES 0.8000',
                    'messageId': message_id})
        sent = sum(r['statusCode'] == 101 for r in recipients)
        return 201, {'SMSMessageData': {
                'Message': 'Sent to %d/%d Total Cost: KES %.4f' % (
                    sent, len(recipients), 0.8 * sent),
                'Recipients': recipients}}, {}


# -- SMTP ---------------------------------------------------------------------

class _SMTPHandler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True

    def _send(self, line):
        self.wfile.write((line + '\r\n').encode())

    def handle(self):
        fake = self.server.fake
        self._send('220 fake.smtp ESMTP ready')
        sender, recipients = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode(errors='replace').strip()
            verb = command.split(' ', 1)[0].upper()
            if verb in {'EHLO', 'HELO'}:
                self._send('250-fake.smtp' if verb == 'EHLO'
                    else '250 fake.smtp')
                if verb == 'EHLO':
                    self._send('250 8BITMIME')
            elif verb == 'MAIL':
                fault = fake.next_fault()
                if fault and fault.kind == 'timeout':
                    time.sleep(fault.seconds)
                elif fault:
                    self._send('451 4.3.0 Temporary local problem')
                    continue
                sender, recipients = command[10:].strip('<> '), []
                self._send('250 2.1.0 Ok')
            elif verb == 'RCPT':
                address = command[8:].strip('<> ')
                if address in fake.invalid_numbers:
                    self._send('550 5.1.1 <%s>: Recipient address rejected: '
                        'User unknown' % address)
                else:
                    recipients.append(address)
                    self._send('250 2.1.5 Ok')
            elif verb == 'DATA':
                self._send('354 End data with <CR><LF>.<CR><LF>')
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data or data in {b'.\r\n', b'.\n'}:
                        break
                    lines.append(data[1:] if data.startswith(b'..')
                        else data)
                message_id = 'fake-%d' % next(fake._ids)
                body = b''.join(lines)
                with fake.lock:
                    fake.requests.append(Recorded('DATA', '', {}, body,
                            time.time(), {'from': sender,
                                'to': list(recipients)}, 250))
                for recipient in recipients:
                    fake._accept(recipient, body.decode(errors='replace'),
                        message_id)
                self._send('250 2.0.0 Ok: queued as %s' % message_id)
            elif verb in {'RSET', 'NOOP'}:
                self._send('250 2.0.0 Ok')
            elif verb == 'QUIT':
                self._send('221 2.0.0 Bye')
                return
            else:
                self._send('502 5.5.2 Error: command not recognized')


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeSMTP(FakeHTTPProvider):
    """A minimal SMTP server; `invalid_numbers` holds refused addresses and
    `fail()` answers 451 to the next MAIL commands."""
    name = 'smtp'

    def start(self):
        self._server = _SMTPServer((self.host, self.port), _SMTPHandler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        return 'smtp://%s:%d' % (self.host, self.port)


# -- webhooks as the providers send them -----------------------------------

def meta_signature(body, secret):
    "The X-Hub-Signature-256 header of `body`"
    return 'sha256=' + hmac.new(
        secret.encode(), body, hashlib.sha256).hexdigest()


def _meta_envelope(phone_number_id, value):
    return {
        'object': 'whatsapp_business_account',
        'entry': [{
                'id': '102290129340398',
                'changes': [{
                        'value': {
                            'messaging_product': 'whatsapp',
                            'metadata': {
                                'display_phone_number': '15550783881',
                                'phone_number_id': phone_number_id,
                                },
                            **value,
                            },
                        'field': 'messages',
                        }],
                }],
        }


def meta_inbound_payload(phone_number_id, sender, text, name=None,
        message_id=None, timestamp=None):
    "A webhook notifying a text message from `sender` (digits)"
    sender = sender.lstrip('+')
    return _meta_envelope(phone_number_id, {
            'contacts': [{'profile': {'name': name or 'Subscriber'},
                    'wa_id': sender}],
            'messages': [{
                    'from': sender,
                    'id': message_id or 'wamid.IN%s' % secrets.token_hex(8),
                    'timestamp': str(int(timestamp or time.time())),
                    'text': {'body': text},
                    'type': 'text',
                    }],
            })


def meta_status_payload(phone_number_id, message_id, recipient, status,
        error_code=None, error_title=None):
    "A webhook notifying the status of a sent message"
    item = {
        'id': message_id,
        'status': status,
        'timestamp': str(int(time.time())),
        'recipient_id': recipient.lstrip('+'),
        }
    if error_code:
        item['errors'] = [{'code': error_code, 'title': error_title
                or 'Message undeliverable'}]
    return _meta_envelope(phone_number_id, {'statuses': [item]})


def post_webhook(url, payload, app_secret=None, timeout=10):
    """POST `payload` as JSON to `url`, signed like Meta when `app_secret`
    is given; return the HTTP status."""
    body = json.dumps(payload).encode()
    headers = {'Content-Type': 'application/json'}
    if app_secret:
        headers['X-Hub-Signature-256'] = meta_signature(body, app_secret)
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--meta-port', type=int, default=0)
    parser.add_argument('--meta-token', default='meta-token')
    parser.add_argument('--meta-phone-number-id', default='1055000001')
    parser.add_argument('--meta-webhook-url')
    parser.add_argument('--meta-app-secret')
    parser.add_argument('--fonnte-port', type=int, default=0)
    parser.add_argument('--fonnte-token', default='fonnte-token')
    parser.add_argument('--africastalking-port', type=int, default=0)
    parser.add_argument('--africastalking-username', default='sandbox')
    parser.add_argument('--africastalking-key', default='at-key')
    parser.add_argument('--smtp-port', type=int, default=0)
    options = parser.parse_args(argv)
    fakes = [
        FakeMeta(options.meta_token, options.meta_phone_number_id,
            webhook_url=options.meta_webhook_url,
            app_secret=options.meta_app_secret,
            host=options.host, port=options.meta_port),
        FakeFonnte(options.fonnte_token, host=options.host,
            port=options.fonnte_port),
        FakeAfricasTalking(options.africastalking_username,
            options.africastalking_key, host=options.host,
            port=options.africastalking_port),
        FakeSMTP(host=options.host, port=options.smtp_port),
        ]
    # handlers first: a SIGTERM right after the printed lines stops cleanly
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *a: stop.set())
    for fake in fakes:
        fake.start()
        print('name=%s url=%s' % (fake.name, fake.url), flush=True)
    stop.wait()
    for fake in fakes:
        fake.stop()


if __name__ == '__main__':
    main()
