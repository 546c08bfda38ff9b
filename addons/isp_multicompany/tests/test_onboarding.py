# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The onboarding wizard: a branch set up by a head-office administrator
registers, bills, collects and isolates with nothing else to configure;
run again it fixes a field and duplicates nothing; bad input creates
nothing; branch users are refused.

The wizard creates a whole company with its chart: once for the class."""
import datetime as dt
import unittest
from decimal import Decimal
from unittest.mock import patch

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    get_currency,
    set_due_date,
)
from trytond.modules.isp_billing.tests.reporting_tools import (
    create_plan,
    create_router,
)
from trytond.modules.isp_multicompany.exceptions import OnboardingError

from .test_tenancy_wizards import run_wizard

#: What onboarding creates, counted (as root, inactive ones too) to prove a
#: refused or repeated run creates nothing
COUNTED = ['company.company', 'party.party', 'account.account',
    'account.fiscalyear', 'account.period', 'ir.sequence.strict',
    'account.tax', 'account.invoice.payment.method',
    'account.dunning.procedure', 'account.dunning.level', 'isp.location',
    'product.template', 'product.product', 'res.user',
    'isp.payment.gateway', 'isp.message.provider']


def counts():
    pool = Pool()
    with Transaction().set_user(0), Transaction().set_context(
            active_test=False, _check_access=False):
        return {name: pool.get(name).search([], count=True)
            for name in COUNTED}


def nairobi_form(head, today):
    "The onboarding form of the Nairobi branch"
    pool = Pool()
    Country = pool.get('country.country')
    ModelData = pool.get('ir.model.data')
    kenya, = Country.create([{'code': 'KE', 'name': "Kenya"}])
    return {
        'name': "Nairobi", 'country': kenya.id,
        'currency': get_currency('KES').id, 'timezone': 'Africa/Nairobi',
        'tax_name': "VAT 16%", 'tax_rate': Decimal('0.16'),
        'chart': ModelData.get_id('account', 'account_template_root_en'),
        'fiscal_start': today.replace(month=1, day=1),
        'fiscal_end': today.replace(month=12, day=31),
        'prefix': 'NBO',
        'ladder': "-3 reminder\n5 overdue\n10 isolate",
        'locations': "WSTL Westlands\nKLM Kilimani",
        'plans_from': head.id,
        'web_domain': 'Nairobi.Example.NET',
        'web_aliases': 'wifi.nairobi.example.net',
        'admin_login': 'nbo_admin', 'admin_name': "Nairobi Admin",
        'admin_email': 'admin@nairobi.example.net',
        'gateway': 'central', 'gateway_provider': None,
        'gateway_credentials': None,
        'whatsapp': 'own', 'whatsapp_type': 'whatsapp_token',
        'whatsapp_account': None, 'whatsapp_token': 'fonnte-token',
        }


def onboard(user, form, company=None):
    "Run the wizard as `user` with `form` (on `company`: a re-run)"
    context = {'company': user.company.id if user.company else None,
        'language': 'en'}
    if company:
        context.update(active_model='company.company',
            active_id=company.id, active_ids=[company.id])
    return run_wizard(user, 'isp.branch.onboarding', [
            ('start', {}), ('set_up', {'start': form})], context)


def setup_head_office():
    """The head office (a plan to copy, a portal domain), the rates of IDR
    and KES, a head-office and a branch administrator, Nairobi's form"""
    pool = Pool()
    User = pool.get('res.user')
    Company = pool.get('company.company')
    ModelData = pool.get('ir.model.data')
    Rate = pool.get('currency.currency.rate')
    head = create_branch("Head Office", 'IDR')
    Company.write([head], {'isp_web_domain': 'www.example.net'})
    with Transaction().set_context(company=head.id):
        create_plan(head, "Home 20", 300000, 'home20')
    Rate.create([
            {'currency': get_currency('IDR').id, 'rate': Decimal(1),
                'date': dt.date(2000, 1, 1)},
            {'currency': get_currency('KES').id,
                'rate': Decimal('0.008'), 'date': dt.date(2000, 1, 1)}])
    users = {}
    for login, group in [('head', 'group_isp_head_admin'),
            ('hq_branch_admin', 'group_isp_branch_admin')]:
        users[login], = User.create([{
                    'name': login, 'login': login,
                    'groups': [('add', [
                                ModelData.get_id('isp_base', group)])],
                    'companies': [('add', [head.id])],
                    'company': head.id, 'company_filter': 'all',
                    }])
    return {'head': head, 'users': users,
        'form': nairobi_form(head, dt.date.today())}


def register(user, company, name, router):
    """Register `name` on `router` with the branch's first location and
    plan, as `user` (the register wizard): the service"""
    pool = Pool()
    Location = pool.get('isp.location')
    Template = pool.get('product.template')
    Service = pool.get('isp.service')
    location = Location.search([('company', '=', company.id)], limit=1)[0]
    plan = Template.search([('isp_company', '=', company.id),
            ('isp_plan', '=', True)], limit=1)[0]
    run_wizard(user, 'isp.service.register', [
            ('start', {}), ('register', {'start': {
                        'company': company.id, 'name': name,
                        'location': location.id, 'plan': plan.id,
                        'router': router.id}})],
        {'company': company.id, 'language': 'en'})
    service, = Service.search([('subscriber.name', '=', name)])
    return service


class OnboardingTestCase(ClassSetupMixin, unittest.TestCase):
    "A branch onboarded by the wizard, once for the class"
    setup_modules = ['isp_multicompany']

    @classmethod
    def setup_class_data(cls):
        Company = Pool().get('company.company')
        data = setup_head_office()
        # the invitation is sent at commit (no SMTP server in the tests)
        with patch('trytond.res.user.send_message_transactional') as send:
            onboard(data['users']['head'], data['form'])
            Transaction().commit()
        (message,), _ = send.call_args
        cls.invitation = (message['To'], message['Subject'])
        data['company'], = Company.search([('party.name', '=', "Nairobi")])
        return data

    def assertMessage(self, exception, message_id):
        "`exception` is the message `message_id` (its fixed part)"
        text = gettext(message_id)
        self.assertIn(text.split('%(')[0][:40], str(exception.message))

    @with_transaction()
    def test_onboarded_branch(self):
        "The wizard sets up the company, accounting, ladder, services, admin"
        pool = Pool()
        FiscalYear = pool.get('account.fiscalyear')
        Configuration = pool.get('isp.billing.configuration')
        Location = pool.get('isp.location')
        Template = pool.get('product.template')
        StatementJournal = pool.get('account.statement.journal')
        User = pool.get('res.user')
        Gateway = pool.get('isp.payment.gateway')
        Provider = pool.get('isp.message.provider')
        Company = pool.get('company.company')
        ModelData = pool.get('ir.model.data')
        data = self.class_data()
        company = data['company']
        self.assertEqual(company.currency.code, 'KES')
        self.assertEqual(company.timezone, 'Africa/Nairobi')
        self.assertEqual(company.isp_country.code, 'KE')
        self.assertEqual(company.isp_web_hosts(),
            ['nairobi.example.net', 'wifi.nairobi.example.net'])
        for host in company.isp_web_hosts():
            self.assertEqual(Company.isp_web_tenant(host), company)
        self.assertEqual(
            Company.isp_web_tenant('www.example.net'), data['head'])
        # the head-office administrators see the new branch (the one who
        # ran the wizard and the others)
        self.assertIn(company, User(data['users']['head'].id).companies)
        admin, = User.search([('login', '=', 'admin')])
        self.assertIn(company, admin.companies)
        self.assertNotIn(company,
            User(data['users']['hq_branch_admin'].id).companies)

        fiscalyear, = FiscalYear.search([('company', '=', company.id)])
        self.assertEqual(len(fiscalyear.periods), 12)
        sequences, = fiscalyear.invoice_sequences
        year = fiscalyear.start_date.year
        self.assertEqual(sequences.out_invoice_sequence.prefix,
            'NBO/%s/' % year)
        self.assertEqual(sequences.out_credit_note_sequence.prefix,
            'NBO-CN/%s/' % year)
        # expenses never take a customer invoice's number
        self.assertEqual(sequences.in_invoice_sequence.prefix,
            'IN-NBO/%s/' % year)
        self.assertEqual(sequences.in_credit_note_sequence,
            sequences.in_invoice_sequence)

        with Transaction().set_context(company=company.id):
            values = Configuration.get_values(company.id)
        self.assertEqual(values['tax'].rate, Decimal('0.16'))
        self.assertEqual(values['tax'].company, company)
        self.assertEqual(values['revenue_account'].company, company)
        for method in ['cash', 'bank_transfer', 'qris', 'gateway']:
            self.assertEqual(
                values['payment_method_%s' % method].company, company)
        self.assertEqual([(lv.overdue.days, lv.isp_action)
                for lv in values['dunning_procedure'].levels],
            [(-3, 'reminder'), (5, 'overdue'), (10, 'isolate')])
        self.assertEqual(
            values['pay_url'].split('/{database}')[0],
            'https://nairobi.example.net')
        self.assertEqual(
            [(loc.code, loc.name) for loc in Location.search(
                    [('company', '=', company.id)], order=[('code', 'ASC')])],
            [('KLM', "Kilimani"), ('WSTL', "Westlands")])
        with Transaction().set_context(company=company.id):
            plan, = Template.search([('isp_company', '=', company.id),
                    ('isp_plan', '=', True)])
            self.assertEqual(plan.name, "Home 20")
            self.assertEqual(plan.list_price, Decimal(2400))
            self.assertEqual(plan.ppp_profile, 'home20')
            # the finance setup (isp_finance): asset and other income
            # products on the branch's accounts, statement journals
            self.assertEqual({t.name for t in Template.search([
                            ('isp_company', '=', company.id),
                            ('isp_plan', '=', False)])},
                {"Router", "ONT", "Cable", "Tower", "Installation",
                    "Equipment Sale"})
            router, = Template.search([('isp_company', '=', company.id),
                    ('name', '=', "Router")])
            self.assertEqual(router.account_asset_used.company, company)
            journals = StatementJournal.search(
                [('company', '=', company.id)])
            self.assertEqual(len(journals), 2)
            self.assertEqual({j.account.company for j in journals},
                {company})

        admin, = User.search([('login', '=', 'nbo_admin')])
        self.assertEqual(admin.companies, (company,))
        self.assertEqual([g.id for g in admin.groups], [ModelData.get_id(
                    'isp_base', 'group_isp_branch_admin')])
        # invited: no password, a reset one to set it by the link sent
        self.assertFalse(admin.password_hash)
        self.assertTrue(admin.password_reset)
        self.assertEqual(self.invitation[0], 'admin@nairobi.example.net')
        # central gateway (none of its own), its own WhatsApp provider
        self.assertEqual(Gateway.search([('company', '=', company.id)]), [])
        provider, = Provider.search([('company', '=', company.id)])
        self.assertEqual(
            (provider.type, provider.token),
            ('whatsapp_token', 'fonnte-token'))

    @with_transaction()
    def test_register_bill_pay_isolate(self):
        """The onboarded branch registers, bills, collects and isolates,
        as its own administrator, with nothing else configured (a router
        is the network's, set up apart); the head office's dashboard
        gives its figures in IDR"""
        pool = Pool()
        Service = pool.get('isp.service')
        Invoice = pool.get('account.invoice')
        User = pool.get('res.user')
        Dunning = pool.get('account.dunning')
        data = self.class_data()
        company = data['company']
        admin, = User.search([('login', '=', 'nbo_admin')])
        router = create_router(company, 'WS', "Westlands POP")
        context = {'company': company.id, 'language': 'en'}
        services = []
        for name in ["Wanjiru Kamau", "Otieno Ouma"]:
            service = register(admin, company, name, router)
            self.assertEqual(service.state, 'active')
            self.assertEqual(service.location.code, 'KLM')
            services.append(service)
        invoices = Invoice.search([('company', '=', company.id)],
            order=[('number', 'ASC')])
        year = dt.date.today().year
        self.assertEqual([i.number for i in invoices],
            ['NBO/%s/00001' % year, 'NBO/%s/00002' % year])
        self.assertEqual({i.state for i in invoices}, {'posted'})
        self.assertTrue(all(i.tax_amount for i in invoices))
        paid, unpaid = sorted(invoices,
            key=lambda i: i.party != services[0].subscriber)

        run_wizard(admin, 'isp.invoice.pay', [('start', {}), ('pay', {
                        'start': {
                            'invoice': paid.id, 'company': company.id,
                            'currency': paid.currency.id,
                            'amount': paid.amount_to_pay,
                            'method': 'cash', 'date': dt.date.today()}})],
            {**context, 'active_model': 'account.invoice',
                'active_id': paid.id, 'active_ids': [paid.id]})
        self.assertTrue(Invoice(paid.id).reconciled)

        # 11 days overdue: the branch's ladder isolates the non-payer
        set_due_date([unpaid], dt.date.today() - dt.timedelta(days=11))
        with Transaction().set_context(company=company.id):
            Dunning.isp_run()
        self.assertEqual(Service(services[0].id).state, 'active')
        self.assertEqual(Service(services[1].id).state, 'isolated')
        self.check_consolidated_dashboard(data, admin, Decimal(4800))

    def check_consolidated_dashboard(self, data, admin, mrr):
        """The dashboard gives each branch's amounts in the currency of the
        user's company too (the head office's IDR for its administrator),
        with the rate used (run by test_register_bill_pay_isolate: its
        services are the branch's MRR)"""
        pool = Pool()
        Dashboard = pool.get('isp.report.dashboard')
        company, head = data['company'], data['head']
        names = ['company', 'mrr', 'overdue', 'consolidation_currency',
            'consolidation_rate', 'mrr_consolidated', 'overdue_consolidated']
        for user, currency, rate in [
                (data['users']['head'], 'IDR', Decimal(125)),
                (admin, 'KES', Decimal(1))]:
            with self.subTest(user=user.login), \
                    Transaction().set_user(user.id), \
                    Transaction().set_context(
                        company=user.company.id, _check_access=True):
                rows = {r['company']: r for r in Dashboard.read(
                        [r.id for r in Dashboard.search([])], names)}
                row = rows[company.id]
                self.assertEqual(row['mrr'], mrr)
                self.assertEqual(pool.get('currency.currency')(
                        row['consolidation_currency']).code, currency)
                self.assertEqual(row['consolidation_rate'], rate)
                self.assertEqual(row['mrr_consolidated'], mrr * rate)
                if user.login == 'head':
                    self.assertEqual(rows[head.id]['consolidation_rate'], 1)
                else:
                    self.assertEqual(set(rows), {company.id})

    @with_transaction()
    def test_rerun_fixes_without_duplicates(self):
        "Run again on the branch: a field fixed, nothing duplicated"
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        Location = pool.get('isp.location')
        Provider = pool.get('isp.message.provider')
        Wizard = pool.get('isp.branch.onboarding', type='wizard')
        data = self.class_data()
        company = data['company']
        head = data['users']['head']
        # the form is filled from the branch
        values = Wizard.branch_values(company)
        form = data['form']
        for name in ['name', 'currency', 'timezone', 'tax_name', 'tax_rate',
                'chart', 'web_aliases', 'country', 'whatsapp']:
            self.assertEqual(values[name], form[name], msg=name)
        self.assertEqual(sorted(values['locations'].splitlines()),
            sorted(form['locations'].splitlines()))
        self.assertEqual(values['ladder'], form['ladder'])
        self.assertEqual(values['web_domain'], form['web_domain'].lower())
        before = counts()
        fixed = {**form, 'tax_rate': Decimal('0.15'),
            'locations': "WSTL Westlands West\nKLM Kilimani",
            'whatsapp': 'central'}
        onboard(head, fixed, company)
        onboard(head, fixed, company)
        # a re-run by name finds the branch too
        onboard(head, fixed)
        after = counts()
        self.assertEqual(after, before)
        with Transaction().set_context(company=company.id):
            self.assertEqual(Configuration.get_value(company.id, 'tax').rate,
                Decimal('0.15'))
        location, = Location.search([
                ('company', '=', company.id), ('code', '=', 'WSTL')])
        self.assertEqual(location.name, "Westlands West")
        # back to the central WhatsApp provider: its own one deactivated,
        # and the branch's form says so
        self.assertEqual(Provider.search([('company', '=', company.id)]), [])
        self.assertEqual(pool.get('company.company')(
                company.id).isp_whatsapp_source, 'central')

    @with_transaction()
    def test_own_gateway_then_central(self):
        """The branch's own gateway account: created with its credentials,
        updated by a re-run, deactivated when back to the central ones"""
        pool = Pool()
        Gateway = pool.get('isp.payment.gateway')
        data = self.class_data()
        company = data['company']
        head = data['users']['head']
        own = {**data['form'], 'gateway': 'own', 'gateway_provider': 'mpesa',
            'gateway_credentials': "consumer_key: ck\nconsumer_secret: cs\n"
            "shortcode: 174379\npasskey: pk"}
        Company = pool.get('company.company')

        def sources():
            "What the branch's form shows"
            branch = Company(company.id)
            return branch.isp_gateway_source, branch.isp_whatsapp_source
        self.assertEqual(sources(), ('central', 'own'))
        onboard(head, own, company)
        gateway, = Gateway.search([('company', '=', company.id)])
        self.assertEqual((gateway.provider, gateway.consumer_key,
                gateway.shortcode), ('mpesa', 'ck', '174379'))
        self.assertEqual(sources(), ('own', 'own'))
        self.assertEqual(Gateway.for_company(company, 'mpesa'), [gateway])
        onboard(head, {**own, 'gateway_credentials': "passkey: pk2"}, company)
        gateway, = Gateway.search([('company', '=', company.id)])
        self.assertEqual((gateway.passkey, gateway.consumer_key),
            ('pk2', 'ck'))
        onboard(head, data['form'], company)
        self.assertEqual(Gateway.search([('company', '=', company.id)]), [])
        self.assertEqual(sources(), ('central', 'own'))

    @with_transaction()
    def test_bad_input_creates_nothing(self):
        "Each bad input is refused with its message, nothing is created"
        pool = Pool()
        data = self.class_data()
        company = data['company']
        head = data['users']['head']
        form = data['form']
        new = {**form, 'name': "Mombasa", 'web_domain': 'mombasa.example.net',
            'web_aliases': None, 'admin_login': None, 'plans_from': None}
        AccountTemplate = pool.get('account.account.template')
        other_chart, = AccountTemplate.create([{'name': "Other Chart"}])
        year_start = form['fiscal_start']
        cases = [
            ('msg_onboarding_host_taken', new, {
                    'web_domain': 'www.example.net'}),
            ('msg_onboarding_host_taken', new, {
                    'web_aliases': 'WIFI.nairobi.example.net'}),
            ('msg_onboarding_host_taken', new, {
                    'web_aliases': 'mombasa.example.net'}),
            ('msg_onboarding_host_invalid', new, {
                    'web_domain': 'bad_host!.example.net'}),
            ('msg_onboarding_location_invalid', new, {
                    'locations': "wstl1 Westlands"}),
            ('msg_onboarding_location_invalid', new, {
                    'locations': "MSA Mombasa\nMSA Again"}),
            ('msg_onboarding_ladder_invalid', new, {
                    'ladder': "10 disconnect"}),
            ('msg_onboarding_admin_taken', new, {
                    'admin_login': 'head', 'admin_name': "X",
                    'admin_email': 'x@example.net'}),
            ('msg_onboarding_credentials_invalid', new, {
                    'gateway': 'own', 'gateway_provider': 'mpesa',
                    'gateway_credentials': "server_key: x"}),
            ('msg_onboarding_fiscal_year_dates', new, {
                    'fiscal_end': year_start}),
            # the existing branch: its chart and currency stay
            ('msg_onboarding_chart_currency', form, {
                    'currency': get_currency('IDR').id}),
            ('msg_onboarding_chart_currency', form, {'chart': other_chart.id}),
            ('msg_onboarding_fiscal_year_overlap', form, {
                    'fiscal_start': year_start.replace(month=7),
                    'fiscal_end': year_start.replace(
                        year=year_start.year + 1, month=6, day=30)}),
            ]
        before = counts()
        for message, base, values in cases:
            with self.subTest(message=message, values=values):
                with self.assertRaises(OnboardingError) as cm:
                    onboard(head, {**base, **values},
                        company if base is form else None)
                self.assertMessage(cm.exception,
                    'isp_multicompany.%s' % message)
                self.assertEqual(counts(), before)

    @with_transaction()
    def test_branch_users_refused(self):
        "A branch administrator cannot onboard (nor fix) a branch"
        data = self.class_data()
        user = data['users']['hq_branch_admin']
        before = counts()
        for company in [None, data['company'], data['head']]:
            with self.subTest(company=company):
                with self.assertRaises(UserError) as cm:
                    onboard(user, {**data['form'], 'name': "Rogue",
                            'web_domain': 'rogue.example.net',
                            'web_aliases': None, 'admin_login': None},
                        company)
                self.assertNotIn("Nairobi", str(cm.exception))
                self.assertEqual(counts(), before)
