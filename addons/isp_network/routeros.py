# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""A small RouterOS API client on top of librouteros' protocol layer.

It keeps every value as the string the router sent (librouteros turns
'4821' into 4821 and 'yes' into True), logs in with the plain method and
falls back to the MD5 challenge when the router answers with one (RouterOS
before 6.43), and maps every failure to two exceptions: `Unreachable`
(network, login, timeout: the router may be fine later) and `CommandError`
(the router refused a command).  It needs no database.
"""
import hashlib
import re
import socket
import ssl

import librouteros
from librouteros.api import Api
from librouteros.exceptions import LibRouterosError, TrapError
from librouteros.login import encode_password

DEFAULT_PORT = 8728
DEFAULT_SSL_PORT = 8729
_DURATION_RE = re.compile(r'(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)')


class RouterOSError(Exception):
    "A problem talking to a router"


class Unreachable(RouterOSError):
    "The router cannot be reached or refused the login"


class CommandError(RouterOSError):
    "The router answered a command with a trap"

    def __init__(self, command, message):
        super().__init__('%s: %s' % (command, message))
        self.command = command
        self.message = message


class RawApi(Api):
    "librouteros' Api without its value casting"

    def readSentence(self):  # noqa: N802
        reply_word, words = self.protocol.readSentence()
        values = {}
        for word in words:
            if word.startswith('='):
                key, _, value = word[1:].partition('=')
                values[key] = value
        return reply_word, values


def _login(api, username, password, method):
    if method == 'challenge':
        reply = list(api.rawCmd('/login'))
        challenge = reply[0]['ret'] if reply else ''
    else:
        reply = list(api.rawCmd(
                '/login', '=name=%s' % username, '=password=%s' % password))
        challenge = reply[0].get('ret') if reply else None
        if not challenge:
            return
        if method == 'plain':
            raise Unreachable(
                "the router asks for the challenge login (RouterOS < 6.43)")
    list(api.rawCmd('/login', '=name=%s' % username,
            '=response=%s' % encode_password(challenge, password)))


class CertificateError(Unreachable):
    "The router's API-SSL certificate is not the one trusted"


def fingerprint(der):
    "The SHA-256 fingerprint of a DER certificate, as AA:BB:..."
    digest = hashlib.sha256(der).hexdigest().upper()
    return ':'.join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text):
    "AA:BB:... from a fingerprint written with or without colons"
    digits = re.sub(r'[^0-9A-Fa-f]', '', text or '').upper()
    return ':'.join(digits[i:i + 2] for i in range(0, len(digits), 2))


class _SSLWrapper:
    """Wrap the socket in TLS and check the router's certificate: against
    `ca` (PEM) when given, and against `expected` (a SHA-256 fingerprint)
    when given; record the one seen in `seen` (trust on first use).  Never
    anonymous cipher suites: a router without a certificate is refused."""

    def __init__(self, host, expected=None, ca=None):
        self.host = host
        self.expected = normalize_fingerprint(expected) or None
        self.seen = None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # routers' certificates name an address or nothing useful
        context.check_hostname = False
        if ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=ca)
        else:
            # checked below against the trusted fingerprint
            context.verify_mode = ssl.CERT_NONE
        self.context = context

    def __call__(self, sock):
        try:
            wrapped = self.context.wrap_socket(
                sock, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exception:
            raise CertificateError(
                "the router's certificate is not signed by the router's CA "
                "(%s)" % exception.verify_message) from exception
        except ssl.SSLError as exception:
            raise CertificateError(
                "TLS refused (%s): the router must present a certificate on "
                "api-ssl (anonymous TLS is not accepted)" % (
                    exception.reason or exception)) from exception
        der = wrapped.getpeercert(binary_form=True)
        if not der:
            wrapped.close()
            raise CertificateError(
                "the router presents no certificate on api-ssl")
        self.seen = fingerprint(der)
        if self.expected and self.seen != self.expected:
            wrapped.close()
            raise CertificateError(
                "the router's certificate changed: its fingerprint is %s, "
                "the trusted one %s; if the router's certificate was "
                "replaced on purpose, clear the trusted fingerprint" % (
                    self.seen, self.expected))
        return wrapped


def connect(host, username, password, port=None, use_ssl=False, timeout=10,
        login_method='auto', ssl_fingerprint=None, ssl_ca=None):
    """Return a logged in `Client` or raise `Unreachable`.  With `use_ssl`
    the router's certificate is verified against `ssl_ca` and/or
    `ssl_fingerprint`; the client's `fingerprint` is the one seen."""
    if port is None:
        port = DEFAULT_SSL_PORT if use_ssl else DEFAULT_PORT
    password = '' if password is None else str(password)
    wrapper = _SSLWrapper(host, ssl_fingerprint, ssl_ca) if use_ssl else None
    try:
        api = librouteros.connect(
            host, username or '', password, port=port, timeout=timeout,
            subclass=RawApi, encoding='utf-8', ssl_wrapper=wrapper,
            login_method=lambda api, user, pwd: _login(
                api, user, pwd, login_method))
    except TrapError as exception:
        raise Unreachable("login refused: %s" % exception) from exception
    except (OSError, LibRouterosError, ValueError, KeyError,
            IndexError) as exception:
        raise Unreachable(_describe(exception)) from exception
    client = Client(api)
    client.fingerprint = wrapper.seen if wrapper else None
    return client


def _describe(exception):
    if isinstance(exception, socket.timeout):
        return "timed out"
    if isinstance(exception, ConnectionRefusedError):
        return "connection refused"
    text = str(exception) or exception.__class__.__name__
    return text


class Client:
    "A logged in session; every method raises `RouterOSError`"

    def __init__(self, api):
        self.api = api
        self.commands = 0
        # the SHA-256 fingerprint of the router's API-SSL certificate
        self.fingerprint = None

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def close(self):
        try:
            self.api.close()
        except Exception:  # noqa: BLE001 (closing a broken socket)
            pass

    def command(self, command, *words):
        "Run `command` with raw API words and return its rows"
        self.commands += 1
        try:
            return list(self.api.rawCmd(command, *words))
        except TrapError as exception:
            raise CommandError(command, exception.message) from exception
        except (OSError, LibRouterosError, ValueError) as exception:
            raise Unreachable(
                '%s: %s' % (command, _describe(exception))) from exception

    @staticmethod
    def _words(values):
        words = []
        for key, value in values.items():
            if isinstance(value, bool):
                value = 'yes' if value else 'no'
            words.append('=%s=%s' % (key, '' if value is None else value))
        return words

    def print(self, path, proplist=None, **query):
        "Rows of `path`, optionally filtered by equality on `query`"
        words = []
        if proplist:
            words.append('=.proplist=%s' % ','.join(proplist))
        for key, value in query.items():
            words.append('?%s=%s' % (key.replace('_', '-'), value))
        return self.command(path + '/print', *words)

    def add(self, path, **values):
        rows = self.command(path + '/add', *self._words(values))
        return rows[0].get('ret') if rows else None

    def set(self, path, item_id, **values):
        words = ['=.id=%s' % item_id] + self._words(values)
        self.command(path + '/set', *words)

    def unset(self, path, item_id, name):
        self.command(path + '/unset', '=.id=%s' % item_id,
            '=value-name=%s' % name)

    def remove(self, path, *item_ids):
        if item_ids:
            self.command(path + '/remove', '=.id=%s' % ','.join(item_ids))

    def resource(self):
        rows = self.print('/system/resource')
        return rows[0] if rows else {}

    def identity(self):
        rows = self.print('/system/identity')
        return rows[0].get('name') if rows else None


def parse_duration(text):
    "Seconds of a RouterOS duration such as '1w2d3h4m5s' or '00:01:02'"
    if text is None or text == '':
        return None
    text = str(text)
    if ':' in text:
        seconds = 0
        days = 0
        if 'd' in text:
            day_part, _, text = text.partition('d')
            days = int(day_part)
        for part in text.split(':'):
            seconds = seconds * 60 + int(float(part))
        return days * 86400 + seconds
    units = {'w': 604800, 'd': 86400, 'h': 3600, 'm': 60, 's': 1,
        'ms': 0.001, 'us': 0.000001}
    total = 0
    for number, unit in _DURATION_RE.findall(text):
        total += float(number) * units[unit]
    return int(total)
