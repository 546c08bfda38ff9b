# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Bring a router's hotspot users to what the database wants, read back.

Pure Python over `isp_network.routeros.Client`, like isp_network's
converge.py for PPPoE: the models build plain dictionaries, `converge()`
talks to one router (in its own thread) and returns a `HotspotResult` that
the models write back.  No database access here.

What the product owns on a router:
- the hotspot user profiles named ``isp-voucher-<profile id>``;
- the hotspot users whose comment starts with ``isp-voucher`` (the comment
  is ``isp-voucher:<batch id>``).
Everything else (the ``default`` profile, users added by hand or by another
system) is read but never changed nor removed; a voucher whose code is taken
by such a user is reported in error and left alone.

A wanted user is a dictionary: ``id`` (the voucher id, passed back),
``name``, ``password``, ``profile``, ``limit-uptime`` (seconds or None),
``limit-bytes-total`` (bytes or None), ``disabled`` (bool), ``comment``.
Each full convergence reads every user and active session once, writes what
differs (owned users not wanted are removed, their sessions ended), and
reads everything back once; its cost does not depend on how many changed.
"""
from dataclasses import dataclass, field

from trytond.modules.isp_network.converge import talk
from trytond.modules.isp_network.routeros import (
    CommandError,
    parse_duration,
)

USER = '/ip/hotspot/user'
PROFILE = '/ip/hotspot/user/profile'
ACTIVE = '/ip/hotspot/active'
OWNED_COMMENT = 'isp-voucher'
PROFILE_PREFIX = 'isp-voucher-'
USER_FIELDS = (
    '.id', 'name', 'server', 'password', 'profile', 'limit-uptime',
    'limit-bytes-total', 'disabled', 'comment', 'uptime', 'bytes-in',
    'bytes-out')
PROFILE_FIELDS = ('.id', 'name', 'rate-limit', 'shared-users')
ACTIVE_FIELDS = ('.id', 'user', 'uptime', 'bytes-in', 'bytes-out',
    'address', 'mac-address')
# ids removed per /remove command
REMOVE_CHUNK = 500
# errors kept in the result (the rest counted)
MAX_ERRORS = 100
_UNITS = (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60), ('s', 1))


def format_duration(seconds):
    "RouterOS' time syntax: 90061 -> '1d1h1m1s'"
    rest = int(seconds)
    parts = []
    for unit, size in _UNITS:
        if rest >= size:
            parts.append('%d%s' % (rest // size, unit))
            rest %= size
    return ''.join(parts) or '0s'


def profile_name(profile_id):
    return '%s%d' % (PROFILE_PREFIX, profile_id)


def is_owned(row):
    return (row.get('comment') or '').startswith(OWNED_COMMENT)


def _seconds(value):
    "Seconds of a RouterOS time, None for none/0"
    try:
        seconds = parse_duration(value)
    except ValueError:
        return value
    return seconds or None


def _count(value):
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _limit(value):
    return _count(value) or None


def _flag(value):
    return str(value).lower() in {'true', 'yes'}


def user_diff(row, wanted):
    "The properties of `wanted` that `row` does not have, as API values"
    changes = {}
    for name in ('password', 'profile', 'comment'):
        if (row.get(name) or '') != (wanted[name] or ''):
            changes[name] = wanted[name] or ''
    if _seconds(row.get('limit-uptime')) != wanted['limit-uptime']:
        changes['limit-uptime'] = format_duration(
            wanted['limit-uptime'] or 0)
    if _limit(row.get('limit-bytes-total')) != wanted['limit-bytes-total']:
        changes['limit-bytes-total'] = str(wanted['limit-bytes-total'] or 0)
    if _flag(row.get('disabled')) != wanted['disabled']:
        changes['disabled'] = 'yes' if wanted['disabled'] else 'no'
    return changes


def profile_diff(row, wanted):
    return {name: value for name, value in wanted.items()
        if (row.get(name) or '') != (value or '')}


def user_values(wanted):
    "The /add words of a wanted user"
    values = {
        'name': wanted['name'],
        'password': wanted['password'],
        'profile': wanted['profile'],
        'comment': wanted['comment'],
        }
    if wanted['limit-uptime']:
        values['limit-uptime'] = format_duration(wanted['limit-uptime'])
    if wanted['limit-bytes-total']:
        values['limit-bytes-total'] = str(wanted['limit-bytes-total'])
    if wanted['disabled']:
        values['disabled'] = 'yes'
    return values


@dataclass
class HotspotSettings:
    "How to reach a router's API"
    host: str
    port: int
    username: str
    password: str
    use_ssl: bool = False
    # the trusted API-SSL certificate (see isp_network's RouterSettings)
    ssl_fingerprint: str = None
    ssl_ca: str = None
    timeout: float = 10
    login_method: str = 'auto'


@dataclass
class HotspotResult:
    ok: bool = False
    error: str = None
    duration: float = 0
    # voucher id -> error text (the first MAX_ERRORS; no code in them:
    # router logs are read by technicians, codes are not)
    errors: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)
    error_count: int = 0
    # name -> {'uptime', 'bytes', 'sessions': [seconds], 'addresses'}
    live: dict = field(default_factory=dict)
    # (action, name, message) of profiles and summaries
    actions: list = field(default_factory=list)
    added: int = 0
    changed: int = 0
    removed: int = 0
    kicked: int = 0
    user_count: int = None
    active_count: int = None

    def fail(self, voucher_id, message):
        self.error_count += 1
        self.failed.add(voucher_id)
        if len(self.errors) < MAX_ERRORS:
            self.errors[voucher_id] = message


def converge(settings, profiles, users):
    """Make the router of `settings` hold `profiles` ({name: properties})
    and `users` (wanted users), remove the owned ones not wanted, read it
    all back and return a `HotspotResult`"""
    result = HotspotResult()
    return talk(settings, result,
        lambda client: HotspotConverger(client, result).run(profiles, users))


class HotspotConverger:

    def __init__(self, client, result):
        self.client = client
        self.result = result
        self.users = {}
        self.sessions = {}

    def read(self):
        client = self.client
        self.users = {}
        for row in client.print(USER, USER_FIELDS):
            # a name may exist per hotspot server: the owned one wins
            name = row.get('name')
            if name not in self.users or is_owned(row):
                self.users[name] = row
        self.sessions = {}
        for row in client.print(ACTIVE, ACTIVE_FIELDS):
            self.sessions.setdefault(row.get('user'), []).append(row)
        self.result.user_count = len(self.users)
        self.result.active_count = sum(map(len, self.sessions.values()))

    def run(self, profiles, users):
        stale_profiles = self.ensure_profiles(profiles)
        self.read()
        kick = []
        wanted_names = set()
        for wanted in users:
            wanted_names.add(wanted['name'])
            try:
                kick.extend(self.apply(wanted))
            except CommandError as exception:
                self.result.fail(wanted['id'], str(exception))
        kick.extend(self.remove_extra(wanted_names))
        self.kick(kick)
        self.remove_profiles(stale_profiles)
        self.read()
        self.check(users)

    def ensure_profiles(self, profiles):
        "Create or fix the wanted profiles; return the stale owned ones"
        client = self.client
        rows = {row['name']: row
            for row in client.print(PROFILE, PROFILE_FIELDS)}
        for name, values in profiles.items():
            row = rows.get(name)
            try:
                if row is None:
                    client.add(PROFILE, name=name, **{
                            k: v for k, v in values.items() if v})
                    self.result.actions.append(('profile_add', name, None))
                    continue
                changes = profile_diff(row, values)
                if changes:
                    client.set(PROFILE, row['.id'], **changes)
                    self.result.actions.append(('profile_set', name, ', '.join(
                                '%s=%s' % item
                                for item in sorted(changes.items()))))
            except CommandError as exception:
                self.result.actions.append(
                    ('profile_error', name, str(exception)))
        return [row for name, row in rows.items()
            if name.startswith(PROFILE_PREFIX) and name not in profiles]

    def apply(self, wanted):
        "Add or fix one user; return the sessions to end"
        client = self.client
        name = wanted['name']
        row = self.users.get(name)
        if row is None:
            client.add(USER, **user_values(wanted))
            self.result.added += 1
            return []
        if not is_owned(row):
            self.result.fail(wanted['id'],
                "voucher #%d: a hotspot user of the same name not managed "
                "by the product is on the router: left alone" % wanted['id'])
            return []
        changes = user_diff(row, wanted)
        if not changes:
            return []
        client.set(USER, row['.id'], **changes)
        self.result.changed += 1
        if changes.get('disabled') == 'yes' or 'password' in changes:
            return self.sessions.get(name, [])
        return []

    def remove_extra(self, wanted_names):
        "Remove the owned users no voucher asks for; return their sessions"
        stale = [row for name, row in self.users.items()
            if name not in wanted_names and is_owned(row)]
        sessions = []
        for start in range(0, len(stale), REMOVE_CHUNK):
            chunk = stale[start:start + REMOVE_CHUNK]
            try:
                self.client.remove(USER, *[row['.id'] for row in chunk])
            except CommandError as exception:
                self.result.actions.append(
                    ('user_remove_error', None, str(exception)))
                continue
            self.result.removed += len(chunk)
            for row in chunk:
                sessions.extend(self.sessions.get(row['name'], []))
        return sessions

    def kick(self, sessions):
        ids = [session['.id'] for session in sessions]
        for start in range(0, len(ids), REMOVE_CHUNK):
            try:
                self.client.remove(ACTIVE, *ids[start:start + REMOVE_CHUNK])
                self.result.kicked += len(ids[start:start + REMOVE_CHUNK])
            except CommandError as exception:
                # a session may end on its own in between
                self.result.actions.append(
                    ('kick_error', None, str(exception)))

    def remove_profiles(self, rows):
        for row in rows:
            try:
                self.client.remove(PROFILE, row['.id'])
                self.result.actions.append(
                    ('profile_remove', row['name'], None))
            except CommandError as exception:
                self.result.actions.append(
                    ('profile_error', row['name'], str(exception)))

    def check(self, users):
        "Judge every wanted user on what was read back; gather live data"
        result = self.result
        for wanted in users:
            name = wanted['name']
            row = self.users.get(name)
            if wanted['id'] in result.failed:
                pass
            elif row is None:
                result.fail(wanted['id'], "voucher #%d: the router accepted "
                    "its hotspot user but does not show it" % wanted['id'])
            elif is_owned(row) and user_diff(row, wanted):
                result.fail(wanted['id'], "voucher #%d: its hotspot user "
                    "differs on the router (%s)" % (wanted['id'], ', '.join(
                            sorted(user_diff(row, wanted)))))
            if row is None or not is_owned(row):
                continue
            sessions = self.sessions.get(name, [])
            uptime = _seconds(row.get('uptime')) or 0
            used = _count(row.get('bytes-in')) + _count(row.get('bytes-out'))
            if uptime or used or sessions:
                # the user's counters grow when a session ends: add the
                # sessions still open
                session_times = [_seconds(s.get('uptime')) or 0
                    for s in sessions]
                result.live[wanted['id']] = {
                    'uptime': uptime + sum(session_times),
                    'bytes': used + sum(
                        _count(s.get('bytes-in')) + _count(s.get('bytes-out'))
                        for s in sessions),
                    'sessions': session_times,
                    'closed_uptime': uptime,
                    }
        wanted_names = {wanted['name'] for wanted in users}
        stale = [name for name, row in self.users.items()
            if is_owned(row) and name not in wanted_names]
        if stale:
            raise CommandError(USER + '/remove', "%d owned hotspot users "
                "could not be removed" % len(stale))
