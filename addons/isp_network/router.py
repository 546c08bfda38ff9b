# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
    sequence_ordered,
)
from trytond.model.fields import SQL_OPERATORS
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base import metrics
from trytond.modules.isp_base.common import (
    InputGuardMixin,
    rec_name_domain,
)

from . import routeros
from .converge import (
    RouterSettings,
    converge,
    missing_policies,
    open_client,
    read_health,
)
from .exceptions import RouterCodeValidationError, RouterPoolEmpty
from .usage import BigInteger

ROUTER_CODE_RE = __import__('re').compile(r'^[A-Z]{2,6}$')
BACKOFF_BASE = 30
BACKOFF_MAX = 3600
SYNC_THREADS = 8


def backoff(attempts):
    "Seconds to wait before attempt number `attempts` + 1"
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def run_concurrently(jobs, threads=SYNC_THREADS, function=None):
    """Run `function(*job)` (`converge` by default) for every job in its own
    thread (each with its own connection) and yield (index, result) as each
    router finishes, so a slow or dead router never holds the others
    back."""
    function = function or converge
    if len(jobs) == 1:
        yield 0, function(*jobs[0])
        return
    with ThreadPoolExecutor(
            max_workers=max(1, min(len(jobs), threads)),
            thread_name_prefix='isp-router') as executor:
        futures = {
            executor.submit(function, *job): i
            for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            yield futures[future], future.result()


class Router(InputGuardMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Router"
    __name__ = 'isp.router'

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        help="The branch that owns the router.")
    name = fields.Char("Name", required=True)
    code = fields.Char(
        "Code", required=True, strip=True,
        help="2 to 6 capital letters, unique in the branch, e.g. CKP. "
        "It starts the PPPoE user names and is part of the customer IDs.")
    host = fields.Char(
        "Host", required=True, strip=True,
        help="The address or name of the router's API service.")
    port = fields.Integer(
        "Port", required=True,
        help="The API port: 8728, or 8729 for API-SSL.")
    use_ssl = fields.Boolean(
        "API-SSL", help="Check to talk to the router over TLS (api-ssl).")
    ssl_fingerprint = fields.Char(
        "Certificate Fingerprint", strip=True,
        states={'invisible': ~Eval('use_ssl')},
        help="The SHA-256 fingerprint of the router's API-SSL certificate "
        "the product trusts: recorded at the first connection (trust on "
        "first use); a router presenting another certificate is refused.  "
        "Clear it after replacing the router's certificate on purpose.")
    ssl_ca = fields.Text(
        "CA Certificate",
        states={'invisible': ~Eval('use_ssl')},
        help="Optional: the PEM certificate of the CA that signed the "
        "router's certificate, checked as well.")
    api_username = fields.Char(
        "API User", required=True, strip=True,
        help="The RouterOS user the product logs in with.")
    api_password = fields.Char(
        "API Password",
        help="Readable only by the administrators.")
    login_method = fields.Selection([
            ('auto', "Automatic"),
            ('plain', "Plain (RouterOS 6.43 and later)"),
            ('challenge', "Challenge (before 6.43)"),
            ], "Login Method", required=True,
        help="Automatic tries the plain login and answers the MD5 challenge "
        "of older routers.")
    timeout = fields.Integer(
        "Timeout", required=True,
        help="In seconds: how long to wait for the router's answers.")
    provisioning_mode = fields.Selection([
            ('api', "API"),
            ], "Provisioning Mode", required=True,
        help="API: the PPPoE secrets and profiles live on the router.")
    isolation_method = fields.Selection([
            ('profile', "Isolation Profile"),
            ('address_list', "Address List"),
            ('disable', "Disable"),
            ], "Isolation Method", required=True,
        help="How an isolated service is cut off: moved to the isolation "
        "profile (its pool and address-list lead to the redirect page), its "
        "address added to the isolation address-list, or its secret "
        "disabled.  The live session is ended in every case.")
    isolation_profile = fields.Char(
        "Isolation Profile", strip=True,
        states={
            'required': Eval('isolation_method') == 'profile',
            'invisible': Eval('isolation_method') != 'profile',
            },
        help="The PPP profile of isolated services; created when missing.")
    isolation_pool = fields.Char(
        "Isolation Pool", strip=True,
        states={'invisible': Eval('isolation_method') != 'profile'},
        help="The IP pool (remote address) of the isolation profile.")
    isolation_rate_limit = fields.Char(
        "Isolation Rate Limit", strip=True,
        states={'invisible': Eval('isolation_method') != 'profile'},
        help="The rate limit of the isolation profile, e.g. 256k/256k.")
    isolation_address_list = fields.Char(
        "Isolation Address List", strip=True, required=True,
        help="The firewall address-list of isolated subscribers: filled "
        "by the address-list method and by the isolation profile.")
    local_address = fields.Char(
        "Local Address", strip=True,
        help="The local address of the plan profiles; empty to leave it "
        "as configured on the router.")
    remote_pool = fields.Char(
        "Remote Pool", strip=True,
        help="The IP pool of the plan profiles; empty to leave it as "
        "configured on the router.")
    unknown_secrets = fields.Selection([
            ('keep', "Keep"),
            ('disable', "Disable"),
            ('remove', "Remove"),
            ], "Unknown Secrets", required=True,
        help="What the sync does with secrets on the router that belong to "
        "no service: keep them (until imported), disable or remove them.")
    pools = fields.Many2Many(
        'isp.router.pool-isp.router', 'router', 'pool', "Pools")
    services = fields.One2Many('isp.service', 'router', "Services",
        readonly=True)
    service_count = fields.Function(
        fields.Integer("Services"), 'get_service_count')
    logs = fields.One2Many('isp.router.log', 'router', "Logs", readonly=True)
    health_history = fields.One2Many(
        'isp.router.health', 'router', "Health History", readonly=True)

    reachable = fields.Boolean("Reachable", readonly=True)
    routeros_version = fields.Char("RouterOS Version", readonly=True)
    identity = fields.Char("Identity", readonly=True)
    board = fields.Char("Board", readonly=True)
    cpu_load = fields.Integer("CPU Load", readonly=True, help="In %.")
    free_memory = BigInteger("Free Memory", readonly=True,
        help="In bytes.")
    total_memory = BigInteger("Total Memory", readonly=True,
        help="In bytes.")
    router_uptime = fields.Char("Router Uptime", readonly=True)
    secret_count = fields.Integer("Secrets", readonly=True,
        help="The PPP secrets found on the router at the last sync.")
    active_count = fields.Integer("Sessions", readonly=True,
        help="The PPP sessions found on the router at the last sync.")
    extra_secret_count = fields.Integer("Unmanaged Secrets", readonly=True,
        help="The secrets on the router that belong to no service and that "
        "the sync left in place (the Keep policy, staff VPN accounts, "
        "secrets on a profile the product does not manage).")
    extra_secrets = fields.Text("Unmanaged Secret Names", readonly=True)
    last_sync = fields.DateTime("Last Sync", readonly=True)
    last_sync_duration = fields.Float(
        "Last Sync Duration", digits=(16, 3), readonly=True,
        help="In seconds: the time spent talking to the router.")
    last_contact = fields.DateTime("Last Contact", readonly=True)
    last_error = fields.Text("Last Error", readonly=True)
    failures = fields.Integer("Failures", readonly=True,
        help="Failed attempts in a row; the next waits longer each time.")
    next_attempt = fields.DateTime("Next Attempt", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_code_uniq', Unique(t, t.company, t.code),
                'isp_network.msg_router_code_unique'),
            ]
        cls._sql_indexes.add(Index(t, (t.company, Index.Range())))
        cls._order.insert(0, ('code', 'ASC'))
        cls._buttons.update({
                'test_connection': {},
                'sync_button': {},
                'import_secrets': {},
                })

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_port(cls):
        return routeros.DEFAULT_PORT

    @classmethod
    def _input_bounds(cls):
        return {
            **super()._input_bounds(),
            'port': (1, 65535),
            'timeout': (1, 3600),
            }

    @classmethod
    def default_use_ssl(cls):
        return False

    @classmethod
    def default_api_username(cls):
        return 'admin'

    @classmethod
    def default_login_method(cls):
        return 'auto'

    @classmethod
    def default_timeout(cls):
        return 10

    @classmethod
    def default_provisioning_mode(cls):
        return 'api'

    @classmethod
    def default_isolation_method(cls):
        return 'profile'

    @classmethod
    def default_isolation_profile(cls):
        return 'isolir'

    @classmethod
    def default_isolation_address_list(cls):
        return 'isolir'

    @classmethod
    def default_unknown_secrets(cls):
        return 'keep'

    @classmethod
    def default_failures(cls):
        return 0

    @fields.depends('use_ssl', 'port')
    def on_change_use_ssl(self):
        if self.use_ssl and self.port in {None, routeros.DEFAULT_PORT}:
            self.port = routeros.DEFAULT_SSL_PORT
        elif not self.use_ssl and self.port in {
                None, routeros.DEFAULT_SSL_PORT}:
            self.port = routeros.DEFAULT_PORT

    def get_rec_name(self, name):
        return '%s - %s' % (self.code, self.name)

    @classmethod
    def search_rec_name(cls, name, clause):
        return rec_name_domain(clause, ['code', 'name'])

    @classmethod
    def get_service_count(cls, routers, name):
        pool = Pool()
        Service = pool.get('isp.service')
        counts = Service.count_per_router(routers)
        return {r.id: counts.get(r.id, 0) for r in routers}

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('code'):
            values['code'] = values['code'].strip().upper()
        return values

    @classmethod
    def validate_fields(cls, routers, field_names):
        super().validate_fields(routers, field_names)
        if field_names and 'code' not in field_names:
            return
        for router in routers:
            if not ROUTER_CODE_RE.match(router.code or ''):
                raise RouterCodeValidationError(gettext(
                        'isp_network.msg_router_code_invalid',
                        code=router.code))

    @classmethod
    def copy(cls, routers, default=None):
        default = default.copy() if default is not None else {}
        for name in [
                'reachable', 'routeros_version', 'identity', 'board',
                'cpu_load', 'free_memory', 'total_memory', 'router_uptime',
                'secret_count', 'active_count', 'extra_secret_count',
                'extra_secrets', 'last_sync',
                'last_sync_duration', 'last_contact', 'last_error',
                'next_attempt', 'services', 'logs', 'ssl_fingerprint',
                'health_history']:
            default.setdefault(name, None)
        default.setdefault('failures', 0)
        return super().copy(routers, default=default)

    # -- talking to the router --

    def get_settings(self, foreign_names=frozenset()):
        "The plain description `converge` works from"
        pool = Pool()
        Template = pool.get('product.template')
        with without_check_access():
            router = self.__class__(self.id)
            settings = RouterSettings(
                host=router.host, port=router.port,
                username=router.api_username, password=router.api_password,
                use_ssl=bool(router.use_ssl), timeout=router.timeout or 10,
                login_method=router.login_method or 'auto',
                ssl_fingerprint=router.ssl_fingerprint or None,
                ssl_ca=router.ssl_ca or None,
                isolation_method=router.isolation_method,
                isolation_address_list=router.isolation_address_list,
                unknown_secrets=router.unknown_secrets,
                foreign_names=frozenset(foreign_names))
        plans = Template.search([
                ('isp_plan', '=', True),
                ['OR',
                    ('isp_company', '=', None),
                    ('isp_company', '=', self.company.id),
                    ],
                ])
        for plan in plans:
            if plan.rate_limit:
                settings.profiles[plan.ppp_profile_name] = (
                    self.plan_profile(plan))
            if self.isolation_method == 'address_list':
                settings.profiles[self.listed_profile_name(plan)] = {
                    **self.plan_profile(plan),
                    'address-list': self.isolation_address_list}
        if self.isolation_method == 'profile' and self.isolation_profile:
            settings.profiles[self.isolation_profile] = (
                self.isolation_profile_values())
        return settings

    def plan_profile(self, plan):
        "The properties of the PPP profile of `plan` on this router"
        values = {'rate-limit': plan.rate_limit}
        if self.local_address:
            values['local-address'] = self.local_address
        if self.remote_pool:
            values['remote-address'] = self.remote_pool
        return values

    def listed_profile_name(self, plan):
        """The profile of `plan`'s isolated services without a static
        address under the address-list method: the plan's, plus the
        isolation address-list that RouterOS fills at every connect"""
        return '%s-%s' % (plan.ppp_profile_name, self.isolation_address_list)

    def isolation_profile_values(self):
        values = {'address-list': self.isolation_address_list}
        if self.isolation_rate_limit:
            values['rate-limit'] = self.isolation_rate_limit
        if self.isolation_pool:
            values['remote-address'] = self.isolation_pool
        if self.local_address:
            values['local-address'] = self.local_address
        return values

    @classmethod
    @ModelView.button
    def test_connection(cls, routers):
        "Log in, read the router's health and record it"
        pool = Pool()
        Log = pool.get('isp.router.log')
        logs = []
        for router in routers:
            settings = router.get_settings()
            started = time.monotonic()
            health = error = fingerprint = None
            notes, problems = [], []
            try:
                with open_client(settings) as client:
                    fingerprint = client.fingerprint
                    try:
                        health = read_health(client)
                    except routeros.CommandError as exception:
                        notes.append(gettext(
                                'isp_network.msg_router_health_refused',
                                error=str(exception)))
                    problems = router._check_policies(client, settings)
            except routeros.RouterOSError as exception:
                error = str(exception)
            router._record_contact(health, error)
            router.last_sync_duration = round(time.monotonic() - started, 3)
            logs.extend(router._trust_certificate(fingerprint))
            if not error:
                notes.insert(0, gettext('isp_network.msg_router_connected',
                        version=(health or {}).get('version') or '?'))
            logs.append(Log(
                    router=router, company=router.company, action='test',
                    outcome='failure' if error or problems else 'success',
                    message=error or '\n'.join(notes + problems)))
        cls.save(routers)
        Log.save(logs)

    def _trust_certificate(self, fingerprint):
        """Record the API-SSL certificate seen at the first connection
        (trust on first use); return the log entries"""
        pool = Pool()
        Log = pool.get('isp.router.log')
        if not self.use_ssl or not fingerprint or self.ssl_fingerprint:
            return []
        self.ssl_fingerprint = fingerprint
        return [Log(router=self, company=self.company, action='ssl_trust',
                outcome='success', message=gettext(
                    'isp_network.msg_router_certificate_trusted',
                    fingerprint=fingerprint))]

    def _check_policies(self, client, settings):
        "The problems of the API user's policies, as messages"
        try:
            missing = missing_policies(client, settings.username)
        except routeros.CommandError as exception:
            missing, error = None, str(exception)
        else:
            error = None
        if missing is None:
            return [gettext('isp_network.msg_router_policies_unknown',
                    user=settings.username, error=error or '')]
        if missing:
            return [gettext('isp_network.msg_router_policies_missing',
                    user=settings.username, policies=', '.join(missing))]
        return []

    def _record_contact(self, health, error):
        """Record the outcome of a contact: the health read (or None), the
        error (None when the router answered); keep it in the health
        history and alert staff when the router goes down or comes back"""
        pool = Pool()
        Health = pool.get('isp.router.health')
        now = dt.datetime.now()
        was = self.reachable
        health_values = health or {}
        total = health_values.get('total_memory')
        free = health_values.get('free_memory')
        Health.save([Health(company=self.company, router=self, date=now,
                    reachable=not error, up=0 if error else 100,
                    version=health_values.get('version'),
                    cpu_load=health_values.get('cpu_load'),
                    free_memory=free,
                    memory_used=(round(100 * (total - free) / total, 1)
                        if total and free is not None else None),
                    router_uptime=health_values.get('uptime'),
                    error=(error or '')[:200] or None)])
        if was and error:
            self._alert('isp_network.msg_router_down', error=error)
        elif not was and self.last_contact and not error:
            self._alert('isp_network.msg_router_back')
        if health:
            self.routeros_version = health.get('version')
            self.identity = health.get('identity')
            self.board = health.get('board')
            self.cpu_load = health.get('cpu_load')
            self.free_memory = health.get('free_memory')
            self.total_memory = health.get('total_memory')
            self.router_uptime = health.get('uptime')
        if error:
            self.reachable = False
            self.last_error = error
            self.failures = (self.failures or 0) + 1
            self.next_attempt = now + dt.timedelta(
                seconds=backoff(self.failures))
        else:
            self.reachable = True
            self.last_contact = now
            self.last_error = None
            self.failures = 0
            self.next_attempt = None

    def _alert(self, message, **values):
        """Notify the administrators of the router's branch (and the head
        office's administrators of it) in the client"""
        pool = Pool()
        Notification = pool.get('res.notification')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        groups = [ModelData.get_id('isp_base', name) for name in [
                'group_isp_branch_admin', 'group_isp_head_admin']]
        with without_check_access():
            users = User.search([
                    ('groups', 'in', groups),
                    ('companies', '=', self.company.id),
                    ])
        to_create = []
        for user in users:
            with Transaction().set_context(language=(
                        user.language.code if user.language else None)):
                label = gettext(message, router=self.rec_name, **values)
            to_create.append({
                    'user': user.id,
                    'label': label[:250],
                    'icon': 'tryton-warning' if values else 'tryton-ok',
                    'model': self.__name__,
                    'records': json.dumps([self.id]),
                    })
        if to_create:
            Notification.create(to_create)

    @property
    def healthy(self):
        "Whether new services may be placed on the router"
        return bool(self.active and not self.failures)

    @classmethod
    @ModelView.button
    def sync_button(cls, routers):
        cls.sync(routers)

    @classmethod
    @ModelView.button_action('isp_network.wizard_router_import')
    def import_secrets(cls, routers):
        pass

    @classmethod
    def sync_all(cls):
        """Cron: queue one sync task per active router of the context
        company; each runs in its own transaction and commits on its own,
        so a dead router never holds back the others' results.  A router
        that failed waits for its `next_attempt` (backoff)."""
        context = Transaction().context
        now = dt.datetime.now()
        domain = ['OR',
            ('next_attempt', '=', None),
            ('next_attempt', '<=', now),
            ]
        if context.get('company'):
            domain = [domain, ('company', '=', context['company'])]
        routers = cls.search(domain)
        # Without a worker (SQLite) the tasks run one after the other after
        # the commit, the last queued first: queue the routers that failed
        # before first so that they run last.
        routers.sort(key=lambda r: (-(r.failures or 0), -r.id))
        for router in routers:
            cls.__queue__.sync_router(router)

    def sync_router(self):
        "Queue task: sync this router alone (see `sync_all`)"
        if self.active:
            self.__class__.sync([self])

    @classmethod
    def sync(cls, routers):
        """Read every router back, repair drift, refresh health and the
        services' live status.  Routers talk concurrently, each in its own
        thread and connection; the database is written here as each router
        finishes."""
        cls._converge(routers, full=True)

    @classmethod
    def provision(cls, routers):
        """Queue task: apply the pending changes of the router's services.

        It runs in its own transaction (one task per router, see
        `push_pending`), locks the router so a concurrent sync and task do
        not interleave their writes, and leaves the services it could not
        apply pending, to be retried with backoff by `provision_pending`."""
        pool = Pool()
        Service = pool.get('isp.service')
        routers = [r for r in routers if r.active]
        if not routers:
            return
        cls.lock(routers)
        now = dt.datetime.now()
        todo = []
        for router in routers:
            services = Service.search(
                Service.pending_domain(router, now), order=[('id', 'ASC')])
            if services:
                todo.append(router)
        if todo:
            cls._converge(todo, full=False, now=now)

    @classmethod
    def provision_pending(cls):
        "Cron: retry the routers that have changes waiting and are due"
        pool = Pool()
        Service = pool.get('isp.service')
        now = dt.datetime.now()
        context = Transaction().context
        domain = ['OR',
            [('router_state', 'in', ['pending', 'error']),
                ['OR',
                    ('router_next_attempt', '=', None),
                    ('router_next_attempt', '<=', now)]],
            ('previous_router', '!=', None),
            ]
        if context.get('company'):
            domain = [domain, ('company', '=', context['company'])]
        services = Service.search(domain)
        routers = set()
        for service in services:
            routers.add(service.router)
            if service.previous_router:
                routers.add(service.previous_router)
        routers = [r for r in routers if r and r.active and (
                not r.next_attempt or r.next_attempt <= now)]
        for router in routers:
            cls.__queue__.provision([router])

    @classmethod
    def _converge(cls, routers, full, now=None):
        pool = Pool()
        Service = pool.get('isp.service')
        if now is None:
            now = dt.datetime.now()
        cls.lock(routers)
        jobs, inputs = [], []
        for router in routers:
            if full:
                services = Service.search(['OR',
                        ('router', '=', router.id),
                        ('previous_router', '=', router.id),
                        ], order=[('id', 'ASC')])
            else:
                services = Service.search(
                    Service.pending_domain(router, now),
                    order=[('id', 'ASC')])
            specs = [s.get_router_spec(router) for s in services]
            foreign = Service.foreign_names(router) if full else ()
            jobs.append((router.get_settings(foreign), specs, full))
            inputs.append((router, services))
        for index, result in run_concurrently(jobs):
            router, services = inputs[index]
            router._store_result(services, result, full)

    def _store_result(self, services, result, full):
        "Write what `converge` found and did (main thread, one router)"
        pool = Pool()
        Service = pool.get('isp.service')
        Log = pool.get('isp.router.log')
        now = dt.datetime.now()
        unreachable = not result.ok and not result.services
        kind = 'sync' if full else 'provision'
        metrics.ROUTER_SYNC_DURATION.labels(kind).observe(result.duration)
        metrics.ROUTER_SYNC_TOTAL.labels(kind,
            'false' if unreachable else 'true').inc()
        self._record_contact(
            result.health, result.error if unreachable or not result.ok
            else None)
        self.last_sync_duration = round(result.duration, 3)
        trusted = self._trust_certificate(result.fingerprint)
        if full and result.ok:
            self.last_sync = now
            self.secret_count = result.secret_count
            self.active_count = result.active_count
        logs = trusted
        if full and result.extra_names is not None:
            names = '\n'.join(result.extra_names)
            if names != (self.extra_secrets or '') and names:
                logs.append(Log(router=self, company=self.company,
                        action='extra_keep', outcome='success',
                        message=gettext('isp_network.msg_router_extra_kept',
                            count=len(result.extra_names),
                            names=', '.join(result.extra_names[:100]))))
            self.extra_secret_count = len(result.extra_names)
            self.extra_secrets = names or None
        self.save()
        for action, name, message in result.actions:
            logs.append(Log(
                    router=self, company=self.company, action=action,
                    outcome='failure' if action.endswith('error')
                    else 'success', username=name, message=message))
        if result.error:
            logs.append(Log(router=self, company=self.company,
                    action='sync' if full else 'provision',
                    outcome='failure', message=result.error))
        logs.extend(Service.store_router_results(
                self, services, result, full, now))
        Log.save(logs)


class RouterPool(InputGuardMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Router Pool"
    __name__ = 'isp.router.pool'

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT')
    name = fields.Char("Name", required=True)
    strategy = fields.Selection([
            ('fewest', "Fewest Services"),
            ('round_robin', "Round Robin"),
            ], "Strategy", required=True,
        help="How a new registration picks its router: the one with the "
        "fewest services, or each in turn.  Unreachable routers are "
        "skipped.")
    routers = fields.One2Many(
        'isp.router.pool-isp.router', 'pool', "Routers",
        help="The routers of the pool, in their round-robin order.")
    last_router = fields.Many2One(
        'isp.router', "Last Router", readonly=True, ondelete='SET NULL',
        help="The router the round robin picked last.")

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_strategy(cls):
        return 'fewest'

    def pick_router(self):
        "Return the router for a new service, or raise RouterPoolEmpty"
        pool = Pool()
        Service = pool.get('isp.service')
        routers = [line.router for line in self.routers
            if line.router.healthy]
        if not routers:
            raise RouterPoolEmpty(gettext(
                    'isp_network.msg_router_pool_empty', pool=self.rec_name))
        if self.strategy == 'round_robin':
            self.__class__.lock([self])
            order = [line.router for line in self.routers]
            start = (order.index(self.last_router) + 1
                if self.last_router in order else 0)
            for router in order[start:] + order[:start]:
                if router in routers:
                    break
            self.last_router = router
            self.save()
            return router
        counts = Service.count_per_router(routers)
        return min(routers, key=lambda r: (counts.get(r.id, 0), r.id))


class RouterPoolRouter(sequence_ordered(), ModelSQL, ModelView):
    "ISP Router Pool - Router"
    __name__ = 'isp.router.pool-isp.router'

    pool = fields.Many2One(
        'isp.router.pool', "Pool", required=True, ondelete='CASCADE')
    router = fields.Many2One(
        'isp.router', "Router", required=True, ondelete='CASCADE',
        domain=[
            ('company', '=', Eval('_parent_pool', {}).get('company', -1)),
            ])

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # the pool's access and branch rules
        cls.__access__.add('pool')


class RouterHealth(ModelSQL, ModelView):
    "ISP Router Health"
    __name__ = 'isp.router.health'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    router = fields.Many2One(
        'isp.router', "Router", required=True, readonly=True,
        ondelete='CASCADE')
    date = fields.DateTime("Date", required=True, readonly=True)
    reachable = fields.Boolean("Reachable", readonly=True)
    up = fields.Integer("Up", readonly=True,
        help="100 when the router answered, 0 when not (for the graph).")
    version = fields.Char("RouterOS Version", readonly=True)
    cpu_load = fields.Integer("CPU Load", readonly=True, help="In %.")
    memory_used = fields.Float("Memory Used", digits=(3, 1), readonly=True,
        help="In %.")
    free_memory = BigInteger("Free Memory", readonly=True, help="In bytes.")
    router_uptime = fields.Char("Router Uptime", readonly=True)
    error = fields.Char("Error", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.router, Index.Range()),
                (t.date, Index.Range())))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def clean(cls, days=90):
        "Delete the entries older than `days`"
        date = dt.datetime.now() - dt.timedelta(days=days)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(where=table.date < date))


class RouterLog(ModelSQL, ModelView):
    "ISP Router Log"
    __name__ = 'isp.router.log'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    router = fields.Many2One(
        'isp.router', "Router", required=True, readonly=True,
        ondelete='CASCADE')
    service = fields.Many2One(
        'isp.service', "Service", readonly=True, ondelete='CASCADE')
    username = fields.Char("User Name", readonly=True)
    action = fields.Char("Action", readonly=True,
        help="What was done: add, set, remove, kick, list_add, "
        "list_remove, profile_add, extra_remove, extra_disable, extra_keep, "
        "health_error, test, sync, provision...")
    outcome = fields.Selection([
            ('success', "Success"),
            ('failure', "Failure"),
            ], "Outcome", readonly=True)
    message = fields.Text("Message", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.router, Index.Range()),
                    (t.create_date, Index.Range())),
                Index(t, (t.service, Index.Range())),
                })
        cls._order = [('create_date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def clean(cls, days=90):
        "Delete the entries older than `days`"
        date = dt.datetime.now() - dt.timedelta(days=days)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(where=table.create_date < date))
        Pool().get('isp.router.health').clean(days=days)


def update_rows(model, values_by_id):
    """Write plain observed values with one UPDATE per row.

    Used for what routers report (live status, provisioning outcome) on
    thousands of services per sync: they carry no business rule, and the
    ORM's per-record write would dominate a 5,000-secret sync."""
    if not values_by_id:
        return
    table = model.__table__()
    cursor = Transaction().connection.cursor()
    now = dt.datetime.now()
    grouped = defaultdict(list)
    for id_, values in values_by_id.items():
        grouped[tuple(sorted(values.items()))].append(id_)
    for items, ids in grouped.items():
        columns = [getattr(table, k) for k, _ in items] + [table.write_date]
        row = [v for _, v in items] + [now]
        for sub_ids in grouped_slice(
                    ids, 1000):
            cursor.execute(*table.update(columns, row,
                    where=SQL_OPERATORS['in'](table.id, sub_ids)))
    transaction = Transaction()
    for cache in transaction.cache.values():
        if model.__name__ in cache:
            cache_model = cache[model.__name__]
            for id_ in values_by_id:
                cache_model.pop(id_, None)
