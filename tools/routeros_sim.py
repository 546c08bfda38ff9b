# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""MikroTik RouterOS API simulator (pure standard library).

Stands in for MikroTik routers in the demo and in the tests: it speaks the
real binary API protocol (plain and API-SSL), supports both login flavours,
``.proplist``, ``.tag``, queries with ``?#`` stack operations, ``/cancel``
and ``listen``, keeps per-menu state for the PPP, hotspot and firewall
address-list menus and can inject faults (down, slow, drop, ghost writes).

Python API::

    from tools.routeros_sim import Router, start_routers

    with start_routers(2, version='6.49.10') as (r1, r2):
        host, port = r1.address
        r1.seed(secrets=5000, active=3000, prefix='CKP')
        r1.set_fault('slow', delay_ms=200)
        r1.menu('/ppp/secret').find(name='CKP123')

Command line::

    python -m tools.routeros_sim --count 3 --base-port 18728

See docs/routeros-simulator.md for the full description.
"""

import argparse
import asyncio
import atexit
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import itertools
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import ssl as ssl_lib
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = [
    'ControlServer', 'Field', 'Menu', 'MenuSpec', 'ProtocolError', 'Router',
    'SimulatorError', 'SingletonMenu', 'TrapError', 'decode_length',
    'decode_sentence', 'encode_length', 'encode_sentence', 'encode_word',
    'format_date', 'format_uptime', 'main', 'parse_duration',
    'parse_version', 'self_signed_certificate', 'start_routers',
]

# ---------------------------------------------------------------------------
# Wire protocol
# ---------------------------------------------------------------------------

ENCODING = 'utf-8'
ENCODING_ERRORS = 'surrogateescape'
MAX_WORD_LENGTH = 0xFFFFFFFF
#: Longest word the simulator accepts from a client (protects memory).
MAX_INBOUND_WORD = 16 * 1024 * 1024
_LENGTH_MASKS = {2: 0x3FFF, 3: 0x1FFFFF, 4: 0xFFFFFFF}


class ProtocolError(ValueError):
    "The byte stream does not follow the RouterOS API encoding."


def encode_length(length):
    "Encode a word length on 1 to 5 bytes like RouterOS does."
    if length < 0 or length > MAX_WORD_LENGTH:
        raise ValueError(f'word length out of range: {length}')
    if length < 0x80:
        return bytes((length,))
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, 'big')
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, 'big')
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, 'big')
    return b'\xf0' + length.to_bytes(4, 'big')


def length_size(control):
    "Number of bytes of an encoded length given its first byte."
    if control < 0x80:
        return 1
    if control < 0xC0:
        return 2
    if control < 0xE0:
        return 3
    if control < 0xF0:
        return 4
    if control == 0xF0:
        return 5
    raise ProtocolError(f'reserved control byte 0x{control:02X}')


def decode_length(data, offset=0):
    """Decode the length starting at ``data[offset]``.

    Return ``(length, bytes used)`` or None when ``data`` is too short.
    """
    if offset >= len(data):
        return None
    size = length_size(data[offset])
    if len(data) - offset < size:
        return None
    if size == 1:
        return data[offset], 1
    if size == 5:
        return int.from_bytes(data[offset + 1:offset + 5], 'big'), 5
    value = int.from_bytes(data[offset:offset + size], 'big')
    return value & _LENGTH_MASKS[size], size


def encode_word(word):
    "Encode one word (str or bytes) with its length prefix."
    if isinstance(word, str):
        word = word.encode(ENCODING, ENCODING_ERRORS)
    return encode_length(len(word)) + word


def encode_sentence(words):
    "Encode a sentence: its words followed by the empty word."
    return b''.join(map(encode_word, words)) + b'\x00'


def decode_sentence(data, offset=0, max_word=MAX_INBOUND_WORD):
    """Decode one sentence from ``data`` starting at ``offset``.

    Return ``(words, next offset)`` or None when the sentence is incomplete.
    """
    words = []
    pos = offset
    end = len(data)
    while True:
        decoded = decode_length(data, pos)
        if decoded is None:
            return None
        length, used = decoded
        pos += used
        if length == 0:
            return words, pos
        if length > max_word:
            raise ProtocolError(f'word of {length} bytes is too long')
        if end - pos < length:
            return None
        words.append(
            bytes(data[pos:pos + length]).decode(ENCODING, ENCODING_ERRORS))
        pos += length


def _tagged(words, tag):
    return words if tag is None else [*words, f'.tag={tag}']


# ---------------------------------------------------------------------------
# RouterOS value formats
# ---------------------------------------------------------------------------

MONTHS = ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep',
    'oct', 'nov', 'dec')
_UNITS = (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60))
_DURATION_RE = re.compile(
    r'(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?\s*'
    r'(?:(?P<ch>\d+):(?P<cm>\d{1,2}):(?P<cs>\d{1,2})'
    r'|(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?)')
_DURATION_SECONDS = {
    'w': 604800, 'd': 86400, 'h': 3600, 'ch': 3600, 'm': 60, 'cm': 60,
    's': 1, 'cs': 1}


def format_uptime(seconds):
    "Format seconds like RouterOS' API does: ``1w2d3h4m5s``."
    rest = max(0, int(seconds))
    parts = []
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f'{rest // size}{unit}')
            rest %= size
    if rest or not parts:
        parts.append(f'{rest}s')
    return ''.join(parts)


def parse_duration(text):
    "Parse ``1w2d3h4m5s``, ``1d 01:02:03``, ``01:02:03`` or seconds."
    text = str(text).strip().lower()
    if text.isdigit():
        return int(text)
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise ValueError(f'invalid duration {text!r}')
    return sum(int(value) * _DURATION_SECONDS[key]
        for key, value in match.groupdict().items() if value)


def format_date(timestamp, iso=True):
    """Format a UTC timestamp as RouterOS prints dates.

    RouterOS 7.10 and later: ``2025-01-02 10:11:12``; older releases:
    ``jan/02/2025 10:11:12``.
    """
    t = time.gmtime(timestamp)
    if iso:
        return time.strftime('%Y-%m-%d %H:%M:%S', t)
    return (f'{MONTHS[t.tm_mon - 1]}/{t.tm_mday:02d}/{t.tm_year} '
        f'{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}')


def parse_version(version):
    "Return the numeric part of a RouterOS version as a tuple of ints."
    numbers = []
    for part in str(version).split()[0].split('.'):
        digits = ''.join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers) or (0,)


def normalize_version(version):
    "Add the release channel RouterOS shows: ``7.16.2 (stable)``."
    version = str(version).strip()
    if '(' in version:
        return version
    channel = 'long-term' if parse_version(version)[0] < 7 else 'stable'
    return f'{version} ({channel})'


def _id_key(item_id):
    try:
        return int(item_id[1:], 16)
    except ValueError:
        return -1


def _normalize_id(token):
    try:
        return f'*{int(token[1:], 16):X}'
    except ValueError:
        return token


# ---------------------------------------------------------------------------
# Errors and messages
# ---------------------------------------------------------------------------

MSG_NO_SUCH_ITEM = 'no such item'
MSG_UNKNOWN_PARAMETER = 'unknown parameter'
MSG_NO_SUCH_COMMAND = 'no such command'
MSG_NO_SUCH_PREFIX = 'no such command prefix'
MSG_BAD_LOGIN = 'invalid user name or password (6)'
MSG_BAD_LOGIN_LEGACY = 'cannot log in'
MSG_NOT_LOGGED_IN = 'not logged in'
MSG_QUIT = 'session terminated on request'
MSG_BAD_QUERY = 'invalid query'


class SimulatorError(Exception):
    "Misuse of the simulator's Python API (not a RouterOS answer)."


class TrapError(Exception):
    "A condition that RouterOS reports with ``!trap``."

    def __init__(self, message, category=None):
        super().__init__(message)
        self.message = message
        self.category = category

    def sentence(self):
        words = ['!trap']
        if self.category is not None:
            words.append(f'=category={self.category}')
        words.append(f'=message={self.message}')
        return words


# ---------------------------------------------------------------------------
# Menu schemas
# ---------------------------------------------------------------------------

#: Field kinds whose stored value is a float timestamp formatted on output.
DYNAMIC_KINDS = frozenset({'date', 'uptime', 'countdown'})


@dataclass(frozen=True)
class Field:
    """One property of a menu item.

    ``default`` None means the property is absent until set (RouterOS omits
    unset optional properties from ``print``).
    """
    name: str
    default: object = None
    kind: str = 'str'
    choices: tuple = ()
    ref: str | None = None
    writable: bool = True


def _ro(name, default=None, kind='str'):
    return Field(name, default, kind, writable=False)


@dataclass(frozen=True)
class MenuSpec:
    "Static description of a RouterOS menu."
    path: str
    fields: tuple
    verbs: frozenset
    unique: tuple = ()
    duplicate: str = ''
    required: tuple = ()
    indexed: tuple = ()
    builtin: tuple = ()
    builtin_message: str = 'failure: can not remove builtin item'
    stamp: tuple = ()
    on_remove: str | None = None
    singleton: bool = False

    @functools.cached_property
    def field_map(self):
        return {f.name: f for f in self.fields}

    @functools.cached_property
    def dynamic(self):
        return tuple(
            (f.name, f.kind) for f in self.fields if f.kind in DYNAMIC_KINDS)


LIST_VERBS = frozenset({
    'print', 'getall', 'add', 'set', 'remove', 'enable', 'disable', 'unset',
    'listen'})
STATUS_VERBS = frozenset({'print', 'getall', 'remove', 'listen'})
# printed only to a user with the `sensitive` policy
SENSITIVE = {'/ppp/secret': 'password', '/ip/hotspot/user': 'password'}
WRITE_VERBS = frozenset({'add', 'set', 'remove', 'enable', 'disable',
    'unset'})
PRINT_OPTIONS = frozenset({
    'detail', 'without-paging', 'terse', 'brief', 'stats', 'count-only',
    '.proplist'})
SERVICES = ('any', 'async', 'l2tp', 'ovpn', 'pppoe', 'pptp', 'sstp')
TRISTATE = ('default', 'no', 'yes')

PPP_PROFILE = MenuSpec(
    path='/ppp/profile',
    fields=(
        Field('name'),
        Field('local-address'),
        Field('remote-address'),
        Field('bridge-learning', 'default', 'enum', TRISTATE),
        Field('use-mpls', 'default', 'enum', TRISTATE),
        Field('use-compression', 'default', 'enum', TRISTATE),
        Field('use-encryption', 'default', 'enum', TRISTATE + ('required',)),
        Field('only-one', 'default', 'enum', TRISTATE),
        Field('change-tcp-mss', 'default', 'enum', TRISTATE),
        Field('use-upnp', 'default', 'enum', TRISTATE),
        Field('address-list', ''),
        Field('on-up', ''),
        Field('on-down', ''),
        Field('rate-limit'),
        Field('dns-server'),
        Field('incoming-filter'),
        Field('outgoing-filter'),
        Field('session-timeout'),
        Field('idle-timeout'),
        _ro('default', 'false', 'bool'),
        Field('comment'),
    ),
    verbs=LIST_VERBS, unique=('name',), indexed=('name',),
    duplicate='failure: profile with the same name already exists',
    required=(('name', 'failure: profile must have a name'),),
    builtin=(
        ('*0', {'name': 'default', 'default': 'true'}),
        ('*FFFFFFFE', {'name': 'default-encryption', 'use-encryption': 'yes',
            'default': 'true'}),
    ),
    builtin_message='failure: can not remove default profile',
)

PPP_SECRET = MenuSpec(
    path='/ppp/secret',
    fields=(
        Field('name'),
        Field('service', 'any', 'enum', SERVICES),
        Field('caller-id', ''),
        Field('password', ''),
        Field('profile', 'default', 'ref', ref='/ppp/profile'),
        Field('routes', ''),
        Field('ipv6-routes', ''),
        Field('limit-bytes-in', '0', 'int'),
        Field('limit-bytes-out', '0', 'int'),
        Field('local-address', kind='ip'),
        Field('remote-address', kind='ip'),
        Field('remote-ipv6-prefix'),
        _ro('last-logged-out', 0.0, 'date'),
        _ro('last-caller-id'),
        _ro('last-disconnect-reason'),
        Field('disabled', 'false', 'bool'),
        Field('comment'),
    ),
    verbs=LIST_VERBS, unique=('name',), indexed=('name',),
    duplicate='failure: secret with the same name already exists',
    required=(('name', 'failure: secret must have a name'),),
)

PPP_ACTIVE = MenuSpec(
    path='/ppp/active',
    fields=(
        _ro('name'),
        _ro('service', 'pppoe'),
        _ro('caller-id', ''),
        _ro('address'),
        _ro('uptime', 0.0, 'uptime'),
        _ro('encoding', ''),
        _ro('session-id'),
        _ro('limit-bytes-in', '0'),
        _ro('limit-bytes-out', '0'),
        _ro('radius', 'false', 'bool'),
        _ro('comment'),
    ),
    verbs=STATUS_VERBS, indexed=('name',), on_remove='_ppp_session_closed',
)

ADDRESS_LIST = MenuSpec(
    path='/ip/firewall/address-list',
    fields=(
        Field('list'),
        Field('address'),
        _ro('creation-time', 0.0, 'date'),
        _ro('dynamic', 'false', 'bool'),
        Field('disabled', 'false', 'bool'),
        Field('comment'),
        Field('timeout', kind='countdown'),
    ),
    verbs=LIST_VERBS, unique=('list', 'address'), indexed=('list', 'address'),
    duplicate='failure: already have such entry',
    required=(('list', 'failure: list must be specified'),
        ('address', 'failure: address must be specified')),
    stamp=('creation-time',),
)

HOTSPOT_PROFILE = MenuSpec(
    path='/ip/hotspot/user/profile',
    fields=(
        Field('name'),
        Field('idle-timeout', 'none'),
        Field('keepalive-timeout', '2m'),
        Field('status-autorefresh', '1m'),
        Field('shared-users', '1', 'int'),
        Field('rate-limit'),
        Field('add-mac-cookie', 'true', 'bool'),
        Field('mac-cookie-timeout', '3d', 'duration'),
        Field('address-list'),
        Field('transparent-proxy', 'false', 'bool'),
        Field('session-timeout'),
        _ro('default', 'false', 'bool'),
        Field('comment'),
    ),
    verbs=LIST_VERBS, unique=('name',), indexed=('name',),
    duplicate='failure: profile with the same name already exists',
    required=(('name', 'failure: profile must have a name'),),
    builtin=(('*0', {'name': 'default', 'default': 'true'}),),
    builtin_message='failure: can not remove default profile',
)

HOTSPOT_USER = MenuSpec(
    path='/ip/hotspot/user',
    fields=(
        Field('server', 'all'),
        Field('name'),
        Field('password', ''),
        Field('profile', 'default', 'ref', ref='/ip/hotspot/user/profile'),
        Field('mac-address'),
        Field('address', kind='ip'),
        Field('email'),
        Field('limit-uptime', kind='duration'),
        Field('limit-bytes-in', kind='int'),
        Field('limit-bytes-out', kind='int'),
        Field('limit-bytes-total', kind='int'),
        _ro('uptime', '0s'),
        _ro('bytes-in', '0'),
        _ro('bytes-out', '0'),
        _ro('packets-in', '0'),
        _ro('packets-out', '0'),
        _ro('dynamic', 'false', 'bool'),
        Field('disabled', 'false', 'bool'),
        Field('comment'),
    ),
    verbs=LIST_VERBS, unique=('server', 'name'), indexed=('name',),
    duplicate='failure: already have user with this name for this server',
    required=(('name', 'failure: user must have a name'),),
)

HOTSPOT_ACTIVE = MenuSpec(
    path='/ip/hotspot/active',
    fields=(
        _ro('server', 'hotspot1'),
        _ro('user'),
        _ro('domain', ''),
        _ro('address'),
        _ro('mac-address'),
        _ro('login-by', 'http-chap'),
        _ro('uptime', 0.0, 'uptime'),
        _ro('idle-time', '0s'),
        _ro('session-time-left', None, 'countdown'),
        _ro('idle-timeout'),
        _ro('bytes-in', '0'),
        _ro('bytes-out', '0'),
        _ro('packets-in', '0'),
        _ro('packets-out', '0'),
        _ro('limit-bytes-total'),
        _ro('radius', 'false', 'bool'),
    ),
    verbs=STATUS_VERBS, indexed=('user',),
    on_remove='_hotspot_session_closed',
)

INTERFACE = MenuSpec(
    path='/interface',
    fields=(
        Field('name'),
        _ro('default-name'),
        _ro('type', 'ether'),
        Field('mtu', '1500', 'int'),
        _ro('actual-mtu', '1500'),
        _ro('l2mtu', '1598'),
        _ro('max-l2mtu', '9796'),
        _ro('mac-address'),
        _ro('last-link-up-time', 0.0, 'date'),
        _ro('link-downs', '0'),
        _ro('running', 'true', 'bool'),
        Field('disabled', 'false', 'bool'),
        Field('comment'),
    ),
    verbs=frozenset({'print', 'getall', 'set', 'enable', 'disable',
        'listen'}),
    unique=('name',), indexed=('name',),
    duplicate='failure: already have interface with such name',
    builtin=tuple(
        (f'*{n}', {'name': f'ether{n}', 'default-name': f'ether{n}',
            'mac-address': f'4C:5E:0C:00:00:0{n}'})
        for n in range(1, 6)),
    stamp=('last-link-up-time',),
)

SYSTEM_RESOURCE = MenuSpec(
    path='/system/resource',
    fields=tuple(_ro(name) for name in (
        'uptime', 'version', 'build-time', 'factory-software', 'free-memory',
        'total-memory', 'cpu', 'cpu-count', 'cpu-frequency', 'cpu-load',
        'free-hdd-space', 'total-hdd-space', 'write-sect-since-reboot',
        'write-sect-total', 'bad-blocks', 'architecture-name', 'board-name',
        'platform')),
    verbs=frozenset({'print', 'getall'}), singleton=True,
)

SYSTEM_IDENTITY = MenuSpec(
    path='/system/identity',
    fields=(Field('name', 'MikroTik'),),
    verbs=frozenset({'print', 'getall', 'set'}), singleton=True,
)

# RouterOS' user policies; a group prints the granted ones (RouterOS 6 also
# the others, prefixed with '!')
POLICIES = ('local', 'telnet', 'ssh', 'ftp', 'reboot', 'read', 'write',
    'policy', 'test', 'winbox', 'password', 'web', 'sniff', 'sensitive',
    'api', 'romon', 'rest-api')
_GROUP_POLICIES = {
    'full': POLICIES,
    'read': ('local', 'telnet', 'ssh', 'reboot', 'read', 'test', 'winbox',
        'password', 'web', 'sniff', 'sensitive', 'api', 'romon', 'rest-api'),
    'write': tuple(p for p in POLICIES if p not in (
            'ftp', 'policy', 'sensitive')),
}
USER_GROUP = MenuSpec(
    path='/user/group',
    fields=(Field('name'), Field('policy', ''), Field('skin', 'default'),
        Field('comment')),
    verbs=frozenset({'print', 'getall'}), unique=('name',),
    indexed=('name',),
    builtin=tuple((f'*{n + 1}', {'name': name, 'policy': ','.join(policy)})
        for n, (name, policy) in enumerate(_GROUP_POLICIES.items())),
)
USER = MenuSpec(
    path='/user',
    fields=(Field('name'), Field('group', 'read'), Field('address', ''),
        _ro('last-logged-in'), Field('disabled', 'false', 'bool'),
        Field('comment')),
    verbs=frozenset({'print', 'getall'}), unique=('name',),
    indexed=('name',),
)

MENU_SPECS = (PPP_PROFILE, PPP_SECRET, PPP_ACTIVE, ADDRESS_LIST,
    HOTSPOT_PROFILE, HOTSPOT_USER, HOTSPOT_ACTIVE, INTERFACE, SYSTEM_RESOURCE,
    SYSTEM_IDENTITY, USER_GROUP, USER)

# ---------------------------------------------------------------------------
# Value conversion (API input -> stored value)
# ---------------------------------------------------------------------------

_BOOLEANS = {'yes': 'true', 'true': 'true', 'no': 'false', 'false': 'false'}


def _no_match(field):
    return TrapError(f'input does not match any value of {field.name}')


def _bad_value(field):
    return TrapError(f'invalid value for argument {field.name}')


def _convert_str(router, field, raw):
    return raw


def _convert_int(router, field, raw):
    raw = raw.strip()
    if not raw.isdigit():
        raise _bad_value(field)
    return str(int(raw))


def _convert_bool(router, field, raw):
    try:
        return _BOOLEANS[raw.strip().lower()]
    except KeyError:
        raise _no_match(field) from None


def _convert_enum(router, field, raw):
    if raw not in field.choices:
        raise _no_match(field)
    return raw


def _convert_ref(router, field, raw):
    if raw not in router._menus[field.ref].indexes['name']:
        raise _no_match(field)
    return raw


def _convert_ip(router, field, raw):
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise _bad_value(field) from None


def _convert_duration(router, field, raw):
    if raw.strip().lower() == 'none':
        return None
    try:
        return format_uptime(parse_duration(raw))
    except ValueError:
        raise _bad_value(field) from None


def _convert_countdown(router, field, raw):
    if raw.strip().lower() == 'none':
        return None
    try:
        return time.time() + parse_duration(raw)
    except ValueError:
        raise _bad_value(field) from None


CONVERTERS = {
    'str': _convert_str, 'int': _convert_int, 'bool': _convert_bool,
    'enum': _convert_enum, 'ref': _convert_ref, 'ip': _convert_ip,
    'duration': _convert_duration, 'countdown': _convert_countdown,
}

FORMATTERS = {
    'date': lambda router, value, now: format_date(value, router.iso_dates),
    'uptime': lambda router, value, now: format_uptime(now - value),
    'countdown': lambda router, value, now: format_uptime(
        math.ceil(value - now)),
}


def _py_key(key):
    return '.id' if key in ('id', '_id') else key.replace('_', '-')


def _py_value(value):
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if value is None:
        return None
    return str(value)


def _field_value(row, name):
    value = row.get(name)
    return '' if value is None else value


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------

def _sort_key(value):
    if value.isdigit():
        return (0, int(value))
    if value.startswith('*'):
        return (0, _id_key(value))
    try:
        return (1, int(ipaddress.ip_address(value)))
    except ValueError:
        return (2, value)


def _compare(left, right):
    a, b = _sort_key(left), _sort_key(right)
    if a[0] != b[0]:
        a, b = left, right
    return (a > b) - (a < b)


def _need(stack, count):
    if len(stack) < count:
        raise TrapError(MSG_BAD_QUERY)


def _run_ops(ops, stack):
    "Apply a ``?#`` operation string to the query stack."
    i = 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j].isdigit():
            j += 1
        if j > i:
            index = int(ops[i:j])
            _need(stack, index + 1)
            value = stack[-1 - index]
            if j == len(ops):
                stack[:] = [value]
                return
            stack.append(value)
            i = j
            continue
        op = ops[i]
        if op in '!.':
            _need(stack, 1)
            value = stack.pop()
            if op == '!':
                stack.append(not value)
        elif op in '|&':
            _need(stack, 2)
            right, left = stack.pop(), stack.pop()
            stack.append((left or right) if op == '|' else (left and right))
        else:
            raise TrapError(MSG_BAD_QUERY)
        i += 1


def _parse_query_word(word):
    body = word[1:]
    if body.startswith('#'):
        return ('ops', body[1:])
    if body.startswith('='):
        body = body[1:]
    if body[:1] in ('<', '>'):
        name, _, value = body[1:].partition('=')
        return ('lt' if body[0] == '<' else 'gt', name, value)
    if body.startswith('-'):
        return ('absent', body[1:])
    name, sep, value = body.partition('=')
    if not sep:
        return ('present', name)
    return ('eq', name, value)


def _term_value(term, row):
    kind, name = term[0], term[1]
    if kind == 'eq':
        return _field_value(row, name) == term[2]
    if kind == 'present':
        return row.get(name) is not None
    if kind == 'absent':
        return row.get(name) is None
    actual = row.get(name)
    if actual is None:
        return False
    result = _compare(actual, term[2])
    return result < 0 if kind == 'lt' else result > 0


class Query:
    "A compiled list of ``?`` query words, evaluated as RouterOS does."

    def __init__(self, words, normalize=None):
        self.terms = []
        for word in words:
            term = _parse_query_word(word)
            if normalize is not None and term[0] in ('eq', 'lt', 'gt'):
                term = (term[0], term[1], normalize(term[1], term[2]))
            self.terms.append(term)
        # the stack depth does not depend on the values: check it once
        self.matches({})
        self.equalities = None
        if all(term[0] == 'eq' for term in self.terms):
            self.equalities = {term[1]: term[2] for term in self.terms}

    def matches(self, row):
        stack = []
        for term in self.terms:
            if term[0] == 'ops':
                _run_ops(term[1], stack)
            else:
                stack.append(_term_value(term, row))
        return all(stack)


def _proplist(value):
    if value is None:
        return None
    return [name for name in value.split(',') if name]


def _render(row, proplist):
    if proplist is None:
        return ['!re', *(f'={key}={value}' for key, value in row.items()
                if value is not None)]
    return ['!re', *(f'={key}={row[key]}' for key in proplist
            if row.get(key) is not None)]


# ---------------------------------------------------------------------------
# Menus
# ---------------------------------------------------------------------------

@dataclass(eq=False)
class _Listener:
    conn: object
    tag: str | None
    proplist: list | None


class _MenuBase:
    def __init__(self, router, spec):
        self.router = router
        self.spec = spec
        self.fields = spec.field_map
        self.listeners = []

    @property
    def path(self):
        return self.spec.path

    def _lock(self):
        return self.router._lock

    def _convert(self, attrs):
        values = {}
        for key, raw in attrs.items():
            field = self.fields.get(key)
            if field is None or not field.writable:
                raise TrapError(MSG_UNKNOWN_PARAMETER)
            if raw == '' and field.default is None:
                values[key] = None
            else:
                values[key] = CONVERTERS[field.kind](self.router, field, raw)
        return values

    def _normalize(self, name, value):
        if name == '.id' and value.startswith('*'):
            return _normalize_id(value)
        field = self.fields.get(name)
        if field is not None and field.kind == 'bool':
            return _BOOLEANS.get(value.lower(), value)
        return value

    def _print(self, cmd):
        args = cmd.attrs
        for key in args:
            if key not in PRINT_OPTIONS:
                raise TrapError(MSG_UNKNOWN_PARAMETER)
        proplist = _proplist(
            args.get('.proplist', cmd.api_attrs.get('proplist')))
        rows = self.select(cmd.queries)
        if 'count-only' in args:
            return [['!done', f'=ret={len(rows)}']]
        sentences = [_render(row, proplist) for row in rows]
        sentences.append(['!done'])
        return sentences

    def _listen(self, cmd, conn):
        if conn is None:
            raise TrapError(MSG_NO_SUCH_COMMAND)
        listener = _Listener(
            conn, cmd.tag, _proplist(cmd.attrs.get('.proplist')))
        self.listeners.append(listener)
        conn.running[cmd.tag] = (self, listener)
        return []

    def _notify(self, row):
        for listener in self.listeners:
            listener.conn.push(_render(row, listener.proplist), listener.tag)


class Menu(_MenuBase):
    """Items of one RouterOS list menu (``/ppp/secret``...).

    The public methods (``find``, ``filter``, ``get``, ``all``, ``add``,
    ``set``, ``remove``, ``clear``, ``len()``) are thread-safe and accept
    Python style keywords (``remote_address='10.0.0.2'``, ``disabled=True``).
    Rows are returned as dicts of API strings, as a client would print them.
    Python-side writes ignore the ``ghost_write`` fault.
    """

    def __init__(self, router, spec):
        super().__init__(router, spec)
        self.items = {}
        self.indexes = {name: {} for name in spec.indexed}
        self.template = {f.name: f.default for f in spec.fields
            if f.default is not None}
        self.timed = False
        self._builtin_ids = frozenset(item_id for item_id, _ in spec.builtin)
        self._sorted = False
        self._reset()

    def _reset(self):
        self.items.clear()
        for index in self.indexes.values():
            index.clear()
        now = time.time()
        numbers = []
        for item_id, values in sorted(
                self.spec.builtin, key=lambda b: _id_key(b[0])):
            item = dict(self.template)
            for name in self.spec.stamp:
                item[name] = now
            item.update(values)
            self._store(item_id, item)
            numbers.append(_id_key(item_id))
        small = [n for n in numbers if n < 0xF0000000]
        self._sorted = len(small) != len(numbers)
        self.next_id = max(small, default=0) + 1

    # -- storage (lock held) ------------------------------------------------

    def _alloc_id(self):
        item_id = f'*{self.next_id:X}'
        self.next_id += 1
        return item_id

    def _store(self, item_id, values):
        item = {'.id': item_id}
        for name in self.fields:
            value = values.get(name)
            if value is not None:
                item[name] = value
        if len(item) <= len(values):
            # properties unknown to the schema (old state files)
            item.update((k, v) for k, v in values.items()
                if v is not None and k not in item)
        self.items[item_id] = item
        for name, index in self.indexes.items():
            value = item.get(name)
            if value is not None:
                index.setdefault(value, set()).add(item_id)
        if item.get('timeout') is not None:
            self.timed = True
        return item

    def _unindex(self, item):
        for name, index in self.indexes.items():
            ids = index.get(item.get(name))
            if ids is not None:
                ids.discard(item['.id'])
                if not ids:
                    del index[item[name]]

    def _insert(self, values):
        item = self._store(self._alloc_id(), values)
        if self.listeners:
            self._notify(self.view(item, time.time()))
        return item

    def _replace(self, item_id, values):
        self._unindex(self.items[item_id])
        item = self._store(item_id, values)
        if self.listeners:
            self._notify(self.view(item, time.time()))
        return item

    def _delete(self, item_id, reason='admin-request'):
        item = self.items.pop(item_id)
        self._unindex(item)
        for listener in self.listeners:
            listener.conn.push(
                ['!re', f'=.id={item_id}', '=.dead=true'], listener.tag)
        if self.spec.on_remove:
            getattr(self.router, self.spec.on_remove)(item, reason)
        return item

    def _purge(self, now):
        if not self.timed:
            return
        expired = [item_id for item_id, item in self.items.items()
            if item.get('timeout') is not None and item['timeout'] <= now]
        for item_id in expired:
            self._delete(item_id, 'timeout')

    def _ordered(self, ids=None):
        if ids is None:
            if not self._sorted:
                return list(self.items.values())
            ids = self.items
        return [self.items[i] for i in sorted(ids, key=_id_key)]

    def _candidates(self, criteria):
        "Ids possibly matching ``criteria`` from the indexes, or None."
        if '.id' in criteria:
            item_id = criteria['.id']
            return {item_id} if item_id in self.items else set()
        sets = [self.indexes[key].get(value, ())
            for key, value in criteria.items() if key in self.indexes]
        if not sets:
            return None
        return min(sets, key=len)

    def view(self, item, now):
        "The item as printed: dynamic properties formatted."
        if not self.spec.dynamic:
            return item
        row = dict(item)
        for name, kind in self.spec.dynamic:
            value = row.get(name)
            if value is not None:
                row[name] = FORMATTERS[kind](self.router, value, now)
        return row

    def select(self, query_words=()):
        "Rows matching the API query words, in print order (lock held)."
        now = time.time()
        self._purge(now)
        query = Query(query_words, self._normalize) if query_words else None
        if query is None:
            return [self.view(item, now) for item in self._ordered()]
        ids = None
        if query.equalities is not None:
            ids = self._candidates(query.equalities)
        rows = []
        for item in self._ordered(ids):
            row = self.view(item, now)
            if query.matches(row):
                rows.append(row)
        return rows

    # -- API verbs (lock held) ---------------------------------------------

    def _resolve(self, token):
        token = token.strip()
        if token.startswith('*'):
            item_id = _normalize_id(token)
            if item_id in self.items:
                return item_id
        elif 'name' in self.indexes:
            ids = self.indexes['name'].get(token)
            if ids:
                return min(ids, key=_id_key)
        raise TrapError(MSG_NO_SUCH_ITEM)

    def _resolve_many(self, value):
        if not value or not value.strip():
            raise TrapError(MSG_NO_SUCH_ITEM)
        ids = [self._resolve(token) for token in value.split(',')]
        return list(dict.fromkeys(ids))

    @staticmethod
    def _target(attrs):
        attrs = dict(attrs)
        target = attrs.pop('.id', None)
        numbers = attrs.pop('numbers', None)
        return target or numbers, attrs

    def _check_unique(self, item, item_id):
        if not self.spec.unique:
            return
        criteria = {name: item.get(name) for name in self.spec.unique}
        if any(value is None for value in criteria.values()):
            return
        candidates = self._candidates(criteria)
        if candidates is None:
            candidates = self.items
        for other in candidates:
            if other == item_id:
                continue
            row = self.items[other]
            if all(row.get(k) == v for k, v in criteria.items()):
                raise TrapError(self.spec.duplicate)

    def _after_convert(self, item):
        if 'timeout' in self.fields and 'dynamic' in self.fields:
            item['dynamic'] = _py_value(item.get('timeout') is not None)

    def api_add(self, attrs, ghost=False):
        if ghost:
            return self._alloc_id()
        values = self._convert(attrs)
        for name, message in self.spec.required:
            if not values.get(name):
                raise TrapError(message)
        item = dict(self.template)
        now = time.time()
        for name in self.spec.stamp:
            item[name] = now
        item.update(values)
        self._after_convert(item)
        self._check_unique(item, None)
        return self._insert(item)['.id']

    def api_set(self, attrs, ghost=False):
        target, attrs = self._target(attrs)
        if ghost:
            return
        ids = self._resolve_many(target)
        values = self._convert(attrs)
        if len(ids) > 1 and any(name in values for name in self.spec.unique):
            raise TrapError(self.spec.duplicate)
        updates = []
        for item_id in ids:
            item = {**self.items[item_id], **values}
            self._after_convert(item)
            self._check_unique(item, item_id)
            updates.append((item_id, item))
        for item_id, item in updates:
            self._replace(item_id, item)

    def api_remove(self, attrs, ghost=False):
        target, rest = self._target(attrs)
        if rest:
            raise TrapError(MSG_UNKNOWN_PARAMETER)
        if ghost:
            return
        ids = self._resolve_many(target)
        if self._builtin_ids.intersection(ids):
            raise TrapError(self.spec.builtin_message)
        for item_id in ids:
            self._delete(item_id)

    def api_enable(self, attrs, ghost=False):
        target, _ = self._target(attrs)
        self.api_set({'numbers': target, 'disabled': 'no'}, ghost)

    def api_disable(self, attrs, ghost=False):
        target, _ = self._target(attrs)
        self.api_set({'numbers': target, 'disabled': 'yes'}, ghost)

    def api_unset(self, attrs, ghost=False):
        target, rest = self._target(attrs)
        name = rest.pop('value-name', None)
        field = self.fields.get(name)
        if rest or field is None or not field.writable:
            raise TrapError(MSG_UNKNOWN_PARAMETER)
        if ghost:
            return
        for item_id in self._resolve_many(target):
            item = dict(self.items[item_id])
            item[name] = field.default
            self._after_convert(item)
            self._replace(item_id, item)

    def handle(self, verb, cmd, conn=None, ghost=False):
        "Run one API verb and return the reply sentences (lock held)."
        if verb in ('print', 'getall'):
            return self._print(cmd)
        if verb == 'listen':
            return self._listen(cmd, conn)
        if verb == 'add':
            return [['!done', f'=ret={self.api_add(cmd.attrs, ghost)}']]
        getattr(self, 'api_' + verb)(cmd.attrs, ghost)
        return [['!done']]

    # -- Python API (thread-safe) --------------------------------------------

    def filter(self, **criteria):
        "All rows whose properties equal the given values."
        wanted = {_py_key(k): _py_value(v) for k, v in criteria.items()}
        with self._lock():
            now = time.time()
            self._purge(now)
            rows = []
            for item in self._ordered(self._candidates(wanted)):
                row = self.view(item, now)
                if all(row.get(k) is None if v is None
                        else _field_value(row, k) == v
                        for k, v in wanted.items()):
                    rows.append(dict(row))
            return rows

    def find(self, **criteria):
        "The first row matching ``criteria`` or None."
        rows = self.filter(**criteria)
        return rows[0] if rows else None

    def get(self, item_id):
        "The row with this ``.id`` (or name) or None."
        with self._lock():
            try:
                item = self.items[self._resolve(item_id)]
            except TrapError:
                return None
            return dict(self.view(item, time.time()))

    def all(self):
        return self.filter()

    def __len__(self):
        with self._lock():
            self._purge(time.time())
            return len(self.items)

    def __iter__(self):
        return iter(self.all())

    def add(self, **values):
        "Add an item like ``/add`` would; return its id (raises TrapError)."
        attrs = {_py_key(k): _py_value(v) for k, v in values.items()}
        with self._lock():
            return self.api_add(attrs)

    def set(self, item, **values):
        "Set properties of an item given by id or name (raises TrapError)."
        attrs = {_py_key(k): _py_value(v) or '' for k, v in values.items()}
        attrs['numbers'] = item
        with self._lock():
            self.api_set(attrs)

    def remove(self, *items):
        "Remove items given by id or name (raises TrapError)."
        with self._lock():
            self.api_remove({'numbers': ','.join(items)})

    def clear(self):
        "Remove every item except the builtin ones."
        with self._lock():
            for item_id in list(self.items):
                if item_id not in self._builtin_ids:
                    self._delete(item_id)

    def to_dict(self):
        with self._lock():
            return {'next_id': self.next_id,
                'items': [dict(item) for item in self.items.values()]}

    def load_dict(self, data):
        with self._lock():
            self.items.clear()
            for index in self.indexes.values():
                index.clear()
            for item in data.get('items', ()):
                self._store(item['.id'], item)
            self.next_id = max(int(data.get('next_id', 1)), self.next_id)


class SingletonMenu(_MenuBase):
    "A menu with a single unnamed item (``/system/identity``...)."

    def __init__(self, router, spec, provider=None):
        super().__init__(router, spec)
        self.values = {f.name: f.default for f in spec.fields
            if f.default is not None}
        self.provider = provider

    def current(self):
        with self._lock():
            if self.provider is not None:
                return self.provider()
            return dict(self.values)

    def select(self, query_words=()):
        row = self.current()
        if query_words and not Query(query_words, self._normalize).matches(
                row):
            return []
        return [row]

    def handle(self, verb, cmd, conn=None, ghost=False):
        if verb in ('print', 'getall'):
            return self._print(cmd)
        if verb == 'listen':
            return self._listen(cmd, conn)
        values = self._convert(cmd.attrs)
        if not ghost:
            self.values.update(values)
            self._notify(self.current())
        return [['!done']]

    def get(self):
        return self.current()

    def set(self, **values):
        attrs = {_py_key(k): _py_value(v) for k, v in values.items()}
        with self._lock():
            self.values.update(self._convert(attrs))


# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

@dataclass
class Command:
    "One API sentence sent by a client."
    path: str
    attrs: dict
    queries: list
    tag: str | None = None
    api_attrs: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, words):
        attrs, queries, api_attrs = {}, [], {}
        tag = None
        for word in words[1:]:
            if word.startswith('='):
                key, _, value = word[1:].partition('=')
                attrs[key] = value
            elif word.startswith('?'):
                queries.append(word)
            elif word.startswith('.'):
                key, _, value = word[1:].partition('=')
                if key == 'tag':
                    tag = value
                else:
                    api_attrs[key] = value
        path = words[0].rstrip('/') if words[0] != '/' else words[0]
        return cls(path, attrs, queries, tag, api_attrs)


class _Connection:
    "One API session, served on the router's event loop."

    def __init__(self, router, reader, writer):
        self.router = router
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.peer = writer.get_extra_info('peername')
        self.logged_in = False
        self.user = None
        self.challenge = None
        self.running = {}
        self.closed = False

    # -- output --------------------------------------------------------------

    def _write(self, data):
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def push(self, words, tag):
        "Queue an unsolicited sentence (thread-safe, used by ``listen``)."
        data = encode_sentence(_tagged(words, tag))
        if threading.current_thread() is self.router._thread:
            self._write(data)
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._write, data)

    async def send(self, sentences, tag=None):
        delay = self.router._reply_delay()
        if delay:
            await asyncio.sleep(delay)
        self._write(b''.join(
            encode_sentence(_tagged(words, tag)) for words in sentences))
        await self.writer.drain()

    async def fatal(self, message):
        self._write(encode_sentence(['!fatal', message]))
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.router._connection_closed(self)
        with contextlib.suppress(Exception):
            self.writer.close()

    # -- input ---------------------------------------------------------------

    async def serve(self):
        buffer = bytearray()
        try:
            while not self.closed:
                parsed = decode_sentence(buffer)
                if parsed is None:
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    continue
                words, used = parsed
                del buffer[:used]
                if words and not await self.handle(words):
                    break
        except (ProtocolError, ConnectionError, OSError):
            pass
        finally:
            self.close()

    async def handle(self, words):
        "Answer one sentence; return False to end the session."
        cmd = Command.parse(words)
        router = self.router
        router._record(cmd)
        drop = router._take_drop(cmd, self.logged_in)
        if drop is not None:
            if drop:
                self.run(cmd)
            self.close()
            return False
        if cmd.path == '/login':
            await self.send(self.login(cmd), cmd.tag)
            return True
        if not self.logged_in:
            await self.fatal(MSG_NOT_LOGGED_IN)
            return False
        if cmd.path == '/quit':
            await self.fatal(MSG_QUIT)
            return False
        if cmd.path == '/cancel':
            await self.send(self.cancel(cmd))
            return True
        await self.send(self.run(cmd), cmd.tag)
        return True

    def run(self, cmd):
        try:
            return self.router.execute(cmd, self)
        except TrapError as exc:
            return [exc.sentence(), ['!done']]
        except Exception as exc:  # keep the session alive, like RouterOS
            traceback.print_exc()
            return [TrapError(f'failure: simulator error: {exc}', 4)
                .sentence(), ['!done']]

    # -- login ---------------------------------------------------------------

    def login(self, cmd):
        router = self.router
        attrs = cmd.attrs
        name = attrs.get('name', '')
        if 'response' in attrs:
            return self._login_response(name, attrs['response'])
        if 'password' in attrs and not router.legacy_login:
            return self._login_result(
                name, router.check_password(name, attrs['password']))
        # No credentials, or a pre-6.43 router that ignores the plain
        # password and always answers with a challenge.
        self.challenge = secrets.token_bytes(16)
        return [['!done', f'=ret={self.challenge.hex()}']]

    def _login_response(self, name, response):
        router = self.router
        challenge, self.challenge = self.challenge, None
        password = router._users.get(name)
        ok = False
        if (challenge is not None and password is not None
                and not router.plain_only):
            digest = hashlib.md5(
                b'\x00' + password.encode(ENCODING) + challenge,
                usedforsecurity=False).hexdigest()
            ok = hmac.compare_digest(('00' + digest).encode(),
                response.lower().encode(ENCODING, ENCODING_ERRORS))
        return self._login_result(name, ok)

    def _login_result(self, name, ok):
        if ok:
            self.logged_in = True
            self.user = name
            return [['!done']]
        message = (MSG_BAD_LOGIN_LEGACY if self.router.legacy_login
            else MSG_BAD_LOGIN)
        return [['!trap', f'=message={message}'], ['!done']]

    # -- cancel --------------------------------------------------------------

    def cancel(self, cmd):
        target = cmd.attrs.get('tag')
        keys = list(self.running) if target is None else [target]
        interrupted, finished = [], []
        for key in keys:
            entry = self.running.pop(key, None)
            if entry is None:
                continue
            menu, listener = entry
            with self.router._lock:
                with contextlib.suppress(ValueError):
                    menu.listeners.remove(listener)
            interrupted.append(_tagged(
                ['!trap', '=category=2', '=message=interrupted'], key))
            finished.append(_tagged(['!done'], key))
        return [*interrupted, _tagged(['!done'], cmd.tag), *finished]

    def stop_listening(self):
        for menu, listener in self.running.values():
            with contextlib.suppress(ValueError):
                menu.listeners.remove(listener)
        self.running.clear()


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

def _openssl_certificate(openssl, certfile, keyfile):
    subprocess.run([
        openssl, 'req', '-x509', '-newkey', 'ec',
        '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyfile, '-out', certfile, '-days', '3650',
        '-subj', '/CN=routeros-sim'],
        check=True, capture_output=True, timeout=60)


def _cryptography_certificate(certfile, keyfile):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'routeros-sim')])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256()))
    with open(keyfile, 'wb') as file:
        file.write(key.private_bytes(serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    with open(certfile, 'wb') as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))


@functools.cache
def self_signed_certificate():
    """Generate (once per process) a self-signed certificate.

    Return ``(certfile, keyfile)`` in a temporary directory removed at exit.
    Uses the ``openssl`` command line tool, else the ``cryptography``
    package; raise SimulatorError when neither is available.
    """
    directory = tempfile.mkdtemp(prefix='routeros-sim-')
    atexit.register(shutil.rmtree, directory, True)
    certfile = os.path.join(directory, 'cert.pem')
    keyfile = os.path.join(directory, 'key.pem')
    openssl = shutil.which('openssl')
    try:
        if openssl:
            _openssl_certificate(openssl, certfile, keyfile)
        else:
            _cryptography_certificate(certfile, keyfile)
    except ImportError:
        raise SimulatorError(
            'API-SSL needs a certificate: install the openssl command line '
            'tool or the Python "cryptography" package, or pass '
            'certfile=/keyfile= to Router()') from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise SimulatorError(
            f'could not generate a self-signed certificate: {exc}') from exc
    return certfile, keyfile


# RFC 7919 ffdhe2048 group, for the anonymous DH (ADH) cipher suites.
FFDHE2048_PEM = '''-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
'''


@functools.cache
def _dh_params_file():
    directory = tempfile.mkdtemp(prefix='routeros-sim-dh-')
    atexit.register(shutil.rmtree, directory, True)
    path = os.path.join(directory, 'dh.pem')
    with open(path, 'w', encoding='ascii') as file:
        file.write(FFDHE2048_PEM)
    return path


def _server_ssl_context(certfile=None, keyfile=None, anonymous=True,
        certificate=True):
    """TLS context of the API-SSL listener.

    With ``anonymous`` the anonymous DH suites are offered too (TLS 1.2),
    like a RouterOS API-SSL service without a certificate, so clients using
    ``ctx.set_ciphers('ADH:@SECLEVEL=0')`` connect as they do to a router.
    Without ``certificate`` only those are offered (``/ip service`` api-ssl
    with ``certificate=none``, RouterOS' default).
    """
    context = ssl_lib.SSLContext(ssl_lib.PROTOCOL_TLS_SERVER)
    if not certificate:
        context.maximum_version = ssl_lib.TLSVersion.TLSv1_2
        context.set_ciphers('ADH:AECDH:@SECLEVEL=0')
        context.load_dh_params(_dh_params_file())
        return context
    if certfile is None:
        certfile, keyfile = self_signed_certificate()
    context.load_cert_chain(certfile, keyfile)
    if anonymous:
        context.set_ciphers('@SECLEVEL=0:DEFAULT:ADH:AECDH')
        context.load_dh_params(_dh_params_file())
    return context


# ---------------------------------------------------------------------------
# Router
# ---------------------------------------------------------------------------

FAULT_MODES = ('down', 'slow', 'drop', 'ghost_write', 'refuse')
MSG_NO_PERMISSION = 'not enough permissions (9)'
BUILD_TIME = 1728640392.0  # 2024-10-11 09:53:12 UTC
_BOARDS = {
    6: ('CCR1036-8G-2S+', 'tile', 'tilegx', '36', '1200', '6.44.6'),
    7: ('CCR2004-1G-12S+2XS', 'arm64', 'ARM64', '4', '1700', '7.1'),
}


def _fault_params(mode, params):
    params = dict(params)
    result = {}
    if mode == 'slow':
        result['delay_ms'] = float(params.pop('delay_ms', 1000))
        if result['delay_ms'] < 0:
            raise ValueError('delay_ms must be positive')
    elif mode == 'drop':
        result['apply'] = bool(params.pop('apply', False))
        count = params.pop('count', None)
        result['count'] = None if count is None else int(count)
        result['match'] = params.pop('match', None) or None
    elif mode == 'refuse':
        result['match'] = params.pop('match', None) or None
        result['message'] = str(params.pop('message', MSG_NO_PERMISSION))
    if params:
        raise ValueError(
            f'unknown parameter(s) for fault {mode}: {", ".join(params)}')
    return result


def _fault_name(mode):
    name = str(mode).replace('-', '_')
    if name not in FAULT_MODES:
        expected = ', '.join(FAULT_MODES)
        raise ValueError(f'unknown fault {mode!r}, expected one of {expected}')
    return name


class RouterState:
    "Read access to a router's menus, for assertions in tests."

    def __init__(self, router):
        self._router = router

    def menu(self, path):
        return self._router.menu(path)

    @property
    def menus(self):
        return sorted(self._router._menus)

    @property
    def identity(self):
        return self._router.menu('/system/identity').get()['name']

    def to_dict(self):
        return self._router.to_dict()


class Router:
    """One simulated MikroTik router.

    :param name: label used in logs, the CLI and the control channel; also
        the initial ``/system/identity`` name unless ``identity`` is given.
    :param version: RouterOS version, ``7.16.2`` or ``6.49.10 (long-term)``.
    :param legacy_login: behave like RouterOS < 6.43: only the MD5
        challenge login works (a plain ``=password=`` login gets a challenge
        back and the session stays logged out).
    :param plain_only: refuse the MD5 challenge login (RouterOS >= 6.45.1).
    :param ssl: also open an API-SSL listener on ``ssl_port``.
    :param ssl_certificate: False for an API-SSL service without a
        certificate (only the anonymous DH suites, RouterOS' default); by
        default a self-signed certificate of its own (or ``certfile``).
    :param port: TCP port, 0 for an ephemeral one (read back ``router.port``).
    """

    def __init__(self, name='router', version='7.16.2', username='admin',
            password='', *, host='127.0.0.1', port=0, ssl=False, ssl_port=0,
            legacy_login=False, plain_only=False, identity=None,
            board_name=None, architecture_name=None, certfile=None,
            keyfile=None, uptime=0, ssl_certificate=True):
        self.name = name
        self.version = normalize_version(version)
        self.version_info = parse_version(self.version)
        self.major = self.version_info[0]
        self.iso_dates = self.version_info >= (7, 10)
        self.host = host
        self.port = int(port)
        self.ssl = bool(ssl)
        self.ssl_port = int(ssl_port) if self.ssl else None
        self.legacy_login = legacy_login
        self.plain_only = plain_only
        self.certfile = certfile
        self.keyfile = keyfile
        self.ssl_certificate = ssl_certificate
        board = _BOARDS[7 if self.major >= 7 else 6]
        self.board_name = board_name or board[0]
        self.architecture_name = architecture_name or board[1]
        self.resource_overrides = {}
        self.commands = deque(maxlen=10000)
        self._board = board
        self._boot = time.time() - uptime
        self._users = {username: password}
        self._lock = threading.RLock()
        self._faults = {}
        self._conns = set()
        self._tasks = set()
        self._servers = []
        self._loop = None
        self._thread = None
        self._ssl_context = None
        self._sequence = 0
        self._menus = {}
        for spec in MENU_SPECS:
            if spec.singleton:
                provider = (self._resource_values
                    if spec is SYSTEM_RESOURCE else None)
                self._menus[spec.path] = SingletonMenu(self, spec, provider)
            else:
                self._menus[spec.path] = Menu(self, spec)
        self._menus['/system/identity'].values['name'] = identity or name
        self._menus['/user'].add(name=username, group='full')
        self._prefixes = {path[:i] for path in self._menus
            for i in range(1, len(path) + 1) if path[i:i + 1] in ('/', '')}

    def __repr__(self):
        return (f'<Router {self.name} {self.host}:{self.port} '
            f'{self.version}>')

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self):
        return self._thread is not None

    @property
    def address(self):
        return (self.host, self.port)

    def start(self):
        "Start listening; return ``(host, port)``."
        if self._thread is not None:
            return self.address
        if self.ssl and self._ssl_context is None:
            self._ssl_context = _server_ssl_context(
                self.certfile, self.keyfile,
                certificate=self.ssl_certificate)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, args=(self._loop,),
            name=f'routeros-sim-{self.name}', daemon=True)
        self._thread.start()
        try:
            self._call(self._listen())
            if 'down' in self._faults:
                self._call(self._unlisten(True))
        except BaseException:
            self.stop()
            raise
        return self.address

    def stop(self):
        "Close the listeners and every session, stop the event loop."
        if self._thread is None:
            return
        loop, thread = self._loop, self._thread
        try:
            self._call(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._loop = self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @staticmethod
    def _run_loop(loop):
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _call(self, coro, timeout=30):
        if threading.current_thread() is self._thread:
            coro.close()
            raise SimulatorError('cannot be called from the router loop')
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _listen(self):
        servers = []
        try:
            server = await asyncio.start_server(
                self._on_client, self.host, self.port, backlog=1024,
                reuse_address=True)
            servers.append(server)
            self.port = server.sockets[0].getsockname()[1]
            if self.ssl:
                server = await asyncio.start_server(
                    self._on_client, self.host, self.ssl_port,
                    ssl=self._ssl_context, ssl_handshake_timeout=10,
                    backlog=1024, reuse_address=True)
                servers.append(server)
                self.ssl_port = server.sockets[0].getsockname()[1]
        except BaseException:
            for server in servers:
                server.close()
            raise
        self._servers = servers

    async def _unlisten(self, drop_sessions):
        for server in self._servers:
            server.close()
        self._servers = []
        if drop_sessions:
            for conn in list(self._conns):
                conn.close()

    async def _shutdown(self):
        await self._unlisten(True)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _on_client(self, reader, writer):
        if 'down' in self._faults:
            writer.close()
            return
        sock = writer.get_extra_info('socket')
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        self._tasks.add(task)
        conn = _Connection(self, reader, writer)
        with self._lock:
            self._conns.add(conn)
        try:
            await conn.serve()
        except asyncio.CancelledError:
            # end of the session at shutdown: asyncio's stream callback
            # would log the cancellation of this task as an error
            pass
        finally:
            self._tasks.discard(task)

    def _connection_closed(self, conn):
        with self._lock:
            conn.stop_listening()
            self._conns.discard(conn)

    @property
    def connection_count(self):
        "Number of open API sessions."
        with self._lock:
            return len(self._conns)

    # -- users ---------------------------------------------------------------

    def add_user(self, name, password='', group='full'):
        "Allow another API user, of ``group`` (its policies apply)."
        with self._lock:
            self._users[name] = password
            users = self._menus['/user']
            found = users.find(name=name)
            if found:
                users.set(found['.id'], group=group)
            else:
                users.add(name=name, group=group)

    def add_group(self, name, policy):
        "A user group with ``policy``, e.g. ``'read,write,api'``."
        with self._lock:
            self._menus['/user/group'].add(name=name, policy=policy)

    def policies(self, user):
        "The set of policies of ``user`` (None when unknown)."
        with self._lock:
            row = self._menus['/user'].find(name=user)
            if row is None:
                return None
            group = self._menus['/user/group'].find(name=row.get('group'))
            policy = (group or {}).get('policy') or ''
            return {p for p in policy.split(',') if p and p[0] != '!'}

    def check_password(self, name, password):
        expected = self._users.get(name)
        return expected is not None and hmac.compare_digest(
            expected.encode(ENCODING, ENCODING_ERRORS),
            password.encode(ENCODING, ENCODING_ERRORS))

    # -- faults --------------------------------------------------------------

    @property
    def faults(self):
        "Active faults: ``{mode: params}``."
        with self._lock:
            return {mode: dict(params)
                for mode, params in self._faults.items()}

    def set_fault(self, mode, **params):
        """Activate a fault.

        - ``down``: close the listeners and drop every session;
        - ``slow``: ``delay_ms=`` before every reply;
        - ``drop``: close the session after reading a command, without an
          answer; ``apply=True`` runs the command first, ``count=N`` drops
          only the next N commands, ``match='/ppp/secret/add'`` only the
          commands containing this text (``/login`` only when matched
          explicitly);
        - ``ghost_write``: answer add/set/remove/... with ``!done`` (add
          returns a fresh id) without changing anything;
        - ``refuse``: answer the commands containing ``match=`` (every
          command when empty) with a trap, ``message=`` (default ``not
          enough permissions (9)``), as a router whose API user lacks a
          policy or that does not implement the menu.
        """
        mode = _fault_name(mode)
        params = _fault_params(mode, params)
        with self._lock:
            self._faults[mode] = params
        if mode == 'down' and self.running:
            self._call(self._unlisten(True))

    def clear_fault(self, mode=None):
        "Clear one fault, or all of them; ``down`` listens again."
        modes = list(FAULT_MODES) if mode is None else [_fault_name(mode)]
        with self._lock:
            removed = [m for m in modes
                if self._faults.pop(m, None) is not None]
        if 'down' in removed and self.running:
            self._call(self._listen())

    def _reply_delay(self):
        params = self._faults.get('slow')
        return params['delay_ms'] / 1000 if params else 0

    def _take_drop(self, cmd, logged_in):
        with self._lock:
            params = self._faults.get('drop')
            if params is None:
                return None
            match = params['match']
            if match is not None:
                if match not in cmd.path:
                    return None
            elif cmd.path == '/login' or not logged_in:
                return None
            if params['count'] is not None:
                params['count'] -= 1
                if params['count'] <= 0:
                    del self._faults['drop']
            return params['apply']

    # -- commands ------------------------------------------------------------

    def _record(self, cmd):
        self.commands.append(cmd)

    def menu(self, path):
        "The Menu (or SingletonMenu) object for ``path``."
        try:
            return self._menus[path.rstrip('/')]
        except KeyError:
            raise KeyError(f'unknown menu {path!r}') from None

    @property
    def state(self):
        return RouterState(self)

    def execute(self, cmd, conn=None):
        "Run one (logged in) command; return the reply sentences."
        menu_path, _, verb = cmd.path.rpartition('/')
        menu = self._menus.get(menu_path)
        if menu is None or verb not in menu.spec.verbs:
            if menu is not None or cmd.path in self._prefixes:
                raise TrapError(MSG_NO_SUCH_COMMAND)
            raise TrapError(MSG_NO_SUCH_PREFIX)
        refuse = self._faults.get('refuse')
        if refuse and (refuse['match'] is None
                or refuse['match'] in cmd.path):
            raise TrapError(refuse['message'])
        policies = self.policies(conn.user) if conn is not None else None
        if policies is not None and verb in WRITE_VERBS and (
                'write' not in policies):
            raise TrapError(MSG_NO_PERMISSION)
        ghost = verb in WRITE_VERBS and 'ghost_write' in self._faults
        with self._lock:
            replies = menu.handle(verb, cmd, conn, ghost)
        if (menu_path in SENSITIVE and policies is not None
                and 'sensitive' not in policies):
            # RouterOS prints secrets only to a user with `sensitive`
            field = SENSITIVE[menu_path]
            replies = [[w for w in sentence
                    if not w.startswith(f'={field}=')]
                for sentence in replies]
        return replies

    def _resource_values(self):
        now = time.time()
        board = self._board
        total = 1024 * 1024 * 1024 if self.major >= 7 else 4026531840
        items = sum(len(m.items) for m in self._menus.values()
            if isinstance(m, Menu))
        values = {
            'uptime': format_uptime(now - self._boot),
            'version': self.version,
            'build-time': format_date(BUILD_TIME, self.iso_dates),
            'factory-software': board[5],
            'free-memory': str(total - 180 * 1024 * 1024 - items * 512),
            'total-memory': str(total),
            'cpu': board[2],
            'cpu-count': board[3],
            'cpu-frequency': board[4],
            'cpu-load': str(min(99, 1 + len(self._conns))),
            'free-hdd-space': '95875072',
            'total-hdd-space': '134217728',
            'write-sect-since-reboot': '2048',
            'write-sect-total': '1180243',
            'architecture-name': self.architecture_name,
            'board-name': self.board_name,
            'platform': 'MikroTik',
        }
        if self.major < 7:
            values['bad-blocks'] = '0'
        values.update(self.resource_overrides)
        return values

    # -- sessions and seeding ------------------------------------------------

    def _next_sequence(self):
        self._sequence += 1
        number = self._sequence
        address = str(ipaddress.IPv4Address(0x0A400000 + number + 1))
        mac = '02:00:' + ':'.join(f'{b:02X}' for b in number.to_bytes(4,
            'big'))
        return number, address, mac

    def _open_ppp_session(self, secret, address=None, caller_id=None,
            service=None, uptime=0, encoding='', radius=False):
        number, pool_address, mac = self._next_sequence()
        if service is None:
            service = secret.get('service', 'any')
            service = 'pppoe' if service == 'any' else service
        values = dict(self._menus['/ppp/active'].template)
        values.update({
            'name': secret['name'],
            'service': service,
            'caller-id': caller_id or mac,
            'address': address or secret.get('remote-address')
            or pool_address,
            'uptime': time.time() - uptime,
            'encoding': encoding,
            'session-id': f'0x81{number:06X}',
            'radius': _py_value(bool(radius)),
        })
        item = self._menus['/ppp/active']._insert(values)
        self._ppp_profile_lists(secret, item['address'], True)
        return item

    def _ppp_profile_lists(self, secret, address, up):
        """As RouterOS: the address-list of the secret's PPP profile gets
        the session's address as a dynamic entry at connect time, removed
        when the session ends."""
        entries = self._menus['/ip/firewall/address-list']
        lists = []
        if up:
            profiles = self._menus['/ppp/profile']
            ids = profiles.indexes['name'].get(
                secret.get('profile') or 'default')
            profile = profiles.items[min(ids, key=_id_key)] if ids else {}
            lists = [n.strip() for n in (
                    profile.get('address-list') or '').split(',')
                if n.strip()]
        for name in lists:
            found = [item_id for item_id in entries.indexes['address'].get(
                    address, ()) if entries.items[item_id].get('list') == name]
            if not found:
                values = dict(entries.template)
                values.update({'list': name, 'address': address,
                    'creation-time': time.time(), 'dynamic': 'true'})
                entries._insert(values)
        if not up:
            # the entries this session added, whatever its profile is now
            for item_id in list(entries.indexes['address'].get(address, ())):
                entry = entries.items[item_id]
                if (entry.get('dynamic') == 'true'
                        and entry.get('timeout') is None):
                    entries._delete(item_id)

    def ppp_login(self, name, *, address=None, caller_id=None, service=None,
            uptime=0, encoding='', radius=False):
        """Simulate a PPP client logging in with an existing, enabled
        ``/ppp/secret``; create and return its ``/ppp/active`` row."""
        with self._lock:
            secrets_menu = self._menus['/ppp/secret']
            ids = secrets_menu.indexes['name'].get(name)
            if not ids:
                raise SimulatorError(f'no /ppp/secret named {name!r}')
            secret = secrets_menu.items[min(ids, key=_id_key)]
            if secret.get('disabled') == 'true':
                raise SimulatorError(f'/ppp/secret {name!r} is disabled')
            item = self._open_ppp_session(secret, address, caller_id,
                service, uptime, encoding, radius)
            return dict(self._menus['/ppp/active'].view(item, time.time()))

    def ppp_logout(self, name, reason='peer-request'):
        "End the PPP sessions of ``name``; return how many were closed."
        with self._lock:
            active = self._menus['/ppp/active']
            ids = sorted(active.indexes['name'].get(name, ()), key=_id_key)
            for item_id in ids:
                active._delete(item_id, reason)
            return len(ids)

    def _ppp_session_closed(self, item, reason):
        secrets_menu = self._menus['/ppp/secret']
        if item.get('address'):
            self._ppp_profile_lists(None, item['address'], False)
        for secret_id in list(secrets_menu.indexes['name'].get(
                item.get('name'), ())):
            secret = dict(secrets_menu.items[secret_id])
            secret['last-logged-out'] = time.time()
            if self.major >= 7:
                secret['last-caller-id'] = item.get('caller-id', '')
                secret['last-disconnect-reason'] = reason
            secrets_menu._replace(secret_id, secret)

    def hotspot_login(self, user, *, address=None, mac_address=None,
            uptime=0, password=None):
        """Simulate a hotspot login of an existing ``/ip/hotspot/user``
        (refused as RouterOS does: wrong password, disabled, its uptime or
        traffic limit reached, its profile's shared-users all logged in)."""
        with self._lock:
            users = self._menus['/ip/hotspot/user']
            ids = users.indexes['name'].get(user)
            if not ids:
                raise SimulatorError(f'no /ip/hotspot/user named {user!r}')
            record = users.items[min(ids, key=_id_key)]
            if password is not None and password != record.get(
                    'password', ''):
                raise SimulatorError('invalid username or password')
            if record.get('disabled') == 'true':
                raise SimulatorError(f'hotspot user {user!r} is disabled')
            active = self._menus['/ip/hotspot/active']
            time_left, bytes_left = self._hotspot_left(record, time.time())
            if time_left is not None and time_left <= 0:
                raise SimulatorError(f'user {user} has reached uptime limit')
            if bytes_left is not None and bytes_left <= 0:
                raise SimulatorError(f'user {user} has reached traffic limit')
            profiles = self._menus['/ip/hotspot/user/profile']
            profile = profiles.items.get(min(
                    profiles.indexes['name'].get(record.get('profile'),
                        {'*0'}), key=_id_key), {})
            shared = int(profile.get('shared-users') or 1)
            if len(active.indexes['user'].get(user, ())) >= shared:
                raise SimulatorError(f'no more sessions are allowed for '
                    f'user {user}')
            _, pool_address, mac = self._next_sequence()
            values = dict(active.template)
            values.update({
                'user': user,
                'address': address or record.get('address') or pool_address,
                'mac-address': mac_address or record.get('mac-address')
                or mac,
                'uptime': time.time() - uptime,
            })
            if time_left is not None:
                # a countdown: printed as what is left now
                values['session-time-left'] = values['uptime'] + time_left
            if bytes_left is not None:
                values['limit-bytes-total'] = str(bytes_left)
            item = active._insert(values)
            return dict(active.view(item, time.time()))

    @staticmethod
    def _hotspot_left(record, now, session=None):
        """(seconds, bytes) a hotspot user has left (None: no limit), from
        its counters and the open `session`"""
        used_time = parse_duration(record.get('uptime') or '0s')
        used_bytes = (int(record.get('bytes-in') or 0)
            + int(record.get('bytes-out') or 0))
        if session is not None:
            used_time += now - session['uptime']
            used_bytes += (int(session.get('bytes-in') or 0)
                + int(session.get('bytes-out') or 0))
        limit_time = parse_duration(record.get('limit-uptime') or '0s')
        limit_bytes = int(record.get('limit-bytes-total') or 0)
        return (limit_time - used_time if limit_time else None,
            limit_bytes - used_bytes if limit_bytes else None)

    def hotspot_traffic(self, user, *, bytes_in=0, bytes_out=0, seconds=0):
        """Simulate traffic and time on the open hotspot session of
        ``user``: its counters grow by ``bytes_in`` (from the client) and
        ``bytes_out``, its uptime by ``seconds``; a session over the user's
        uptime or traffic limit is ended as RouterOS does.  Return the
        session row, or None when it was ended."""
        with self._lock:
            active = self._menus['/ip/hotspot/active']
            ids = sorted(active.indexes['user'].get(user, ()), key=_id_key)
            if not ids:
                raise SimulatorError(f'no hotspot session of {user!r}')
            session = dict(active.items[ids[0]])
            session['bytes-in'] = str(
                int(session.get('bytes-in') or 0) + int(bytes_in))
            session['bytes-out'] = str(
                int(session.get('bytes-out') or 0) + int(bytes_out))
            session['uptime'] -= seconds
            if session.get('session-time-left') is not None:
                session['session-time-left'] -= seconds
            active._replace(ids[0], session)
            users = self._menus['/ip/hotspot/user']
            record = users.items[min(users.indexes['name'][user],
                    key=_id_key)]
            time_left, bytes_left = self._hotspot_left(
                record, time.time(), session)
            if time_left is not None and time_left <= 0:
                active._delete(ids[0], 'uptime-limit-reached')
                return None
            if bytes_left is not None and bytes_left <= 0:
                active._delete(ids[0], 'traffic-limit-reached')
                return None
            return dict(active.view(active.items[ids[0]], time.time()))

    def hotspot_logout(self, user):
        "End the hotspot sessions of ``user``; return how many were closed."
        with self._lock:
            active = self._menus['/ip/hotspot/active']
            ids = sorted(active.indexes['user'].get(user, ()), key=_id_key)
            for item_id in ids:
                active._delete(item_id, 'user-request')
            return len(ids)

    def _hotspot_session_closed(self, item, reason):
        """Add a closed session's time and traffic to its user's counters
        (RouterOS updates them when the session ends)"""
        users = self._menus['/ip/hotspot/user']
        for user_id in list(users.indexes['name'].get(item.get('user'), ())):
            record = dict(users.items[user_id])
            seconds = parse_duration(record.get('uptime') or '0s')
            record['uptime'] = format_uptime(
                seconds + time.time() - item['uptime'])
            for name in ('bytes-in', 'bytes-out'):
                record[name] = str(int(record.get(name) or 0)
                    + int(item.get(name) or 0))
            users._replace(user_id, record)

    def seed(self, secrets=0, active=0, *, prefix='user', profile='default',
            service='pppoe', start=1):
        """Bulk-create ``secrets`` PPP secrets named ``<prefix><n>`` and open
        ``active`` sessions for enabled secrets without one.

        Return ``{'secrets': created, 'active': opened}``.
        """
        with self._lock:
            menu = self._menus['/ppp/secret']
            if profile not in self._menus['/ppp/profile'].indexes['name']:
                raise SimulatorError(f'no /ppp/profile named {profile!r}')
            names = menu.indexes['name']
            created = 0
            number = start
            while created < secrets:
                name = f'{prefix}{number}'
                if name not in names:
                    values = dict(menu.template)
                    values.update(name=name, password=f'pw{number}',
                        service=service, profile=profile)
                    menu._insert(values)
                    created += 1
                number += 1
            return {'secrets': created, 'active': self._seed_active(active)}

    def _seed_active(self, count):
        sessions = self._menus['/ppp/active'].indexes['name']
        opened = 0
        for secret in list(self._menus['/ppp/secret'].items.values()):
            if opened >= count:
                break
            if (secret.get('disabled') == 'true'
                    or secret['name'] in sessions):
                continue
            self._open_ppp_session(secret)
            opened += 1
        return opened

    # -- state ---------------------------------------------------------------

    def to_dict(self):
        "Serializable state (menus, identity, users, counters)."
        with self._lock:
            return {
                'name': self.name,
                'version': self.version,
                'identity': self._menus['/system/identity'].values['name'],
                'users': dict(self._users),
                'sequence': self._sequence,
                'menus': {path: menu.to_dict()
                    for path, menu in self._menus.items()
                    if isinstance(menu, Menu)},
            }

    def load_dict(self, data):
        "Restore a state produced by ``to_dict``."
        with self._lock:
            for path, menu_data in data.get('menus', {}).items():
                menu = self._menus.get(path)
                if isinstance(menu, Menu):
                    menu.load_dict(menu_data)
            if 'identity' in data:
                self._menus['/system/identity'].values['name'] = (
                    data['identity'])
            self._users.update(data.get('users', {}))
            self._sequence = max(self._sequence, data.get('sequence', 0))

    def info(self):
        "Summary used by the CLI and the control channel."
        with self._lock:
            return {
                'name': self.name,
                'host': self.host,
                'port': self.port,
                'ssl_port': self.ssl_port,
                'version': self.version,
                'running': self.running,
                'faults': self.faults,
                'connections': len(self._conns),
                'secrets': len(self._menus['/ppp/secret'].items),
                'active': len(self._menus['/ppp/active'].items),
            }


@contextlib.contextmanager
def start_routers(count=1, *, names=None, prefix='router', **kwargs):
    """Start ``count`` routers (ephemeral ports unless ``port=`` is given,
    then ``port + i``); yield the list and stop them on exit."""
    names = list(names or (f'{prefix}{i + 1}' for i in range(count)))
    routers = []
    for i, name in enumerate(names):
        options = dict(kwargs)
        for key in ('port', 'ssl_port'):
            if options.get(key):
                options[key] += i
        routers.append(Router(name=name, **options))
    try:
        for router in routers:
            router.start()
        yield routers
    finally:
        for router in routers:
            router.stop()


# ---------------------------------------------------------------------------
# Control channel (HTTP + JSON on loopback)
# ---------------------------------------------------------------------------

_ROUTE_ROUTER = r'/routers/(?P<name>[^/]+)'


class ControlServer:
    """Tiny HTTP/JSON endpoint to drive routers from another process.

    ``GET /routers``, ``GET /routers/<name>``,
    ``POST /routers/<name>/fault`` ``{"mode": "slow", "delay_ms": 200}``
    (``{"mode": "none"}`` clears all),
    ``DELETE /routers/<name>/fault[/<mode>]``,
    ``POST /routers/<name>/seed`` ``{"secrets": 10, "active": 5}``,
    ``POST /routers/<name>/ppp/login`` ``{"name": .., "address": ..,
    "caller_id": ..}``, ``POST /routers/<name>/ppp/logout`` ``{"name": ..}``,
    ``POST /routers/<name>/hotspot/login|logout`` ``{"user": ..}``,
    ``GET /routers/<name>/menu?path=/ppp/secret[&name=x]``, ``POST /save``.
    """

    def __init__(self, routers, host='127.0.0.1', port=0, save=None):
        self.routers = {router.name: router for router in routers}
        self.host = host
        self.port = port
        self.save = save
        self._httpd = None
        self._thread = None
        self._routes = [
            ('GET', re.compile(r'/routers'), self._list),
            ('GET', re.compile(_ROUTE_ROUTER), self._info),
            ('POST', re.compile(_ROUTE_ROUTER + r'/fault'), self._set_fault),
            ('PUT', re.compile(_ROUTE_ROUTER + r'/fault'), self._set_fault),
            ('DELETE', re.compile(_ROUTE_ROUTER + r'/fault(?:/(?P<mode>.+))?'),
                self._clear_fault),
            ('POST', re.compile(_ROUTE_ROUTER + r'/seed'), self._seed),
            ('POST', re.compile(
                _ROUTE_ROUTER + r'/ppp/(?P<action>login|logout)'),
                self._ppp),
            ('POST', re.compile(
                _ROUTE_ROUTER + r'/hotspot/(?P<action>login|logout)'),
                self._hotspot),
            ('GET', re.compile(_ROUTE_ROUTER + r'/menu'), self._menu),
            ('POST', re.compile(r'/save'), self._save),
        ]

    @property
    def url(self):
        return f'http://{self.host}:{self.port}'

    def start(self):
        control = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                status, payload = control.dispatch(
                    self.command, self.path, self._body())
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get('Content-Length') or 0)
                return self.rfile.read(length) if length else b''

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
            name='routeros-sim-control', daemon=True)
        self._thread.start()
        return self.host, self.port

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(10)
            self._httpd = self._thread = None

    def dispatch(self, method, target, body=b''):
        "Route one request; return ``(status, JSON payload)``."
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError('the body must be a JSON object')
            for verb, pattern, handler in self._routes:
                match = pattern.fullmatch(url.path.rstrip('/'))
                if match and verb == method:
                    return 200, handler(data=data, query=query,
                        **match.groupdict())
            return 404, {'error': f'no route for {method} {url.path}'}
        except LookupError as exc:
            return 404, {'error': str(exc)}
        except (SimulatorError, TrapError, ValueError, TypeError) as exc:
            return 400, {'error': str(exc)}

    def _router(self, name):
        try:
            return self.routers[name]
        except KeyError:
            raise LookupError(f'no router named {name!r}') from None

    def _list(self, data, query):
        return [router.info() for router in self.routers.values()]

    def _info(self, name, data, query):
        return self._router(name).info()

    def _set_fault(self, name, data, query):
        router = self._router(name)
        params = dict(data)
        mode = params.pop('mode', None)
        if mode in (None, 'none', ''):
            router.clear_fault()
        else:
            router.set_fault(mode, **params)
        return router.faults

    def _clear_fault(self, name, data, query, mode=None):
        router = self._router(name)
        router.clear_fault(mode)
        return router.faults

    def _seed(self, name, data, query):
        return self._router(name).seed(**data)

    def _ppp(self, name, action, data, query):
        router = self._router(name)
        if action == 'login':
            return router.ppp_login(**data)
        return {'closed': router.ppp_logout(**data)}

    def _hotspot(self, name, action, data, query):
        router = self._router(name)
        if action == 'login':
            return router.hotspot_login(**data)
        return {'closed': router.hotspot_logout(**data)}

    def _menu(self, name, data, query):
        router = self._router(name)
        query = dict(query)
        menu = router.menu(query.pop('path', '/ppp/secret'))
        if isinstance(menu, SingletonMenu):
            return [menu.get()]
        return menu.filter(
            **{k.replace('-', '_'): v for k, v in query.items()})

    def _save(self, data, query):
        if self.save is None:
            raise SimulatorError('no --state-file configured')
        return {'saved': self.save()}


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(
        prog='python -m tools.routeros_sim',
        description='Start simulated MikroTik routers (RouterOS API) on '
        'loopback until SIGINT/SIGTERM.')
    parser.add_argument('--count', type=int, default=1,
        help='number of routers (default 1)')
    parser.add_argument('--host', default='127.0.0.1',
        help='listen address (default 127.0.0.1)')
    parser.add_argument('--base-port', type=int, default=8728,
        help='API port of the first router, 0 for ephemeral ports')
    parser.add_argument('--ssl-base-port', type=int, default=None,
        help='API-SSL port of the first router (enables API-SSL), 0 for '
        'ephemeral ports')
    parser.add_argument('--port-step', type=int, default=None,
        help='port increment between routers (default 1, or 2 with '
        'API-SSL)')
    parser.add_argument('--version', default='7.16.2',
        help='RouterOS version(s), comma separated values are used in turn '
        '(e.g. "6.49.10,7.16.2")')
    parser.add_argument('--name-prefix', default='router',
        help='router names are <prefix>1, <prefix>2...')
    parser.add_argument('--user', default='admin', help='API user name')
    parser.add_argument('--password', default='', help='API password')
    parser.add_argument(
        '--password-file',
        help='read the API password from this file (keeps it off the '
        'process list); a JSON object {router name: password} gives each '
        'router its own')
    parser.add_argument('--legacy-login', action='store_true',
        help='accept only the pre-6.43 MD5 challenge login')
    parser.add_argument('--plain-only', action='store_true',
        help='refuse the MD5 challenge login (RouterOS >= 6.45.1)')
    parser.add_argument('--seed-secrets', type=int, default=0,
        help='PPP secrets to create on each router')
    parser.add_argument('--seed-active', type=int, default=0,
        help='PPP sessions to open on each router')
    parser.add_argument('--seed-prefix', default='user',
        help='name prefix of the seeded secrets (default "user")')
    parser.add_argument('--state-file', default=None,
        help='JSON file loaded at start (if present) and saved at exit')
    parser.add_argument('--control-port', type=int, default=None,
        help='start the HTTP/JSON control channel on this port (0: '
        'ephemeral)')
    parser.add_argument('--json', action='store_true',
        help='print one JSON object per router instead of key=value')
    return parser


def _router_ports(args, index):
    step = args.port_step or (2 if args.ssl_base_port is not None else 1)
    port = args.base_port + index * step if args.base_port else 0
    ssl_port = None
    if args.ssl_base_port is not None:
        ssl_port = (args.ssl_base_port + index * step
            if args.ssl_base_port else 0)
    return port, ssl_port


def make_routers(args, parser=None):
    "Create (not start) the routers described by parsed CLI arguments."
    versions = [v.strip() for v in args.version.split(',') if v.strip()]
    routers, used = [], set()
    for index in range(args.count):
        port, ssl_port = _router_ports(args, index)
        for number in (port, ssl_port):
            if number:
                if number in used and parser is not None:
                    parser.error(f'port {number} used twice, see --port-step')
                used.add(number)
        routers.append(Router(
            name=f'{args.name_prefix}{index + 1}',
            version=versions[index % len(versions)],
            username=args.user,
            password=_password(args, f'{args.name_prefix}{index + 1}'),
            host=args.host,
            port=port, ssl=ssl_port is not None, ssl_port=ssl_port or 0,
            legacy_login=args.legacy_login, plain_only=args.plain_only))
    return routers


def _load_state(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding='utf-8') as file:
        return json.load(file).get('routers', {})


def save_state(path, routers):
    "Write the state of ``routers`` to ``path`` atomically."
    data = {'routers': {router.name: router.to_dict() for router in routers}}
    temporary = f'{path}.tmp'
    with open(temporary, 'w', encoding='utf-8') as file:
        json.dump(data, file)
    os.replace(temporary, path)
    return path


def _describe(router, as_json):
    info = {key: router.info()[key]
        for key in ('name', 'host', 'port', 'ssl_port', 'version')}
    if as_json:
        return json.dumps(info)
    ssl_port = info['ssl_port'] if info['ssl_port'] is not None else '-'
    return (f"name={info['name']} host={info['host']} port={info['port']} "
        f"ssl_port={ssl_port} version={info['version']}")


def _prepare(routers, args, state):
    for router in routers:
        if router.name in state:
            router.load_dict(state[router.name])
            # the password given now wins over the one of the saved state
            router.add_user(args.user, _password(args, router.name))
        elif args.seed_secrets or args.seed_active:
            router.seed(args.seed_secrets, args.seed_active,
                prefix=args.seed_prefix)



def _password(args, name=None):
    """The API password of router `name`: --password, or the content of
    --password-file, or its entry when the file holds a JSON object"""
    if args.password_file:
        with open(args.password_file, encoding='utf-8') as fh:
            text = fh.read().strip()
        if text.startswith('{'):
            passwords = json.loads(text)
            if name not in passwords:
                raise SystemExit(f'no password for {name} in '
                    f'{args.password_file}')
            return passwords[name]
        return text
    return args.password

def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error('--count must be at least 1')
    routers = make_routers(args, parser)
    _prepare(routers, args, _load_state(args.state_file))
    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    save = None
    if args.state_file:
        save = functools.partial(save_state, args.state_file, routers)
    control = None
    try:
        for router in routers:
            router.start()
            print(_describe(router, args.json), flush=True)
        if args.control_port is not None:
            control = ControlServer(routers, args.host, args.control_port,
                save=save)
            control.start()
            print(f'control url={control.url}', flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        if control is not None:
            control.stop()
        for router in routers:
            router.stop()
        if save is not None:
            save()
    return 0


if __name__ == '__main__':
    sys.exit(main())
