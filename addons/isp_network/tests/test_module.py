# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from trytond.modules.company.tests import (
    CompanyTestMixin,
    create_company,
    set_company,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from tools.routeros_sim import Router as SimRouter
from trytond.modules.isp_base.tests.views import ListViewTestMixin
from trytond.modules.isp_network.converge import diff, live_status
from trytond.modules.isp_network.exceptions import (
    RouterRadiusValidationError,
)
from trytond.modules.isp_network.routeros import parse_duration
from trytond.modules.isp_network.service import (
    generate_password,
    pick_username,
)

PASSWORD = 'S3cret-api'


class NetworkMixin:
    "Helpers building a branch with a plan, a location and routers"

    def setUp(self):
        super().setUp()
        self.sims = []

    def tearDown(self):
        for sim in self.sims:
            sim.stop()
        super().tearDown()

    def sim(self, **kwargs):
        kwargs.setdefault('password', PASSWORD)
        sim = SimRouter(**kwargs)
        sim.start()
        self.sims.append(sim)
        return sim

    def branch(self):
        pool = Pool()
        Location = pool.get('isp.location')
        company = create_company()
        with set_company(company):
            location, = Location.create([{'code': 'KCB', 'name': "Kcb"}])
        return company, location

    def plan(self, name="Home 20M", download=20000, upload=5000, **values):
        pool = Pool()
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        unit, = Uom.search([('name', '=', 'Unit')])
        template, = Template.create([{
                    'name': name, 'type': 'service',
                    'default_uom': unit.id, 'isp_plan': True,
                    'download_rate': download, 'upload_rate': upload,
                    'list_price': Decimal('250000'),
                    **values}])
        return template

    def router(self, sim, code='CKP', **values):
        pool = Pool()
        Router = pool.get('isp.router')
        router, = Router.create([{
                    'name': code, 'code': code, 'host': sim.host,
                    'port': sim.port, 'api_username': 'admin',
                    'api_password': PASSWORD, 'timeout': 5, **values}])
        return router

    def register(self, location, plan, router, **values):
        pool = Pool()
        Service = pool.get('isp.service')
        return Service.register({
                'name': values.pop('name', "Budi"), 'location': location.id,
                'plan': plan.id, 'router': router.id if router else None,
                **values})

    def flush(self, *routers):
        "Run the provisioning tasks the transaction queued"
        pool = Pool()
        Router = pool.get('isp.router')
        Transaction().tasks.clear()
        Router.provision(list(routers))


class IspNetworkTestCase(
        NetworkMixin, ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test isp_network module"
    module = 'isp_network'

    @property
    def _skip_company_rule(self):
        # plans are shared when their branch is empty (isp_base's rule);
        # central VPN servers too: their rule is ['OR', ('company', '=',
        # None), ('company', 'in', companies)], checked by
        # test_vpn.py::test_credentials_access
        return super()._skip_company_rule | {
            ('party.party', 'isp_company'),
            ('product.template', 'isp_company'),
            ('isp.vpn.server', 'company'),
            }

    def test_pick_username(self):
        "User names are {CODE}{3 digits}, and grow a digit when full"
        name = pick_username('CKP', set())
        self.assertRegex(name, r'^CKP\d{3}$')
        taken = {'CKP%03d' % i for i in range(1000)}
        self.assertRegex(pick_username('CKP', taken), r'^CKP\d{4}$')
        taken.discard('CKP417')
        self.assertEqual(pick_username('CKP', taken), 'CKP417')
        # other routers' names and other lengths do not count
        self.assertRegex(pick_username('CK', taken), r'^CK\d{3}$')

    def test_generate_password(self):
        "Passwords: 8 letters and digits, mixed, all different"
        passwords = {generate_password() for _ in range(200)}
        self.assertEqual(len(passwords), 200)
        for password in passwords:
            self.assertRegex(password, r'^[A-Za-z0-9]{8}$')
            self.assertTrue(re.search(r'\d', password))

    def test_parse_duration(self):
        "RouterOS durations in both notations"
        self.assertEqual(parse_duration('1w2d3h4m5s'), 788645)
        self.assertEqual(parse_duration('5m10s500ms'), 310)
        self.assertEqual(parse_duration('1d02:00:01'), 93601)
        self.assertIsNone(parse_duration(''))

    def test_diff_and_live_status(self):
        "Values compare as strings; unset equals empty"
        self.assertEqual(diff(
                {'password': '4821', 'caller-id': ''},
                {'password': '4821', 'caller-id': '', 'comment': None},
                ['password', 'caller-id', 'comment']), {})
        self.assertEqual(live_status({'disabled': 'true'}, [])['status'],
            'disabled')
        # RouterOS prints true/false, other implementations yes/no
        self.assertEqual(live_status({'disabled': 'yes'}, [])['status'],
            'disabled')
        self.assertEqual(diff({'disabled': 'yes', 'comment': 'no'},
                {'disabled': 'true', 'comment': 'false'},
                ['disabled', 'comment']), {'comment': 'false'})
        self.assertEqual(diff({'disabled': 'no'}, {'disabled': 'false'},
                ['disabled']), {})
        self.assertEqual(live_status(None, [{'address': '10.0.0.1'}])[
                'status'], 'online')

    @with_transaction()
    def test_registration(self):
        "Registration: formats, secret with the plan's profile on the router"
        pool = Pool()
        Date = pool.get('ir.date')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            service = self.register(
                location, plan, router, whatsapp='+6281234567890')
            other = self.register(location, plan, router, name="Siti")
            self.flush(router)
            today = Date.today().strftime('%d%m%y')
        self.assertEqual(service.customer_id, 'KCB-CKP%s-001' % today)
        self.assertEqual(other.customer_id, 'KCB-CKP%s-002' % today)
        self.assertRegex(service.username, r'^CKP\d{3}$')
        self.assertRegex(service.password, r'^[A-Za-z0-9]{8}$')
        self.assertEqual(service.state, 'active')
        self.assertEqual(service.router_state, 'synced')
        secret = sim.menu('/ppp/secret').find(name=service.username)
        self.assertEqual(secret['password'], service.password)
        self.assertEqual(secret['profile'], 'Home-20M')
        self.assertEqual(secret['comment'], service.customer_id)
        profile = sim.menu('/ppp/profile').find(name='Home-20M')
        self.assertEqual(profile['rate-limit'], '5M/20M')

    @pytest.mark.postgresql_only
    @with_transaction()
    def test_registration_thousand_unique(self):
        "1,000 registrations on one router give unique user names"
        pool = Pool()
        Service = pool.get('isp.service')
        Party = pool.get('party.party')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            parties = Party.create([{
                        'name': "S%d" % i, 'is_subscriber': True,
                        'location': location.id} for i in range(1000)])
            for party in parties:
                self.register(location, plan, router, subscriber=party.id)
            services = Service.search([])
        names = {s.username for s in services}
        self.assertEqual(len(names), 1000)
        self.assertEqual(len({s.customer_id for s in services}), 1000)
        self.assertTrue(all(re.match(r'^CKP\d{3}$', n) for n in names))
        # every three-digit name is used: the next one has 4 digits
        with set_company(company):
            self.assertRegex(Service.new_username(router), r'^CKP\d{4}$')

    @with_transaction()
    def test_sync_repairs_drift(self):
        "The sync restores deleted secrets, wrong profiles and extra ones"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim, unknown_secrets='remove')
            one = self.register(location, plan, router)
            two = self.register(location, plan, router, name="Siti")
            self.flush(router)
            secrets = sim.menu('/ppp/secret')
            secrets.remove(one.username)
            secrets.set(two.username, profile='default', password='4821')
            secrets.add(name='intruder', password='x', service='pppoe',
                profile='Home-20M')
            sim.ppp_login(two.username)
            sim.ppp_login('intruder')
            Router.sync([router])
        self.assertEqual(
            secrets.find(name=one.username)['profile'], 'Home-20M')
        repaired = secrets.find(name=two.username)
        self.assertEqual(repaired['profile'], 'Home-20M')
        self.assertEqual(repaired['password'], two.password)
        self.assertIsNone(secrets.find(name='intruder'))
        # the wrong profile ended the session so the right one applies
        self.assertEqual(len(sim.menu('/ppp/active')), 0)
        self.assertTrue(router.reachable)
        self.assertEqual(router.routeros_version, sim.version)
        self.assertEqual(router.secret_count, 2)
        # counted after the kicks of the wrong profile and of the intruder
        self.assertEqual(router.active_count, 0)
        actions = {(g.username, g.action) for g in Log.search([])}
        self.assertIn((one.username, 'add'), actions)
        self.assertIn((two.username, 'kick'), actions)
        self.assertIn(('intruder', 'extra_remove'), actions)

    @with_transaction()
    def test_live_status_and_history(self):
        "The sync records online, offline and disabled with a history"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim, isolation_method='disable')
            service = self.register(location, plan, router)
            self.flush(router)
            sim.ppp_login(
                service.username, address='10.1.0.7',
                caller_id='AA:BB:CC:00:11:22', uptime=3600)
            Router.sync([router])
            service = Service(service.id)
            self.assertEqual(service.live_status, 'online')
            self.assertEqual(service.live_address, '10.1.0.7')
            self.assertEqual(service.live_caller_id, 'AA:BB:CC:00:11:22')
            self.assertGreaterEqual(service.uptime, dt.timedelta(hours=1))
            sim.ppp_logout(service.username)
            Router.sync([router])
            service = Service(service.id)
            self.assertEqual(service.live_status, 'offline')
            self.assertTrue(service.last_online)
            Router.sync([router])
            Service.isolate([service])
            self.flush(router)
            service = Service(service.id)
        self.assertEqual(service.live_status, 'disabled')
        self.assertEqual(
            [h.status for h in reversed(service.status_history)],
            ['offline', 'online', 'offline', 'disabled'])

    @with_transaction()
    def test_sync_touches_only_its_secrets(self):
        "Unknown-secret policies hit only PPPoE secrets on managed profiles"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        sim = self.sim()
        company, location = self.branch()
        secrets = sim.menu('/ppp/secret')
        sim.menu('/ppp/profile').add(name='Legacy-2M')
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            service = self.register(location, plan, router)
            self.flush(router)
            secrets.add(name='vpn-staff', service='l2tp', password='x')
            secrets.add(name='sstp-noc', service='sstp', password='x',
                profile='Home-20M')
            secrets.add(name='any-user', password='x')
            secrets.add(name='old-sub', service='pppoe', password='x',
                profile='Legacy-2M')
            secrets.add(name='gone-sub', service='pppoe', password='x',
                profile='Home-20M')
            unmanaged = ['any-user', 'old-sub', 'sstp-noc', 'vpn-staff']
            # keep: every extra stays, listed on the router and in the log
            Router.sync([router])
            self.assertEqual(router.extra_secret_count, 5)
            self.assertEqual(router.extra_secrets.split('\n'),
                sorted(unmanaged + ['gone-sub']))
            kept, = Log.search([('action', '=', 'extra_keep')])
            self.assertIn('gone-sub', kept.message)
            self.assertIn('5', kept.message)
            Router.sync([router])
            self.assertEqual(
                Log.search_count([('action', '=', 'extra_keep')]), 1)
            # disable, then remove: only the managed-looking extra
            for policy in ['disable', 'remove']:
                router.unknown_secrets = policy
                router.save()
                Router.sync([router])
                self.assertEqual(
                    {s['name']: s['disabled'] for s in secrets.all()
                        if s['name'] in unmanaged},
                    dict.fromkeys(unmanaged, 'false'), policy)
            self.assertEqual(sorted(s['name'] for s in secrets.all()),
                sorted(unmanaged + [service.username]))
            self.assertEqual(router.extra_secrets.split('\n'), unmanaged)
            actions = {(g.username, g.action) for g in Log.search([])}
            self.assertIn(('gone-sub', 'extra_disable'), actions)
            self.assertIn(('gone-sub', 'extra_remove'), actions)

    @with_transaction()
    def test_health_best_effort(self):
        "A refused health read neither marks the router down nor stops repair"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            service = self.register(location, plan, router)
            self.flush(router)
            sim.menu('/ppp/secret').remove(service.username)
            sim.set_fault('refuse', match='/system/resource')
            Router.sync([router])
            self.assertTrue(sim.menu('/ppp/secret').find(
                    name=service.username))
            self.assertTrue(router.reachable)
            self.assertEqual(router.failures, 0)
            self.assertTrue(router.last_sync)
            self.assertTrue(Log.search([('action', '=', 'health_error')]))
            Router.test_connection([router])
            test, = Log.search([('action', '=', 'test')])
            self.assertEqual(test.outcome, 'success')
            self.assertIn('not enough permissions', test.message)
            self.assertTrue(router.reachable)

    @with_transaction()
    def test_connection_checks_policies(self):
        "The connection test names the API user's missing policies"
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        sim = self.sim()
        sim.add_group('billing', 'local,read,write,api,test')
        sim.add_user('billing', PASSWORD, group='billing')
        company, _ = self.branch()
        with set_company(company):
            full = self.router(sim)
            limited = self.router(sim, code='LIM', api_username='billing')
            Router.test_connection([full, limited])
            outcomes = {log.router: (log.outcome, log.message)
                for log in Log.search([('action', '=', 'test')])}
        self.assertEqual(outcomes[full][0], 'success')
        self.assertEqual(outcomes[limited][0], 'failure')
        self.assertIn('sensitive', outcomes[limited][1])
        self.assertNotIn('write', outcomes[limited][1].split(
                'policies')[1].split(':')[0])
        self.assertTrue(limited.reachable)

    def _isolation(self, method, **sim_values):
        pool = Pool()
        Service = pool.get('isp.service')
        sim = self.sim(**sim_values)
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim, isolation_method=method,
                isolation_pool='isolir-pool')
            service = self.register(location, plan, router)
            static = self.register(location, plan, router, name="Static",
                remote_address='10.9.0.5')
            self.flush(router)
            for record in [service, static]:
                sim.ppp_login(record.username)
            Service.isolate([service, static])
            self.flush(router)
            isolated = [Service(service.id), Service(static.id)]
            snapshot = {
                s.username: sim.menu('/ppp/secret').find(name=s.username)
                for s in isolated}
            entries = {e['address']: e['comment']
                for e in sim.menu('/ip/firewall/address-list').filter(
                    list='isolir')}
            sessions = len(sim.menu('/ppp/active'))
            for record in isolated:
                sim.ppp_login(record.username) if method != 'disable' \
                    else None
            Service.reactivate(isolated)
            self.flush(router)
            restored = {
                s.username: sim.menu('/ppp/secret').find(name=s.username)
                for s in isolated}
            restored_entries = sim.menu('/ip/firewall/address-list').filter(
                list='isolir')
            states = [Service(s.id).router_state for s in isolated]
        return (isolated, snapshot, entries, sessions, restored,
            restored_entries, states)

    @with_transaction()
    def test_isolation_profile(self):
        "Profile isolation moves to the isolation profile, drops sessions"
        (services, snapshot, entries, sessions, restored, restored_entries,
            states) = self._isolation('profile')
        for service in services:
            self.assertEqual(snapshot[service.username]['profile'], 'isolir')
            self.assertEqual(restored[service.username]['profile'],
                'Home-20M')
        self.assertEqual(sessions, 0)
        self.assertEqual(states, ['synced', 'synced'])

    @with_transaction()
    def test_isolation_address_list(self):
        "Address-list isolation lists dynamic and static addresses"
        (services, snapshot, entries, sessions, restored, restored_entries,
            states) = self._isolation('address_list')
        dynamic, static = services
        self.assertEqual(entries['10.9.0.5'], static.username)
        # RouterOS lists a dynamic address at connect: see
        # test_isolation_holds_from_first_second
        self.assertEqual(
            snapshot[dynamic.username]['profile'], 'Home-20M-isolir')
        self.assertEqual(snapshot[static.username]['profile'], 'Home-20M')
        self.assertEqual(sessions, 0)
        self.assertEqual(restored_entries, [])
        self.assertEqual(states, ['synced', 'synced'])

    @with_transaction()
    def test_isolation_holds_from_first_second(self):
        "An isolated dynamic address is listed at every connect, syncs keep it"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            for method in ['address_list', 'profile']:
                router = self.router(sim, code=method[:3].upper(),
                    isolation_method=method)
                service = self.register(location, plan, router)
                self.flush(router)
                Service.isolate([service])
                self.flush(router)
                # offline: a sync must not drop what keeps the isolation
                Router.sync([router])
                for _ in range(2):
                    session = sim.ppp_login(service.username)
                    listed = {e['address'] for e in sim.menu(
                            '/ip/firewall/address-list').filter(
                            list='isolir')}
                    self.assertIn(session['address'], listed, method)
                    Router.sync([router])
                    self.assertEqual(len(sim.menu('/ppp/active').filter(
                                name=service.username)), 1, method)
                    sim.ppp_logout(service.username)
                    Router.sync([router])
                self.assertEqual(
                    Service(service.id).router_state, 'synced', method)
                Service.reactivate([service])
                self.flush(router)
                session = sim.ppp_login(service.username)
                self.assertNotIn(session['address'], {
                        e['address'] for e in sim.menu(
                            '/ip/firewall/address-list').filter(
                            list='isolir')})
                sim.ppp_logout(service.username)

    @with_transaction()
    def test_isolation_disable_v6_legacy_login(self):
        "Disable isolation on a RouterOS 6.40 router (challenge login)"
        (services, snapshot, entries, sessions, restored, restored_entries,
            states) = self._isolation(
                'disable', version='6.40.9', legacy_login=True)
        for service in services:
            self.assertEqual(snapshot[service.username]['disabled'], 'true')
            self.assertEqual(restored[service.username]['disabled'],
                'false')
        self.assertEqual(sessions, 0)
        self.assertEqual(states, ['synced', 'synced'])

    @with_transaction()
    def test_router_down_converges(self):
        "Changes made while a router is down wait, then converge"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            service = self.register(location, plan, router)
            self.flush(router)
            sim.set_fault('down')
            Service.isolate([service])
            self.flush(router)
            service = Service(service.id)
            router = Router(router.id)
            self.assertEqual(service.router_state, 'pending')
            self.assertFalse(router.reachable)
            self.assertEqual(router.failures, 1)
            self.assertTrue(router.next_attempt > dt.datetime.now())
            self.assertEqual(
                sim.menu('/ppp/secret').find(
                    name=service.username)['profile'], 'Home-20M')
            sim.clear_fault()
            Router.sync([router])
            service = Service(service.id)
        self.assertEqual(service.router_state, 'synced')
        self.assertTrue(Router(router.id).reachable)
        self.assertEqual(sim.menu('/ppp/secret').find(
                name=service.username)['profile'], 'isolir')

    @with_transaction()
    def test_ghost_write_detected(self):
        "A write accepted but not applied is caught by the read-back"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            service = self.register(location, plan, router)
            sim.set_fault('ghost_write')
            self.flush(router)
            service = Service(service.id)
            self.assertEqual(service.router_state, 'error')
            self.assertIn('does not show', service.router_error)
            self.assertEqual(service.router_attempts, 1)
            self.assertTrue(service.router_next_attempt)
            sim.clear_fault()
            # not due yet: the retry cron leaves it alone
            Router.provision_pending()
            self.assertFalse(Transaction().tasks)
            Service.write([service], {
                    'router_next_attempt': dt.datetime(2000, 1, 1)})
            Router.provision_pending()
            self.assertTrue(Transaction().tasks)
            self.flush(router)
            service = Service(service.id)
        self.assertEqual(service.router_state, 'synced')
        self.assertTrue(sim.menu('/ppp/secret').find(name=service.username))

    @with_transaction()
    def test_move_and_terminate(self):
        "Moving a service moves its secret; terminating removes it"
        pool = Pool()
        Service = pool.get('isp.service')
        sim_a, sim_b = self.sim(), self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router_a = self.router(sim_a, code='AAA')
            router_b = self.router(sim_b, code='BBB')
            service = self.register(location, plan, router_a)
            self.flush(router_a)
            Service.write([service], {'router': router_b.id})
            self.flush(router_a, router_b)
            service = Service(service.id)
            self.assertIsNone(service.previous_router)
            self.assertIsNone(
                sim_a.menu('/ppp/secret').find(name=service.username))
            self.assertTrue(
                sim_b.menu('/ppp/secret').find(name=service.username))
            Service.terminate([service])
            self.flush(router_b)
        self.assertIsNone(
            sim_b.menu('/ppp/secret').find(name=service.username))

    @with_transaction()
    def test_three_routers_one_down(self):
        "Routers sync concurrently: a hanging one does not hold the others"
        pool = Pool()
        Router = pool.get('isp.router')
        sims = [self.sim() for _ in range(3)]
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            routers = [self.router(s, code=c)
                for s, c in zip(sims, ['AAA', 'BBB', 'CCC'], strict=True)]
            for router in routers:
                for i in range(20):
                    self.register(location, plan, router, name="S%d" % i)
            sims[2].set_fault('slow', delay_ms=1500)
            Router.write([routers[2]], {'timeout': 1})
            Transaction().tasks.clear()
            started = time.monotonic()
            Router.sync(routers[:1])
            alone = time.monotonic() - started
            started = time.monotonic()
            Router.sync(routers)
            together = time.monotonic() - started
            routers = Router.browse(routers)
        self.assertTrue(routers[0].reachable)
        self.assertTrue(routers[1].reachable)
        self.assertFalse(routers[2].reachable)
        self.assertIn('timed out', routers[2].last_error)
        for router in routers[:2]:
            self.assertLess(router.last_sync_duration, alone + 0.5)
        # the whole run lasts as long as the hanging router's timeout
        self.assertLess(together, alone + 3)

    @with_transaction()
    def test_sync_all_one_task_per_router(self):
        "The sync cron queues one task per router, the failing one run last"
        import socket
        pool = Pool()
        Router = pool.get('isp.router')
        Queue = pool.get('ir.queue')
        sims = [self.sim() for _ in range(2)]
        dead = socket.socket()
        dead.bind(('127.0.0.1', 0))
        dead.listen(4)
        self.addCleanup(dead.close)
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            healthy = [self.router(s, code=c)
                for s, c in zip(sims, ['AAA', 'BBB'], strict=True)]
            for router in healthy:
                self.register(location, plan, router)
            host, port = dead.getsockname()
            failing, later = Router.create([{
                        'name': code, 'code': code, 'host': host,
                        'port': port, 'api_password': PASSWORD,
                        'timeout': 1, 'failures': 1,
                        'next_attempt': dt.datetime.now()
                        + dt.timedelta(seconds=seconds)}
                    for code, seconds in [('DED', -1), ('LTR', 3600)]])
            transaction = Transaction()
            transaction.tasks.clear()
            Router.sync_all()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
            queued = Queue.browse(tasks)
            self.assertEqual({(q.data['method'], q.data['instances'])
                    for q in queued}, {('sync_router', r.id)
                    for r in healthy + [failing]})
            # run as trytond-cron does without a worker: the last first
            order = []
            while tasks:
                task = Queue(tasks.pop())
                started = time.monotonic()
                task.run()
                order.append((task.data['instances'],
                        time.monotonic() - started))
            routers = Router.browse(healthy + [failing, later])
        self.assertEqual([i for i, _ in order][-1], failing.id)
        for _, seconds in order[:2]:
            self.assertLess(seconds, 1)
        self.assertTrue(all(r.last_sync for r in routers[:2]))
        self.assertEqual(routers[2].failures, 2)
        self.assertIn('timed out', routers[2].last_error)
        self.assertIsNone(routers[3].last_error)

    @with_transaction()
    def test_api_ssl_certificate(self):
        "API-SSL: trust on first use, a changed certificate or none refused"
        import ssl

        from trytond.modules.isp_network.routeros import fingerprint
        pool = Pool()
        Router = pool.get('isp.router')
        Log = pool.get('isp.router.log')
        from tools.routeros_sim import self_signed_certificate
        certfile, keyfile = self_signed_certificate.__wrapped__()
        first = self.sim(ssl=True)
        other = self.sim(ssl=True, certfile=certfile, keyfile=keyfile)
        anonymous = self.sim(ssl=True, ssl_certificate=False)
        pems = {sim: ssl.get_server_certificate(('127.0.0.1', sim.ssl_port))
            for sim in [first, other]}
        company, _ = self.branch()
        with set_company(company):
            router = self.router(first, use_ssl=True, port=first.ssl_port)
            Router.test_connection([router])
            self.assertTrue(router.reachable)
            self.assertEqual(router.ssl_fingerprint, fingerprint(
                    ssl.PEM_cert_to_DER_cert(pems[first])))
            self.assertTrue(Log.search([('action', '=', 'ssl_trust')]))
            Router.sync([router])
            self.assertTrue(router.reachable)
            # another certificate on the same address: refused
            router.port = other.ssl_port
            router.save()
            Router.sync([router])
            self.assertFalse(router.reachable)
            self.assertIn("certificate changed", router.last_error)
            self.assertEqual(router.ssl_fingerprint, fingerprint(
                    ssl.PEM_cert_to_DER_cert(pems[first])))
            # no certificate (anonymous DH only): refused
            bare = self.router(anonymous, code='ANO', use_ssl=True,
                port=anonymous.ssl_port)
            Router.test_connection([bare])
            self.assertFalse(bare.reachable)
            self.assertIn('anonymous', bare.last_error)
            self.assertFalse(bare.ssl_fingerprint)
            # a CA: the router's certificate must be signed by it
            signed = self.router(other, code='SGN', use_ssl=True,
                port=other.ssl_port, ssl_ca=pems[other])
            Router.test_connection([signed])
            self.assertTrue(signed.reachable)
            signed.port = first.ssl_port
            signed.ssl_fingerprint = None
            signed.save()
            Router.test_connection([signed])
            self.assertFalse(signed.reachable)
            self.assertIn('not signed', signed.last_error)

    @with_transaction()
    def test_health_history_and_alerts(self):
        "Each contact is kept in the health history; down and back alert"
        pool = Pool()
        Router = pool.get('isp.router')
        User = pool.get('res.user')
        Notification = pool.get('res.notification')
        ModelData = pool.get('ir.model.data')
        sim = self.sim()
        company, location = self.branch()
        other, _ = self.branch()
        group = ModelData.get_id('isp_base', 'group_isp_branch_admin')
        admin, stranger = User.create([{
                    'login': login, 'name': login,
                    'groups': [('add', [group])],
                    'companies': [('add', [c.id])], 'company': c.id}
                for login, c in [('bdg_admin', company),
                    ('nbo_admin', other)]])
        with set_company(company):
            router = self.router(sim)
            Router.sync([router])
            sim.set_fault('down')
            Router.sync([router])
            Router.sync([router])
            sim.clear_fault('down')
            router.next_attempt = None
            router.save()
            Router.test_connection([router])
            history = list(reversed(router.health_history))
        self.assertEqual([h.reachable for h in history],
            [True, False, False, True])
        self.assertEqual(history[0].version, sim.version)
        self.assertIsNotNone(history[0].cpu_load)
        self.assertTrue(0 < history[0].memory_used < 100)
        self.assertTrue(history[1].error)
        self.assertEqual([h.up for h in history], [100, 0, 0, 100])
        notices = Notification.search([('user', '=', admin.id)],
            order=[('id', 'ASC')])
        self.assertEqual(len(notices), 2)
        self.assertIn('is down', notices[0].label)
        self.assertIn('is back', notices[1].label)
        self.assertEqual(notices[0].model, 'isp.router')
        self.assertFalse(Notification.search([('user', '=', stranger.id)]))

    @with_transaction()
    def test_pool_strategies(self):
        "Pools pick the router with fewest services, or in turn; skip down"
        pool = Pool()
        Pool_ = pool.get('isp.router.pool')
        Router = pool.get('isp.router')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            routers = [self.router(sim, code=c) for c in ['AAA', 'BBB', 'CCC']]
            self.register(location, plan, routers[0])
            fewest, = Pool_.create([{'name': "F", 'strategy': 'fewest',
                        'routers': [('create', [{'router': r.id}
                                    for r in routers])]}])
            round_robin, = Pool_.create([{'name': "R",
                        'strategy': 'round_robin',
                        'routers': [('create', [{'router': r.id}
                                    for r in routers])]}])
            self.assertEqual(fewest.pick_router(), routers[1])
            Router.write([routers[1]], {'reachable': False, 'failures': 2})
            fewest, round_robin = Pool_.browse([fewest, round_robin])
            self.assertEqual(fewest.pick_router(), routers[2])
            picks = [round_robin.pick_router() for _ in range(4)]
            self.assertEqual(picks, [routers[0], routers[2]] * 2)
            service = self.register(location, plan, None,
                router_pool=fewest.id)
            self.assertEqual(service.router, routers[2])

    @with_transaction()
    def test_import_secrets(self):
        "Importing 500 secrets creates 500 services, and again none"
        pool = Pool()
        Service = pool.get('isp.service')
        Party = pool.get('party.party')
        sim = self.sim()
        sim.seed(secrets=500, active=100, prefix='OLD')
        sim.menu('/ppp/profile').add(name='Home-20M', **{'rate-limit': '1M'})
        sim.menu('/ppp/secret').set('OLD7', profile='Home-20M',
            comment='Pak Harto', **{'remote-address': '10.7.7.7'})
        sim.menu('/ppp/secret').set('OLD8', password='4821', disabled='yes')
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            other = self.plan(name="Legacy", download=1000, upload=1000)
            router = self.router(sim)
            from trytond.modules.isp_network.router_import import (
                read_secrets,
            )
            rows = read_secrets(router)
            preview = router.import_preview(rows, other)
            self.assertEqual(len(preview), 500)
            self.assertFalse(any(line['existing'] for line in preview))
            services, refused = router.import_rows(rows, location, other)
            self.assertEqual((len(services), refused), (500, []))
            self.assertEqual(
                router.import_rows(rows, location, other), ([], []))
            self.assertTrue(all(
                    line['existing']
                    for line in router.import_preview(rows, other)))
            old7, = Service.search([('username', '=', 'OLD7')])
            old8, = Service.search([('username', '=', 'OLD8')])
            self.assertEqual(
                len(Party.search([('is_subscriber', '=', True)])), 500)
        self.assertEqual(old7.plan, plan)
        self.assertEqual(old7.remote_address, '10.7.7.7')
        self.assertEqual(old7.subscriber.name, 'Pak Harto')
        self.assertEqual(old8.password, '4821')
        self.assertEqual(old8.state, 'isolated')
        self.assertEqual(old8.plan, other)
        self.assertEqual(len({s.customer_id for s in services}), 500)

    @with_transaction()
    def test_import_keeps_router_state(self):
        "Import keeps what it found; the preview lists every first-push change"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        from trytond.modules.isp_network.router_import import read_secrets
        sim = self.sim()
        profiles = sim.menu('/ppp/profile')
        profiles.add(name='Home-20M', rate_limit='5M/20M')
        profiles.add(name='2M5M', rate_limit='2M/5M')
        profiles.add(name='Legacy-1M', rate_limit='1M/1M')
        secrets = sim.menu('/ppp/secret')
        secrets.add(name='keep-any', password='a1', profile='2M5M',
            comment='Pak Budi')
        secrets.add(name='dis', password='b2', service='pppoe',
            profile='Home-20M', comment='Bu Siti', disabled='yes')
        secrets.add(name='mapped', password='c3', service='pppoe',
            profile='Legacy-1M', comment='Pak Joko')
        secrets.add(name='nocomment', password='d4', service='pppoe',
            profile='Home-20M')
        secrets.add(name='bad name', password='e5', service='pppoe')
        secrets.add(name='nopw', service='pppoe', profile='Home-20M')
        secrets.add(name='vpn-staff', password='f6', service='l2tp')
        sim.ppp_login('keep-any')
        sim.ppp_login('mapped')
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            other = self.plan(name="Legacy", download=1000, upload=1000)
            router = self.router(sim)
            rows = read_secrets(router)
            self.assertEqual(router.import_profiles(rows),
                {'2M5M': 1, 'Legacy-1M': 1, 'default': 1})
            mapping = {'Legacy-1M': plan}
            lines = {line['username']: line
                for line in router.import_preview(rows, other, mapping)}
            before = {r['name']: r for r in secrets.all()}
            services, refused = router.import_rows(
                rows, location, other, mapping)
            self.flush(router)
            after = {r['name']: r for r in secrets.all()}
            # every change of the first push was in the preview, no other
            changed = {name for name in after if after[name] != before[name]}
            self.assertEqual(changed,
                {name for name, line in lines.items() if line['changes']})
            self.assertEqual(changed, {'mapped', 'nocomment'})
            self.assertIn('profile=Home-20M', lines['mapped']['changes'])
            self.assertIn('session', lines['mapped']['changes'])
            self.assertIn('comment=', lines['nocomment']['changes'])
            # the refused ones are listed with the reason, the rest imported
            self.assertEqual([name for name, _ in refused],
                ['bad name', 'nopw'])
            self.assertIn('bad name', dict(refused)['bad name'])
            self.assertEqual(lines['bad name']['refused'],
                dict(refused)['bad name'])
            self.assertEqual(len(services), 4)
            self.assertNotIn('vpn-staff', lines)
            self.assertEqual(
                {s.username: s.router_state for s in services},
                dict.fromkeys(
                    ['keep-any', 'dis', 'mapped', 'nocomment'], 'synced'))
            self.assertEqual(len(sim.menu('/ppp/active').filter(
                        name='keep-any')), 1)
            # a full sync keeps them too
            Router.sync([router])
            self.assertEqual({r['name']: r for r in secrets.all()}, after)
            kept = {s.username: s for s in Service.browse(services)}
            self.assertEqual(after['keep-any']['profile'], '2M5M')
            self.assertEqual(after['keep-any']['service'], 'any')
            self.assertEqual(after['keep-any']['comment'], 'Pak Budi')
            self.assertEqual(after['dis']['disabled'], 'true')
            self.assertEqual(after['dis']['comment'], 'Bu Siti')
            self.assertEqual(kept['keep-any'].plan, other)
            self.assertEqual(kept['mapped'].plan, plan)
            # staff choose: a plan moves the kept profile, reactivating
            # enables the disabled one
            Service.write([kept['keep-any']], {'plan': plan.id})
            Service.reactivate([kept['dis']])
            self.flush(router)
            self.assertEqual(
                secrets.find(name='keep-any')['profile'], 'Home-20M')
            self.assertEqual(secrets.find(name='dis')['disabled'], 'false')
            self.assertEqual(
                secrets.find(name='dis')['profile'], 'Home-20M')

    def radius_router(self, code='RAD', address='127.0.0.2', **values):
        pool = Pool()
        Router = pool.get('isp.router')
        router, = Router.create([{
                    'name': code, 'code': code, 'host': address,
                    'api_username': 'admin', 'timeout': 1,
                    'provisioning_mode': 'radius',
                    'radius_address': address, 'radius_secret': 'nas-secret',
                    **values}])
        return router

    @with_transaction()
    def test_radius_mode(self):
        "RADIUS mode: no API push, CoA attributes follow the service"
        pool = Pool()
        Router = pool.get('isp.router')
        Service = pool.get('isp.service')
        company, location = self.branch()
        with set_company(company):
            plan = self.plan(quota=10, throttled_download_rate=1000,
                throttled_upload_rate=512)
            router = self.radius_router(isolation_method='address_list')
            service = self.register(location, plan, router)
            # the queued task needs no router connection (no live session)
            self.flush(router)
            service = Service(service.id)
            self.assertEqual(service.router_state, 'synced')
            self.assertEqual(router.coa_port, 3799)
            self.assertEqual(plan.simultaneous_use, 1)
            self.assertEqual(service.get_radius_coa(router),
                {'Mikrotik-Rate-Limit': '5M/20M'})
            Service.isolate([service])
            service = Service(service.id)
            self.assertTrue(service.radius_session_isolated)
            self.assertEqual(service.get_radius_coa(router), {
                    'Mikrotik-Rate-Limit': '5M/20M',
                    'Mikrotik-Address-List': 'isolir'})
            self.flush(router)
            Service.reactivate([service])
            service = Service(service.id)
            # no CoA withdraws the isolation of a live session
            self.assertIsNone(service.get_radius_coa(router))
            self.flush(router)
            service = Service(service.id)
            self.assertFalse(service.radius_session_isolated)
            Service.write([service], {'radius_throttled': True})
            self.assertEqual(service.router_state, 'pending')
            self.assertEqual(service.get_radius_coa(router),
                {'Mikrotik-Rate-Limit': '512k/1M'})
            with self.assertRaises(RouterRadiusValidationError):
                self.radius_router(code='BAD', address='not-an-address')
            # sync of a RADIUS router never talks to an API
            Router.sync([router])

    @with_transaction()
    def test_fair_usage(self):
        "Over the quota this cycle: throttled; the next cycle: released"
        pool = Pool()
        Service = pool.get('isp.service')
        Usage = pool.get('isp.service.usage')
        company, location = self.branch()
        with set_company(company):
            plan = self.plan(quota=1, throttled_download_rate=1000,
                throttled_upload_rate=512)
            router = self.radius_router()
            service = self.register(location, plan, router)
            other = self.register(location, plan, router, name="Siti")
            day = dt.date(2030, 3, 15)
            Usage.create([{
                        'company': company.id, 'service': service.id,
                        'date': day, 'bytes_in': 10 ** 8,
                        'bytes_out': 10 ** 9}, {
                        'company': company.id, 'service': other.id,
                        'date': day - dt.timedelta(days=20),
                        'bytes_out': 5 * 10 ** 9}])
            throttled, released = Service.apply_fair_usage(day)
            self.assertEqual(throttled, [service])
            self.assertEqual(released, [])
            self.assertEqual(Service.apply_fair_usage(day), ([], []))
            self.assertEqual(
                Service.apply_fair_usage(dt.date(2030, 4, 1)),
                ([], [service]))
            self.assertEqual(Usage(Usage.search([
                            ('service', '=', service.id)])[0]).total,
                11 * 10 ** 8)


del ModuleTestCase
