# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Secrets per record and bad input refused, on the network models:
services created together get passwords of their own, every number and
text field of routers, pools and services refuses bad input by name."""
from trytond.modules.company.tests import set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction

from trytond.modules.isp_base.exceptions import InputValidationError
from trytond.modules.isp_base.tests.inputs import (
    assert_input_guard,
    assert_secret_defaults,
)
from trytond.modules.isp_network.tests.test_module import NetworkMixin


class NetworkInputsTestCase(NetworkMixin, RouteTestCase):
    "Test secrets per record and input bounds of the network models"
    module = 'isp_network'

    @with_transaction()
    def test_random_defaults_are_per_record(self):
        "Every random default of the ISP models is drawn per record"
        found = assert_secret_defaults(self, Pool())
        self.assertIn(('isp.service', 'password'),
            {(m.__name__, f) for m, f in found})

    @with_transaction()
    def test_services_created_together_own_passwords(self):
        "Services created in one call, or copied, get their own password"
        pool = Pool()
        Service = pool.get('isp.service')
        Party = pool.get('party.party')
        sim = self.sim()
        company, location = self.branch()
        with set_company(company):
            plan = self.plan()
            router = self.router(sim)
            parties = Party.create([{'name': 'S%d' % i, 'is_subscriber': True,
                        'location': location.id} for i in range(4)])
            services = Service.create([{
                        'subscriber': p.id, 'location': location.id,
                        'plan': plan.id, 'router': router.id,
                        'username': 'CKP%03d' % i,
                        } for i, p in enumerate(parties)])
            copies = Service.copy(services[:2])
        passwords = [s.password for s in services + copies]
        self.assertTrue(all(passwords))
        self.assertEqual(len(set(passwords)), len(passwords))

    @with_transaction()
    def test_every_field_guarded(self):
        "Every number and text field of the network models refuses bad input"
        found = assert_input_guard(self, Pool())
        models = {m.__name__ for m, _, _ in found}
        for name in ['isp.router', 'isp.router.pool', 'isp.service']:
            self.assertIn(name, models)

    @with_transaction()
    def test_router_fields_input(self):
        "Ports and time-outs out of range or as text are refused by name"
        pool = Pool()
        Router = pool.get('isp.router')
        sim = self.sim()
        company, _ = self.branch()
        with set_company(company):
            router = self.router(sim, port=str(sim.port))
            self.assertEqual(router.port, sim.port)
            for values, field in [
                    ({'port': 70000}, 'Port'),
                    ({'port': '87x8'}, 'Port'),
                    ({'timeout': 0}, 'Timeout'),
                    ({'timeout': float('inf')}, 'Timeout'),
                    ({'host': 'h' * 5000}, 'Host'),
                    ({'api_password': 'pa\x00ss'}, 'API Password'),
                    ({'coa_port': 2 ** 40}, 'CoA Port'),
                    ]:
                with self.subTest(values=values):
                    with self.assertRaises(InputValidationError) as cm:
                        Router.write([router], values)
                    self.assertIn(field, cm.exception.message)
            # what only the system writes (a sync's health) is not bounded
            self.assertEqual(Router.preprocess_values('write', {
                        'total_memory': 4026531840})['total_memory'],
                4026531840)


del RouteTestCase
