# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Branch isolation of wizards, on_change calls and preferences, tried as a
Bandung branch user (each ISP group) with Nairobi's ids, through the same
RPC entry points as a client (private context keys dropped, access checks
as the dispatcher sets them).

This module depends on every ISP module: its pool holds every ISP wizard.
A wizard without a case here fails `test_wizards_refuse_other_branch`."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.tools import is_instance_method
from trytond.transaction import Transaction

from tools.routeros_sim import Router as SimRouter
from trytond.modules.isp_base.exceptions import (
    BranchAccessError,
    PreferencesCompanyError,
)
from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchWizardMixin,
)
from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    create_gateway,
)
from trytond.modules.isp_billing.tests.reporting_tools import (
    create_location,
    create_plan,
    create_router,
    create_service_invoices,
    create_services,
)
from trytond.modules.isp_voucher.tests.voucher_setup import (
    create_batch,
    create_profile,
    create_reseller,
)

PASSWORD = 'Api-Pa55'
GROUPS = ['group_isp_customer_service', 'group_isp_technician',
    'group_isp_finance', 'group_isp_branch_admin']

#: What a refused attempt must not have created
COUNTED = ['isp.service', 'party.party', 'party.address', 'isp.location',
    'account.invoice', 'account.move', 'isp.payment.transaction',
    'isp.router.log', 'isp.message', 'ir.queue', 'web.user',
    'ir.attachment', 'isp.voucher.reseller']


def rpc(user, Model, method, *args, context):
    """Call `method` of `Model` as `user` the way the dispatcher does: the
    context is converted by the method's RPC (private keys dropped,
    `_check_access` set when the RPC checks access), records instantiated"""
    transaction = Transaction()
    spec = Model.__rpc__[method]
    with transaction.set_user(user.id), transaction.reset_context():
        c_args, c_kwargs, c_context, _ = spec.convert(
            Model, *args, context)
        with transaction.set_context(c_context):
            meth = spec.decorate(getattr(Model, method))
            if spec.instantiate is None or not is_instance_method(
                    Model, method):
                return spec.result(meth(*c_args, **c_kwargs))
            inst = c_args.pop(0)
            return spec.result(meth(inst, *c_args, **c_kwargs))


def run_wizard(user, name, steps, context):
    "Run the wizard `name` as `user`: `steps` are (state, data) pairs"
    Wizard = Pool().get(name, type='wizard')
    session_id, _, _ = rpc(user, Wizard, 'create', context=context)
    result = None
    for state, data in steps:
        result = rpc(user, Wizard, 'execute', session_id, data, state,
            context=context)
    return result


def setup_branches(sim):
    """Bandung and Nairobi, each with a plan, a location, a router (Bandung's
    is the simulator `sim`, holding secrets to import), a router pool, a
    gateway account, a subscriber with an active service and a posted
    invoice; a Bandung user per ISP group"""
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    RouterPool = pool.get('isp.router.pool')
    Configuration = pool.get('isp.billing.configuration')
    PaymentMethod = pool.get('account.invoice.payment.method')
    today = dt.date.today()
    data = {}
    for key, name, currency, code in [
            ('bdg', "Bandung", 'IDR', 'BDG'),
            ('nbo', "Nairobi", 'KES', 'NBO')]:
        company = create_branch(name, currency)
        with Transaction().set_context(company=company.id):
            plan = create_plan(company, "%s Home" % name, 300000, code)
            location = create_location(company, code, "%s Hill" % name)
            router = create_router(company, code, "%s Tower" % name)
            if key == 'bdg':
                router.host, router.port = sim.host, sim.port
                router.use_ssl = False
                router.api_username, router.api_password = 'admin', PASSWORD
                router.timeout = 5
                router.save()
            router_pool, = RouterPool.create([{
                        'company': company.id, 'name': "%s Pool" % name,
                        'routers': [('create', [{'router': router.id}])],
                        }])
            service, = create_services(company, [
                    ("%s Subscriber" % name, location, router, plan,
                        today, None, 'active')])
            invoice, = create_service_invoices(company, [
                    (service, today, 300000, today)])
            Configuration.write([Configuration(1)], {
                    'payment_method_cash': PaymentMethod.search([
                            ('company', '=', company.id)], limit=1)[0].id,
                    })
            gateway = create_gateway(
                'midtrans' if currency == 'IDR' else 'mpesa',
                'http://127.0.0.1:9', company=company,
                name="%s Gateway" % name)
            batch = create_batch(create_profile(company, code='V' + code),
                3, name="%s Vouchers" % name)
            reseller = create_reseller(company, "%s Kiosk" % name)
        data[key] = {
            'company': company, 'plan': plan, 'location': location,
            'router': router, 'router_pool': router_pool,
            'subscriber': service.subscriber, 'service': service,
            'invoice': invoice, 'gateway': gateway,
            'batch': batch, 'reseller': reseller,
            }
    users = {}
    for group in GROUPS:
        login = 'bdg_' + group[len('group_isp_'):]
        users[group], = User.create([{
                    'name': login, 'login': login,
                    'groups': [('add', [ModelData.get_id('isp_base', group)])],
                    'companies': [('add', [data['bdg']['company'].id])],
                    'company': data['bdg']['company'].id,
                    }])
    data['users'] = users
    data['context'] = {
        'company': data['bdg']['company'].id, 'language': 'en',
        'company_filter': 'one'}
    # names of Nairobi's records: no refusal may show them
    nbo = data['nbo']
    data['secrets'] = [nbo['company'].rec_name, nbo['plan'].name,
        nbo['location'].name, nbo['router'].name, nbo['router_pool'].name,
        nbo['subscriber'].name, nbo['gateway'].name,
        nbo['service'].customer_id, nbo['service'].username,
        nbo['batch'].name, nbo['reseller'].party.name]
    # the setup's own tasks (router pushes, notices) are not counted
    Transaction().tasks.clear()
    return data


def isp_wizards():
    "The names of the wizards defined or extended by an ISP module"
    names = set()
    for name, cls in Pool().iterobject(type='wizard'):
        if any(getattr(c, '__module__', '').startswith('trytond.modules.isp_')
                for c in cls.__mro__):
            names.add(name)
    return names


def counts():
    "Rows of the main models (as root, inactive ones too)"
    pool = Pool()
    result = {}
    with Transaction().set_user(0), Transaction().set_context(
            active_test=False, _check_access=False):
        for name in COUNTED:
            result[name] = pool.get(name).search([], count=True)
    return result


# -- the attacks, one case per wizard ----------------------------------------
# Each returns (context, steps) attempts: run as a Bandung user, each must be
# refused and create nothing.

def register_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    base = {
        'company': bdg['company'].id, 'name': "Mallory",
        'location': bdg['location'].id, 'plan': bdg['plan'].id,
        'router': bdg['router'].id, 'router_pool': None,
        'subscriber': None,
        }
    attempts = []
    for field in ['company', 'location', 'plan', 'router', 'router_pool',
            'subscriber']:
        start = {**base, field: nbo[field].id}
        if field == 'router_pool':
            start['router'] = None
        attempts.append(({}, [('start', {}),
                    ('register', {'start': start})]))
    attempts.append(({}, [('register', {'start': {
                        **base, **{f: nbo[f].id for f in [
                                'company', 'location', 'plan', 'router']},
                        }})]))
    # the branch from the context the client sends
    attempts.append(({'company': nbo['company'].id}, [
                ('register', {'start': {**base, 'company': None}})]))
    return attempts


def router_import_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    own = {'active_model': 'isp.router', 'active_id': bdg['router'].id,
        'active_ids': [bdg['router'].id]}
    start = {'router': bdg['router'].id, 'company': bdg['company'].id,
        'location': bdg['location'].id, 'default_plan': bdg['plan'].id}
    attempts = []
    for field, value in [('location', nbo['location'].id),
            ('default_plan', nbo['plan'].id),
            ('company', nbo['company'].id),
            ('router', nbo['router'].id)]:
        for state in ['preview', 'import_']:
            attempts.append((own, [
                        (state, {'start': {**start, field: value}})]))
    # a plan of another branch chosen for a profile without a plan
    for state in ['preview', 'import_']:
        attempts.append((own, [(state, {'start': start, 'preview': {
                            'mappings': [{'profile': 'default',
                                    'plan': nbo['plan'].id}]}})]))
    attempts.append(({'active_model': 'isp.router',
                    'active_id': nbo['router'].id,
                    'active_ids': [nbo['router'].id]},
            [('start', {}), ('import_', {'start': {
                            **start, 'router': nbo['router'].id,
                            'company': nbo['company'].id,
                            'location': nbo['location'].id,
                            'default_plan': nbo['plan'].id}})]))
    return attempts


def _on_invoice(invoice):
    return {'active_model': 'account.invoice', 'active_id': invoice.id,
        'active_ids': [invoice.id]}


def pay_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    start = {'amount': Decimal(1000), 'method': 'cash',
        'date': dt.date.today(), 'reference': None}
    return [
        (_on_invoice(nbo['invoice']), [('start', {}), ('pay', {
                        'start': {**start, 'invoice': nbo['invoice'].id,
                            'company': nbo['company'].id}})]),
        (_on_invoice(bdg['invoice']), [('pay', {
                        'start': {**start, 'invoice': nbo['invoice'].id,
                            'company': nbo['company'].id,
                            'currency': nbo['company'].currency.id}})]),
        ]


def payment_open_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    return [
        (_on_invoice(nbo['invoice']), [('start', {}), ('open', {
                        'start': {'invoice': nbo['invoice'].id,
                            'gateway': nbo['gateway'].id,
                            'gateways': [nbo['gateway'].id]}})]),
        (_on_invoice(bdg['invoice']), [('open', {
                        'start': {'invoice': bdg['invoice'].id,
                            'gateway': nbo['gateway'].id,
                            'gateways': [nbo['gateway'].id]}})]),
        ]


def report_export_attempts(data):
    from trytond.modules.isp_billing.reporting import REPORTS
    from trytond.modules.isp_finance.reporting import (
        REPORTS as FINANCE_REPORTS,
    )
    pool = Pool()
    nbo = data['nbo']
    today = dt.date.today()
    attempts = []
    report_context = {'company': nbo['company'].id,
        'from_date': today.replace(day=1), 'to_date': today, 'date': today}
    for model in REPORTS + FINANCE_REPORTS:
        with Transaction().set_user(0), Transaction().set_context(
                report_context):
            ids = [r.id for r in pool.get(model).search([])]
        if ids:
            attempts.append((
                    {**report_context, 'active_model': model,
                        'active_id': ids[0], 'active_ids': ids},
                    [('start', {}), ('export', {'start': {
                                    'format': 'csv'}})]))
    return attempts


def portal_invite_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    start = {'start': {'channel': None, 'subscribers': 1}}
    return [
        ({'active_model': 'party.party', 'active_id': nbo['subscriber'].id,
                'active_ids': [nbo['subscriber'].id]},
            [('start', {}), ('invite', start)]),
        ({'active_model': 'party.party', 'active_id': bdg['subscriber'].id,
                'active_ids': [bdg['subscriber'].id, nbo['subscriber'].id]},
            [('invite', start)]),
        ]


def _on_batches(*batches):
    return {'active_model': 'isp.voucher.batch', 'active_id': batches[0].id,
        'active_ids': [b.id for b in batches]}


def print_cards_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    return [
        (_on_batches(nbo['batch']), [('decide', {})]),
        (_on_batches(bdg['batch'], nbo['batch']), [('decide', {})]),
        ]


def sell_reseller_attempts(data):
    bdg, nbo = data['bdg'], data['nbo']
    return [
        (_on_batches(nbo['batch']), [('start', {}), ('sell', {'start': {
                            'reseller': bdg['reseller'].id,
                            'quantity': 1}})]),
        (_on_batches(bdg['batch']), [('sell', {'start': {
                            'reseller': nbo['reseller'].id,
                            'quantity': 1}})]),
        (_on_batches(nbo['batch']), [('sell', {'start': {
                            'reseller': nbo['reseller'].id,
                            'quantity': 1}})]),
        ]


def map_open_attempts(data):
    "The map shows the user's branches; started on Nairobi's records: refused"
    bdg, nbo = data['bdg'], data['nbo']
    return [
        ({'active_model': 'isp.router', 'active_id': nbo['router'].id,
                'active_ids': [nbo['router'].id]}, [('open_', {})]),
        ({'active_model': 'isp.router', 'active_id': bdg['router'].id,
                'active_ids': [bdg['router'].id, nbo['router'].id]},
            [('open_', {})]),
        ({'active_model': 'isp.service', 'active_id': nbo['service'].id,
                'active_ids': [nbo['service'].id]}, [('open_', {})]),
        ]


def onboarding_attempts(data):
    """Head-office administrators only: a branch user can neither onboard a
    new branch nor run the wizard again on a branch, its own included"""
    bdg, nbo = data['bdg'], data['nbo']
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    today = dt.date.today()
    start = {
        'name': "Rogue Branch", 'country': None,
        'currency': bdg['company'].currency.id, 'timezone': 'Asia/Jakarta',
        'tax_name': "PPN 11%", 'tax_rate': Decimal('0.11'),
        'chart': ModelData.get_id('account', 'account_template_root_en'),
        'fiscal_start': today.replace(month=1, day=1),
        'fiscal_end': today.replace(month=12, day=31), 'prefix': 'RGE',
        'ladder': "10 isolate", 'locations': "RGE Rogue",
        'plans_from': nbo['company'].id, 'web_domain': 'rogue.example.net',
        'admin_login': 'rogue_admin', 'admin_name': "Rogue",
        'admin_email': 'rogue@example.net',
        'gateway': 'central', 'whatsapp': 'central',
        }
    attempts = [({}, [('start', {}), ('set_up', {'start': start})]),
        ({}, [('set_up', {'start': start})])]
    for company in [nbo['company'], bdg['company']]:
        attempts.append(({'active_model': 'company.company',
                    'active_id': company.id, 'active_ids': [company.id]},
                [('start', {}), ('set_up', {'start': {
                                **start, 'company': company.id}})]))
    return attempts


def expense_enter_attempts(data):
    """Book an expense of Bandung with Nairobi's category, payment method or
    supplier, or in Nairobi"""
    pool = Pool()
    Account = pool.get('account.account')
    Category = pool.get('isp.expense.category')
    PaymentMethod = pool.get('account.invoice.payment.method')
    bdg, nbo = data['bdg'], data['nbo']
    categories = {}
    with Transaction().set_user(0):
        for branch in [bdg, nbo]:
            company = branch['company']
            account, = Account.search([
                    ('company', '=', company.id),
                    ('type.expense', '=', True), ('closed', '!=', True),
                    ], limit=1)
            categories[company], = Category.create([{
                        'company': company.id, 'name': "Bandwidth",
                        'account': account.id}])
        method, = PaymentMethod.search(
            [('company', '=', nbo['company'].id)], limit=1)
    start = {'company': bdg['company'].id,
        'currency': bdg['company'].currency.id,
        'date': dt.date.today(), 'amount': Decimal(10),
        'description': "Bandwidth", 'supplier': bdg['subscriber'].id,
        'category': categories[bdg['company']].id}
    return [({}, [('start', {}), ('book', {'start': {**start, **changes}})])
        for changes in [
            {'category': categories[nbo['company']].id},
            {'payment_method': method.id},
            {'supplier': nbo['subscriber'].id},
            {'company': nbo['company'].id,
                'category': categories[nbo['company']].id},
            ]]


def asset_update_attempts(data):
    """Update Asset (account_asset, isp_finance's BranchWizardMixin) started
    on Nairobi's asset, or on Bandung's with Nairobi's accounts for the
    revaluation move"""
    pool = Pool()
    Asset = pool.get('account.asset')
    Account = pool.get('account.account')
    Journal = pool.get('account.journal')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')], limit=1)
    journal, = Journal.search([('type', '=', 'asset')], limit=1)
    today = dt.date.today()
    assets = {}
    for key in ['bdg', 'nbo']:
        company = data[key]['company']
        with Transaction().set_context(company=company.id):
            template, = Template.create([{
                        'name': "Tower %s" % key, 'type': 'assets',
                        'depreciable': True, 'isp_company': company.id,
                        'default_uom': unit.id,
                        'products': [('create', [{}])]}])
            assets[key], = Asset.create([{
                        'company': company.id,
                        'product': template.products[0].id,
                        'value': Decimal(1200), 'purchase_date': today,
                        'start_date': today,
                        'end_date': today + dt.timedelta(days=365),
                        'account_journal': journal.id}])
    theirs, = Account.search([
            ('company', '=', data['nbo']['company'].id),
            ('type', '!=', None), ('closed', '!=', True)], limit=1)
    start = {'asset': assets['bdg'].id, 'value': Decimal(1300),
        'residual_value': Decimal(0),
        'end_date': assets['bdg'].end_date}
    show_move = {'amount': Decimal(100), 'date': today,
        'latest_move_date': today, 'next_depreciation_date': today,
        'depreciation_account': theirs.id, 'counterpart_account': theirs.id}

    def on(asset):
        return {'active_model': 'account.asset', 'active_id': asset.id,
            'active_ids': [asset.id]}
    return [
        (on(assets['nbo']), [('start', {})]),
        (on(assets['bdg']), [('create_move', {
                        'start': start, 'show_move': show_move})]),
        ]


def _budgets(data):
    """({branch key: budget}, {branch key: fiscal year}) of Bandung and
    Nairobi, each budget with a line, made once"""
    pool = Pool()
    Budget = pool.get('account.budget')
    FiscalYear = pool.get('account.fiscalyear')
    budgets, years = {}, {}
    with Transaction().set_user(0):
        for key in ['bdg', 'nbo']:
            company = data[key]['company']
            years[key] = FiscalYear.find(company)
            budgets[key] = (Budget.search([('company', '=', company.id)])
                or Budget.create([{'name': "Plan %s" % key,
                            'company': company.id,
                            'fiscalyear': years[key].id,
                            'lines': [('create', [{'name': "Total"}])]}]))[0]
    return budgets, years


def _on(record):
    return {'active_model': record.__name__, 'active_id': record.id,
        'active_ids': [record.id]}


def budget_copy_attempts(data):
    """Copy Budget (account_budget, isp_finance's BranchWizardMixin) started
    on Nairobi's budget, or copying Bandung's into Nairobi's fiscal year"""
    budgets, years = _budgets(data)
    return [
        (_on(budgets['nbo']), [('start', {})]),
        (_on(budgets['bdg']), [('copy', {'start': {
                            'name': "Copy", 'factor': Decimal(1),
                            'company': data['bdg']['company'].id,
                            'fiscalyear': years['nbo'].id}})]),
        ]


def budget_periods_attempts(data):
    "Create Periods started on a line of Nairobi's budget"
    budgets, _ = _budgets(data)
    line, = budgets['nbo'].lines
    return [
        (_on(line), [('start', {})]),
        (_on(line), [('create_periods', {'start': {'method': 'evenly'}})]),
        ]

CASES = {
    'isp.branch.onboarding': onboarding_attempts,
    'isp.network.map.open': map_open_attempts,
    'isp.voucher.batch.print_cards': print_cards_attempts,
    'isp.voucher.sell_reseller': sell_reseller_attempts,
    'isp.portal.invite': portal_invite_attempts,
    'isp.service.register': register_attempts,
    'isp.router.import': router_import_attempts,
    'isp.invoice.pay': pay_attempts,
    'isp.payment.open': payment_open_attempts,
    'isp.report.export': report_export_attempts,
    'isp.expense.enter': expense_enter_attempts,
    'account.asset.update': asset_update_attempts,
    'account.budget.copy': budget_copy_attempts,
    'account.budget.line.create_periods': budget_periods_attempts,
    }


def start_sim(port=0):
    "The simulated router of Bandung, holding secrets to import"
    sim = SimRouter(password=PASSWORD, port=port)
    sim.start()
    sim.seed(secrets=3, prefix='OLD')
    return sim


class TenancyWizardsTestCase(ClassSetupMixin, unittest.TestCase):
    "Wizards, on_change calls and preferences stay in the user's branches"
    setup_modules = ['isp_multicompany']

    @classmethod
    def setup_class_data(cls):
        # made once for the class; each test has a new simulator on the
        # port Bandung's router was given
        sim = start_sim()
        try:
            data = setup_branches(sim)
        finally:
            sim.stop()
        cls.sim_port = sim.port
        return data

    def setUp(self):
        super().setUp()
        self.sim = start_sim(self.sim_port)
        self.addCleanup(self.sim.stop)

    def assertRefused(self, data, error, func, *args, **kwargs):
        "`func(*args, **kwargs)` raises `error`, names none of Nairobi's"
        with self.assertRaises(error) as cm:
            func(*args, **kwargs)
        message = ' '.join(str(a) for a in cm.exception.args)
        for secret in data['secrets']:
            self.assertNotIn(secret, message)
        return cm.exception

    @with_transaction()
    def test_wizards_refuse_other_branch(self):
        "Every ISP wizard refuses another branch's records, creates nothing"
        data = self.class_data()
        wizards = isp_wizards()
        self.assertEqual(wizards - CASES.keys(), set(),
            msg="ISP wizards without a branch isolation case")
        self.assertEqual(CASES.keys() - wizards, set())
        pool = Pool()
        for name in sorted(wizards):
            Wizard = pool.get(name, type='wizard')
            self.assertTrue(issubclass(Wizard, BranchWizardMixin), msg=name)
            attempts = CASES[name](data)
            self.assertTrue(attempts, msg=name)
            for user in data['users'].values():
                for context, steps in attempts:
                    before = counts()
                    tasks = list(Transaction().tasks)
                    with self.subTest(wizard=name, user=user.login,
                            context=context, steps=steps):
                        self.assertRefused(data, UserError, run_wizard,
                            user, name, steps, {**data['context'], **context})
                        self.assertEqual(counts(), before)
                        self.assertEqual(Transaction().tasks, tasks)

    @with_transaction()
    def test_wizards_own_branch(self):
        "The same wizards with the user's own records go through"
        pool = Pool()
        Service = pool.get('isp.service')
        Invoice = pool.get('account.invoice')
        data = self.class_data()
        bdg = data['bdg']
        users = data['users']
        run_wizard(users['group_isp_customer_service'],
            'isp.service.register', [('start', {}), ('register', {
                        'start': {
                            'company': bdg['company'].id, 'name': "Ujang",
                            'location': bdg['location'].id,
                            'plan': bdg['plan'].id,
                            'router': bdg['router'].id}})],
            data['context'])
        service, = Service.search([('subscriber.name', '=', "Ujang")])
        self.assertEqual(service.company, bdg['company'])
        self.assertEqual(service.state, 'active')

        before = len(Service.search([]))
        run_wizard(users['group_isp_branch_admin'], 'isp.router.import', [
                ('start', {}), ('preview', {'start': {
                            'router': bdg['router'].id,
                            'company': bdg['company'].id,
                            'location': bdg['location'].id,
                            'default_plan': bdg['plan'].id}}),
                ('import_', {})],
            {**data['context'], 'active_model': 'isp.router',
                'active_id': bdg['router'].id,
                'active_ids': [bdg['router'].id]})
        self.assertEqual(len(Service.search([])), before + 3)

        invoice = bdg['invoice']
        run_wizard(users['group_isp_finance'], 'isp.invoice.pay', [
                ('start', {}), ('pay', {'start': {
                            'invoice': invoice.id,
                            'company': bdg['company'].id,
                            'currency': invoice.currency.id,
                            'amount': invoice.amount_to_pay,
                            'method': 'cash', 'date': dt.date.today()}})],
            {**data['context'], **_on_invoice(invoice)})
        invoice = Invoice(invoice.id)
        self.assertEqual(invoice.amount_to_pay, 0)
        self.assertTrue(invoice.reconciled)

        result = run_wizard(users['group_isp_technician'],
            'isp.network.map.open', [('open_', {})],
            {**data['context'], 'active_model': 'isp.router',
                'active_id': bdg['router'].id,
                'active_ids': [bdg['router'].id]})
        (action, _), = result['actions']
        self.assertIn('/isp_network/map/open?token=', action['url'])

    @with_transaction()
    def test_register_business_method(self):
        "Service.register refuses another branch's records to its callers"
        pool = Pool()
        Service = pool.get('isp.service')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        user = data['users']['group_isp_customer_service']
        before = counts()
        with Transaction().set_user(user.id), Transaction().set_context(
                company=bdg['company'].id):
            for field in ['location', 'plan', 'router', 'subscriber']:
                values = {'company': bdg['company'].id, 'name': "M",
                    'location': bdg['location'].id,
                    'plan': bdg['plan'].id, 'router': bdg['router'].id,
                    field: nbo[field].id}
                with self.subTest(field=field):
                    self.assertRefused(data, BranchAccessError,
                        Service.register, values)
        self.assertEqual(counts(), before)

    @with_transaction()
    def test_on_change_other_branch(self):
        "on_change calls refuse another branch's ids and reveal nothing"
        pool = Pool()
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        Service = pool.get('isp.service')
        Start = pool.get('isp.service.register.start')
        ImportStart = pool.get('isp.router.import.start')
        Line = pool.get('account.invoice.line')
        context = data['context']
        for user in data['users'].values():
            with self.subTest(user=user.login):
                attempts = [
                    (Service, 'on_change', {
                            'company': bdg['company'].id,
                            'router': nbo['router'].id, 'username': None},
                        ['router']),
                    (Service, 'on_change', {
                            'company': bdg['company'].id,
                            'subscriber': nbo['subscriber'].id,
                            'location': None}, ['subscriber']),
                    # an existing service of Nairobi, values read from it
                    (Service, 'on_change', {
                            'id': nbo['service'].id,
                            'router': bdg['router'].id}, ['router']),
                    (Start, 'on_change', {
                            'company': bdg['company'].id,
                            'subscriber': nbo['subscriber'].id,
                            'location': None}, ['subscriber']),
                    (ImportStart, 'on_change_with', {
                            'company': bdg['company'].id,
                            'location': nbo['location'].id}, []),
                    (Line, 'on_change', {
                            'company': bdg['company'].id,
                            'product': nbo['plan'].products[0].id},
                        ['product']),
                    ]
                for Model, method, values, names in attempts:
                    self.assertRefused(data, BranchAccessError, rpc,
                        user, Model, method, values, names, context=context)
        # own records: the next user name of the router is proposed
        user = data['users']['group_isp_customer_service']
        result = rpc(user, Service, 'on_change', {
                'company': bdg['company'].id, 'router': bdg['router'].id,
                'username': None}, ['router'], context=context)
        self.assertTrue(result['username'].startswith(bdg['router'].code))
        result = rpc(user, Start, 'on_change', {
                'company': bdg['company'].id,
                'subscriber': bdg['subscriber'].id,
                'location': None}, ['subscriber'], context=context)
        self.assertEqual(result['location'], bdg['location'].id)

    @with_transaction()
    def test_create_write_other_branch_values(self):
        """A client's create or write of a service with another branch's
        router, plan, location or subscriber is refused naming none of them
        (the domain validation named them)"""
        pool = Pool()
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        Service = pool.get('isp.service')
        context = data['context']
        user = data['users']['group_isp_branch_admin']
        own = {
            'company': bdg['company'].id,
            'subscriber': bdg['subscriber'].id,
            'location': bdg['location'].id,
            'plan': bdg['plan'].id,
            'router': bdg['router'].id,
            'username': 'leak-probe',
            }
        for name in ['subscriber', 'location', 'plan', 'router']:
            with self.subTest(field=name):
                values = dict(own, **{name: nbo[name].id})
                self.assertRefused(data, BranchAccessError, rpc, user,
                    Service, 'create', [values], context=context)
                self.assertRefused(data, BranchAccessError, rpc, user,
                    Service, 'write', [bdg['service'].id],
                    {name: nbo[name].id}, context=context)
        self.assertEqual(
            Service.search([('username', '=', 'leak-probe')]), [])

    @with_transaction()
    def test_on_change_models(self):
        "The ISP models and forms with on_change methods have the guard"
        pool = Pool()
        for name in ['isp.service', 'isp.service.register.start',
                'isp.router.import.start', 'account.invoice.line',
                'isp.helpdesk.ticket', 'isp.investment']:
            self.assertTrue(
                issubclass(pool.get(name), BranchOnChangeMixin), msg=name)

    @with_transaction()
    def test_preferences_company(self):
        "A user cannot choose a company (or employee) they do not belong to"
        pool = Pool()
        User = pool.get('res.user')
        Employee = pool.get('company.employee')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        employee, = Employee.create([{
                    'company': nbo['company'].id,
                    'party': nbo['subscriber'].id}])
        for user in data['users'].values():
            with self.subTest(user=user.login):
                for values in [{'company': nbo['company'].id},
                        {'employee': employee.id},
                        {'company': nbo['company'].id, 'language': 'en'}]:
                    self.assertRefused(data, PreferencesCompanyError, rpc,
                        user, User, 'set_preferences', values,
                        context=data['context'])
                    self.assertEqual(User(user.id).company, bdg['company'])
                rpc(user, User, 'set_preferences',
                    {'company': bdg['company'].id},
                    context=data['context'])
                self.assertEqual(User(user.id).company, bdg['company'])
