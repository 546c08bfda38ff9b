# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""RADIUS Dynamic Authorization (RFC 5176): a router's CoA port, and the
client helpers that talk to one.

``CoaPeer`` stands in for the CoA/Disconnect port of a router (MikroTik
listens on UDP 3799 when "incoming" RADIUS is enabled): it records every
request it gets, decoded with FreeRADIUS's own dictionaries, and answers by a
policy: ACK, NAK (with an Error-Cause) or no answer at all, to simulate a
router that is down or unreachable.

``send_coa`` / ``send_disconnect`` are what the product uses to change or end
a live session: they send one request with pyrad, retry on timeout, and
return a ``CoaResult`` whose ``outcome`` is ``'ack'``, ``'nak'``,
``'timeout'`` or ``'error'`` (a socket error, e.g. an unknown host name).

Python API::

    from tools.radius_peer import CoaPeer, send_coa, send_disconnect

    with CoaPeer(secret='router-secret',
            policy={'coa': 'nak', 'disconnect': 'ack'}) as peer:
        host, port = peer.address
        result = send_coa(host, 'router-secret',
            {'User-Name': 'alice', 'Mikrotik-Rate-Limit': '1M/2M'},
            port=port)
        assert result.outcome == 'nak'
        result = send_disconnect(host, 'router-secret',
            {'User-Name': 'alice'}, port=port)
        assert result.outcome == 'ack'
        assert [r.kind for r in peer.requests] == ['coa', 'disconnect']

Command line (a CoA port for the demo, printing what it receives)::

    python -m tools.radius_peer --port 3799 --secret s3cret --coa nak

See docs/radius.md.
"""

import argparse
import functools
import logging
import os
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from pyrad import packet as radius_packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

__all__ = [
    'ACK', 'NAK', 'TIMEOUT', 'ERROR', 'IGNORE', 'DICTIONARY_DIR',
    'DICTIONARY_FILES', 'CoaPeer', 'CoaRequest', 'CoaResult',
    'decode_attributes', 'dictionary_paths', 'load_dictionary',
    'send_coa', 'send_disconnect', 'send_dynamic',
    ]

ACK, NAK, TIMEOUT, ERROR, IGNORE = 'ack', 'nak', 'timeout', 'error', 'ignore'

DICTIONARY_DIR = '/usr/share/freeradius'
# FreeRADIUS's own dictionaries (Debian package freeradius-common): RADIUS,
# accounting, extensions (Message-Authenticator, Event-Timestamp,
# Acct-*-Gigawords), dynamic authorization (Error-Cause) and MikroTik's
# vendor attributes (Mikrotik-Rate-Limit, Mikrotik-Address-List, ...).
DICTIONARY_FILES = (
    'dictionary.rfc2865', 'dictionary.rfc2866', 'dictionary.rfc2869',
    'dictionary.rfc3576', 'dictionary.rfc5176', 'dictionary.mikrotik',
    )

_CODE_NAMES = {
    radius_packet.CoARequest: 'CoA-Request',
    radius_packet.CoAACK: 'CoA-ACK',
    radius_packet.CoANAK: 'CoA-NAK',
    radius_packet.DisconnectRequest: 'Disconnect-Request',
    radius_packet.DisconnectACK: 'Disconnect-ACK',
    radius_packet.DisconnectNAK: 'Disconnect-NAK',
    }
_KINDS = {
    radius_packet.CoARequest: 'coa',
    radius_packet.DisconnectRequest: 'disconnect',
    }
_REPLY_CODES = {
    ('coa', ACK): radius_packet.CoAACK,
    ('coa', NAK): radius_packet.CoANAK,
    ('disconnect', ACK): radius_packet.DisconnectACK,
    ('disconnect', NAK): radius_packet.DisconnectNAK,
    }


def dictionary_paths(directory=None, extra=()):
    "The paths of FreeRADIUS's dictionary files that pyrad loads."
    directory = directory or os.environ.get(
        'ISP_RADIUS_DICTIONARY_DIR', DICTIONARY_DIR)
    paths = []
    for name in tuple(DICTIONARY_FILES) + tuple(extra):
        path = name if os.path.isabs(name) else os.path.join(directory, name)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"RADIUS dictionary {path} is missing: install the Debian "
                "package freeradius-common (pulled in by freeradius)")
        paths.append(path)
    return paths


def _known_skip(record):
    "pyrad cannot type Vendor-Specific itself (vsa): expected, not news."
    return not (record.getMessage().startswith('Skipped 1 unsupported')
        and '(data type vsa)' in record.getMessage())


@functools.cache
def load_dictionary(directory=None, extra=()):
    """The pyrad dictionary built from FreeRADIUS's own dictionary files
    (cached: build it once per process, it is only read afterwards)."""
    logger = logging.getLogger('pyrad')
    logger.addFilter(_known_skip)
    try:
        return Dictionary(*dictionary_paths(directory, tuple(extra)))
    finally:
        logger.removeFilter(_known_skip)


def decode_attributes(pkt):
    """The attributes of a pyrad packet as {name: [values]}, in packet
    order; values are decoded by the dictionary (named integer values come
    back as their names), unknown attributes keep their number as name."""
    result = {}
    for key in pkt.keys():
        try:
            values = pkt[key]
        except (KeyError, TypeError, ValueError):
            values = [v for v in pkt.get(key, [])]
        name = key if isinstance(key, str) else str(key)
        result.setdefault(name, []).extend(values)
    return result


def _secret(value):
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass
class CoaRequest:
    "A request received by a CoaPeer."
    kind: str  # 'coa' or 'disconnect'
    code: int
    id: int
    source: tuple
    attributes: dict
    valid: bool  # authenticator (and Message-Authenticator) verified
    answer: str | None  # 'ack', 'nak' or None (not answered)
    duplicate: bool = False  # a retransmission of an earlier request
    received: float = field(default_factory=time.time)

    @property
    def code_name(self):
        return _CODE_NAMES.get(self.code, str(self.code))

    def get(self, name, default=None):
        "The first value of an attribute, or default."
        values = self.attributes.get(name)
        return values[0] if values else default


class CoaPeer:
    """A router's CoA/Disconnect port on loopback (UDP), in a thread.

    ``policy`` says how requests are answered: a dict ``{'coa': answer,
    'disconnect': answer}`` where an answer is ``'ack'``, ``'nak'`` or
    ``'ignore'`` (or None: no reply, the sender times out), or a callable
    ``policy(request) -> answer`` for anything smarter (e.g. ACK only the
    sessions it knows). Requests with a wrong secret are recorded with
    ``valid=False`` and never answered, like a router does. A NAK carries
    ``Error-Cause = error_cause`` unless it is None.
    """

    def __init__(self, secret, host='127.0.0.1', port=0, policy=None,
            error_cause='Session-Context-Not-Found', dictionary=None,
            echo=None):
        self.secret = _secret(secret)
        self.host = host
        self.port = port
        self.error_cause = error_cause
        self.dictionary = (load_dictionary() if dictionary is None
            else dictionary)
        self.echo = echo
        self._policy = {'coa': ACK, 'disconnect': ACK}
        self.set_policy(policy)
        self._requests = []
        self._seen = set()
        self._lock = threading.Condition()
        self._socket = None
        self._thread = None
        self._stop = threading.Event()

    # policy
    def set_policy(self, policy=None, **answers):
        """Change the answers: ``set_policy({'coa': 'nak'})``,
        ``set_policy(disconnect='ignore')`` or ``set_policy(callable)``."""
        if callable(policy):
            self._policy = policy
            return
        if not isinstance(self._policy, dict):
            self._policy = {'coa': ACK, 'disconnect': ACK}
        for kind, answer in dict(policy or {}, **answers).items():
            if kind not in ('coa', 'disconnect'):
                raise ValueError(f"unknown request kind {kind!r}")
            answer = answer or IGNORE
            if answer not in (ACK, NAK, IGNORE):
                raise ValueError(f"unknown answer {answer!r}")
            self._policy[kind] = answer

    def _answer(self, request):
        if callable(self._policy):
            answer = self._policy(request)
        else:
            answer = self._policy[request.kind]
        return answer if answer in (ACK, NAK) else None

    # life cycle
    def start(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f'coa-peer-{self.port}', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
            self._thread = None
        if self._socket:
            self._socket.close()
            self._socket = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        return (self.host, self.port)

    # records
    @property
    def requests(self):
        "A copy of the requests received so far, oldest first."
        with self._lock:
            return list(self._requests)

    def clear(self):
        with self._lock:
            self._requests.clear()
            self._seen.clear()

    def wait_for(self, count=1, timeout=5):
        """Wait until at least count requests arrived; return them all
        (raises TimeoutError with what did arrive otherwise)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._requests)} of {count} CoA requests "
                        f"arrived: {self._requests!r}")
                self._lock.wait(left)
            return list(self._requests)

    # the server
    def _serve(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self._socket], [], [], 0.1)
            if not ready:
                continue
            try:
                data, source = self._socket.recvfrom(4096)
            except OSError:
                continue
            try:
                self._handle(data, source)
            except Exception as exception:  # a bad packet never stops it
                if self.echo:
                    print(f"coa-peer: dropped packet from {source}: "
                        f"{exception!r}", file=self.echo, flush=True)

    def _decode(self, data):
        pkt = radius_packet.CoAPacket(
            packet=data, dict=self.dictionary, secret=self.secret)
        if pkt.code not in _KINDS:
            raise radius_packet.PacketError(
                f"not a CoA/Disconnect-Request: code {pkt.code}")
        valid = pkt.VerifyCoARequest()
        if valid and pkt.message_authenticator:
            # RFC 5176 section 3.3: computed with the Request Authenticator
            # zeroed, as for Accounting-Request
            valid = pkt.verify_message_authenticator()
        return pkt, valid

    def _handle(self, data, source):
        pkt, valid = self._decode(data)
        key = (source, pkt.id, pkt.authenticator)
        request = CoaRequest(
            kind=_KINDS[pkt.code], code=pkt.code, id=pkt.id, source=source,
            attributes=decode_attributes(pkt) if valid else {},
            valid=valid, answer=None, duplicate=key in self._seen)
        if valid:
            request.answer = self._answer(request)
        with self._lock:
            self._seen.add(key)
            self._requests.append(request)
            self._lock.notify_all()
        if self.echo:
            print(f"coa-peer: {request.code_name} from {source[0]}:"
                f"{source[1]} id={request.id} valid={valid} "
                f"answer={request.answer or '-'} {request.attributes}",
                file=self.echo, flush=True)
        if not request.answer:
            return
        reply = pkt.CreateReply()
        reply.code = _REPLY_CODES[request.kind, request.answer]
        if request.answer == NAK and self.error_cause:
            reply['Error-Cause'] = self.error_cause
        self._socket.sendto(reply.ReplyPacket(), source)


@dataclass
class CoaResult:
    "The outcome of send_coa / send_disconnect."
    outcome: str  # 'ack', 'nak', 'timeout' or 'error'
    code: int | None = None
    attributes: dict = field(default_factory=dict)
    elapsed: float = 0.0
    error: str | None = None

    @property
    def ok(self):
        return self.outcome == ACK

    def __bool__(self):
        return self.ok

    @property
    def error_cause(self):
        values = self.attributes.get('Error-Cause')
        return values[0] if values else None


def _set_attributes(pkt, attributes):
    for name, value in (attributes or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            pkt.AddAttribute(name, item)


def send_dynamic(kind, host, secret, attributes, port=3799, timeout=3.0,
        retries=2, source=None, dictionary=None):
    """Send a CoA-Request (kind 'coa') or a Disconnect-Request (kind
    'disconnect') and wait for the answer.

    ``attributes`` maps dictionary names to a value or a list of values
    (``{'User-Name': 'alice', 'Acct-Session-Id': '81a00001',
    'Mikrotik-Rate-Limit': '1M/2M'}``). The request is sent at most
    ``retries`` times (at least once), waiting ``timeout`` seconds each time,
    from ``source`` (a local address, or (address, port)) when given.
    Never raises for network trouble: the outcome says what happened."""
    codes = {'coa': radius_packet.CoARequest,
        'disconnect': radius_packet.DisconnectRequest}
    if kind not in codes:
        raise ValueError(f"unknown request kind {kind!r}")
    client = Client(server=host, coaport=port, secret=_secret(secret),
        dict=load_dictionary() if dictionary is None else dictionary,
        retries=max(1, retries),
        timeout=timeout)
    start = time.monotonic()
    pkt = client.CreateCoAPacket(code=codes[kind])
    _set_attributes(pkt, attributes)
    try:
        try:
            if source:
                client.bind(
                    source if isinstance(source, tuple) else (source, 0))
            reply = client.SendPacket(pkt)
        except Timeout:
            return CoaResult(TIMEOUT, elapsed=time.monotonic() - start,
                error=f"no answer to {client.retries} attempt(s) of "
                f"{timeout} s")
        except OSError as exception:
            return CoaResult(ERROR, error=str(exception),
                elapsed=time.monotonic() - start)
    finally:
        client._CloseSocket()
    acks = (radius_packet.CoAACK, radius_packet.DisconnectACK)
    naks = (radius_packet.CoANAK, radius_packet.DisconnectNAK)
    if reply.code in acks:
        outcome = ACK
    elif reply.code in naks:
        outcome = NAK
    else:
        outcome = ERROR
    return CoaResult(outcome, code=reply.code,
        attributes=decode_attributes(reply), elapsed=time.monotonic() - start,
        error=None if outcome != ERROR else f"unexpected code {reply.code}")


def send_coa(host, secret, attributes, **kwargs):
    """Send a CoA-Request (change a live session, e.g. its
    Mikrotik-Rate-Limit or Mikrotik-Address-List). See send_dynamic."""
    return send_dynamic('coa', host, secret, attributes, **kwargs)


def send_disconnect(host, secret, attributes, **kwargs):
    "Send a Disconnect-Request (end a live session). See send_dynamic."
    return send_dynamic('disconnect', host, secret, attributes, **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.radius_peer',
        description="A router's CoA/Disconnect port on loopback: prints "
        "and answers every request.")
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=3799)
    parser.add_argument('--secret-env', default='ISP_COA_SECRET',
        help="environment variable holding the shared secret "
        "(default %(default)s)")
    parser.add_argument('--secret', help="the shared secret (development "
        "only: prefer --secret-env)")
    for kind in ('coa', 'disconnect'):
        parser.add_argument(f'--{kind}', choices=[ACK, NAK, IGNORE],
            default=ACK, help=f"answer to {kind} requests (default ack)")
    args = parser.parse_args(argv)
    secret = args.secret or os.environ.get(args.secret_env)
    if not secret:
        parser.error(f"give --secret or set {args.secret_env}")
    peer = CoaPeer(secret, host=args.host, port=args.port,
        policy={'coa': args.coa, 'disconnect': args.disconnect},
        echo=sys.stdout)
    with peer:
        print(f"CoA peer listening on {args.host}:{peer.port}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
