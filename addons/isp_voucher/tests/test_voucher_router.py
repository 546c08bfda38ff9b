# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""API vouchers on routers, over TCP with the RouterOS simulator: hotspot
user profiles and users pushed by the queued per-router provisioning and
read back, states removed or disabled, first logins and usage read by the
sync, drift repaired, users the product does not own left alone, a router
down catching up, the expiry cron's one push per router."""
import contextlib
import datetime as dt

from trytond.exceptions import UserError
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_network.service import _queued
from trytond.modules.isp_network.tests.test_module import (
    PASSWORD,
    NetworkMixin,
)
from trytond.modules.isp_voucher.hotspot import (
    format_duration,
    profile_name,
    user_diff,
)

from .voucher_setup import create_batch, create_voucher_product

USERS = '/ip/hotspot/user'


class VoucherRouterTestCase(NetworkMixin, RouteTestCase):
    "Vouchers of API profiles on simulated routers"
    module = 'isp_voucher'

    def router(self, company, sim, code='HS'):
        Router = Pool().get('isp.router')
        router, = Router.create([{
                    'company': company.id, 'name': code, 'code': code,
                    'host': sim.host, 'port': sim.port,
                    'api_username': 'admin', 'api_password': PASSWORD,
                    'timeout': 5}])
        return router

    def profile(self, company, router=None, pool=None, **values):
        Profile = Pool().get('isp.voucher.profile')
        product = create_voucher_product(company)
        profile, = Profile.create([{
                    'company': company.id, 'name': "1 day",
                    'product': product.id,
                    'router': router.id if router else None,
                    'router_pool': pool.id if pool else None,
                    'validity': 1, 'validity_unit': 'days',
                    'rate_limit': '2M/5M', 'shared_users': 2,
                    'uptime_limit': dt.timedelta(hours=3),
                    'data_quota': 500,
                    **values}])
        return profile

    @contextlib.contextmanager
    def hotspot(self, quantity, **values):
        """A branch with a router on a simulator, an API profile and a batch
        of `quantity`: (sim, router, profile, batch) in the branch's
        context"""
        sim = self.sim()
        company = create_company()
        with set_company(company):
            router = self.router(company, sim)
            profile = self.profile(company, router, **values)
            yield sim, router, profile, create_batch(profile, quantity)

    def queued_routers(self):
        "The router ids of the provisioning tasks queued, one per task"
        Queue = Pool().get('ir.queue')
        ids = []
        for task in Queue.browse(Transaction().tasks):
            if task.data['method'] == 'provision':
                ids.extend(task.data['instances'])
        return ids

    def clear_tasks(self):
        "Forget the tasks queued, as a new transaction would start"
        Transaction().tasks.clear()
        _queued.pop(Transaction(), None)

    def flush(self, *routers):
        "Run the provisioning task of the routers as the worker would"
        Router = Pool().get('isp.router')
        self.clear_tasks()
        Router.provision(Router.browse([r.id for r in routers]))

    def vouchers(self, batch):
        Voucher = Pool().get('isp.voucher')
        return Voucher.search([('batch', '=', batch.id)],
            order=[('id', 'ASC')])

    def test_format_and_diff(self):
        "RouterOS times; what differs between a row and the wanted user"
        self.assertEqual(format_duration(3 * 3600), '3h')
        self.assertEqual(format_duration(90061), '1d1h1m1s')
        self.assertEqual(format_duration(0), '0s')
        wanted = {'password': 'P', 'profile': 'isp-voucher-1',
            'comment': 'isp-voucher:1', 'limit-uptime': 1800,
            'limit-bytes-total': None, 'disabled': False}
        row = {'password': 'P', 'profile': 'isp-voucher-1',
            'comment': 'isp-voucher:1', 'limit-uptime': '00:30:00',
            'limit-bytes-total': '0', 'disabled': 'false'}
        self.assertEqual(user_diff(row, wanted), {})
        row['limit-uptime'] = '1h'
        row['disabled'] = 'true'
        self.assertEqual(user_diff(row, wanted),
            {'limit-uptime': '30m', 'disabled': 'no'})

    @with_transaction()
    def test_push_profile_and_users(self):
        "A batch becomes a hotspot profile and owned users, read back"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        sim = self.sim()
        company = create_company()
        with set_company(company):
            router = self.router(company, sim)
            profile = self.profile(company, router)
            # a user added by hand and a stale owned one
            users = sim.menu(USERS)
            users.add(name='guest', password='g', comment='by hand')
            users.add(name='OLD1', password='o', comment='isp-voucher:0')
            self.clear_tasks()
            batch = create_batch(profile, 5)
            self.assertEqual(self.queued_routers(), [router.id])
            self.assertEqual(Router(router.id).voucher_state, 'pending')
            self.flush(router)
            vouchers = self.vouchers(batch)
            router = Router(router.id)
            self.assertEqual(
                router.voucher_state, 'synced', router.voucher_error)
            self.assertEqual(router.hotspot_user_count, 6)
            logs = Log.search([('router', '=', router.id),
                    ('action', '=', 'hotspot')])
            self.assertIn('5 added', logs[0].message)
            self.assertIn('1 removed', logs[0].message)
        hs_profile = sim.menu('/ip/hotspot/user/profile').find(
            name=profile_name(profile.id))
        self.assertEqual(hs_profile['rate-limit'], '2M/5M')
        self.assertEqual(hs_profile['shared-users'], '2')
        self.assertEqual(users.find(name='guest')['comment'], 'by hand')
        self.assertIsNone(users.find(name='OLD1'))
        for voucher in vouchers:
            row = users.find(name=voucher.code)
            self.assertEqual(row['password'], voucher.password)
            self.assertEqual(row['profile'], profile_name(profile.id))
            self.assertEqual(row['limit-uptime'], '3h')
            self.assertEqual(row['limit-bytes-total'], '500000000')
            self.assertEqual(row['comment'], 'isp-voucher:%d' % batch.id)
            self.assertEqual(row['disabled'], 'false')

    @with_transaction()
    def test_two_branches(self):
        "Each branch's router holds its branch's vouchers only"
        pool = Pool()
        Router = pool.get('isp.router')
        Voucher = pool.get('isp.voucher')
        sims = [self.sim(), self.sim()]
        batches, routers = [], []
        for sim, name in zip(sims, ["Bandung", "Nairobi"], strict=True):
            company = create_company(name)
            with set_company(company):
                router = self.router(company, sim)
                batches.append(create_batch(self.profile(company, router), 3))
                routers.append(router)
        # both routers' tasks run, and both syncs (every router of the cron)
        self.flush(*routers)
        Router.sync(routers)
        for sim, batch in zip(sims, batches, strict=True):
            self.assertEqual(sorted(u['name'] for u in sim.menu(USERS)),
                sorted(v.code for v in self.vouchers(batch)))
        # the same code logged in on the other branch's router is not seen
        code = self.vouchers(batches[0])[0].code
        sims[1].menu(USERS).add(name=code, comment='hand made')
        sims[1].hotspot_login(code)
        Router.sync(routers)
        self.assertEqual(Voucher.search([('code', '=', code)])[0].state,
            'new')

    @with_transaction()
    def test_states_on_router(self):
        "Disabled: disabled and its session ended; expired, voided: removed"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        with self.hotspot(4) as (sim, router, profile, batch):
            self.flush(router)
            one, two, three, four = self.vouchers(batch)
            sim.hotspot_login(one.code)
            Voucher.sell([two])
            self.assertEqual(self.queued_routers(), [])
            Voucher.disable([one])
            Voucher.void([three])
            Voucher.activate([four])
            Voucher.expire([four])
            self.assertEqual(self.queued_routers(), [router.id])
            self.flush(router)
            users = sim.menu(USERS)
            self.assertEqual(users.find(name=one.code)['disabled'], 'true')
            self.assertEqual(
                sim.menu('/ip/hotspot/active').filter(user=one.code), [])
            self.assertEqual(users.find(name=two.code)['disabled'], 'false')
            self.assertIsNone(users.find(name=three.code))
            self.assertIsNone(users.find(name=four.code))
            Voucher.enable([one])
            self.flush(router)
            self.assertEqual(users.find(name=one.code)['disabled'], 'false')

    @with_transaction()
    def test_sync_activates_and_expires(self):
        "A first login seen by the sync activates; data used up expires"
        pool = Pool()
        Router = pool.get('isp.router')
        Voucher = pool.get('isp.voucher')
        with self.hotspot(3, data_quota=1) as (sim, router, profile, batch):
            self.flush(router)
            one, two, three = self.vouchers(batch)
            sim.hotspot_login(one.code, uptime=600)
            Router.sync([router])
            one, two = Voucher.browse([one.id, two.id])
            self.assertEqual(one.state, 'active')
            self.assertEqual(two.state, 'new')
            login = dt.datetime.now() - dt.timedelta(seconds=600)
            self.assertLess(abs((one.first_login - login).total_seconds()),
                90)
            self.assertEqual(one.expiry, one.first_login + dt.timedelta(
                    days=1))
            self.assertGreaterEqual(one.uptime_used, 600)
            # 1 MB used: over the quota, expired and removed
            sim.hotspot_traffic(one.code, bytes_in=400_000,
                bytes_out=700_000)
            self.clear_tasks()
            Router.sync([router])
            one = Voucher(one.id)
            self.assertEqual(one.state, 'expired')
            self.assertGreaterEqual(one.bytes_used, 1_100_000)
            self.assertEqual(self.queued_routers(), [router.id])
            self.flush(router)
            self.assertIsNone(sim.menu(USERS).find(name=one.code))
            self.assertTrue(sim.menu(USERS).find(name=two.code))

    @with_transaction()
    def test_drift_repaired_foreign_left(self):
        "An owned user changed or removed on the router is put back"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        with self.hotspot(3) as (sim, router, profile, batch):
            one, two, three = self.vouchers(batch)
            # the code of `three` is taken by a user the product doesn't own
            sim.menu(USERS).add(name=three.code, password='mine',
                comment='hand made')
            self.flush(router)
            users = sim.menu(USERS)
            users.set(one.code, password='changed', limit_uptime='10h')
            users.remove(two.code)
            sim.menu('/ip/hotspot/user/profile').set(
                profile_name(profile.id), rate_limit='9M/9M')
            Router.sync([router])
            router = Router(router.id)
        self.assertEqual(users.find(name=one.code)['password'], one.password)
        self.assertEqual(users.find(name=one.code)['limit-uptime'], '3h')
        self.assertTrue(users.find(name=two.code))
        self.assertEqual(sim.menu('/ip/hotspot/user/profile').find(
                name=profile_name(profile.id))['rate-limit'], '2M/5M')
        foreign = users.find(name=three.code)
        self.assertEqual(foreign['password'], 'mine')
        self.assertEqual(foreign['comment'], 'hand made')
        self.assertEqual(router.voucher_state, 'error')
        self.assertIn('voucher #%d' % three.id, router.voucher_error)
        self.assertIn('not managed by the product', router.voucher_error)
        # no code in what technicians read (router and its logs)
        logs = Log.search([('router', '=', router.id)])
        for voucher in [one, two, three]:
            self.assertNotIn(voucher.code, router.voucher_error)
            for log in logs:
                self.assertNotIn(voucher.code, log.message or '')
                self.assertNotEqual(voucher.code, log.username)

    @with_transaction()
    def test_router_down_catches_up(self):
        "Pushed while down: pending in the database, applied when back"
        pool = Pool()
        Router = pool.get('isp.router')
        Voucher = pool.get('isp.voucher')
        with self.hotspot(3) as (sim, router, profile, batch):
            self.flush(router)
            one, two, three = self.vouchers(batch)
            sim.set_fault('down')
            Voucher.void([one])
            self.flush(router)
            router = Router(router.id)
            self.assertEqual(router.voucher_state, 'pending')
            self.assertEqual(router.failures, 1)
            self.assertTrue(sim.menu(USERS).find(name=one.code))
            # the sync finds it down once: no second attempt for vouchers
            Router.sync([router])
            router = Router(router.id)
            self.assertEqual(router.failures, 2)
            self.assertEqual(router.voucher_state, 'pending')
            sim.clear_fault()
            # not due yet: the retry cron waits for the router's backoff
            self.clear_tasks()
            Router.provision_pending()
            self.assertEqual(self.queued_routers(), [])
            Router.write([router], {'next_attempt': None})
            from trytond.modules.isp_network.router import update_rows
            update_rows(Router, {router.id: {
                        'voucher_next_attempt': None}})
            Router.provision_pending()
            self.assertEqual(self.queued_routers(), [router.id])
            self.flush(router)
            self.assertEqual(Router(router.id).voucher_state, 'synced')
        self.assertIsNone(sim.menu(USERS).find(name=one.code))
        self.assertTrue(sim.menu(USERS).find(name=two.code))

    @with_transaction()
    def test_routeros_6_challenge_login(self):
        "RouterOS 6 before 6.43 (MD5 challenge login): pushed and read"
        pool = Pool()
        Router = pool.get('isp.router')
        Voucher = pool.get('isp.voucher')
        sim = self.sim(version='6.42.12', legacy_login=True)
        company = create_company()
        with set_company(company):
            router = self.router(company, sim)
            batch = create_batch(self.profile(company, router), 2)
            self.flush(router)
            one, two = self.vouchers(batch)
            self.assertEqual(len(sim.menu(USERS)), 2)
            sim.hotspot_login(one.code, uptime=60)
            Router.sync([router])
            self.assertEqual(Voucher(one.id).state, 'active')
            self.assertEqual(Router(router.id).voucher_state, 'synced')

    @with_transaction()
    def test_ghost_write_detected(self):
        "A write the router accepts but does not apply is caught"
        pool = Pool()
        Router = pool.get('isp.router')
        with self.hotspot(2) as (sim, router, profile, batch):
            sim.set_fault('ghost_write')
            self.flush(router)
            router = Router(router.id)
            self.assertEqual(router.voucher_state, 'error')
            self.assertIn('does not show', router.voucher_error)
            self.assertTrue(router.voucher_next_attempt)

    @with_transaction()
    def test_pool_and_expiry_cron(self):
        "A pool's routers all get the users; the cron: one push per router"
        pool = Pool()
        RouterPool = pool.get('isp.router.pool')
        Voucher = pool.get('isp.voucher')
        sims = [self.sim(), self.sim()]
        company = create_company()
        with set_company(company):
            routers = [self.router(company, s, code)
                for s, code in zip(sims, ['HSA', 'HSB'], strict=True)]
            router_pool, = RouterPool.create([{
                        'company': company.id, 'name': "Hotspots",
                        'routers': [('create', [{'router': r.id}
                                    for r in routers])]}])
            profile = self.profile(company, pool=router_pool)
            batch = create_batch(profile, 6)
            self.assertEqual(sorted(self.queued_routers()),
                sorted(r.id for r in routers))
            for router in routers:
                self.flush(router)
            vouchers = self.vouchers(batch)
            for sim in sims:
                self.assertEqual(len(sim.menu(USERS)), 6)
            Voucher.activate(vouchers[:4],
                first_login=dt.datetime.now() - dt.timedelta(days=2))
            self.clear_tasks()
            expired = Voucher.expire_due()
            self.assertEqual(len(expired), 4)
            self.assertEqual(sorted(self.queued_routers()),
                sorted(r.id for r in routers))
            for router in routers:
                self.flush(router)
        for sim in sims:
            self.assertEqual(sorted(r['name'] for r in sim.menu(USERS)),
                sorted(v.code for v in vouchers[4:]))

    @with_transaction()
    def test_profile_change_pushed(self):
        "A profile moved to another router or to RADIUS leaves the old one"
        pool = Pool()
        Profile = pool.get('isp.voucher.profile')
        Router = pool.get('isp.router')
        sims = [self.sim(), self.sim()]
        company = create_company()
        with set_company(company):
            first = self.router(company, sims[0], 'HSA')
            second = self.router(company, sims[1], 'HSB')
            profile = self.profile(company, first)
            create_batch(profile, 2)
            self.flush(first)
            self.clear_tasks()
            Profile.write([profile], {'router': second.id})
            self.assertEqual(sorted(self.queued_routers()),
                sorted([first.id, second.id]))
            self.flush(first, second)
            self.assertEqual(len(sims[0].menu(USERS)), 0)
            self.assertEqual(len(sims[1].menu(USERS)), 2)
            self.assertIsNone(sims[0].menu('/ip/hotspot/user/profile').find(
                    name=profile_name(profile.id)))
            # RADIUS needs a NAS of FreeRADIUS: refused on an API router
            other = self.profile(company, second)
            with self.assertRaises(UserError) as cm:
                Profile.write([other], {'mode': 'radius'})
            self.assertIn('HSB', cm.exception.message)
            self.assertIn('RADIUS provisioning mode', cm.exception.message)
            with self.assertRaises(UserError):
                self.profile(company, second, mode='radius')
            nas = Router.create([{
                        'company': company.id, 'name': "NAS", 'code': 'NAS',
                        'host': '127.0.0.9', 'provisioning_mode': 'radius',
                        'radius_address': '127.0.0.9',
                        'radius_secret': 'nas-secret'}])[0]
            self.clear_tasks()
            Profile.write([profile], {'mode': 'radius', 'router': nas.id})
            self.assertEqual(self.queued_routers(), [second.id])
            self.flush(second)
            self.assertEqual(len(sims[1].menu(USERS)), 0)

