# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Records a branch user may not touch, tried as the real groups of a branch
(Bandung) against another branch (Nairobi) and the head office's shared
records, with the access checks of an RPC call:

- the per-company settings of every configuration model of the product;
- the system fields (read-only fields the ISP modules declare: states,
  workflow dates, billing and router fields...) of every model;
- shared parties and plans (no branch), and a subscriber's branch."""
import unittest
from contextlib import contextmanager
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model import ModelSQL, ModelStorage, fields
from trytond.model.exceptions import AccessError
from trytond.modules.company.model import (
    CompanyMultiValueMixin,
    CompanyValueMixin,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.field_access import system_fields
from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    create_customer,
    create_invoices,
    create_plan_and_router,
    create_services,
)

GROUPS = [
    'group_isp_customer_service', 'group_isp_technician',
    'group_isp_finance', 'group_isp_branch_admin']


def isp_models():
    "The names of the models the ISP modules define"
    Model = Pool().get('ir.model')
    return {m.name for m in Model.search([('module', 'like', 'isp_%')])}


def create_user(login, group, companies, filter_='one'):
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    user, = User.create([{
                'name': login, 'login': login,
                'groups': [('add', [ModelData.get_id('isp_base', group)])],
                'companies': [('add', [c.id for c in companies])],
                'company': companies[0].id,
                'company_filter': filter_,
                }])
    return user


@contextmanager
def as_user(user, company):
    "Act as `user` in `company` (the context a client sends), with checks"
    transaction = Transaction()
    with transaction.set_user(user.id), transaction.set_context(
            _check_access=True, company=company.id):
        yield


def setup_branches():
    "Bandung and Nairobi with a plan, router and active service each"
    bandung = create_branch("Bandung", 'IDR')
    nairobi = create_branch("Nairobi", 'KES')
    data = {'bandung': bandung, 'nairobi': nairobi}
    for name, company, code in [
            ('bandung', bandung, 'BD'), ('nairobi', nairobi, 'NB')]:
        with Transaction().set_context(company=company.id):
            plan, router = create_plan_and_router(
                company, "Home %s" % code, 100000, code)
            service, = create_services(
                company, plan, router, ["Subscriber %s" % code], code)
        data[name] = company
        data[name + '_plan'] = plan
        data[name + '_service'] = service
    data['users'] = {
        group: create_user(group, group, [bandung]) for group in GROUPS}
    data['head'] = create_user(
        'head', 'group_isp_head_admin', [bandung, nairobi], 'all')
    return data


class RecordsSecurityTestCase(ClassSetupMixin, unittest.TestCase):
    "Test what branch users may not read or change"
    setup_modules = ['isp_multicompany']

    @classmethod
    def setup_class_data(cls):
        return setup_branches()

    # -- per-company settings --

    def configuration_models(self):
        """{configuration model: [its per-company fields]} and the value
        models, of every ISP module"""
        pool = Pool()
        configurations, values = {}, set()
        for name in isp_models():
            Model = pool.get(name)
            if issubclass(Model, CompanyMultiValueMixin):
                configurations[name] = [
                    fname for fname, field in Model._fields.items()
                    if isinstance(field, fields.MultiValue)
                    and issubclass(
                        Model.multivalue_model(fname), CompanyValueMixin)]
            if issubclass(Model, CompanyValueMixin):
                values.add(name)
        return configurations, values

    @with_transaction()
    def test_configuration_other_branch(self):
        "Settings of another branch: refused to every group, read and write"
        pool = Pool()
        data = self.class_data()
        bandung, nairobi = data['bandung'], data['nairobi']
        configurations, _ = self.configuration_models()
        self.assertGreaterEqual(set(configurations), {
                'isp.configuration', 'isp.billing.configuration'})
        self.assertTrue(all(configurations.values()))
        Configuration = pool.get('isp.billing.configuration')
        with Transaction().set_context(company=nairobi.id):
            Configuration.write([Configuration(1)], {'due_days': 21})

        for group, user in data['users'].items():
            for model, names in configurations.items():
                with self.subTest(group=group, model=model):
                    with as_user(user, bandung):
                        Config = pool.get(model)
                        # their own branch's settings: readable
                        Config.read([Config(1).id], names)
                    with as_user(user, nairobi):
                        Config = pool.get(model)
                        for name in names:
                            with self.assertRaises(AccessError, msg=name):
                                Config.read([Config(1).id], [name])
                        with self.assertRaises(AccessError):
                            Config.write([Config(1)], {names[0]: None})

        admin = data['users']['group_isp_branch_admin']
        with as_user(admin, bandung):
            Configuration = pool.get('isp.billing.configuration')
            Configuration.write([Configuration(1)], {'due_days': 14})
        with as_user(admin, nairobi):
            Configuration = pool.get('isp.billing.configuration')
            for name in ['due_days', 'pay_url', 'loyalty_discount']:
                with self.assertRaises(AccessError):
                    Configuration.write([Configuration(1)], {
                            name: {'due_days': 1, 'pay_url': 'https://x/',
                                'loyalty_discount': Decimal('0.5')}[name]})
            # the button writes the context company's ladder
            with self.assertRaises(AccessError):
                Configuration.create_ladder([Configuration(1)])
        Configuration = pool.get('isp.billing.configuration')
        self.assertEqual(Configuration.get_value(nairobi, 'due_days'), 21)
        self.assertEqual(Configuration.get_value(bandung, 'due_days'), 14)

        # the head office works for both branches
        with as_user(data['head'], nairobi):
            Configuration = pool.get('isp.billing.configuration')
            due_days, = Configuration.read([1], ['due_days'])
            self.assertEqual(due_days['due_days'], 21)

    @with_transaction()
    def test_configuration_values_direct(self):
        "The per-company value models are not open to RPC calls"
        pool = Pool()
        data = self.class_data()
        _, values = self.configuration_models()
        self.assertGreaterEqual(values, {
                'isp.configuration.sequence',
                'isp.billing.configuration.company'})
        nairobi = data['nairobi']
        stored = {name: pool.get(name).search(
                [('company', '=', nairobi.id)]) for name in values}
        for group, user in [
                *data['users'].items(), ('head', data['head'])]:
            for name in values:
                with self.subTest(group=group, model=name), \
                        as_user(user, data['bandung']):
                    Value = pool.get(name)
                    with self.assertRaises(AccessError):
                        Value.search([])
                    with self.assertRaises(AccessError):
                        Value.create([{'company': nairobi.id}])
                    if stored[name]:
                        with self.assertRaises(AccessError):
                            Value.write(stored[name], {'company': None})

    # -- system fields --

    def declared_readonly_fields(self):
        """(model, field) of the stored read-only fields ISP modules
        declare, from ir.model.field"""
        pool = Pool()
        Field = pool.get('ir.model.field')
        found = set()
        for field in Field.search([('module', 'like', 'isp_%')]):
            try:
                Model = pool.get(field.model)
            except KeyError:
                continue
            definition = Model._fields.get(field.name)
            if (isinstance(getattr(ModelSQL, field.name, None), fields.Field)
                    or not issubclass(Model, ModelStorage)
                    or callable(getattr(Model, 'table_query', None))
                    or definition is None
                    or definition.readonly is not True
                    or (isinstance(definition, fields.Function)
                        and not definition.setter)):
                continue
            found.add((field.model, field.name))
        return found

    @with_transaction()
    def test_system_fields_refused(self):
        "Every read-only field of the ISP modules is refused to every group"
        pool = Pool()
        FieldAccess = pool.get('ir.model.field.access')
        data = self.class_data()
        found = self.declared_readonly_fields()
        self.assertGreaterEqual(found, {
                ('isp.service', 'state'), ('isp.service', 'billed_until'),
                ('isp.service', 'activation_date'),
                ('isp.service', 'isolated_by_billing'),
                ('isp.service', 'router_state'),
                ('isp.payment.transaction', 'state'),
                ('account.invoice', 'isp_pay_token'),
                ('account.invoice.line', 'isp_service'),
                ('party.party', 'subscriber_code'),
                })
        self.assertEqual(found, {(model, name) for model, _ in found
                for name in system_fields(pool.get(model))})
        for group, user in [
                *data['users'].items(), ('head', data['head'])]:
            for model, name in sorted(found):
                with self.subTest(group=group, field=(model, name)), \
                        as_user(user, data['bandung']):
                    self.assertFalse(FieldAccess.check(
                            model, [name], 'write', raise_exception=False))
                    fields_get = pool.get(model).fields_get([name])
                    self.assertTrue(fields_get[name]['readonly'])

    @with_transaction()
    def test_system_fields_write_service(self):
        "The service's workflow, billing and router fields, as each group"
        pool = Pool()
        data = self.class_data()
        service_id = data['bandung_service'].id
        names = system_fields(pool.get('isp.service'))
        self.assertGreaterEqual(names, {
                'state', 'activation_date', 'termination_date',
                'billed_until', 'isolated_by_billing', 'router_state',
                'live_status', 'customer_id'})
        samples = {
            'state': 'terminated', 'activation_date': None,
            'termination_date': None, 'billed_until': None,
            'isolated_by_billing': True, 'router_state': 'synced',
            'live_status': 'online', 'customer_id': 'X-1'}
        for group, user in data['users'].items():
            for name, value in samples.items():
                with self.subTest(group=group, field=name), \
                        as_user(user, data['bandung']):
                    Service = pool.get('isp.service')
                    with self.assertRaises(AccessError):
                        Service.write([Service(service_id)], {name: value})
            with self.subTest(group=group, mode='create'), \
                    as_user(user, data['bandung']):
                Service = pool.get('isp.service')
                with self.assertRaises(AccessError):
                    Service.create([{
                                'subscriber': Service(
                                    service_id).subscriber.id,
                                'plan': data['bandung_plan'].id,
                                'router': Service(service_id).router.id,
                                'username': 'BD900',
                                'state': 'active'}])
        Service = pool.get('isp.service')
        self.assertEqual(Service(service_id).state, 'active')

    @with_transaction()
    def test_workflow_still_writes(self):
        "Buttons, copies and server code still write the system fields"
        pool = Pool()
        data = self.class_data()
        bandung = data['bandung']
        users = data['users']
        service_id = data['bandung_service'].id
        with as_user(users['group_isp_customer_service'], bandung):
            Service = pool.get('isp.service')
            Service.isolate([Service(service_id)])
            Service.reactivate([Service(service_id)])
            copy, = Service.copy([Service(service_id)])
            self.assertEqual(copy.state, 'draft')
            Service.activate([copy])
            self.assertEqual(copy.state, 'active')
            self.assertTrue(copy.activation_date)
            copy_id = copy.id
        with as_user(users['group_isp_branch_admin'], bandung):
            Service = pool.get('isp.service')
            Service.terminate([Service(copy_id)])
            self.assertEqual(Service(copy_id).state, 'terminated')

        with Transaction().set_context(company=bandung.id):
            invoice, = create_invoices(bandung, create_customer(), 50000)
        # an accountant of the branch duplicates an invoice
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        User.write([users['group_isp_finance']], {'groups': [('add', [
                            ModelData.get_id('account', 'group_account')])]})
        with as_user(users['group_isp_finance'], bandung):
            Invoice = pool.get('account.invoice')
            copy, = Invoice.copy([Invoice(invoice.id)])
            self.assertTrue(copy.isp_pay_token)
            self.assertNotEqual(copy.isp_pay_token, invoice.isp_pay_token)
            self.assertEqual(copy.state, 'draft')
            with self.assertRaises(AccessError):
                Invoice.write([copy], {'isp_pay_token': 'chosen'})

    # -- shared records --

    @with_transaction()
    def test_shared_records_read_only(self):
        "Shared parties and plans: branches read, the head office writes"
        pool = Pool()
        data = self.class_data()
        bandung = data['bandung']
        Party = pool.get('party.party')
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        unit, = Uom.search([('name', '=', 'Unit')])

        def shared_records():
            """A party (the company's kind) and a central plan: each group
            tries its own (a refused change is not rolled back here)"""
            party, = Party.create([{
                        'name': "Head office", 'addresses': [('create', [{}])],
                        'contact_mechanisms': [('create', [{
                                        'type': 'email',
                                        'value': 'ho@example.com'}])],
                        }])
            with Transaction().set_context(company=bandung.id):
                plan, = Template.create([{
                            'name': "Central 10", 'isp_plan': True,
                            'type': 'service', 'default_uom': unit.id,
                            'list_price': Decimal(1),
                            'download_rate': 10000, 'upload_rate': 2000,
                            'products': [('create', [{}])]}])
            return party, plan
        shared = {group: shared_records() for group in [*GROUPS, 'head']}
        # the company parties are shared
        self.assertIsNone(bandung.party.isp_company)
        own_party = data['bandung_service'].subscriber
        subscribers = dict(zip(GROUPS, Party.create([{
                            'name': group, 'is_subscriber': True,
                            'isp_company': bandung.id} for group in GROUPS]),
                strict=True))
        own_plan = data['bandung_plan']

        for group, user in data['users'].items():
            with self.subTest(group=group), as_user(user, bandung):
                Party = pool.get('party.party')
                Address = pool.get('party.address')
                Contact = pool.get('party.contact_mechanism')
                Template = pool.get('product.template')
                party = Party(shared[group][0].id)
                central = Template(shared[group][1].id)
                # readable
                self.assertEqual(party.name, "Head office")
                self.assertEqual(central.name, "Central 10")
                email = {'type': 'email', 'value': 'x@example.com'}
                for method, *args in [
                        (Party.write, [party], {'name': "Mine"}),
                        (Party.delete, [party]),
                        (Party.create, [{'name': "Shared"}]),
                        (Address.write, list(party.addresses),
                            {'street': "Here"}),
                        (Address.delete, list(party.addresses)),
                        (Address.create, [{'party': party.id}]),
                        (Contact.write, list(party.contact_mechanisms),
                            {'value': 'me@example.com'}),
                        (Contact.create, [{'party': party.id, **email}]),
                        (Template.write, [central], {'name': "Mine"}),
                        (Template.delete, [central]),
                        ]:
                    with self.subTest(call=method), \
                            self.assertRaises(UserError):
                        method(*args)
                # their own branch's subscriber
                Party.write([Party(own_party.id)], {'name': "Budi"})
                Address.write(
                    list(Party(own_party.id).addresses), {'street': "Jl"})
                # the subscriber's branch cannot be emptied (a subscriber
                # of its own: a refused write is not rolled back here)
                with self.assertRaises(UserError):
                    Party.write([Party(subscribers[group].id)],
                        {'isp_company': None})
            if group == 'group_isp_branch_admin':
                with as_user(user, bandung):
                    Template = pool.get('product.template')
                    Template.write([Template(own_plan.id)], {'name': "Own"})

        with as_user(data['head'], bandung):
            Party = pool.get('party.party')
            Template = pool.get('product.template')
            party, central = shared['head']
            Party.write([Party(party.id)], {'name': "Head office HQ"})
            Template.write([Template(central.id)], {'name': "Central 20"})
            Template.delete([Template(central.id)])
            # a subscriber belongs to a branch, even for the head office
            with self.assertRaises(UserError):
                Party.write([Party(own_party.id)], {'isp_company': None})
