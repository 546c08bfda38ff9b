# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The audit trail (isp.audit.log, docs/operations.md) as the real groups of
two branches: what is recorded (who, what, old -> new, credentials as
"changed") and who reads it (administrators of the branch, the head office
for every branch and the central records)."""
import unittest
from decimal import Decimal

from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_customer,
    create_gateway,
    create_invoices,
)
from trytond.modules.isp_multicompany.tests.test_records_security import (
    GROUPS,
    as_user,
    setup_branches,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import rpc

SECRET = 'SB-Mid-server-new-secret-value'


class AuditTestCase(ClassSetupMixin, unittest.TestCase):
    "Audit trail of sensitive actions"
    setup_modules = ['isp_multicompany']

    @classmethod
    def setup_class_data(cls):
        data = setup_branches()
        for key in ['bandung', 'nairobi']:
            company = data[key]
            with Transaction().set_context(company=company.id):
                data[key + '_gateway'] = create_gateway('midtrans',
                    'http://127.0.0.1:9', company=company,
                    name="Gateway %s" % key)
        Transaction().tasks.clear()
        return data

    def entries(self, **domain):
        Log = Pool().get('isp.audit.log')
        return Log.search([(k, '=', v) for k, v in domain.items()],
            order=[('id', 'ASC')])

    def act(self, data):
        """Bandung's branch administrator isolates and reactivates a
        service, changes its plan's price and the gateway's name; Nairobi's
        service is isolated by the system; Tryton's administrator changes a
        user's groups and password; the head office a central provider's
        token and the gateway's key"""
        pool = Pool()
        Service = pool.get('isp.service')
        Gateway = pool.get('isp.payment.gateway')
        Template = pool.get('product.template')
        User = pool.get('res.user')
        Provider = pool.get('isp.message.provider')
        ModelData = pool.get('ir.model.data')
        bandung = data['bandung']
        admin = data['users']['group_isp_branch_admin']
        context = {'company': bandung.id}
        service = data['bandung_service']
        rpc(admin, Service, 'isolate', [service.id], context=context)
        rpc(admin, Service, 'reactivate', [service.id], context=context)
        template = data['bandung_plan'].template if hasattr(
            data['bandung_plan'], 'template') else data['bandung_plan']
        with as_user(admin, bandung):
            Template.write([Template(template.id)],
                {'list_price': Decimal('125000')})
            Gateway.write([Gateway(data['bandung_gateway'].id)],
                {'name': "Midtrans Bandung"})
        Service.isolate([data['nairobi_service']])
        head = data['head']
        with Transaction().set_context(company=bandung.id):
            provider, = Provider.create([{
                        'name': 'Central SMS', 'type': 'whatsapp_token',
                        'company': None,
                        'base_url': 'http://127.0.0.1:9', 'capacity': 60,
                        'timeout': 2, 'token': 'first-token'}])
        # user accounts are Tryton's administrators' (res.group_admin)
        with Transaction().set_user(1), Transaction().set_context(
                _check_access=True):
            User.write([User(data['users']['group_isp_technician'].id)], {
                    'groups': [('add', [ModelData.get_id(
                                    'isp_base', 'group_isp_finance')])],
                    'password': 'A-new-Passw0rd-for-tech',
                    })
        with as_user(head, bandung):
            Provider.write([provider], {'token': 'second-token'})
            # the head office's administrators hold the credentials
            Gateway.write([Gateway(data['bandung_gateway'].id)],
                {'server_key': SECRET})
        return provider

    @with_transaction()
    def test_recorded(self):
        "Who, what, old -> new; credentials only as changed"
        data = self.class_data()
        provider = self.act(data)
        admin = data['users']['group_isp_branch_admin']
        service = data['bandung_service']
        isolate, reactivate = self.entries(model='isp.service',
            record_id=service.id)
        self.assertEqual(isolate.user, admin)
        self.assertEqual(isolate.company, data['bandung'])
        self.assertEqual(isolate.action, 'write')
        self.assertEqual(isolate.changes, 'State: Active -> Isolated')
        self.assertEqual(reactivate.changes, 'State: Isolated -> Active')
        self.assertEqual(isolate.record_name, service.rec_name)

        nairobi, = self.entries(model='isp.service',
            record_id=data['nairobi_service'].id)
        self.assertEqual(nairobi.company, data['nairobi'])

        price, = self.entries(model='product.template')
        self.assertIn('-> 125000', price.changes)
        self.assertEqual(price.company, data['bandung'])

        gateway = [e for e in self.entries(model='isp.payment.gateway',
                record_id=data['bandung_gateway'].id) if e.action == 'write']
        name, key = gateway
        self.assertEqual(name.changes,
            'Name: Gateway bandung -> Midtrans Bandung')
        self.assertEqual(name.user, admin)
        self.assertEqual(key.changes, 'Server Key: changed')
        self.assertEqual(key.user, data['head'])

        created, user = self.entries(model='res.user',
            record_id=data['users']['group_isp_technician'].id)
        self.assertEqual(created.action, 'create')  # by the setup
        self.assertIn('Groups: - -> ISP Technician', created.changes)
        self.assertEqual(user.user.id, 1)
        self.assertEqual(user.company, data['bandung'])
        self.assertIn('Groups:', user.changes)
        self.assertIn('Finance', user.changes)
        self.assertIn('Password: changed', user.changes)

        created, written = self.entries(model='isp.message.provider',
            record_id=provider.id)
        self.assertEqual(created.action, 'create')
        self.assertIsNone(written.company)
        self.assertEqual(written.changes, 'Token: changed')

        Log = Pool().get('isp.audit.log')
        every = '\n'.join(e.changes or '' for e in Log.search([]))
        for secret in [SECRET, 'first-token', 'second-token',
                'A-new-Passw0rd', 'SB-Mid-server-fake']:
            self.assertNotIn(secret, every)

    @with_transaction()
    def test_payment_recorded(self):
        "A payment and its invoice's cancellation"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        data = self.class_data()
        bandung = data['bandung']
        with Transaction().set_context(company=bandung.id):
            party = create_customer("Audit Payer")
            invoice, = create_invoices(bandung, party, 50000)
            Invoice.isp_record_payment(invoice, Decimal('20000'),
                method='gateway', reference='RCPT-1')
        payment, = self.entries(model='account.invoice',
            record_id=invoice.id)
        self.assertEqual(payment.action, 'payment')
        self.assertIn('Amount: 20000', payment.changes)
        self.assertEqual(payment.company, bandung)

    @with_transaction()
    def test_who_reads(self):
        "Administrators read their branches' entries; nobody changes them"
        pool = Pool()
        Log = pool.get('isp.audit.log')
        data = self.class_data()
        self.act(data)
        bandung, nairobi = data['bandung'], data['nairobi']
        everything = Log.search([])
        by_company = {e.company for e in everything}
        self.assertEqual(by_company, {bandung, nairobi, None})

        admin = data['users']['group_isp_branch_admin']
        with as_user(admin, bandung):
            seen = Log.search([])
            self.assertTrue(seen)
            self.assertEqual({Log(e.id).company.id for e in seen},
                {bandung.id})
            others = [e.id for e in everything if e.company != bandung]
            with self.assertRaises(AccessError):
                Log.read(others[:1], ['changes'])
            for call in [
                    lambda: Log.create([{'model': 'x', 'action': 'x',
                                'date': everything[0].date}]),
                    lambda: Log.write([Log(seen[0].id)], {'changes': 'x'}),
                    lambda: Log.delete([Log(seen[0].id)]),
                    ]:
                with self.assertRaises(AccessError):
                    call()

        with as_user(data['head'], bandung):
            self.assertEqual(len(Log.search([])), len(everything))

        for group in GROUPS:
            if group == 'group_isp_branch_admin':
                continue
            with as_user(data['users'][group], bandung), \
                    self.assertRaises(AccessError, msg=group):
                Log.search([])
