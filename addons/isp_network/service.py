# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt
import secrets
import string
import weakref
from collections import defaultdict

from sql.aggregate import Count
from sql.operators import Like
from trytond.i18n import gettext
from trytond.model import (
    Index,
    ModelSQL,
    ModelView,
    Unique,
    Workflow,
    fields,
)
from trytond.model.fields import SQL_OPERATORS
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from trytond.modules.isp_base.common import (
    InputGuardMixin,
    SecretDefaultsMixin,
    rec_name_domain,
)
from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchValuesMixin,
    check_companies,
)

from .exceptions import ServiceDeleteError, ServiceValidationError
from .router import backoff, update_rows
from .routeros import parse_duration

_DRAFT = {'readonly': Eval('state') != 'draft'}
_OPEN = {'readonly': Eval('state') == 'terminated'}
PRESENT_STATES = {'active', 'isolated'}
# changing these puts the service back in the provisioning queue
ROUTER_FIELDS = {
    'state', 'router', 'username', 'password', 'plan', 'remote_address',
    'caller_id', 'customer_id', 'radius_throttled', 'ppp_service',
    'router_comment', 'kept_profile', 'kept_disabled'}
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 8
USERNAME_DIGITS = 3
# routers already queued by the current transaction
_queued = weakref.WeakKeyDictionary()


def generate_password(length=PASSWORD_LENGTH):
    "A random alphanumeric password with letters and digits (secrets)"
    while True:
        password = ''.join(
            secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (any(c.isdigit() for c in password)
                and any(c.isupper() for c in password)
                and any(c.islower() for c in password)):
            return password


def pick_username(code, taken, digits=USERNAME_DIGITS):
    """A random free `{code}{digits}` user name; one more digit each time
    every number of the current length is taken."""
    while True:
        space = 10 ** digits
        used = {
            int(name[len(code):]) for name in taken
            if len(name) == len(code) + digits
            and name.startswith(code) and name[len(code):].isdigit()}
        if len(used) < space:
            break
        digits += 1
    for _ in range(20):
        number = secrets.randbelow(space)
        if number not in used:
            break
    else:
        free = [n for n in range(space) if n not in used]
        number = free[secrets.randbelow(len(free))]
    return '%s%0*d' % (code, digits, number)


class Service(
        BranchValuesMixin, BranchOnChangeMixin, InputGuardMixin,
        SecretDefaultsMixin, Workflow, ModelSQL, ModelView):
    "ISP Service"
    __name__ = 'isp.service'
    _rec_name = 'customer_id'
    _branch_fields = ('company', 'subscriber', 'location', 'plan', 'router')

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        states=_DRAFT)
    customer_id = fields.Char(
        "Customer ID", readonly=True,
        help="{LOC}-{ROUTER}{DDMMYY}-{NNN}: generated, never reused.")
    subscriber = fields.Many2One(
        'party.party', "Subscriber",
        required=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('is_subscriber', '=', True),
            ('isp_company', '=', Eval('company', -1)),
            ],
        states=_DRAFT)
    location = fields.Many2One(
        'isp.location', "Location", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states=_DRAFT,
        help="The location code of the customer ID; "
        "the subscriber's by default.")
    plan = fields.Many2One(
        'product.template', "Plan",
        required=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('isp_plan', '=', True),
            ['OR',
                ('isp_company', '=', None),
                ('isp_company', '=', Eval('company', -1)),
                ],
            ],
        states=_OPEN)
    router = fields.Many2One(
        'isp.router', "Router", required=True, ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states=_OPEN)
    username = fields.Char(
        "User Name", required=True, strip=True,
        states=_DRAFT,
        help="The PPPoE user name, {ROUTERCODE}{3 digits}: generated.")
    password = fields.Char(
        "Password", required=True, strip=True, states=_OPEN,
        help="The PPPoE password.")
    remote_address = fields.Char(
        "Static Address", strip=True, states=_OPEN,
        help="A fixed IPv4 address for the subscriber; empty to take one "
        "from the router's pool.")
    caller_id = fields.Char(
        "Caller ID", strip=True, states=_OPEN,
        help="Bind the secret to this MAC address (caller-id).")
    ppp_service = fields.Selection([
            ('pppoe', "PPPoE"),
            ('any', "Any"),
            ], "PPP Service", required=True, states=_OPEN,
        help="The service of the secret on the router; the import keeps "
        "the one it found.")
    router_comment = fields.Char(
        "Router Comment", strip=True, states=_OPEN,
        help="The comment of the secret on the router; empty: the customer "
        "ID.  The import keeps the comment it found.")
    kept_profile = fields.Char(
        "Kept Profile", readonly=True,
        help="The profile the import found on the router and kept (no plan "
        "was chosen for it): the secret stays on it until the plan or the "
        "state of the service changes.")
    kept_disabled = fields.Boolean(
        "Kept Disabled", readonly=True,
        help="The import found the secret disabled and kept it so until the "
        "state of the service changes.")
    activation_date = fields.Date("Activation Date", readonly=True)
    awaiting_installation = fields.Boolean(
        "Awaiting Installation", readonly=True,
        help="Registered to be activated when its installation is done "
        "(the work order is completed or the service is activated): "
        "until then nothing is on the router and nothing is billed.")
    termination_date = fields.Date("Termination Date", readonly=True)
    state = fields.Selection([
            ('draft', "Draft"),
            ('active', "Active"),
            ('isolated', "Isolated"),
            ('terminated', "Terminated"),
            ], "State", readonly=True, required=True, sort=False)

    router_state = fields.Selection([
            ('pending', "Pending"),
            ('synced', "Synced"),
            ('error', "Error"),
            ], "Router State", readonly=True, required=True, sort=False,
        help="Whether the router shows what the service asks for: "
        "pending changes are applied by a queued task and retried "
        "with backoff.")
    router_error = fields.Text("Router Error", readonly=True)
    router_attempts = fields.Integer("Router Attempts", readonly=True)
    router_next_attempt = fields.DateTime("Next Attempt", readonly=True)
    previous_router = fields.Many2One(
        'isp.router', "Previous Router", readonly=True, ondelete='SET NULL',
        help="The router the service left; its secret is removed there.")

    live_status = fields.Selection([
            ('unknown', "Unknown"),
            ('online', "Online"),
            ('offline', "Offline"),
            ('disabled', "Disabled"),
            ], "Live Status", readonly=True, required=True, sort=False)
    live_address = fields.Char("IP Address", readonly=True)
    live_caller_id = fields.Char("MAC Address", readonly=True)
    live_since = fields.DateTime(
        "Since", readonly=True,
        help="When the session started, or when the service was last "
        "seen going offline.")
    last_online = fields.DateTime("Last Online", readonly=True)
    uptime = fields.Function(fields.TimeDelta("Uptime"), 'get_uptime')
    last_seen = fields.Function(
        fields.DateTime("Last Seen"), 'get_last_seen')
    status_history = fields.One2Many(
        'isp.service.status', 'service', "Status History", readonly=True)
    logs = fields.One2Many(
        'isp.router.log', 'service', "Router Logs", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_username_uniq', Unique(t, t.company, t.username),
                'isp_network.msg_service_username_unique'),
            ('company_customer_id_uniq',
                Unique(t, t.company, t.customer_id),
                'isp_network.msg_service_customer_id_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.router, Index.Range()),
                    (t.state, Index.Equality())),
                Index(t, (t.previous_router, Index.Range())),
                Index(t, (t.router_state, Index.Equality(cardinality='low')),
                    where=t.router_state.in_(['pending', 'error'])),
                Index(t, (t.username, Index.Similarity())),
                Index(t, (t.customer_id, Index.Similarity())),
                Index(t, (t.subscriber, Index.Range())),
                })
        cls._order = [('customer_id', 'ASC NULLS FIRST'), ('id', 'DESC')]
        cls._transitions |= {
            ('draft', 'active'),
            ('active', 'isolated'),
            ('isolated', 'active'),
            ('draft', 'terminated'),
            ('active', 'terminated'),
            ('isolated', 'terminated'),
            }
        cls._buttons.update({
                'activate': {
                    'invisible': Eval('state') != 'draft',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                'isolate': {
                    'invisible': Eval('state') != 'active',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'reactivate': {
                    'invisible': Eval('state') != 'isolated',
                    'icon': 'tryton-forward',
                    'depends': ['state'],
                    },
                'terminate': {
                    'invisible': Eval('state') == 'terminated',
                    'icon': 'tryton-delete',
                    'depends': ['state'],
                    },
                'push': {
                    'invisible': ~Eval('state').in_(
                        ['active', 'isolated', 'terminated']),
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_state(cls):
        return 'draft'

    @classmethod
    def default_router_state(cls):
        return 'synced'

    @classmethod
    def default_router_attempts(cls):
        return 0

    @classmethod
    def default_ppp_service(cls):
        return 'pppoe'

    @classmethod
    def default_kept_disabled(cls):
        return False

    @classmethod
    def default_live_status(cls):
        return 'unknown'

    @classmethod
    def default_password(cls):
        return generate_password()

    @classmethod
    def _secret_defaults(cls):
        return {**super()._secret_defaults(), 'password': generate_password}

    @fields.depends('subscriber', 'location')
    def on_change_subscriber(self):
        if self.subscriber and not self.location:
            self.location = getattr(self.subscriber, 'location', None)

    @fields.depends('router', 'username', 'company')
    def on_change_router(self):
        if self.router and not self.username:
            self.username = self.new_username(self.router)

    def get_rec_name(self, name):
        return self.customer_id or self.username or '(%s)' % self.id

    @classmethod
    def search_rec_name(cls, name, clause):
        return rec_name_domain(
            clause, ['customer_id', 'username', 'subscriber.rec_name'])

    def get_uptime(self, name):
        if self.live_status == 'online' and self.live_since:
            return dt.datetime.now() - self.live_since

    def get_last_seen(self, name):
        if self.live_status == 'online' and self.router:
            return self.router.last_sync or self.last_online
        return self.last_online

    # -- generation --

    @classmethod
    def _column_like(cls, column, company, prefix):
        "The values of `column` starting with `prefix` in `company`"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        escaped = prefix.replace('\\', '\\\\').replace(
            '%', '\\%').replace('_', '\\_')
        cursor.execute(*table.select(getattr(table, column),
                where=(table.company == company)
                & Like(getattr(table, column), escaped + '%', escape='\\')))
        return {value for value, in cursor}

    @classmethod
    def new_username(cls, router, taken=()):
        "A free user name for a new service of `router`"
        names = cls._column_like('username', router.company.id, router.code)
        return pick_username(router.code, names | set(taken))

    @classmethod
    def new_customer_id(cls, location, router, date=None, taken=()):
        """The next `{LOC}-{ROUTER}{DDMMYY}-{NNN}` of the location, router
        and day (NNN counts from 001; it grows past 999)."""
        pool = Pool()
        Date = pool.get('ir.date')
        if date is None:
            with Transaction().set_context(company=router.company.id):
                date = Date.today()
        prefix = '%s-%s%s-' % (location.code, router.code,
            date.strftime('%d%m%y'))
        customer_ids = cls._column_like(
            'customer_id', router.company.id, prefix)
        numbers = [0]
        for customer_id in customer_ids | set(taken):
            suffix = customer_id[len(prefix):]
            if customer_id.startswith(prefix) and suffix.isdigit():
                numbers.append(int(suffix))
        return '%s%03d' % (prefix, max(numbers) + 1)

    # -- workflow --

    @classmethod
    @ModelView.button
    def activate(cls, services):
        """Activate draft services; those registered to wait for their
        installation get their first period invoiced, once active"""
        installed = [s for s in services
            if s.state == 'draft' and s.awaiting_installation]
        cls._activate(services)
        if installed:
            cls.write(installed, {'awaiting_installation': False})
            cls.register_first_invoice(installed)

    @classmethod
    @Workflow.transition('active')
    def _activate(cls, services):
        pool = Pool()
        Date = pool.get('ir.date')
        to_write = [s for s in services if not s.activation_date]
        if to_write:
            cls.write(to_write, {'activation_date': Date.today()})

    @classmethod
    @ModelView.button
    @Workflow.transition('isolated')
    def isolate(cls, services):
        "Cut the services off on their router (see the router's method)"

    @classmethod
    @ModelView.button
    @Workflow.transition('active')
    def reactivate(cls, services):
        "Undo the isolation"

    @classmethod
    @ModelView.button
    @Workflow.transition('terminated')
    def terminate(cls, services):
        pool = Pool()
        Date = pool.get('ir.date')
        cls.write(services, {'termination_date': Date.today()})

    @classmethod
    @ModelView.button
    def push(cls, services):
        "Queue the services for their router again, now"
        cls.write(services, {
                'router_state': 'pending',
                'router_attempts': 0,
                'router_next_attempt': None,
                })
        cls.push_to_routers(services)

    # -- modification --

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('remote_address') == '':
            values['remote_address'] = None
        if values.get('caller_id'):
            values['caller_id'] = values['caller_id'].upper()
        if mode == 'write' and values.keys() & {'plan', 'state'}:
            # what the import kept until staff choose
            values.setdefault('kept_profile', None)
            if 'state' in values:
                values.setdefault('kept_disabled', False)
        if mode == 'write' and ROUTER_FIELDS & values.keys():
            values.setdefault('router_state', 'pending')
            values.setdefault('router_attempts', 0)
            values.setdefault('router_next_attempt', None)
        return values

    @classmethod
    def check_modification(cls, mode, services, values=None, external=False):
        super().check_modification(
            mode, services, values=values, external=external)
        if mode == 'delete':
            if external:
                # before the state, which names the service: another
                # branch's is refused as the record rule would
                check_companies(services)
            for service in services:
                if service.state != 'draft':
                    raise ServiceDeleteError(gettext(
                            'isp_network.msg_service_delete_draft',
                            service=service.rec_name))

    @classmethod
    def on_write(cls, services, values):
        callbacks = super().on_write(services, values)
        if 'router' in values:
            # the old router must drop the secret
            moved = [s for s in services
                if s.router and s.router.id != values['router']
                and s.state in PRESENT_STATES]
            if moved:
                previous = {s.id: s.router.id for s in moved}

                def set_previous():
                    for router_id, ids in _group(previous).items():
                        cls.write(cls.browse(ids),
                            {'previous_router': router_id})
                callbacks.append(set_previous)
        return callbacks

    @classmethod
    def on_modification(cls, mode, services, field_names=None):
        super().on_modification(mode, services, field_names=field_names)
        if mode == 'write' and field_names and (
                ROUTER_FIELDS | {'previous_router'}) & field_names:
            cls.push_to_routers(services)

    @classmethod
    def validate_fields(cls, services, field_names):
        super().validate_fields(services, field_names)
        if field_names and not (field_names & {
                    'remote_address', 'caller_id', 'username'}):
            return
        for service in services:
            service.check_router_values()

    def check_router_values(self):
        problem = self.router_values_problem(
            self.username, self.remote_address, self.caller_id)
        if problem:
            raise ServiceValidationError(problem)

    @staticmethod
    def router_values_problem(username, remote_address, caller_id):
        "Why these router values are refused (a message), or None"
        import ipaddress
        import re
        if remote_address:
            try:
                ipaddress.IPv4Address(remote_address)
            except ValueError:
                return gettext(
                    'isp_network.msg_service_remote_address_invalid',
                    address=remote_address)
        if caller_id and not re.match(
                r'^([0-9A-F]{2}:){5}[0-9A-F]{2}$', caller_id):
            return gettext('isp_network.msg_service_caller_id_invalid',
                caller_id=caller_id)
        if username and not re.match(r'^[\w.@-]+$', username):
            return gettext('isp_network.msg_service_username_invalid',
                username=username)
        return None

    @classmethod
    def copy(cls, services, default=None):
        default = default.copy() if default is not None else {}
        # a copy is a new service: it goes through the workflow again
        default.setdefault('state', 'draft')
        for name in [
                'customer_id', 'activation_date', 'termination_date',
                'router_error', 'router_next_attempt', 'previous_router',
                'live_address', 'live_caller_id', 'live_since',
                'last_online', 'status_history', 'logs', 'router_comment',
                'kept_profile']:
            default.setdefault(name, None)
        default.setdefault('kept_disabled', False)
        default.setdefault('awaiting_installation', False)
        default.setdefault('router_state', 'synced')
        default.setdefault('live_status', 'unknown')
        default.setdefault('username', lambda d: cls.new_username(
                cls(d['id']).router))
        return super().copy(services, default=default)

    # -- provisioning --

    @classmethod
    def push_to_routers(cls, services):
        """Queue one provisioning task per router touched by `services`
        (at most once per router and transaction: a task applies every
        pending service of its router)."""
        pool = Pool()
        Router = pool.get('isp.router')
        transaction = Transaction()
        queued = _queued.setdefault(transaction, set())
        routers = set()
        for service in services:
            for router in [service.router, service.previous_router]:
                if router and router.id not in queued:
                    routers.add(router.id)
        for router_id in sorted(routers):
            queued.add(router_id)
            Router.__queue__.provision([Router(router_id)])

    @classmethod
    def pending_domain(cls, router, now):
        "The services a provisioning task of `router` applies"
        router_id = router.id
        return ['OR',
            [('router', '=', router_id),
                ('router_state', 'in', ['pending', 'error']),
                ['OR',
                    ('router_next_attempt', '=', None),
                    ('router_next_attempt', '<=', now),
                    ]],
            ('previous_router', '=', router_id),
            ]

    @classmethod
    def foreign_names(cls, router):
        "User names of the company's services that are not on `router`"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.username,
                where=(table.company == router.company.id)
                & (table.router != router.id)))
        return {name for name, in cursor}

    @classmethod
    def count_per_router(cls, routers):
        "The number of services that are not terminated per router id"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        counts = {}
        for sub_ids in grouped_slice(
                [r.id for r in routers], 1000):
            cursor.execute(*table.select(table.router, Count(table.id),
                    where=SQL_OPERATORS['in'](table.router, sub_ids)
                    & (table.state != 'terminated'),
                    group_by=[table.router]))
            counts.update(cursor)
        return counts

    def get_router_profile(self, router):
        if self.kept_profile:
            return self.kept_profile
        if self.kept_disabled:
            return self.plan.ppp_profile_name
        if self.state == 'isolated':
            if router.isolation_method == 'profile':
                return router.isolation_profile
            if (router.isolation_method == 'address_list'
                    and not self.remote_address):
                # RouterOS lists the address at every connect
                return router.listed_profile_name(self.plan)
        return self.plan.ppp_profile_name

    def get_router_spec(self, router):
        "What `router` must hold for this service (see converge)"
        present = (self.state in PRESENT_STATES
            and self.router and self.router.id == router.id)
        isolated = self.state == 'isolated'
        method = router.isolation_method
        spec = {
            'id': self.id,
            'name': self.username,
            'present': present,
            'secret': {
                'password': self.password,
                'profile': self.get_router_profile(router),
                'service': self.ppp_service or 'pppoe',
                'remote-address': self.remote_address or None,
                'caller-id': self.caller_id or '',
                'disabled': (
                    'true' if self.kept_disabled
                    or (isolated and method == 'disable') else 'false'),
                'comment': self.router_comment or self.customer_id or '',
                },
            'list_addresses': [],
            }
        if isolated and method == 'address_list' and self.remote_address:
            spec['list_addresses'] = [self.remote_address]
        return spec

    @classmethod
    def store_router_results(cls, router, services, result, full, now):
        """Record the outcome of a router's convergence on its services
        and return the router logs to save"""
        pool = Pool()
        Log = pool.get('isp.router.log')
        Status = pool.get('isp.service.status')
        logs = []
        updates = {}
        history = []
        for service in services:
            outcome = result.services.get(service.id)
            if outcome is None:
                continue
            values = {}
            on_router = service.router and service.router.id == router.id
            if on_router:
                values.update(service._router_state_values(outcome, now))
            elif outcome.ok and service.previous_router:
                values['previous_router'] = None
            for action, message in outcome.actions:
                logs.append(Log(
                        router=router, company=router.company,
                        service=service, username=outcome.name,
                        action=action, outcome='success', message=message))
            if outcome.error:
                logs.append(Log(
                        router=router, company=router.company,
                        service=service, username=outcome.name,
                        action='check', outcome='failure',
                        message=outcome.error))
            if on_router and outcome.live and (
                    full or outcome.actions):
                live = service._live_values(outcome.live, now)
                values.update(live)
                history.extend(service._live_history(values, now))
            if values:
                updates[service.id] = values
        update_rows(cls, updates)
        Status.save(history)
        return logs

    def _router_state_values(self, outcome, now):
        if outcome.ok:
            new = {
                'router_state': 'synced',
                'router_error': None,
                'router_attempts': 0,
                'router_next_attempt': None,
                }
        else:
            attempts = (self.router_attempts or 0) + 1
            new = {
                'router_state': 'error',
                'router_error': outcome.error,
                'router_attempts': attempts,
                'router_next_attempt': now + dt.timedelta(
                    seconds=backoff(attempts)),
                }
        return {k: v for k, v in new.items() if getattr(self, k) != v}

    def _live_history(self, values, now):
        "The status history entry of changed live `values` (or none)"
        pool = Pool()
        Status = pool.get('isp.service.status')
        if 'live_status' not in values and 'live_address' not in values:
            return []
        return [Status(
                service=self, company=self.company, date=now,
                status=values.get('live_status', self.live_status),
                address=values.get('live_address', self.live_address),
                caller_id=values.get(
                    'live_caller_id', self.live_caller_id))]

    def _live_values(self, live, now):
        "The live fields that changed"
        status = live['status']
        values = {}
        if status != self.live_status:
            values['live_status'] = status
            if self.live_status == 'online':
                values['last_online'] = now
        address = live.get('address')
        caller_id = live.get('caller_id')
        if address != self.live_address:
            values['live_address'] = address
        if caller_id != self.live_caller_id:
            values['live_caller_id'] = caller_id
        if status == 'online':
            uptime = parse_duration(live.get('uptime')) or 0
            since = now - dt.timedelta(seconds=uptime)
            if (not self.live_since or 'live_status' in values
                    or abs((self.live_since - since).total_seconds()) > 60):
                values['live_since'] = since.replace(microsecond=0)
            values_online = values.get('live_status') == 'online'
            if values_online:
                values['last_online'] = now
        elif 'live_status' in values:
            values['live_since'] = now
        return values


def _group(mapping):
    groups = defaultdict(list)
    for key, value in mapping.items():
        groups[value].append(key)
    return groups


class ServiceStatus(ModelSQL, ModelView):
    "ISP Service Status"
    __name__ = 'isp.service.status'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    service = fields.Many2One(
        'isp.service', "Service", required=True, readonly=True,
        ondelete='CASCADE')
    date = fields.DateTime("Date", required=True, readonly=True)
    status = fields.Selection('get_statuses', "Status", readonly=True)
    address = fields.Char("IP Address", readonly=True)
    caller_id = fields.Char("MAC Address", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.service, Index.Range()), (t.date, Index.Range())))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def get_statuses(cls):
        pool = Pool()
        Service = pool.get('isp.service')
        return Service.fields_get(['live_status'])['live_status']['selection']

