# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Bring one router to the state the database wants, and read it back.

Pure Python over `routeros.Client`: the models build plain dictionaries
(`RouterSettings`, service specs), `converge()` talks to the router, and the
models write the `RouterResult` back.  No database access happens here, so
several routers can converge at the same time in threads.

A service spec is a dictionary:

- ``id``: the service id (only passed back);
- ``name``: the PPPoE user name;
- ``present``: whether a secret must exist;
- ``secret``: the wanted secret properties (``None`` value: unset);
- ``list_addresses``: addresses that must be in the isolation address-list
  (an isolated service without a static address is on a profile whose
  address-list RouterOS fills at every connect instead).

Dynamic address-list entries (those RouterOS adds from a PPP profile's
``address-list`` at connect time) are never touched: they are what keeps an
isolated session isolated from its first second.
"""
import time
from dataclasses import dataclass, field

from .routeros import CommandError, RouterOSError, Unreachable, connect

SECRET = '/ppp/secret'
PROFILE = '/ppp/profile'
ACTIVE = '/ppp/active'
ADDRESS_LIST = '/ip/firewall/address-list'

SECRET_FIELDS = (
    'password', 'profile', 'service', 'remote-address', 'caller-id',
    'disabled', 'comment')
PROFILE_FIELDS = (
    'rate-limit', 'local-address', 'remote-address', 'address-list',
    'comment')
ACTIVE_FIELDS = ('.id', 'name', 'address', 'caller-id', 'uptime')
ENTRY_FIELDS = ('.id', 'list', 'address', 'comment', 'disabled', 'dynamic')
# RouterOS prints booleans as true/false; other implementations yes/no
TRUE = frozenset({'true', 'yes'})
BOOLEANS = TRUE | {'false', 'no'}
BOOLEAN_FIELDS = frozenset({'disabled'})
# above this many writes, verify with one full print instead of one per name
FULL_READBACK = 50


@dataclass
class RouterSettings:
    "How to reach a router and the rules it follows"
    host: str
    port: int
    username: str
    password: str
    use_ssl: bool = False
    # the trusted SHA-256 fingerprint of the API-SSL certificate, its CA
    ssl_fingerprint: str = None
    ssl_ca: str = None
    timeout: float = 10
    login_method: str = 'auto'
    isolation_method: str = 'profile'
    isolation_address_list: str = 'isolir'
    unknown_secrets: str = 'keep'
    # profile name -> wanted properties
    profiles: dict = field(default_factory=dict)
    # user names of the company's services that belong elsewhere
    foreign_names: frozenset = frozenset()


@dataclass
class ServiceResult:
    id: int
    name: str
    ok: bool = False
    error: str = None
    actions: list = field(default_factory=list)
    live: dict = None


@dataclass
class RouterResult:
    ok: bool = False
    error: str = None
    health: dict = None
    services: dict = field(default_factory=dict)
    actions: list = field(default_factory=list)
    duration: float = 0
    secret_count: int = None
    active_count: int = None
    # the API-SSL certificate's fingerprint seen
    fingerprint: str = None
    # secrets on the router that no service of the product asks for and
    # that the sync left in place (staff VPNs, not yet imported, policy keep)
    extra_names: list = None


def _same(have, want, name=None):
    if name in BOOLEAN_FIELDS and have in BOOLEANS and want in BOOLEANS:
        return (have in TRUE) == (want in TRUE)
    if want is None:
        return have in (None, '')
    return str(have if have is not None else '') == str(want)


def diff(row, wanted, fields):
    "The wanted values that `row` does not have"
    return {
        name: wanted[name] for name in fields
        if name in wanted and not _same(row.get(name), wanted[name], name)}


def live_status(secret, sessions):
    "The live status of a user from its secret row and sessions"
    if sessions:
        session = sessions[0]
        return {
            'status': 'online',
            'address': session.get('address') or None,
            'caller_id': session.get('caller-id') or None,
            'uptime': session.get('uptime'),
            }
    if secret is None or secret.get('disabled') in TRUE:
        status = 'disabled'
    else:
        status = 'offline'
    return {'status': status, 'address': None, 'caller_id': None,
        'uptime': None}


def converge(settings, specs, full=False):
    """Apply `specs` to the router of `settings`, read every write back and
    return a `RouterResult`.  With `full`, read the whole router: health,
    every secret (extra ones follow `settings.unknown_secrets`) and every
    session, and report the live status of every service."""
    result = RouterResult()
    return talk(settings, result,
        lambda client: Converger(client, settings, result).run(specs, full))


def talk(settings, result, work):
    """Log in to the router of `settings` (host, port, username, password,
    use_ssl, timeout, login_method), run `work(client)` and record in
    `result` its outcome (ok, error) and duration; return `result`"""
    started = time.monotonic()
    try:
        client = open_client(settings)
    except Unreachable as exception:
        result.error = str(exception)
    else:
        result.fingerprint = client.fingerprint
        with client:
            try:
                work(client)
                result.ok = True
            except RouterOSError as exception:
                result.error = str(exception)
    result.duration = time.monotonic() - started
    return result


def open_client(settings):
    "A logged in `routeros.Client` to the router of `settings`"
    return connect(
        settings.host, settings.username, settings.password,
        port=settings.port, use_ssl=settings.use_ssl,
        timeout=settings.timeout, login_method=settings.login_method,
        ssl_fingerprint=settings.ssl_fingerprint, ssl_ca=settings.ssl_ca)


# what the product's API user needs: `sensitive` to read the secrets'
# passwords back, `test` is not needed
REQUIRED_POLICIES = ('api', 'read', 'write', 'sensitive')


def missing_policies(client, username):
    """The policies of REQUIRED_POLICIES that the group of `username`
    lacks (RouterOS 6 prints the refused ones with a '!'); None when the
    user or its group cannot be read"""
    users = client.print('/user', ('name', 'group'), name=username)
    if not users:
        return None
    groups = client.print(
        '/user/group', ('name', 'policy'), name=users[0].get('group'))
    if not groups:
        return None
    granted = {p.strip() for p in (groups[0].get('policy') or '').split(',')
        if p.strip() and not p.strip().startswith('!')}
    return [p for p in REQUIRED_POLICIES if p not in granted]


def read_health(client):
    "Version, load, memory and uptime of the router"
    resource = client.resource()
    return {
        'version': resource.get('version'),
        'board': resource.get('board-name'),
        'cpu_load': _int(resource.get('cpu-load')),
        'free_memory': _int(resource.get('free-memory')),
        'total_memory': _int(resource.get('total-memory')),
        'uptime': resource.get('uptime'),
        'identity': client.identity(),
        }


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Converger:

    def __init__(self, client, settings, result):
        self.client = client
        self.settings = settings
        self.result = result
        self.secrets = {}
        self.sessions = {}
        self.entries = {}
        self.kicked = 0

    # -- reading --

    def _index_sessions(self, rows):
        for row in rows:
            self.sessions.setdefault(row.get('name'), []).append(row)

    def _index_entries(self, rows):
        for row in rows:
            if row.get('dynamic') in TRUE:
                continue
            self.entries.setdefault(row.get('comment'), []).append(row)

    def _read_all(self):
        client = self.client
        self.secrets = {
            row['name']: row for row in client.print(
                SECRET, ('.id', 'name') + SECRET_FIELDS)}
        self.sessions = {}
        self._index_sessions(client.print(ACTIVE, ACTIVE_FIELDS))
        self.entries = {}
        self._index_entries(client.print(
                ADDRESS_LIST, ENTRY_FIELDS,
                list=self.settings.isolation_address_list))
        self.result.secret_count = len(self.secrets)
        self.result.active_count = sum(map(len, self.sessions.values()))

    def _read_names(self, names):
        client = self.client
        for name in names:
            self.secrets.pop(name, None)
            for row in client.print(
                    SECRET, ('.id', 'name') + SECRET_FIELDS, name=name):
                self.secrets[name] = row
            self.sessions[name] = client.print(
                ACTIVE, ACTIVE_FIELDS, name=name)
        self.entries = {}
        self._index_entries(self.client.print(
                ADDRESS_LIST, ENTRY_FIELDS,
                list=self.settings.isolation_address_list))

    # -- writing --

    def run(self, specs, full):
        if full:
            # best effort: a router (or API user) refusing the health menus
            # still gets its secrets repaired
            try:
                self.result.health = read_health(self.client)
            except CommandError as exception:
                self.result.actions.append(
                    ('health_error', None, str(exception)))
        self.ensure_profiles(specs, full)
        names = [spec['name'] for spec in specs]
        if full or len(names) > FULL_READBACK:
            self._read_all()
        else:
            self._read_names(names)
        written = []
        for spec in specs:
            service_result = ServiceResult(spec['id'], spec['name'])
            self.result.services[spec['id']] = service_result
            try:
                if self.apply(spec, service_result):
                    written.append(spec)
            except CommandError as exception:
                service_result.error = str(exception)
        if full:
            self.remove_extra({spec['name'] for spec in specs})
            # the sessions still up, not those just ended
            self.result.active_count -= self.kicked
        self.read_back(specs, written)

    def ensure_profiles(self, specs, full):
        "Create or fix the PPP profiles the specs use"
        wanted = self.settings.profiles
        if not full:
            used = {spec['secret']['profile'] for spec in specs
                if spec.get('present')}
            wanted = {k: v for k, v in wanted.items() if k in used}
        if not wanted:
            return
        client = self.client
        rows = {row['name']: row for row in client.print(
                PROFILE, ('.id', 'name') + PROFILE_FIELDS)}
        for name, values in wanted.items():
            row = rows.get(name)
            try:
                if row is None:
                    client.add(PROFILE, name=name, **{
                            k: v for k, v in values.items() if v})
                    self.result.actions.append(
                        ('profile_add', name, None))
                    continue
                changes = diff(row, values, PROFILE_FIELDS)
                if changes:
                    self._set(PROFILE, row['.id'], changes)
                    self.result.actions.append(
                        ('profile_set', name, describe_changes(changes)))
            except CommandError as exception:
                self.result.actions.append(
                    ('profile_error', name, str(exception)))

    def _set(self, path, item_id, changes):
        values = {k: v for k, v in changes.items() if v is not None}
        if values:
            self.client.set(path, item_id, **values)
        for name, value in changes.items():
            if value is None:
                self.client.unset(path, item_id, name)

    def apply(self, spec, service_result):
        """Write what `spec` needs; return True when something was written.
        Sessions are ended when the secret's profile, its disabled flag or
        its isolation entries changed, or when it is removed."""
        client = self.client
        name = spec['name']
        secret = self.secrets.get(name)
        sessions = self.sessions.get(name, [])
        actions = service_result.actions
        kick = False
        if spec['present']:
            wanted = spec['secret']
            if secret is None:
                values = {k: v for k, v in wanted.items()
                    if v not in (None, '')}
                client.add(SECRET, name=name, **values)
                actions.append(('add', None))
                kick = True
            else:
                changes = diff(secret, wanted, SECRET_FIELDS)
                if changes:
                    self._set(SECRET, secret['.id'], changes)
                    actions.append(('set', describe_changes(changes)))
                    kick = ('profile' in changes
                        or changes.get('disabled') == 'true')
            kick |= self._apply_entries(spec, sessions, actions)
        else:
            if secret is not None:
                client.remove(SECRET, secret['.id'])
                actions.append(('remove', None))
                kick = True
            self._apply_entries(spec, sessions, actions)
        if kick and sessions:
            client.remove(ACTIVE, *[s['.id'] for s in sessions])
            self.kicked += len(sessions)
            actions.append(('kick', ', '.join(
                        s.get('address') or '' for s in sessions)))
            spec['_kicked'] = [s['.id'] for s in sessions]
        return bool(actions)

    def _wanted_entries(self, spec, sessions):
        if not spec['present']:
            return set()
        return set(spec.get('list_addresses') or [])

    def _apply_entries(self, spec, sessions, actions):
        "Add and remove the spec's isolation entries; True if any was added"
        client = self.client
        name = spec['name']
        wanted = self._wanted_entries(spec, sessions)
        have = {row.get('address'): row for row in self.entries.get(name, [])}
        added = False
        for address in sorted(wanted - set(have)):
            client.add(ADDRESS_LIST,
                list=self.settings.isolation_address_list,
                address=address, comment=name)
            actions.append(('list_add', address))
            added = True
        stale = [row['.id'] for address, row in have.items()
            if address not in wanted]
        if stale:
            client.remove(ADDRESS_LIST, *stale)
            actions.append(('list_remove', ', '.join(
                        a for a in have if a not in wanted)))
        spec['_entries'] = wanted
        return added

    def manages(self, row):
        """Whether an extra secret looks like the product's: a PPPoE secret
        on a profile the product manages (a plan's or the isolation one).
        Others (staff L2TP/SSTP VPNs, `service=any`, unknown profiles) are
        never touched, only reported."""
        return (row.get('service') == 'pppoe'
            and row.get('profile') in self.settings.profiles)

    def remove_extra(self, names):
        """Secrets no spec asks for: the branch's services that belong on
        another router go; those the product manages follow the policy; the
        rest stay and are listed in `result.extra_names`"""
        client = self.client
        policy = self.settings.unknown_secrets
        foreign = self.settings.foreign_names
        kept = []
        for name, row in list(self.secrets.items()):
            if name in names:
                continue
            managed = self.manages(row)
            try:
                if name in foreign or (policy == 'remove' and managed):
                    client.remove(SECRET, row['.id'])
                    action = 'extra_remove'
                elif (policy == 'disable' and managed
                        and row.get('disabled') not in TRUE):
                    client.set(SECRET, row['.id'], disabled='yes')
                    action = 'extra_disable'
                    kept.append(name)
                else:
                    kept.append(name)
                    continue
                sessions = self.sessions.get(name, [])
                if sessions:
                    client.remove(ACTIVE, *[s['.id'] for s in sessions])
                    self.kicked += len(sessions)
                self.result.actions.append((action, name, None))
            except CommandError as exception:
                self.result.actions.append(
                    ('extra_error', name, str(exception)))
        self.result.extra_names = sorted(kept)

    # -- reading back --

    def read_back(self, specs, written):
        "Read the written users again and judge every spec"
        if len(written) > FULL_READBACK:
            self._read_all()
        elif written:
            self._read_names([spec['name'] for spec in written])
        written_ids = {spec['id'] for spec in written}
        for spec in specs:
            service_result = self.result.services[spec['id']]
            name = spec['name']
            secret = self.secrets.get(name)
            sessions = self.sessions.get(name, [])
            if service_result.error is None:
                problem = self.check(spec, secret, sessions)
                if problem and spec['id'] in written_ids:
                    service_result.error = (
                        "the router accepted the change but does not show "
                        "it (%s)" % problem)
                elif problem:
                    service_result.error = problem
                else:
                    service_result.ok = True
            service_result.live = live_status(secret, sessions)

    def check(self, spec, secret, sessions):
        "Why the router does not match `spec`, or None"
        if not spec['present']:
            if secret is not None:
                return "the secret is still there"
        elif secret is None:
            return "the secret is missing"
        else:
            changes = diff(secret, spec['secret'], SECRET_FIELDS)
            if changes:
                return "%s differ" % ', '.join(sorted(changes))
        kicked = set(spec.get('_kicked', []))
        if kicked & {s['.id'] for s in sessions}:
            return "the session is still up"
        entries = {row.get('address')
            for row in self.entries.get(spec['name'], [])}
        wanted = spec.get('_entries', set())
        if wanted - entries:
            return "the address-list entry is missing"
        if entries - wanted:
            return "a stale address-list entry is still there"
        return None


def describe_changes(changes):
    return ', '.join(
        '%s=%s' % (k, '***' if k == 'password' else (v if v is not None
                else '(unset)'))
        for k, v in sorted(changes.items()))
