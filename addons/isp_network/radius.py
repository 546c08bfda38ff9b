# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""RADIUS provisioning mode.

A router in RADIUS mode gets no PPPoE secret: it asks FreeRADIUS, which
reads the product's tables through the views of radius_sql.py.  What the
product still has to do is change the *live* sessions when a service
changes: CoA (RFC 5176) to the router's CoA port, falling back to a
Disconnect-Request when the router refuses the CoA or does not answer.
That runs in the router's provisioning queue task, like an API push, with
the same log, retry and backoff.
"""
import datetime as dt
import ipaddress
import time

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Unique, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from . import coa
from .converge import ServiceResult
from .exceptions import RouterRadiusValidationError
from .router import update_rows

COA_PORT = 3799
COA_TIMEOUT = 3
COA_RETRIES = 2
_RADIUS = Eval('provisioning_mode') == 'radius'


def open_sessions(nas_addresses, usernames):
    """{(nas address, user name): [session]} of the sessions open in
    radacct (PostgreSQL only; none elsewhere)"""
    sessions = {}
    if backend.name != 'postgresql' or not nas_addresses or not usernames:
        return sessions
    cursor = Transaction().connection.cursor()
    for sub_names in grouped_slice(sorted(usernames), 1000):
        cursor.execute(
            "SELECT host(nasipaddress), username, acctsessionid, "
            "host(framedipaddress), callingstationid "
            "FROM radacct WHERE acctstoptime IS NULL "
            "AND username = ANY(%s) AND host(nasipaddress) = ANY(%s) "
            "ORDER BY radacctid",
            (list(sub_names), list(nas_addresses)))
        for nas, username, session_id, address, caller_id in cursor:
            sessions.setdefault((nas, username), []).append({
                    'Acct-Session-Id': session_id,
                    'Framed-IP-Address': address,
                    'Calling-Station-Id': caller_id,
                    })
    return sessions


def nas_sessions(nas_address):
    """{user name: live values} of the sessions open in radacct at a NAS
    (the latest one of a user; PostgreSQL only)"""
    live = {}
    if backend.name != 'postgresql' or not nas_address:
        return live
    cursor = Transaction().connection.cursor()
    cursor.execute(
        "SELECT username, host(framedipaddress), callingstationid, "
        "GREATEST(EXTRACT(EPOCH FROM (now() - acctstarttime)), 0) "
        "FROM radacct WHERE acctstoptime IS NULL "
        "AND nasipaddress = %s::inet ORDER BY acctstarttime, radacctid",
        (nas_address,))
    for username, address, caller_id, uptime in cursor:
        live[username] = {
            'status': 'online',
            'address': address or None,
            'caller_id': caller_id or None,
            'uptime': '%ds' % int(uptime or 0),
            }
    return live


class Template(metaclass=PoolMeta):
    __name__ = 'product.template'

    simultaneous_use = fields.Integer(
        "Simultaneous Sessions",
        states={'invisible': ~Eval('isp_plan', False)},
        help="RADIUS mode: how many sessions a subscriber of the plan may "
        "have open at once; empty for no limit.")

    @classmethod
    def default_simultaneous_use(cls):
        return 1

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(), 'simultaneous_use': (1, 1000)}


class Router(metaclass=PoolMeta):
    __name__ = 'isp.router'

    radius_address = fields.Char(
        "NAS Address", strip=True,
        states={'required': _RADIUS, 'invisible': ~_RADIUS},
        help="The address the router's RADIUS packets come from; "
        "FreeRADIUS knows the router (and its branch) by it.")
    radius_secret = fields.Char(
        "RADIUS Secret", strip=True,
        states={'required': _RADIUS, 'invisible': ~_RADIUS},
        help="Shared by the router and FreeRADIUS; readable only by the "
        "administrators.")
    coa_port = fields.Integer(
        "CoA Port", states={'required': _RADIUS, 'invisible': ~_RADIUS},
        help="The router's UDP port for CoA and Disconnect-Request "
        "(RouterOS: /radius incoming, 3799).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.provisioning_mode.selection.append(('radius', "RADIUS"))
        cls.provisioning_mode.help += (
            "\nRADIUS: the router asks FreeRADIUS, which reads the services "
            "from the database; live sessions are changed by CoA.")
        t = cls.__table__()
        cls._sql_constraints += [
            ('radius_address_uniq', Unique(t, t.radius_address),
                'isp_network.msg_router_radius_address_unique'),
            ]

    @classmethod
    def default_coa_port(cls):
        return COA_PORT

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(), 'coa_port': (1, 65535)}

    @classmethod
    def validate_fields(cls, routers, field_names):
        super().validate_fields(routers, field_names)
        if field_names and 'radius_address' not in field_names:
            return
        for router in routers:
            if router.radius_address:
                try:
                    ipaddress.ip_address(router.radius_address)
                except ValueError:
                    raise RouterRadiusValidationError(gettext(
                            'isp_network.msg_router_radius_address_invalid',
                            address=router.radius_address)) from None

    @classmethod
    def copy(cls, routers, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('radius_address', None)
        return super().copy(routers, default=default)

    # -- dispatch by provisioning mode --

    @classmethod
    def _split_mode(cls, routers):
        radius = [r for r in routers if r.provisioning_mode == 'radius']
        return radius, [r for r in routers if r not in radius]

    @classmethod
    def provision(cls, routers):
        radius, others = cls._split_mode(routers)
        if others:
            super().provision(others)
        if radius:
            cls.radius_provision(radius)

    @classmethod
    def sync(cls, routers):
        radius, others = cls._split_mode(routers)
        if others:
            super().sync(others)
        if radius:
            cls.radius_provision(radius, due_only=False)
            cls.radius_refresh_live(radius)

    @classmethod
    def radius_refresh_live(cls, routers):
        """The live status of the routers' services from the sessions
        FreeRADIUS's accounting holds open (online with address, MAC and
        uptime; offline otherwise), with the status history, and the
        routers' last sync"""
        pool = Pool()
        Service = pool.get('isp.service')
        Status = pool.get('isp.service.status')
        now = dt.datetime.now()
        history = []
        for router in routers:
            if not router.active:
                continue
            started = time.monotonic()
            sessions = nas_sessions(router.radius_address)
            updates = {}
            for service in Service.search([
                        ('router', '=', router.id),
                        ('state', '!=', 'draft'),
                        ]):
                live = sessions.get(service.username)
                if live is None:
                    live = {'status': 'disabled'
                        if service.state == 'terminated' else 'offline'}
                values = service._live_values(live, now)
                if values:
                    history.extend(service._live_history(values, now))
                    updates[service.id] = values
            update_rows(Service, updates)
            cls.write([router], {
                    'last_sync': now,
                    'last_sync_duration': round(
                        time.monotonic() - started, 3),
                    'active_count': len(sessions),
                    })
        Status.save(history)

    @classmethod
    def radius_provision(cls, routers, due_only=True):
        """Queue task: bring the live sessions of the routers' pending
        services to what FreeRADIUS now answers (CoA, else Disconnect).

        Services without an open session need nothing: their next login
        reads the views.  The router is locked like an API push; services
        whose router did not confirm stay in error and are retried with
        backoff by `provision_pending`."""
        pool = Pool()
        Service = pool.get('isp.service')
        routers = [r for r in routers if r.active]
        if not routers:
            return
        cls.lock(routers)
        now = dt.datetime.now()
        for router in routers:
            if due_only:
                domain = Service.pending_domain(router, now)
            else:
                domain = ['OR',
                    [('router', '=', router.id),
                        ('router_state', 'in', ['pending', 'error'])],
                    ('previous_router', '=', router.id),
                    ]
            services = Service.search(domain, order=[('id', 'ASC')])
            if services:
                router._radius_apply(services, now)

    def coa_settings(self):
        "Where and how to reach the router's CoA port (secret included)"
        with without_check_access():
            router = self.__class__(self.id)
            return {
                'host': router.api_host(),
                'secret': router.radius_secret or '',
                'port': router.coa_port or COA_PORT,
                'timeout': min(router.timeout or COA_TIMEOUT, COA_TIMEOUT),
                }

    def _radius_apply(self, services, now):
        pool = Pool()
        Service = pool.get('isp.service')
        Log = pool.get('isp.router.log')
        sessions = open_sessions(
            [self.radius_address] if self.radius_address else [],
            {s.username for s in services})
        settings = self.coa_settings()
        logs, updates = [], {}
        for service in services:
            on_router = service.router and service.router.id == self.id
            live = sessions.get((self.radius_address, service.username), [])
            ok, error, values = True, None, {}
            # the isolation leaves the session with its end (or is not live)
            cleared = not live
            for session in live:
                outcome, attempts = service.radius_change(
                    self, session, settings, on_router)
                for action, result in attempts:
                    logs.append(Log(
                            router=self, company=self.company,
                            service=service, username=service.username,
                            action=action,
                            outcome='success' if result.ok else 'failure',
                            message=describe(action, result, session)))
                if not outcome:
                    ok = False
                    error = describe(*attempts[-1], session)
                elif attempts[-1][0] == 'disconnect':
                    cleared = True
            if (ok and cleared and service.state != 'isolated'
                    and service.radius_session_isolated):
                values['radius_session_isolated'] = False
            if on_router:
                result = ServiceResult(
                    service.id, service.username, ok=ok, error=error)
                values.update(service._router_state_values(result, now))
            elif ok:
                values['previous_router'] = None
            if values:
                updates[service.id] = values
        update_rows(Service, updates)
        Log.save(logs)


def describe(action, result, session):
    "A log line for a CoA or Disconnect attempt (no secret in it)"
    name = {'coa': "CoA", 'disconnect': "Disconnect"}[action]
    text = "%s %s" % (name, {
            'ack': "acknowledged", 'nak': "refused",
            'timeout': "unanswered", 'error': "failed",
            }.get(result.outcome, result.outcome))
    if result.outcome == 'nak' and result.error_cause:
        text += " (%s)" % result.error_cause
    elif result.error and result.outcome != 'nak':
        text += " (%s)" % result.error
    return "%s, session %s" % (text, session.get('Acct-Session-Id') or '?')


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    radius_throttled = fields.Boolean(
        "Throttled", readonly=True,
        help="Over the plan's fair-usage quota this cycle: RADIUS gives "
        "the plan's throttled rate until the next cycle.")
    radius_throttled_since = fields.Date("Throttled Since", readonly=True)
    radius_session_isolated = fields.Boolean(
        "Session Isolated", readonly=True,
        help="The live RADIUS session may still carry the isolation: "
        "reactivation ends it so the next login gets the plan.")

    @classmethod
    def default_radius_throttled(cls):
        return False

    @classmethod
    def default_radius_session_isolated(cls):
        return False

    @classmethod
    def isolate(cls, services):
        super().isolate(services)
        radius = [s for s in services
            if s.router and s.router.provisioning_mode == 'radius']
        if radius:
            cls.write(radius, {'radius_session_isolated': True})

    @classmethod
    def copy(cls, services, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('radius_throttled', False)
        default.setdefault('radius_throttled_since', None)
        default.setdefault('radius_session_isolated', False)
        return super().copy(services, default=default)

    def get_radius_rate_limit(self, router):
        "The Mikrotik-Rate-Limit FreeRADIUS answers now (see the views)"
        plan = self.plan
        if (self.state == 'isolated' and router.isolation_method == 'profile'
                and router.isolation_rate_limit):
            return router.isolation_rate_limit
        if self.radius_throttled and plan.throttled_rate_limit:
            return plan.throttled_rate_limit
        return plan.rate_limit

    def get_radius_coa(self, router):
        """The attributes a CoA gives the live session, or None when only
        a Disconnect makes the change (the session must end, or it carries
        an isolation that no CoA withdraws: an address-list entry or an
        address of the isolation pool)"""
        if self.state not in {'active', 'isolated'}:
            return None
        if self.state == 'isolated' and router.isolation_method == 'disable':
            return None
        if self.state == 'active' and self.radius_session_isolated:
            return None
        attributes = {}
        rate = self.get_radius_rate_limit(router)
        if rate:
            attributes['Mikrotik-Rate-Limit'] = rate
        if self.state == 'isolated':
            attributes['Mikrotik-Address-List'] = (
                router.isolation_address_list)
        return attributes

    def radius_change(self, router, session, settings, on_router):
        """Change one live session on `router`: CoA, then Disconnect when
        the CoA is refused or unanswered.  Return (applied, [(action,
        result)])"""
        identity = {'User-Name': self.username}
        identity.update(
            {k: v for k, v in session.items()
                if v and k != 'Calling-Station-Id'})
        change = self.get_radius_coa(router) if on_router else None
        attempts = []
        options = dict(port=settings['port'], timeout=settings['timeout'],
            retries=COA_RETRIES)
        if change is not None:
            result = coa.send_coa(settings['host'], settings['secret'],
                dict(identity, **change), **options)
            attempts.append(('coa', result))
            if result.ok:
                return True, attempts
        result = coa.send_disconnect(
            settings['host'], settings['secret'], identity, **options)
        attempts.append(('disconnect', result))
        # a router that does not know the session has ended it already
        gone = (result.outcome == 'nak'
            and result.error_cause == 'Session-Context-Not-Found')
        return result.ok or gone, attempts
