# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Vouchers of API profiles on their routers: hotspot user profiles and
users pushed by the router's queued provisioning task, read back, and read
again by the router sync (first logins, uptime and data used).

The router's voucher state (pending, synced, error) is kept in the database:
a change queues one task per router and transaction; a router that is down
keeps its state pending and catches up at the next task or sync, as PPPoE
services do."""
import datetime as dt

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_network.router import (
    backoff,
    run_concurrently,
    update_rows,
)
from trytond.modules.isp_network.service import _queued

from . import hotspot

MAX_LOGGED_ERRORS = 20


class Router(metaclass=PoolMeta):
    __name__ = 'isp.router'

    voucher_state = fields.Selection([
            ('synced', "Synced"),
            ('pending', "Pending"),
            ('error', "Error"),
            ], "Vouchers State", readonly=True, required=True, sort=False,
        help="Whether the router holds the hotspot users of its vouchers "
        "(API voucher profiles): pending changes are pushed by a queued "
        "task and retried with backoff.")
    voucher_error = fields.Text("Vouchers Error", readonly=True)
    voucher_attempts = fields.Integer("Vouchers Attempts", readonly=True)
    voucher_next_attempt = fields.DateTime(
        "Vouchers Next Attempt", readonly=True)
    hotspot_user_count = fields.Integer("Hotspot Users", readonly=True,
        help="The hotspot users found on the router at the last push.")
    hotspot_active_count = fields.Integer("Hotspot Sessions", readonly=True,
        help="The hotspot sessions found on the router at the last push.")

    @classmethod
    def default_voucher_state(cls):
        return 'synced'

    @classmethod
    def default_voucher_attempts(cls):
        return 0

    @classmethod
    def copy(cls, routers, default=None):
        default = default.copy() if default is not None else {}
        for name in ['voucher_error', 'voucher_next_attempt',
                'hotspot_user_count', 'hotspot_active_count']:
            default.setdefault(name, None)
        default.setdefault('voucher_state', 'synced')
        default.setdefault('voucher_attempts', 0)
        return super().copy(routers, default=default)

    # -- queueing --

    @classmethod
    def push_vouchers(cls, router_ids):
        """Mark the routers' vouchers pending and queue one provisioning
        task per router (at most once per transaction, shared with the
        services' pushes)"""
        router_ids = sorted(set(router_ids))
        if not router_ids:
            return
        update_rows(cls, {i: {
                    'voucher_state': 'pending',
                    'voucher_attempts': 0,
                    'voucher_next_attempt': None,
                    } for i in router_ids})
        queued = _queued.setdefault(Transaction(), set())
        for router_id in router_ids:
            if router_id not in queued:
                queued.add(router_id)
                cls.__queue__.provision([cls(router_id)])

    @classmethod
    def provision(cls, routers):
        super().provision(routers)
        now = dt.datetime.now()
        routers = cls.browse([r.id for r in routers])
        todo = [r for r in routers if r.active
            and r.voucher_state in {'pending', 'error'}
            and (not r.voucher_next_attempt
                or r.voucher_next_attempt <= now)]
        if todo:
            cls.push_hotspot(todo)

    @classmethod
    def sync(cls, routers):
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        super().sync(routers)
        used = Profile.api_router_ids()
        routers = cls.browse([r.id for r in routers])
        # an API router the sync just found down is not asked again
        todo = [r for r in routers if r.active and (
                r.id in used or r.voucher_state != 'synced')
            and (r.reachable or r.provisioning_mode != 'api')]
        if todo:
            cls.push_hotspot(todo)

    @classmethod
    def provision_pending(cls):
        super().provision_pending()
        now = dt.datetime.now()
        domain = [
            ('voucher_state', 'in', ['pending', 'error']),
            ['OR',
                ('voucher_next_attempt', '=', None),
                ('voucher_next_attempt', '<=', now),
                ],
            ]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        for router in cls.search(domain):
            if not router.next_attempt or router.next_attempt <= now:
                cls.__queue__.provision([router])

    # -- pushing --

    def hotspot_settings(self):
        "How `hotspot.converge` reaches the router (its API password)"
        with without_check_access():
            router = self.__class__(self.id)
            return hotspot.HotspotSettings(
                host=router.api_host(), port=router.port,
                username=router.api_username, password=router.api_password,
                use_ssl=bool(router.use_ssl), timeout=router.timeout or 10,
                login_method=router.login_method or 'auto',
                ssl_fingerprint=router.ssl_fingerprint or None,
                ssl_ca=router.ssl_ca or None)

    @classmethod
    def push_hotspot(cls, routers):
        """Bring the routers' hotspot users to their vouchers, read them
        back and record what they show: one connection per router, in
        threads, the database written here as each router finishes"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        cls.lock(routers)
        jobs, inputs = [], []
        for router in routers:
            profiles, users = Voucher.router_specs(router)
            jobs.append((router.hotspot_settings(), profiles, users))
            inputs.append(router)
        for index, result in run_concurrently(
                jobs, function=hotspot.converge):
            inputs[index]._store_hotspot(result)

    def _store_hotspot(self, result):
        pool = Pool()
        Log = pool.get('isp.router.log')
        Voucher = pool.get('isp.voucher')
        now = dt.datetime.now()
        unreachable = not result.ok and result.user_count is None
        if unreachable:
            self._record_contact(None, result.error)
            self.last_sync_duration = round(result.duration, 3)
            self.save()
        values = {}
        logs = []
        error = result.error
        if result.error_count:
            error = '\n'.join(filter(None, [error,
                        "%d hotspot users not as wanted:" % (
                            result.error_count)] + list(
                        result.errors.values())[:MAX_LOGGED_ERRORS]))
        if error:
            attempts = (self.voucher_attempts or 0) + 1
            values.update({
                    'voucher_state': 'error' if not unreachable
                    else 'pending',
                    'voucher_error': error,
                    'voucher_attempts': attempts,
                    'voucher_next_attempt': now + dt.timedelta(
                        seconds=backoff(attempts)),
                    })
        else:
            values.update({
                    'voucher_state': 'synced',
                    'voucher_error': None,
                    'voucher_attempts': 0,
                    'voucher_next_attempt': None,
                    })
        if result.user_count is not None:
            values['hotspot_user_count'] = result.user_count
            values['hotspot_active_count'] = result.active_count
        update_rows(self.__class__, {self.id: values})
        for action, name, message in result.actions:
            logs.append(Log(router=self, company=self.company,
                    action=action, username=name, message=message,
                    outcome='failure' if action.endswith('error')
                    else 'success'))
        if result.added or result.changed or result.removed or error:
            logs.append(Log(router=self, company=self.company,
                    action='hotspot',
                    outcome='failure' if error else 'success',
                    message="hotspot users: %d added, %d changed, %d removed, "
                    "%d sessions ended%s" % (
                        result.added, result.changed, result.removed,
                        result.kicked, '\n' + error if error else '')))
        Log.save(logs)
        if result.live:
            Voucher.store_live(result.live, now)
