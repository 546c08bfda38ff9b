# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fake payment gateways on loopback (pure standard library).

They stand in for the real gateways in the tests and the demo: each one
serves its provider's documented endpoints with the provider's request
validation and answers, keeps its transactions in memory, serves a minimal
buyer-facing payment page, and sends the provider's callback, in its
documented format and properly signed, to the callback URL:

- ``FakeMidtrans``: Snap ``POST /snap/v1/transactions`` (Basic auth with the
  server key; ``X-Override-Notification`` / ``X-Append-Notification``
  headers), ``GET /v2/{order_id}/status``, HTTP notifications with
  ``signature_key`` = SHA-512(order_id + status_code + gross_amount + server
  key); payment page ``/snap/v4/redirection/{token}``;
- ``FakeXendit``: ``POST /v2/invoices``, ``GET /v2/invoices/{id}``,
  ``GET /v2/invoices?external_id=``, ``POST /callback_urls/invoice`` (Basic
  auth with the secret key); invoice callbacks with the
  ``x-callback-token`` header to the account's callback URL; payment page
  ``/web/{invoice_id}``;
- ``FakeDuitku``: ``POST /webapi/api/merchant/v2/inquiry`` (signature
  MD5(merchantCode + merchantOrderId + paymentAmount + apiKey)),
  ``POST /webapi/api/merchant/transactionStatus`` (MD5(merchantCode +
  merchantOrderId + apiKey)), form-encoded callbacks signed with
  MD5(merchantCode + amount + merchantOrderId + apiKey); payment page
  ``/topup/topupdirectv2.aspx?ref={reference}``;
- ``FakeMpesa``: Daraja ``GET /oauth/v1/generate?grant_type=
  client_credentials`` (Basic consumer key:secret; tokens expire),
  ``POST /mpesa/stkpush/v1/processrequest`` and
  ``POST /mpesa/stkpushquery/v1/query`` (Bearer token, Password =
  base64(shortcode + passkey + timestamp)); ``Body.stkCallback`` callbacks;
  a "phone" page ``/phone/{CheckoutRequestID}`` to accept or cancel the
  prompt.

Driving them from Python::

    from tools.fake_gateways import FakeMidtrans

    with FakeMidtrans(server_key='SB-Mid-server-x') as midtrans:
        ...                           # the adapter creates a payment
        midtrans.pay('INV-1')         # paid; the notification is sent now
        midtrans.notify('INV-1', repeat=5)     # the same one five times
        midtrans.notify('INV-1', repeat=10, concurrent=True)
        midtrans.expire('INV-2')
        midtrans.refund('INV-1')      # Midtrans: refunded after settlement
        midtrans.claim('INV-3', 'paid')   # a signed callback that lies
        midtrans.drop_callbacks(1)    # the next callback is lost
        midtrans.fail_api(2, status=500)       # the next 2 API calls fail
        midtrans.api_delay = 3        # API answers come 3 s late
        midtrans.callback_delay = 1   # callbacks leave 1 s later
        midtrans.callbacks            # every delivery (or drop) made

Each fake also answers ``GET /_fake/transactions``, ``GET /_fake/callbacks``
and ``POST /_fake/control`` with JSON ``{"action": "pay" | "expire" |
"fail" | "claim" | "notify" | "fault" | "delay" | "drop" | "callback_delay" |
"clear" | "config", ...}`` to be driven from another process.

Command line (the demo)::

    python -m tools.fake_gateways --port-base 18600 \\
        [--callback-url URL] [--credentials-file FILE]

starts the four fakes on ports N..N+3 and prints their base URLs and
(fake) credentials; with --credentials-file (JSON by provider, see
`new_credentials`) they use those and print none.  ``GET /_fake/`` on each
lists its payments with links to their buyer pages.
"""
import argparse
import base64
import dataclasses
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler

from tools.fakehttp import LoopbackService

__all__ = [
    'CallbackSink', 'Delivery', 'FakeDuitku', 'FakeGateway', 'FakeMidtrans',
    'FakeMpesa', 'FakeXendit', 'Transaction', 'main', 'new_credentials',
    'start_all',
    ]

PAID, PENDING, FAILED, EXPIRED = 'paid', 'pending', 'failed', 'expired'
REFUNDED = 'refunded'   # Midtrans only: a refund after the settlement
WIB = timezone(timedelta(hours=7), 'WIB')   # Midtrans' times: GMT+7
EAT = timezone(timedelta(hours=3), 'EAT')   # Daraja's times: Nairobi
MSISDN = re.compile(r'^254[17]\d{8}$')


@dataclass
class Recorded:
    "One request as a fake received it"
    method: str
    path: str
    query: dict
    headers: dict          # lower-case names
    body: bytes
    at: float
    status: int | None = None

    def json(self):
        try:
            return json.loads(self.body or b'null')
        except ValueError:
            return None

    def form(self):
        return dict(urllib.parse.parse_qsl(
                self.body.decode('utf-8', 'replace'), keep_blank_values=True))

    @property
    def payload(self):
        "The body decoded: JSON, or form fields"
        if 'json' in self.headers.get('content-type', ''):
            return self.json()
        return self.form()

    def basic_auth(self):
        "(user, password) of a Basic Authorization header, or None"
        value = self.headers.get('authorization', '')
        if not value.startswith('Basic '):
            return None
        try:
            decoded = base64.b64decode(value[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(':')
        return (user, password) if sep else None


@dataclass
class Delivery:
    "One callback the fake sent (or dropped)"
    url: str
    headers: dict
    body: bytes
    at: float
    status: int | None = None
    answer: bytes = b''
    error: str | None = None
    dropped: bool = False

    @property
    def payload(self):
        "The body decoded: JSON, or form fields"
        if 'json' in self.headers.get('Content-Type', ''):
            return json.loads(self.body)
        return dict(urllib.parse.parse_qsl(self.body.decode(),
                keep_blank_values=True))

    def as_dict(self):
        return {'url': self.url, 'status': self.status, 'error': self.error,
            'dropped': self.dropped, 'at': self.at,
            'headers': self.headers, 'body': self.body.decode()}


@dataclass
class Transaction:
    "A payment as the fake gateway holds it"
    reference: str
    provider_id: str
    amount: Decimal
    currency: str
    callback_urls: list
    return_url: str | None = None
    state: str = PENDING
    created: float = field(default_factory=time.time)
    paid_at: float | None = None
    paid_amount: Decimal | None = None
    started: bool = False      # Midtrans: the buyer chose a payment method
    aliases: set = field(default_factory=set)
    data: dict = field(default_factory=dict)

    def as_dict(self):
        return {'reference': self.reference, 'provider_id': self.provider_id,
            'amount': str(self.amount), 'currency': self.currency,
            'state': self.state, 'callback_urls': self.callback_urls,
            'return_url': self.return_url, 'created': self.created,
            'paid_at': self.paid_at,
            'paid_amount': None if self.paid_amount is None
            else str(self.paid_amount)}


def _whole(value):
    "A positive whole number from JSON (int, integral float or digits)"
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r'\d+(\.0+)?', value):
            return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number) if number >= 1 else None


def _money(amount):
    return '{:,}'.format(Decimal(amount).quantize(Decimal(1)))


def _iso(timestamp):
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (
        moment.microsecond // 1000)


def _same(given, expected):
    return hmac.compare_digest(str(given or '').encode(),
        str(expected).encode())


class _NoDelayHandler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def setup(self):
        super().setup()
        # headers and body leave in two writes: without this, Nagle and
        # delayed ACKs add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        pass


class _Handler(_NoDelayHandler):
    server_version = 'FakeGateway/1.0'

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        parts = urllib.parse.urlsplit(self.path)
        record = Recorded(self.command, parts.path,
            dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()}, body, time.time())
        status, answer, headers = self.server.fake.dispatch(record)
        content_type = 'application/json'
        if isinstance(answer, str):
            content_type = 'text/html; charset=utf-8' if answer.lstrip(
                ).startswith('<') else 'text/plain; charset=utf-8'
            answer = answer.encode()
        elif not isinstance(answer, bytes):
            answer = json.dumps(answer).encode()
        headers = dict(headers or {})
        content_type = headers.pop('Content-Type', content_type)
        try:
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(answer)))
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Opener:
    "urllib without proxies: the callbacks go to loopback"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeGateway(LoopbackService):
    "Base of the fakes: a threaded HTTP server on loopback plus the events"
    name = 'fake'
    handler_class = _Handler
    currency = 'IDR'

    def __init__(self, host='127.0.0.1', port=0, callback_timeout=5.0):
        self.host = host
        self.port = port
        self.callback_timeout = callback_timeout
        self.transactions = []
        self.requests = []
        self.callbacks = []
        self.lock = threading.RLock()
        self.api_delay = 0.0
        self.callback_delay = 0.0
        self._api_faults = deque()
        self._api_fault_always = None
        self._drops = 0            # None: drop every callback
        self._threads = []
        self._server = None
        self._thread = None
        self._ids = itertools.count(1)

    # -- life cycle
    def stop(self):
        for thread in list(self._threads):
            thread.join(timeout=self.callback_timeout)
        super().stop()

    @property
    def base_url(self):
        return self.url

    # -- faults
    def fail_api(self, count=1, status=500):
        "Answer the next `count` API requests with `status` (None: always)"
        with self.lock:
            if count is None:
                self._api_fault_always = status
            else:
                self._api_faults.extend([status] * count)

    def drop_callbacks(self, count=1):
        "Lose the next `count` callbacks (None: every one until cleared)"
        with self.lock:
            self._drops = None if count is None else self._drops + count

    def clear_faults(self):
        with self.lock:
            self._api_faults.clear()
            self._api_fault_always = None
            self._drops = 0
            self.api_delay = 0.0
            self.callback_delay = 0.0

    def reset(self):
        "Forget transactions, requests, callbacks and faults"
        with self.lock:
            self.transactions.clear()
            self.requests.clear()
            self.callbacks.clear()
        self.clear_faults()

    def _next_fault(self):
        with self.lock:
            if self._api_faults:
                return self._api_faults.popleft()
            return self._api_fault_always

    def _take_drop(self):
        with self.lock:
            if self._drops is None:
                return True
            if self._drops > 0:
                self._drops -= 1
                return True
            return False

    # -- transactions
    def find(self, key):
        "The latest transaction with this reference, provider id or alias"
        with self.lock:
            for txn in reversed(self.transactions):
                if key in {txn.reference, txn.provider_id} or key in (
                        txn.aliases):
                    return txn
        raise KeyError(key)

    def _find(self, key):
        try:
            return self.find(key)
        except KeyError:
            return None

    def _add(self, txn):
        with self.lock:
            self.transactions.append(txn)
        return txn

    def _set(self, reference, state, amount=None):
        txn = self.find(reference)
        with self.lock:
            txn.state = state
            txn.started = True
            if state == PAID:
                txn.paid_at = time.time()
                txn.paid_amount = (txn.amount if amount is None
                    else Decimal(str(amount)))
        return txn

    # -- events
    def pay(self, reference, amount=None, wait=True):
        """Mark the transaction paid (of `amount`, default its own) and send
        the callback; return the deliveries (none while they run late)."""
        return self._fire(self._set(reference, PAID, amount), wait=wait)

    def expire(self, reference, wait=True):
        return self._fire(self._set(reference, EXPIRED), wait=wait)

    def fail(self, reference, wait=True):
        return self._fire(self._set(reference, FAILED), wait=wait)

    def claim(self, reference, state=PAID, amount=None):
        """Send a callback, authenticated as the provider authenticates its
        callbacks (signature, token, URL), telling `state` while the
        transaction stays as it is: what a holder of the leaked key, or an
        altered unsigned field, sends.  Only the status API tells."""
        txn = self.find(reference)
        with self.lock:
            txn.started = True
            told = dataclasses.replace(txn, state=state,
                paid_at=txn.paid_at or time.time(),
                paid_amount=txn.amount if amount is None
                else Decimal(str(amount)))
        messages = self.callback_messages(told)
        return self._deliver_all(messages)

    def notify(self, reference, repeat=1, concurrent=False,
            bad_signature=False, wait=True):
        """Send the callback of the transaction's present state `repeat`
        times (at once with `concurrent`); `bad_signature` forges it."""
        txn = self.find(reference)
        with self.lock:
            txn.started = True
        return self._fire(txn, repeat=repeat, concurrent=concurrent,
            bad_signature=bad_signature, wait=wait)

    def _fire(self, txn, repeat=1, concurrent=False, bad_signature=False,
            wait=True):
        messages = self.callback_messages(txn, bad_signature=bad_signature)
        jobs = [m for _ in range(repeat) for m in messages]
        if not jobs:
            return []
        delay = self.callback_delay
        if delay or not wait:
            thread = threading.Thread(target=self._deliver_all,
                args=(jobs, concurrent, delay), daemon=True)
            with self.lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()
            return []
        return self._deliver_all(jobs, concurrent)

    def _deliver_all(self, jobs, concurrent=False, delay=0.0):
        if delay:
            time.sleep(delay)
        if not concurrent:
            return [self._deliver(*job) for job in jobs]
        results = [None] * len(jobs)
        barrier = threading.Barrier(len(jobs))

        def run(index, job):
            try:
                barrier.wait(timeout=self.callback_timeout)
            except threading.BrokenBarrierError:
                pass
            results[index] = self._deliver(*job)
        threads = [threading.Thread(target=run, args=(i, job), daemon=True)
            for i, job in enumerate(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def _deliver(self, url, headers, body):
        delivery = Delivery(url, dict(headers), body, time.time())
        if self._take_drop():
            delivery.dropped = True
        else:
            request = urllib.request.Request(url, data=body,
                headers=headers, method='POST')
            try:
                with _Opener.opener.open(request,
                        timeout=self.callback_timeout) as response:
                    delivery.status = response.status
                    delivery.answer = response.read()
            except urllib.error.HTTPError as error:
                delivery.status = error.code
                delivery.answer = error.read()
            except (urllib.error.URLError, OSError) as error:
                delivery.error = str(getattr(error, 'reason', error))
        with self.lock:
            self.callbacks.append(delivery)
        return delivery

    # -- HTTP
    def dispatch(self, record):
        with self.lock:
            self.requests.append(record)
        if record.path.startswith('/_fake/'):
            answer = self._control_route(record)
        else:
            answer = self.page(record)
            if answer is None:
                if self.api_delay:
                    time.sleep(self.api_delay)
                status = self._next_fault()
                if status:
                    answer = (status, self.fault_body(status), {})
                else:
                    answer = self.handle(record)
        if answer is None:
            answer = (404, {'message': 'not found'}, {})
        record.status = answer[0]
        return answer

    def _control_route(self, record):
        if record.method == 'GET' and record.path == '/_fake/transactions':
            with self.lock:
                return 200, [t.as_dict() for t in self.transactions], {}
        if record.method == 'GET' and record.path == '/_fake/callbacks':
            with self.lock:
                return 200, [d.as_dict() for d in self.callbacks], {}
        if record.method == 'GET' and record.path == '/_fake/':
            return 200, self.index_page(), {}
        if record.method == 'POST' and record.path == '/_fake/control':
            command = record.json()
            if not isinstance(command, dict):
                return 400, {'error': 'a JSON object is expected'}, {}
            try:
                deliveries = self.control(command)
            except KeyError as error:
                return 404, {'error': 'unknown reference %s' % error}, {}
            except ValueError as error:
                return 400, {'error': str(error)}, {}
            return 200, {'ok': True, 'deliveries': [
                    d.as_dict() for d in deliveries or []]}, {}
        return None

    def control(self, command):
        "Apply one control command (the dict of POST /_fake/control)"
        action = command.get('action')
        reference = command.get('reference')
        wait = command.get('wait', True)
        if action == 'pay':
            return self.pay(reference, amount=command.get('amount'),
                wait=wait)
        if action == 'expire':
            return self.expire(reference, wait=wait)
        if action == 'fail':
            return self.fail(reference, wait=wait)
        if action == 'claim':
            return self.claim(reference, state=command.get('state', PAID),
                amount=command.get('amount'))
        if action == 'notify':
            return self.notify(reference, repeat=command.get('repeat', 1),
                concurrent=command.get('concurrent', False),
                bad_signature=command.get('bad_signature', False), wait=wait)
        if action == 'fault':
            self.fail_api(command.get('count', 1),
                status=command.get('status', 500))
        elif action == 'delay':
            self.api_delay = float(command.get('seconds', 0))
        elif action == 'drop':
            self.drop_callbacks(command.get('count', 1))
        elif action == 'callback_delay':
            self.callback_delay = float(command.get('seconds', 0))
        elif action == 'clear':
            self.clear_faults()
        elif action == 'config':
            self.configure(command)
        else:
            raise ValueError('unknown action %r' % action)
        return []

    def configure(self, command):
        raise ValueError('nothing to configure')

    # -- the buyer's page
    def page(self, record):
        "Answer a payment page request, or None when it is not one"
        return None

    def _page(self, txn, title, action_url):
        rows = [
            ('Reference', txn.reference),
            ('Amount', '%s %s' % (txn.currency, _money(txn.amount))),
            ('State', txn.state),
            ]
        cells = ''.join('<tr><th>%s</th><td>%s</td></tr>'
            % (html.escape(k), html.escape(str(v))) for k, v in rows)
        buttons = ''
        if txn.state == PENDING:
            buttons = ('<form method="post" action="%s">'
                '<button name="action" value="pay">Pay</button> '
                '<button name="action" value="fail">Cancel</button></form>'
                % html.escape(action_url))
        return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<title>%(title)s</title></head><body><h1>%(title)s</h1>'
            '<table>%(cells)s</table>%(buttons)s</body></html>'
            % {'title': html.escape(title), 'cells': cells,
                'buttons': buttons})

    def _page_action(self, record, txn, return_url=None):
        "The buyer pressed a button: act, send the callback in the background"
        action = record.form().get('action')
        if txn.state == PENDING and action in {'pay', 'fail'}:
            if action == 'pay':
                self.pay(txn.reference, wait=False)
            else:
                self.fail(txn.reference, wait=False)
        if return_url:
            return 303, b'', {'Location': return_url,
                'Content-Type': 'text/plain'}
        return 200, self._page(txn, 'Fake %s: done' % self.name,
            record.path), {}

    def page_path(self, txn):
        "The path of the buyer's page of a transaction (None: no page)"
        return None

    def index_page(self):
        """The demo's way in (GET /_fake/): every transaction, latest first,
        with a link to its buyer's page (M-Pesa: the phone's prompt)"""
        with self.lock:
            transactions = list(reversed(self.transactions))
        rows = []
        for txn in transactions:
            path = self.page_path(txn)
            reference = html.escape(txn.reference)
            if path:
                reference = '<a href="%s">%s</a>' % (
                    html.escape(path), reference)
            rows.append('<tr><td>%s</td><td>%s %s</td><td>%s</td></tr>' % (
                    reference, html.escape(txn.currency),
                    html.escape(_money(txn.amount)), html.escape(txn.state)))
        title = 'Fake %s: payments' % self.name
        return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<title>%(title)s</title></head><body><h1>%(title)s</h1>'
            '<table><tr><th>Reference</th><th>Amount</th><th>State</th></tr>'
            '%(rows)s</table>%(empty)s</body></html>' % {
                'title': html.escape(title), 'rows': ''.join(rows),
                'empty': '' if rows else '<p>No payment yet.</p>'})

    # -- provider specific
    def handle(self, record):
        "Answer an API request: (status, body, headers) or None (404)"
        raise NotImplementedError

    def fault_body(self, status):
        return {'message': 'fake fault'}

    def callback_messages(self, txn, bad_signature=False):
        "The callbacks of the transaction's state: [(url, headers, body)]"
        raise NotImplementedError


# -- Midtrans -----------------------------------------------------------------

class FakeMidtrans(FakeGateway):
    """Midtrans Snap and the status API for one merchant.

    `notification_url` is the dashboard's "Payment Notification URL", used
    when a Snap request has no ``X-Override-Notification`` header. Like
    Midtrans, the status API answers 404 until the buyer picks a payment
    method (here: any event or `notify`).
    """
    name = 'midtrans'
    ORDER_ID = re.compile(r'^[A-Za-z0-9\-_.~]{1,50}$')
    STATUS = re.compile(r'^/v2/([^/]+)/status$')
    PAGE = re.compile(r'^/snap/v4/redirection/([^/]+)$')
    UNAUTHORIZED = ("Access denied due to unauthorized transaction, please "
        "check client or server key")

    def __init__(self, server_key='SB-Mid-server-fake', notification_url=None,
            merchant_id='G000000001', **kwargs):
        super().__init__(**kwargs)
        self.server_key = server_key
        self.notification_url = notification_url
        self.merchant_id = merchant_id

    def configure(self, command):
        if 'callback_url' in command:
            self.notification_url = command['callback_url']

    def _authorized(self, record):
        auth = record.basic_auth()
        return bool(auth) and _same(auth[0], self.server_key)

    def fault_body(self, status):
        return {'status_code': str(status), 'status_message': (
                "Sorry. Our system is recovering from unexpected issues. "
                "Please retry."), 'id': str(uuid.uuid4())}

    def handle(self, record):
        if record.method == 'POST' and record.path == '/snap/v1/transactions':
            return self._snap(record)
        match = self.STATUS.match(record.path)
        if record.method == 'GET' and match:
            return self._status(record, urllib.parse.unquote(match.group(1)))
        return None

    def _snap(self, record):
        if not self._authorized(record):
            return 401, {'error_messages': [self.UNAUTHORIZED,
                    "Visit https://snap-docs.midtrans.com/#request-headers "
                    "for more details"]}, {}
        data = record.json()
        if not isinstance(data, dict):
            return 400, {'error_messages': [
                    "transaction_details is required"]}, {}
        details = data.get('transaction_details')
        details = details if isinstance(details, dict) else {}
        order_id = details.get('order_id')
        gross = details.get('gross_amount')
        errors = []
        if not order_id:
            errors.append("transaction_details.order_id is required")
        elif not isinstance(order_id, str) or not self.ORDER_ID.match(
                order_id):
            errors.append("transaction_details.order_id is invalid")
        amount = None
        if gross is None:
            errors.append("transaction_details.gross_amount is required")
        elif isinstance(gross, str) or _whole(gross) is None:
            errors.append("transaction_details.gross_amount must be a "
                "positive integer")
        else:
            amount = _whole(gross)
        items = data.get('item_details')
        if amount and isinstance(items, list) and items:
            try:
                total = sum(Decimal(str(i['price'])) * int(i['quantity'])
                    for i in items)
            except (KeyError, TypeError, ValueError, InvalidOperation):
                total = None
            if total != amount:
                errors.append("transaction_details.gross_amount is not "
                    "equal to the sum of item_details")
        if errors:
            return 400, {'error_messages': errors}, {}
        existing = self._find(order_id)
        if existing and existing.state != EXPIRED:
            return 400, {'error_messages': [
                    "transaction_details.order_id has already been taken"]}, {}
        override = record.headers.get('x-override-notification')
        if override:
            urls = [u.strip() for u in override.split(',') if u.strip()][:3]
        else:
            urls = [self.notification_url] if self.notification_url else []
            append = record.headers.get('x-append-notification')
            if append:
                urls += [u.strip() for u in append.split(',')
                    if u.strip()][:2]
        token = str(uuid.uuid4())
        finish = (data.get('callbacks') or {}).get('finish')
        self._add(Transaction(order_id, str(uuid.uuid4()), Decimal(amount),
                'IDR', urls, return_url=finish, aliases={token},
                data={'token': token, 'request': data,
                    'va': '%011d' % secrets.randbelow(10 ** 11)}))
        redirect_url = '%s/snap/v4/redirection/%s' % (self.url, token)
        return 201, {'token': token, 'redirect_url': redirect_url}, {}

    def _status(self, record, order_id):
        if not self._authorized(record):
            return 401, {'status_code': '401',
                'status_message': self.UNAUTHORIZED,
                'id': str(uuid.uuid4())}, {}
        txn = self._find(order_id)
        if txn is None or not txn.started:
            return 404, {'status_code': '404',
                'status_message': "Transaction doesn't exist.",
                'id': str(uuid.uuid4())}, {}
        return 200, self.payload(txn, for_status=True), {}

    def signature(self, order_id, status_code, gross_amount, key=None):
        text = '%s%s%s%s' % (order_id, status_code, gross_amount,
            key or self.server_key)
        return hashlib.sha512(text.encode()).hexdigest()

    def payload(self, txn, for_status=False, bad_signature=False):
        "The notification (or status answer) of the transaction's state"
        status, code = {
            PAID: ('settlement', '200'),
            PENDING: ('pending', '201'),
            FAILED: ('deny', '202'),
            EXPIRED: ('expire', '407' if for_status else '202'),
            REFUNDED: ('refund', '200'),
            }[txn.state]
        amount = (txn.paid_amount if txn.state in {PAID, REFUNDED}
            else txn.amount)
        gross = str(Decimal(amount).quantize(Decimal('0.01')))
        created = datetime.fromtimestamp(txn.created, WIB)
        fmt = '%Y-%m-%d %H:%M:%S'
        payload = {
            'transaction_time': created.strftime(fmt),
            'transaction_status': status,
            'transaction_id': txn.provider_id,
            'status_message': 'Success, transaction is found' if for_status
            else 'midtrans payment notification',
            'status_code': code,
            'signature_key': self.signature(txn.reference, code, gross,
                key='forged' if bad_signature else None),
            'payment_type': 'bank_transfer',
            'order_id': txn.reference,
            'merchant_id': self.merchant_id,
            'gross_amount': gross,
            'fraud_status': 'accept',
            'currency': 'IDR',
            'va_numbers': [{'va_number': txn.data['va'], 'bank': 'bca'}],
            'expiry_time': (created + timedelta(days=1)).strftime(fmt),
            }
        if txn.state == FAILED:
            payload.update(payment_type='credit_card', fraud_status='deny')
            del payload['va_numbers']
        if txn.state in {PAID, REFUNDED}:
            payload['settlement_time'] = datetime.fromtimestamp(
                txn.paid_at, WIB).strftime(fmt)
        if txn.state == REFUNDED:
            payload['refund_amount'] = gross
            payload['refunds'] = [{'refund_chargeback_id': 1,
                    'refund_amount': gross, 'reason': 'fake refund',
                    'created_at': datetime.now(WIB).strftime(fmt)}]
        return payload

    def refund(self, reference, wait=True):
        "Refund a settled transaction in full and send the notification"
        txn = self.find(reference)
        if txn.state != PAID:
            raise ValueError('only a settled transaction is refunded')
        with self.lock:
            txn.state = REFUNDED
        return self._fire(txn, wait=wait)

    def callback_messages(self, txn, bad_signature=False):
        body = json.dumps(self.payload(txn, bad_signature=bad_signature))
        headers = {'Content-Type': 'application/json',
            'Accept': 'application/json', 'User-Agent': 'Veritrans'}
        return [(url, headers, body.encode()) for url in txn.callback_urls]

    def page_path(self, txn):
        return '/snap/v4/redirection/%s' % txn.data['token']

    def page(self, record):
        match = self.PAGE.match(record.path)
        if not match:
            return None
        txn = self._find(match.group(1))
        if txn is None:
            return 404, '<p>Unknown Snap token</p>', {}
        if record.method == 'POST':
            action = record.form().get('action')
            finish = None
            if txn.return_url and action in {'pay', 'fail'}:
                code, status = (('200', 'settlement') if action == 'pay'
                    else ('202', 'deny'))
                finish = _with_query(txn.return_url, {
                        'order_id': txn.reference, 'status_code': code,
                        'transaction_status': status})
            return self._page_action(record, txn, finish)
        return 200, self._page(txn, 'Fake Midtrans: order %s'
            % txn.reference, record.path), {}


def _with_query(url, params):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query += list(params.items())
    return urllib.parse.urlunsplit(parts._replace(
            query=urllib.parse.urlencode(query)))


# -- Xendit -------------------------------------------------------------------

class FakeXendit(FakeGateway):
    """Xendit Invoices for one account.

    `callback_url` is the account's invoice callback URL (the dashboard
    setting, also set through ``POST /callback_urls/invoice``). Xendit only
    calls back for paid and expired invoices; invoices have no failed state.
    """
    name = 'xendit'
    INVOICE = re.compile(r'^/v2/invoices/([^/]+)$')
    CALLBACK_URLS = re.compile(r'^/callback_urls/([a-z_0-9]+)$')
    PAGE = re.compile(r'^/web/([^/]+)$')

    def __init__(self, secret_key='xnd_development_fake',
            callback_token='fake-callback-token', callback_url=None,
            user_id='5f0000000000000000000001', **kwargs):
        super().__init__(**kwargs)
        self.secret_key = secret_key
        self.callback_token = callback_token
        self.callback_url = callback_url
        self.user_id = user_id
        self.callback_urls = {}

    def configure(self, command):
        if 'callback_url' in command:
            self.callback_url = command['callback_url']

    def fault_body(self, status):
        return {'error_code': 'SERVER_ERROR',
            'message': 'An unexpected error occured, our team has been '
            'notified and will troubleshoot the issue.'}

    def handle(self, record):
        auth = record.basic_auth()
        if not auth or not _same(auth[0], self.secret_key) or auth[1]:
            return 401, {'error_code': 'INVALID_API_KEY', 'message':
                'API key is not authorized for this API service'}, {}
        if record.method == 'POST' and record.path in {
                '/v2/invoices', '/v2/invoices/'}:
            return self._create(record)
        if record.method == 'GET' and record.path == '/v2/invoices':
            external_id = record.query.get('external_id')
            with self.lock:
                found = [self.invoice(t) for t in reversed(self.transactions)
                    if external_id is None or t.reference == external_id]
            return 200, found, {}
        match = self.INVOICE.match(record.path)
        if record.method == 'GET' and match:
            txn = self._find(match.group(1))
            if txn is None or txn.provider_id != match.group(1):
                return 404, {'error_code': 'INVOICE_NOT_FOUND_ERROR',
                    'message': 'Could not find invoice'}, {}
            return 200, self.invoice(txn), {}
        match = self.CALLBACK_URLS.match(record.path)
        if record.method == 'POST' and match:
            data = record.json()
            url = data.get('url') if isinstance(data, dict) else None
            if not url:
                return 400, {'error_code': 'API_VALIDATION_ERROR',
                    'message': '"url" is required'}, {}
            self.callback_urls[match.group(1)] = url
            if match.group(1) == 'invoice':
                self.callback_url = url
            return 200, {'status': 'SUCCESSFUL', 'user_id': self.user_id,
                'url': url, 'environment': 'TEST',
                'callback_token': self.callback_token}, {}
        return None

    def _create(self, record):
        data = record.json()
        if not isinstance(data, dict):
            return 400, {'error_code': 'API_VALIDATION_ERROR',
                'message': 'Invalid JSON'}, {}
        error = None
        amount = data.get('amount')
        if not data.get('external_id') or not isinstance(
                data['external_id'], str):
            error = '"external_id" is required'
        elif amount is None:
            error = '"amount" is required'
        elif isinstance(amount, bool) or not isinstance(amount, int | float):
            error = '"amount" must be a number'
        elif amount < 1:
            error = '"amount" must be larger than or equal to 1'
        elif data.get('currency', 'IDR') != 'IDR':
            return 400, {'error_code': 'UNSUPPORTED_CURRENCY', 'message':
                'Currency %s is not configured' % data['currency']}, {}
        if error:
            return 400, {'error_code': 'API_VALIDATION_ERROR',
                'message': error}, {}
        # Xendit truncates the decimals of an IDR amount
        whole = Decimal(str(amount)).to_integral_value(rounding='ROUND_DOWN')
        invoice_id = secrets.token_hex(12)
        duration = int(data.get('invoice_duration') or 86400)
        txn = self._add(Transaction(data['external_id'], invoice_id, whole,
                'IDR', [], return_url=data.get('success_redirect_url'),
                data={'request': data, 'expiry': time.time() + duration,
                    'failure_url': data.get('failure_redirect_url')}))
        return 200, self.invoice(txn), {}

    def invoice(self, txn):
        "The invoice object of the API"
        request = txn.data['request']
        status = {PAID: 'PAID', PENDING: 'PENDING', EXPIRED: 'EXPIRED',
            FAILED: 'EXPIRED'}[txn.state]
        invoice = {
            'id': txn.provider_id,
            'external_id': txn.reference,
            'user_id': self.user_id,
            'status': status,
            'merchant_name': 'ISP Demo',
            'merchant_profile_picture_url': '',
            'amount': int(txn.amount),
            'description': request.get('description') or '',
            'expiry_date': _iso(txn.data['expiry']),
            'invoice_url': '%s/web/%s' % (self.url, txn.provider_id),
            'available_banks': [{'bank_code': 'BCA',
                    'collection_type': 'POOL',
                    'transfer_amount': int(txn.amount),
                    'bank_branch': 'Virtual Account',
                    'account_holder_name': 'ISP DEMO',
                    'identity_amount': 0}],
            'available_retail_outlets': [],
            'available_ewallets': [],
            'should_exclude_credit_card': False,
            'should_send_email': False,
            'created': _iso(txn.created),
            'updated': _iso(txn.paid_at or txn.created),
            'currency': 'IDR',
            }
        for key in ('payer_email', 'customer', 'success_redirect_url',
                'failure_redirect_url'):
            if request.get(key):
                invoice[key] = request[key]
        if txn.state == PAID:
            invoice.update(self._payment(txn))
        return invoice

    def _payment(self, txn):
        paid = txn.paid_amount
        paid = int(paid) if paid == paid.to_integral_value() else float(paid)
        return {
            'paid_amount': paid,
            'paid_at': _iso(txn.paid_at),
            'payment_method': 'BANK_TRANSFER',
            'bank_code': 'BCA',
            'payment_channel': 'BCA',
            'payment_destination': '880812345678',
            }

    def callback_messages(self, txn, bad_signature=False):
        if txn.state not in {PAID, EXPIRED} or not self.callback_url:
            return []
        request = txn.data['request']
        payload = {
            'id': txn.provider_id,
            'external_id': txn.reference,
            'user_id': self.user_id,
            'is_high': False,
            'status': 'PAID' if txn.state == PAID else 'EXPIRED',
            'merchant_name': 'ISP Demo',
            'amount': int(txn.amount),
            'created': _iso(txn.created),
            'updated': _iso(txn.paid_at or time.time()),
            'currency': 'IDR',
            'description': request.get('description') or '',
            }
        if request.get('payer_email'):
            payload['payer_email'] = request['payer_email']
        if txn.state == PAID:
            payload.update(self._payment(txn))
            payload['adjusted_received_amount'] = payload['paid_amount']
            payload['fees_paid_amount'] = 0
        headers = {'Content-Type': 'application/json',
            'x-callback-token': 'forged-token' if bad_signature
            else self.callback_token,
            'webhook-id': secrets.token_hex(12)}
        return [(self.callback_url, headers, json.dumps(payload).encode())]

    def fail(self, reference, wait=True):
        raise ValueError('Xendit invoices have no failed state')

    def page_path(self, txn):
        return '/web/%s' % txn.provider_id

    def page(self, record):
        match = self.PAGE.match(record.path)
        if not match:
            return None
        txn = self._find(match.group(1))
        if txn is None:
            return 404, '<p>Invoice not found</p>', {}
        if record.method == 'POST':
            action = record.form().get('action')
            if action == 'fail':    # the buyer leaves; nothing changes
                return 303, b'', {'Location': txn.data.get('failure_url')
                    or record.path, 'Content-Type': 'text/plain'}
            return self._page_action(record, txn, txn.return_url)
        return 200, self._page(txn, 'Fake Xendit: invoice %s'
            % txn.reference, record.path), {}


# -- Duitku -------------------------------------------------------------------

class FakeDuitku(FakeGateway):
    """Duitku API (v2 inquiry, transaction status, callbacks) for one
    merchant code. Duitku calls back on success (resultCode 00) and failure
    (01); a pending transaction has no callback."""
    name = 'duitku'
    INQUIRY = '/webapi/api/merchant/v2/inquiry'
    STATUS = '/webapi/api/merchant/transactionStatus'
    PAGE = '/topup/topupdirectv2.aspx'
    METHODS = {'VC', 'BC', 'M2', 'VA', 'I1', 'B1', 'BT', 'A1', 'AG', 'NC',
        'BR', 'S1', 'DM', 'BV', 'OV', 'SA', 'LF', 'LA', 'DA', 'SL', 'OL',
        'SP', 'NQ', 'GQ', 'SQ', 'FT', 'IR', 'JP', 'DN', 'T1', 'T2', 'T3'}
    QRIS = {'SP', 'NQ', 'GQ', 'SQ'}
    MANDATORY = ('merchantCode', 'paymentAmount', 'paymentMethod',
        'merchantOrderId', 'productDetails', 'email', 'customerVaName',
        'callbackUrl', 'returnUrl', 'signature')

    def __init__(self, merchant_code='DS00001',
            api_key='fake-duitku-api-key', **kwargs):
        super().__init__(**kwargs)
        self.merchant_code = merchant_code
        self.api_key = api_key

    def md5(self, *parts, key=None):
        text = ''.join(map(str, parts)) + (key or self.api_key)
        return hashlib.md5(text.encode()).hexdigest()

    def fault_body(self, status):
        return {'Message': 'An error has occurred.'}

    def handle(self, record):
        if record.method != 'POST':
            return None
        if record.path == self.INQUIRY:
            return self._inquiry(record)
        if record.path == self.STATUS:
            return self._status(record)
        return None

    def _inquiry(self, record):
        data = record.json()
        if not isinstance(data, dict):
            return 400, {'Message': 'The request is invalid.'}, {}
        for key in self.MANDATORY:
            if data.get(key) in (None, '') and not (
                    key == 'email' and key in data):
                return 400, {'Message': '%s is mandatory' % key}, {}
        if data['merchantCode'] != self.merchant_code:
            return 404, {'Message': 'Merchant not found'}, {}
        amount = data['paymentAmount']
        if not _same(data['signature'], self.md5(self.merchant_code,
                    data['merchantOrderId'], amount)):
            return 401, {'Message': 'Wrong signature'}, {}
        whole = None if isinstance(amount, float) else _whole(amount)
        if whole is None:
            return 400, {'Message': 'Invalid paymentAmount'}, {}
        if data['paymentMethod'] not in self.METHODS:
            return 404, {'Message': 'Payment channel not available'}, {}
        reference = '%s%s' % (self.merchant_code, ''.join(
                secrets.choice('ABCDEFGHJKLMNPQRSTUVWXYZ23456789')
                for _ in range(13)))
        txn = self._add(Transaction(data['merchantOrderId'], reference,
                Decimal(whole), 'IDR', [data['callbackUrl']],
                return_url=data['returnUrl'], data={'request': data}))
        qris = data['paymentMethod'] in self.QRIS
        return 200, {
            'merchantCode': self.merchant_code,
            'reference': reference,
            'paymentUrl': '%s%s?ref=%s' % (self.url, self.PAGE, reference),
            'vaNumber': '' if qris else '7007014%09d' % secrets.randbelow(
                10 ** 9),
            'qrString': '00020101021226FAKEQRIS%s' % reference if qris
            else '',
            'amount': str(int(txn.amount)),
            'statusCode': '00',
            'statusMessage': 'SUCCESS',
            }, {}

    def _status(self, record):
        data = record.json()
        if not isinstance(data, dict):
            return 400, {'Message': 'The request is invalid.'}, {}
        for key in ('merchantCode', 'merchantOrderId', 'signature'):
            if not data.get(key):
                return 400, {'Message': '%s is mandatory' % key}, {}
        if data['merchantCode'] != self.merchant_code:
            return 404, {'Message': 'Merchant not found'}, {}
        if not _same(data['signature'], self.md5(self.merchant_code,
                    data['merchantOrderId'])):
            return 401, {'Message': 'Wrong signature'}, {}
        txn = self._find(data['merchantOrderId'])
        if txn is None or txn.reference != data['merchantOrderId']:
            return 404, {'Message': 'Transaction not found'}, {}
        code, message = {
            PAID: ('00', 'SUCCESS'),
            PENDING: ('01', 'PROCESS'),
            FAILED: ('02', 'CANCELED'),
            EXPIRED: ('02', 'EXPIRED'),
            }[txn.state]
        amount = txn.paid_amount if txn.state == PAID else txn.amount
        return 200, {
            'merchantOrderId': txn.reference,
            'reference': txn.provider_id,
            'amount': str(int(amount)),
            'fee': '0.00',
            'statusCode': code,
            'statusMessage': message,
            }, {}

    def callback_messages(self, txn, bad_signature=False):
        if txn.state == PENDING:
            return []
        request = txn.data['request']
        amount = txn.paid_amount if txn.state == PAID else txn.amount
        amount = str(int(amount)) if amount == amount.to_integral_value() \
            else str(amount)
        form = {
            'merchantCode': self.merchant_code,
            'amount': amount,
            'merchantOrderId': txn.reference,
            'productDetail': request.get('productDetails') or '',
            'additionalParam': request.get('additionalParam') or '',
            'paymentCode': request.get('paymentMethod') or '',
            'resultCode': '00' if txn.state == PAID else '01',
            'merchantUserId': request.get('merchantUserInfo') or '',
            'reference': txn.provider_id,
            'signature': self.md5(self.merchant_code, amount, txn.reference,
                key='forged' if bad_signature else None),
            'publisherOrderId': 'MGUFAKE%s' % txn.provider_id[-10:],
            'spUserHash': '',
            'settlementDate': (datetime.now(WIB) + timedelta(days=2)
                ).strftime('%Y-%m-%d') if txn.state == PAID else '',
            'issuerCode': '93600914' if request.get(
                'paymentMethod') in self.QRIS else '',
            }
        headers = {'Content-Type': 'application/x-www-form-urlencoded'}
        body = urllib.parse.urlencode(form).encode()
        return [(url, headers, body) for url in txn.callback_urls]

    def page_path(self, txn):
        return '%s?ref=%s' % (self.PAGE, txn.provider_id)

    def page(self, record):
        if record.path != self.PAGE:
            return None
        txn = self._find(record.query.get('ref', ''))
        if txn is None:
            return 404, '<p>Unknown reference</p>', {}
        if record.method == 'POST':
            action = record.form().get('action')
            result = {'pay': '00', 'fail': '01'}.get(action)
            target = None
            if txn.return_url and result:
                target = _with_query(txn.return_url, {
                        'merchantOrderId': txn.reference,
                        'resultCode': result,
                        'reference': txn.provider_id})
            return self._page_action(record, txn, target)
        return 200, self._page(txn, 'Fake Duitku: order %s' % txn.reference,
            '%s?ref=%s' % (self.PAGE, txn.provider_id)), {}


# -- M-Pesa (Daraja) ----------------------------------------------------------

class FakeMpesa(FakeGateway):
    """Daraja OAuth and M-Pesa Express for one shortcode.

    Access tokens last `token_ttl` seconds (Daraja: 3599); `tokens_issued`
    counts them. The STK query answers HTTP 500 "The transaction is being
    processed" until the customer answers the prompt, as Daraja does.
    """
    name = 'mpesa'
    currency = 'KES'
    OAUTH = '/oauth/v1/generate'
    STK = '/mpesa/stkpush/v1/processrequest'
    QUERY = '/mpesa/stkpushquery/v1/query'
    PAGE = re.compile(r'^/phone/([^/]+)$')
    RESULTS = {
        PAID: (0, 'The service request is processed successfully.'),
        FAILED: (1032, 'Request cancelled by user'),
        EXPIRED: (1037, 'DS timeout user cannot be reached'),
        }

    def __init__(self, consumer_key='fake-consumer-key',
            consumer_secret='fake-consumer-secret', shortcode='174379',
            passkey='fake-passkey', token_ttl=3599, **kwargs):
        super().__init__(**kwargs)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.shortcode = str(shortcode)
        self.passkey = passkey
        self.token_ttl = token_ttl
        self.tokens = {}
        self.tokens_issued = 0

    @staticmethod
    def error(status, code, message):
        return status, {'requestId': '%d-%d-1' % (secrets.randbelow(99999),
                secrets.randbelow(99999999)), 'errorCode': code,
            'errorMessage': message}, {}

    def fault_body(self, status):
        return self.error(status, '500.003.02',
            'System is busy. Please try again in few minutes.')[1]

    def password(self, timestamp, shortcode=None, passkey=None):
        text = '%s%s%s' % (shortcode or self.shortcode,
            passkey or self.passkey, timestamp)
        return base64.b64encode(text.encode()).decode()

    def reset(self):
        super().reset()
        with self.lock:
            self.tokens.clear()
            self.tokens_issued = 0

    def find(self, key):
        "Also by a reference longer than Daraja's 12-character limit"
        try:
            return super().find(key)
        except KeyError:
            if len(key) <= 12:
                raise
            return super().find(key[:12])

    def expire_tokens(self):
        "Make every issued access token invalid (as after an hour)"
        with self.lock:
            self.tokens.clear()

    def handle(self, record):
        if record.path == self.OAUTH and record.method == 'GET':
            return self._oauth(record)
        if record.method != 'POST' or record.path not in {
                self.STK, self.QUERY}:
            return None
        value = record.headers.get('authorization', '')
        token = value[7:] if value.startswith('Bearer ') else None
        with self.lock:
            expiry = self.tokens.get(token)
        if not expiry or expiry < time.monotonic():
            return self.error(404, '404.001.03', 'Invalid Access Token')
        data = record.json()
        if not isinstance(data, dict):
            return self.error(400, '400.002.02',
                'Bad Request - Invalid JSON')
        if record.path == self.STK:
            return self._stk(data)
        return self._query(data)

    def _oauth(self, record):
        auth = record.basic_auth()
        if (not auth or not _same(auth[0], self.consumer_key)
                or not _same(auth[1], self.consumer_secret)):
            return self.error(400, '400.008.01',
                'Invalid Authentication passed')
        if record.query.get('grant_type') != 'client_credentials':
            return self.error(400, '400.008.02', 'Invalid grant type passed')
        token = secrets.token_urlsafe(21)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
            self.tokens_issued += 1
        return 200, {'access_token': token,
            'expires_in': str(self.token_ttl)}, {}

    def _credentials(self, data):
        "Check BusinessShortCode, Timestamp and Password: an error or None"
        shortcode = str(data.get('BusinessShortCode') or '')
        if not shortcode.isdigit():
            return self.error(400, '400.002.02',
                'Bad Request - Invalid BusinessShortCode')
        timestamp = str(data.get('Timestamp') or '')
        try:
            datetime.strptime(timestamp, '%Y%m%d%H%M%S')
        except ValueError:
            return self.error(400, '400.002.02',
                'Bad Request - Invalid Timestamp')
        if shortcode != self.shortcode:
            return self.error(500, '500.001.1001', 'Merchant does not exist')
        if not _same(data.get('Password'), self.password(timestamp)):
            return self.error(500, '500.001.1001', 'Wrong credentials')
        return None

    def _stk(self, data):
        error = self._credentials(data)
        if error:
            return error
        bad = None
        amount = data.get('Amount')
        url = str(data.get('CallBackURL') or '')
        if data.get('TransactionType') not in {
                'CustomerPayBillOnline', 'CustomerBuyGoodsOnline'}:
            bad = 'TransactionType'
        elif isinstance(amount, float) or _whole(amount) is None:
            bad = 'Amount'
        elif not MSISDN.match(str(data.get('PartyA') or '')):
            bad = 'PartyA'
        elif not str(data.get('PartyB') or '').isdigit():
            bad = 'PartyB'
        elif not MSISDN.match(str(data.get('PhoneNumber') or '')):
            bad = 'PhoneNumber'
        elif urllib.parse.urlsplit(url).scheme not in {'http', 'https'}:
            bad = 'CallBackURL'
        elif not 1 <= len(str(data.get('AccountReference') or '')) <= 12:
            bad = 'AccountReference'
        elif not 1 <= len(str(data.get('TransactionDesc') or '')) <= 13:
            bad = 'TransactionDesc'
        if bad:
            return self.error(400, '400.002.02', 'Bad Request - Invalid %s'
                % bad)
        now = datetime.now(EAT)
        checkout = 'ws_CO_%s%09d' % (now.strftime('%d%m%Y%H%M%S'),
            secrets.randbelow(10 ** 9))
        merchant_request = '%05d-%08d-1' % (secrets.randbelow(99999),
            secrets.randbelow(99999999))
        reference = str(data['AccountReference'])
        self._add(Transaction(reference, checkout, Decimal(_whole(amount)),
                'KES', [url], aliases={merchant_request},
                data={'request': data, 'merchant_request': merchant_request,
                    'phone': str(data['PhoneNumber'])}))
        message = 'Success. Request accepted for processing'
        return 200, {'MerchantRequestID': merchant_request,
            'CheckoutRequestID': checkout, 'ResponseCode': '0',
            'ResponseDescription': message, 'CustomerMessage': message}, {}

    def _query(self, data):
        error = self._credentials(data)
        if error:
            return error
        txn = self._find(str(data.get('CheckoutRequestID') or ''))
        if txn is None or txn.provider_id != data.get('CheckoutRequestID'):
            return self.error(400, '400.002.02',
                'Bad Request - Invalid CheckoutRequestID')
        if txn.state == PENDING:
            return self.error(500, '500.001.1001',
                'The transaction is being processed')
        code, description = self.RESULTS[txn.state]
        return 200, {
            'ResponseCode': '0',
            'ResponseDescription': 'The service request has been accepted '
            'successsfully',
            'MerchantRequestID': txn.data['merchant_request'],
            'CheckoutRequestID': txn.provider_id,
            'ResultCode': str(code),
            'ResultDesc': description,
            }, {}

    def callback(self, txn, claim_paid=False):
        "The Body.stkCallback document of the transaction's outcome"
        state = PAID if claim_paid else txn.state
        code, description = self.RESULTS[state]
        callback = {
            'MerchantRequestID': txn.data['merchant_request'],
            'CheckoutRequestID': txn.provider_id,
            'ResultCode': code,
            'ResultDesc': description,
            }
        if state == PAID:
            amount = txn.paid_amount if txn.paid_amount is not None \
                else txn.amount
            amount = int(amount) if amount == amount.to_integral_value() \
                else float(amount)
            paid_at = datetime.fromtimestamp(txn.paid_at or time.time(), EAT)
            receipt = txn.data.setdefault('receipt', ''.join(
                    secrets.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')
                    for _ in range(10)))
            callback['CallbackMetadata'] = {'Item': [
                    {'Name': 'Amount', 'Value': amount},
                    {'Name': 'MpesaReceiptNumber', 'Value': receipt},
                    {'Name': 'Balance'},
                    {'Name': 'TransactionDate',
                        'Value': int(paid_at.strftime('%Y%m%d%H%M%S'))},
                    {'Name': 'PhoneNumber', 'Value': int(txn.data['phone'])},
                    ]}
        return {'Body': {'stkCallback': callback}}

    def callback_messages(self, txn, bad_signature=False, claim_paid=False):
        if txn.state == PENDING and not claim_paid:
            return []
        body = json.dumps(self.callback(txn, claim_paid=claim_paid)).encode()
        headers = {'Content-Type': 'application/json'}
        urls = txn.callback_urls
        if bad_signature:
            # M-Pesa signs nothing: a forger does not know the URL's secret
            urls = [_replace_query(u, 'token', 'forged') for u in urls]
        return [(url, headers, body) for url in urls]

    def claim_paid(self, reference, repeat=1):
        """Send a success callback for a transaction that is not paid, to
        the genuine URL (as if it had leaked): only a status query tells."""
        txn = self.find(reference)
        messages = self.callback_messages(txn, claim_paid=True)
        return self._deliver_all([m for _ in range(repeat) for m in messages])

    def page_path(self, txn):
        return '/phone/%s' % txn.provider_id

    def page(self, record):
        match = self.PAGE.match(record.path)
        if not match:
            return None
        txn = self._find(match.group(1))
        if txn is None:
            return 404, '<p>No such STK prompt</p>', {}
        if record.method == 'POST':
            return self._page_action(record, txn)
        return 200, self._page(txn, 'Fake M-Pesa phone %s: pay %s?'
            % (txn.data['phone'], txn.reference), record.path), {}

    def phone_url(self, reference):
        "The demo's stand-in for the customer's phone prompt"
        return '%s/phone/%s' % (self.url, self.find(reference).provider_id)


def _replace_query(url, key, value):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == key for k, _ in query):
        return url
    query = [(k, value if k == key else v) for k, v in query]
    return urllib.parse.urlunsplit(parts._replace(
            query=urllib.parse.urlencode(query)))


# -- a callback receiver ------------------------------------------------------

class _SinkHandler(_NoDelayHandler):

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        sink = self.server.sink
        record = Recorded(self.command, self.path,
            dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                        self.path).query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()}, body,
            time.time())
        if sink.handler:
            status, answer = sink.handler(record)
        else:
            status, answer = sink.status, b'OK'
        record.status = status
        with sink.lock:
            sink.received.append(record)
        self.send_response(status)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class CallbackSink(LoopbackService):
    """A loopback HTTP server that records the callbacks it receives.

    It answers `status` (200), or what `handler(record)` returns as
    ``(status, body bytes)``.
    """
    name = 'callback-sink'
    handler_class = _SinkHandler
    server_attribute = 'sink'

    def __init__(self, host='127.0.0.1', port=0, status=200, handler=None):
        self.host, self.port = host, port
        self.status = status
        self.handler = handler
        self.received = []
        self.lock = threading.Lock()
        self._server = None

    def wait(self, count=1, timeout=5.0):
        "Wait until `count` callbacks arrived; return them"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            return list(self.received)


# -- command line -------------------------------------------------------------

DEMO_CREDENTIALS = {
    'midtrans': {'server_key': 'SB-Mid-server-fake'},
    'xendit': {'secret_key': 'xnd_development_fake',
        'callback_token': 'fake-callback-token'},
    'duitku': {'merchant_code': 'DS00001', 'api_key': 'fake-duitku-api-key'},
    'mpesa': {'consumer_key': 'fake-consumer-key',
        'consumer_secret': 'fake-consumer-secret', 'shortcode': '174379',
        'passkey': 'fake-passkey'},
    }


def new_credentials():
    """Random credentials of the four fakes, in the shape of
    DEMO_CREDENTIALS (the demo generates them once per machine, so no key
    of it lives in the repository)"""
    def token():
        return secrets.token_urlsafe(18)
    return {
        'midtrans': {'server_key': 'SB-Mid-server-' + token()},
        'xendit': {'secret_key': 'xnd_development_' + token(),
            'callback_token': token()},
        'duitku': {'merchant_code': 'DS%05d' % secrets.randbelow(10 ** 5),
            'api_key': token()},
        'mpesa': {'consumer_key': token(), 'consumer_secret': token(),
            'shortcode': '174379', 'passkey': token()},
        }


def start_all(host='127.0.0.1', port_base=0, callback_url=None,
        credentials=None):
    """Start the four fakes with the demo credentials (or `credentials`, by
    provider, over them) on ports port_base..+3 (0: any free ports); return
    them by name."""
    def port(offset):
        return port_base + offset if port_base else 0

    def keys(name):
        return {**DEMO_CREDENTIALS[name], **(credentials or {}).get(name, {})}
    fakes = {
        'midtrans': FakeMidtrans(notification_url=callback_url, host=host,
            port=port(0), **keys('midtrans')),
        'xendit': FakeXendit(callback_url=callback_url, host=host,
            port=port(1), **keys('xendit')),
        'duitku': FakeDuitku(host=host, port=port(2), **keys('duitku')),
        'mpesa': FakeMpesa(host=host, port=port(3), **keys('mpesa')),
        }
    started = []
    try:
        for fake in fakes.values():
            started.append(fake.start())
    except OSError:
        for fake in started:
            fake.stop()
        raise
    return fakes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port-base', type=int, default=18600,
        help="Midtrans on this port, Xendit +1, Duitku +2, M-Pesa +3")
    parser.add_argument('--callback-url',
        help="Midtrans' dashboard notification URL and Xendit's invoice "
        "callback URL")
    parser.add_argument('--credentials-file',
        help="a JSON file of credentials by provider (the shape of "
        "DEMO_CREDENTIALS, e.g. from new_credentials()) used instead of the "
        "fixed ones; they are not printed")
    options = parser.parse_args(argv)
    credentials = None
    if options.credentials_file:
        with open(options.credentials_file) as fp:
            credentials = json.load(fp)
    # the handlers come before the lines a supervisor waits for: a SIGTERM
    # sent as soon as they are read must stop the fakes cleanly (exit 0)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *a: stop.set())
    fakes = start_all(options.host, options.port_base, options.callback_url,
        credentials=credentials)
    for name, fake in fakes.items():
        if credentials is None:
            print('name=%s url=%s credentials=%s' % (name, fake.url,
                    json.dumps(DEMO_CREDENTIALS[name])), flush=True)
        else:
            print('name=%s url=%s pages=%s/_fake/' % (
                    name, fake.url, fake.url), flush=True)
    stop.wait()
    for fake in fakes.values():
        fake.stop()


if __name__ == '__main__':
    main()
