# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The router side of vouchers.

API profiles: what each router must hold (`Voucher.router_specs`), the
pushes queued when a voucher's presence on its routers changes (created,
disabled, enabled, expired, voided, deleted) or when its profile changes,
and what the routers show back (`Voucher.store_live`: first login, uptime
and data used, expiry of the used up).

RADIUS profiles: FreeRADIUS reads the vouchers from views (radius.py);
`Voucher.radius_accounting` turns the accounting FreeRADIUS writes into
first logins and usage."""
import datetime as dt
from collections import defaultdict

from sql.operators import In
from trytond import backend
from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_network.router import update_rows
from trytond.modules.isp_network.usage import install_radius_views

from . import hotspot, radius
from .exceptions import ProfileValidationError

radius.register()

#: where a voucher of each state is on its API routers
PRESENCE = {
    'new': 'enabled', 'sold': 'enabled', 'active': 'enabled',
    'disabled': 'disabled', 'expired': None, 'voided': None,
    }
ON_ROUTER = [s for s, p in PRESENCE.items() if p]
#: profile fields whose change is pushed to the routers
ROUTER_PROFILE_FIELDS = {
    'router', 'router_pool', 'mode', 'rate_limit', 'shared_users',
    'uptime_limit', 'data_quota'}
#: voucher states whose usage is still counted
COUNTED = ['new', 'sold', 'active']


class Profile(metaclass=PoolMeta):
    __name__ = 'isp.voucher.profile'

    @classmethod
    def router_ids(cls, profiles):
        "{profile id: [router id]} of the routers each profile works on"
        result = {}
        with without_check_access():
            for profile in cls.browse([p.id for p in profiles]):
                if profile.router:
                    result[profile.id] = [profile.router.id]
                elif profile.router_pool:
                    result[profile.id] = [
                        line.router.id for line in profile.router_pool.routers]
                else:
                    result[profile.id] = []
        return result

    @classmethod
    def api_router_ids(cls):
        "The routers of every API profile (inactive ones too)"
        with without_check_access(), Transaction().set_context(
                active_test=False):
            profiles = cls.search([('mode', '=', 'api')])
            return {i for ids in cls.router_ids(profiles).values()
                for i in ids}

    @classmethod
    def router_profiles(cls, router):
        "The API profiles working on `router` (inactive ones too)"
        with without_check_access(), Transaction().set_context(
                active_test=False):
            return cls.search([
                    ('mode', '=', 'api'),
                    ['OR',
                        ('router', '=', router.id),
                        ('router_pool.routers.router', '=', router.id),
                        ],
                    ], order=[('id', 'ASC')])

    @classmethod
    def validate_fields(cls, profiles, field_names):
        super().validate_fields(profiles, field_names)
        if field_names and not (
                field_names & {'mode', 'router', 'router_pool'}):
            return
        cls.check_radius_routers(profiles)

    @classmethod
    def check_radius_routers(cls, profiles):
        "A RADIUS profile's routers are NAS of FreeRADIUS (RADIUS mode)"
        pool = Pool()
        Router = pool.get('isp.router')
        radius = [p for p in profiles if p.mode == 'radius']
        for profile_id, router_ids in cls.router_ids(radius).items():
            with without_check_access():
                routers = Router.browse(router_ids)
                wrong = [r for r in routers
                    if r.provisioning_mode != 'radius']
                if wrong:
                    raise ProfileValidationError(gettext(
                            'isp_voucher.msg_profile_radius_router',
                            profile=cls(profile_id).rec_name,
                            router=wrong[0].rec_name))

    def hotspot_profile(self):
        "The properties of the profile's hotspot user profile"
        return {
            'rate-limit': self.rate_limit or '',
            'shared-users': str(self.shared_users or 1),
            }

    @property
    def uptime_seconds(self):
        if self.uptime_limit:
            return int(self.uptime_limit.total_seconds()) or None

    @property
    def quota_bytes(self):
        if self.data_quota:
            return self.data_quota * 1000 ** 2

    @classmethod
    def push_routers(cls, profiles):
        "Queue the pushes of the API routers of `profiles`"
        pool = Pool()
        Router = pool.get('isp.router')
        router_ids = set()
        for ids in cls.router_ids(profiles).values():
            router_ids.update(ids)
        Router.push_vouchers(router_ids)

    @classmethod
    def on_write(cls, profiles, values):
        callbacks = super().on_write(profiles, values)
        if ROUTER_PROFILE_FIELDS & values.keys():
            # the routers left behind drop the users too
            before = set()
            for ids in cls.router_ids(
                    [p for p in profiles if p.mode == 'api']).values():
                before.update(ids)

            def push():
                pool = Pool()
                Router = pool.get('isp.router')
                after = set(before)
                for ids in cls.router_ids([p for p in cls.browse(profiles)
                            if p.mode == 'api']).values():
                    after.update(ids)
                Router.push_vouchers(after)
            callbacks.append(push)
        return callbacks


class Voucher(metaclass=PoolMeta):
    __name__ = 'isp.voucher'

    @classmethod
    def __register__(cls, module):
        super().__register__(module)
        # FreeRADIUS's views again, with the vouchers' rows
        install_radius_views()

    @classmethod
    def push_routers(cls, vouchers):
        "Queue the pushes of the API routers of the vouchers' profiles"
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        profile_ids = set()
        # one query, not a read of every voucher (a batch is 1,000 a chunk)
        for sub_ids in grouped_slice([v.id for v in vouchers], 1000):
            cursor.execute(*table.select(table.profile,
                    where=In(table.id, list(sub_ids)),
                    group_by=[table.profile]))
            profile_ids.update(p for p, in cursor)
        with without_check_access():
            profiles = [p for p in Profile.browse(sorted(profile_ids))
                if p.mode == 'api']
        if profiles:
            Profile.push_routers(profiles)

    @classmethod
    def on_modification(cls, mode, vouchers, field_names=None):
        super().on_modification(mode, vouchers, field_names=field_names)
        if mode in {'create', 'delete'}:
            cls.push_routers(vouchers)

    @classmethod
    def on_write(cls, vouchers, values):
        callbacks = super().on_write(vouchers, values)
        if 'state' in values:
            moved = [v for v in vouchers
                if PRESENCE[v.state] != PRESENCE[values['state']]]
            if moved:
                callbacks.append(lambda: cls.push_routers(moved))
        return callbacks

    # -- API routers --

    @classmethod
    def router_specs(cls, router):
        """({hotspot profile name: properties}, [wanted user]) of `router`:
        every voucher of its API profiles that is new, sold, active
        (enabled) or disabled (disabled)"""
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        profiles = {p.id: p for p in Profile.router_profiles(router)}
        wanted = {hotspot.profile_name(p.id): p.hotspot_profile()
            for p in profiles.values()}
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        users = []
        for sub_ids in grouped_slice(sorted(profiles), 1000):
            cursor.execute(*table.select(
                    table.id, table.code, table.password, table.state,
                    table.batch, table.profile,
                    where=In(table.profile, list(sub_ids))
                    & In(table.state, ON_ROUTER),
                    order_by=[table.id]))
            for id_, code, password, state, batch, profile_id in cursor:
                profile = profiles[profile_id]
                users.append({
                        'id': id_,
                        'name': code,
                        'password': password,
                        'profile': hotspot.profile_name(profile_id),
                        'limit-uptime': profile.uptime_seconds,
                        'limit-bytes-total': profile.quota_bytes,
                        'disabled': PRESENCE[state] == 'disabled',
                        'comment': '%s:%d' % (hotspot.OWNED_COMMENT, batch),
                        })
        return wanted, users

    @classmethod
    def store_live(cls, live, now):
        """Record what a router shows of its vouchers' users
        ({voucher id: {uptime, bytes, sessions}}): the first login of the
        new and sold ones, the uptime and bytes used (never less than
        recorded), and expire the used up"""
        vouchers = cls.browse(sorted(live))
        first_logins = defaultdict(list)
        updates = {}
        for voucher in vouchers:
            seen = live[voucher.id]
            if voucher.state in {'new', 'sold'} and not voucher.first_login:
                ago = max(seen['sessions'] or [seen['uptime']])
                login = (now - dt.timedelta(seconds=ago)).replace(
                    second=0, microsecond=0)
                first_logins[login].append(voucher)
            values = {}
            if seen['uptime'] > (voucher.uptime_used or 0):
                values['uptime_used'] = seen['uptime']
            if seen['bytes'] > (voucher.bytes_used or 0):
                values['bytes_used'] = seen['bytes']
            if values:
                updates[voucher.id] = values
        update_rows(cls, updates)
        for login, group in sorted(first_logins.items()):
            cls.activate(group, first_login=login)
        vouchers = cls.browse([v.id for v in vouchers])
        used_up = cls.used_up(vouchers, now)
        if used_up:
            cls.expire(used_up)
        return vouchers

    # -- RADIUS --

    @classmethod
    def radius_accounting(cls):
        """Cron (with expire_due): the first login, uptime and bytes of the
        context company's RADIUS vouchers from FreeRADIUS's accounting
        (radacct rows of the company's routers)"""
        if backend.name != 'postgresql':
            return []
        domain = [('profile.mode', '=', 'radius'), ('state', 'in', COUNTED)]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        with Transaction().set_context(active_test=False):
            vouchers = cls.search(domain)
        if not vouchers:
            return []
        by_code = {v.code: v for v in vouchers}
        cursor = Transaction().connection.cursor()
        query = ("SELECT a.username, MIN(a.acctstarttime), "
            "SUM(COALESCE(a.acctsessiontime, 0)), "
            "SUM(COALESCE(a.acctinputoctets, 0) "
            "+ COALESCE(a.acctoutputoctets, 0)) "
            "FROM radacct a JOIN nas n ON n.nasname::inet = a.nasipaddress "
            "WHERE a.username = ANY(%s)")
        if company:
            query += " AND n.company = %s"
        usage = {}
        for sub_codes in grouped_slice(sorted(by_code), 1000):
            params = [list(sub_codes)] + ([company] if company else [])
            cursor.execute(query + " GROUP BY a.username", params)
            usage.update({row[0]: row[1:] for row in cursor})
        return cls._radius_usage(by_code, usage)

    @classmethod
    def _radius_usage(cls, by_code, usage):
        first_logins = defaultdict(list)
        updates = {}
        for code, (started, seconds, octets) in usage.items():
            voucher = by_code[code]
            if started is not None and not voucher.first_login:
                started = started.astimezone(dt.UTC).replace(
                    tzinfo=None, microsecond=0)
                first_logins[started].append(voucher)
            values = {}
            if int(seconds or 0) > (voucher.uptime_used or 0):
                values['uptime_used'] = int(seconds)
            if int(octets or 0) > (voucher.bytes_used or 0):
                values['bytes_used'] = int(octets)
            if values:
                updates[voucher.id] = values
        update_rows(cls, updates)
        activated = []
        for login, group in sorted(first_logins.items()):
            cls.activate(group, first_login=login)
            activated.extend(group)
        return activated

    @classmethod
    def expire_due(cls):
        "Cron: RADIUS accounting first, then expire the used up"
        cls.radius_accounting()
        return super().expire_due()
