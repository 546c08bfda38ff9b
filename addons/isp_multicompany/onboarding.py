# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The onboarding of a branch: one wizard (head-office administrators only)
makes a company ready to register, bill, collect and isolate.

Everything is checked before anything is written (domains, chart and
currency, fiscal year, locations, ladder, users, credentials): bad input is
an OnboardingError naming the field, and nothing is created.  Run again on
the branch (from its company record, or with the same name), the wizard
brings each value up to date and creates only what is missing.  See
docs/tenants.md."""
import re
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.modules.company.company import TIMEZONES
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.isp_base.company import HOST_NAME, normalize_host
from trytond.modules.isp_base.notification import PROVIDER_TYPES
from trytond.modules.isp_base.tenancy import BranchWizardMixin
from trytond.modules.isp_base.validation import LOCATION_CODE_RE
from trytond.modules.isp_billing import branch_setup
from trytond.modules.isp_billing.configuration import DEFAULT_LADDER
from trytond.modules.isp_billing.dunning import ACTIONS
from trytond.modules.isp_billing.gateway import CREDENTIALS, PROVIDERS

from .exceptions import OnboardingError

SERVICE_CHOICES = [
    ('central', "Central (the head office's)"),
    ('own', "The branch's own"),
    ]
WHATSAPP_TYPES = [(k, v) for k, v in PROVIDER_TYPES
    if k.startswith('whatsapp_')]
#: The fields of a plan copied from the template branch
PLAN_FIELDS = ['name', 'type', 'isp_plan', 'download_rate', 'upload_rate',
    'burst_download_rate', 'burst_upload_rate', 'burst_threshold_download',
    'burst_threshold_upload', 'burst_time', 'quota',
    'throttled_download_rate', 'throttled_upload_rate', 'ppp_profile']
LADDER_ACTIONS = {a for a, _ in ACTIONS if a}
_LINE = re.compile(r'^\s*(\S+)\s+(.*\S)\s*$')


def ladder_text(ladder=DEFAULT_LADDER):
    "The ladder as the wizard shows it: 'days action' a line"
    return '\n'.join('%d %s' % (days, action) for days, action in ladder)


def _error(message, **values):
    return OnboardingError(gettext(
            'isp_multicompany.%s' % message, **values))


class OnboardingStart(ModelView):
    "Branch Onboarding"
    __name__ = 'isp.branch.onboarding.start'

    company = fields.Many2One('company.company', "Branch", readonly=True,
        help="The branch being fixed (empty: a new branch).")
    name = fields.Char("Name", required=True, strip=True)
    country = fields.Many2One('country.country', "Country", required=True)
    currency = fields.Many2One(
        'currency.currency', "Currency", required=True)
    timezone = fields.Selection(TIMEZONES, "Timezone", required=True,
        translate=False)
    tax_name = fields.Char("Tax", required=True, strip=True,
        help="The sales tax of the plans, e.g. PPN 11% or VAT 16%.")
    tax_rate = fields.Numeric("Tax Rate", digits=(16, 4), required=True,
        domain=[('tax_rate', '>=', 0), ('tax_rate', '<', 1)],
        help="0.11 = 11 %.")
    chart = fields.Many2One('account.account.template', "Chart Template",
        required=True, domain=[('parent', '=', None)],
        help="The template the branch's chart of accounts is created from.")
    fiscal_start = fields.Date("Fiscal Year Start", required=True)
    fiscal_end = fields.Date("Fiscal Year End", required=True)
    prefix = fields.Char("Number Prefix", required=True, strip=True,
        help="Invoices are numbered PREFIX/YEAR/00001, credit notes "
        "PREFIX-CN/YEAR/00001.")
    ladder = fields.Text("Reminder Ladder", required=True,
        help="One step a line: days from the due date (negative: before) "
        "and the action (reminder, overdue, isolate), e.g. '10 isolate'.")
    locations = fields.Text("Locations",
        help="One location a line: its code (2-5 capital letters) and "
        "name, e.g. 'WSTL Westlands'.")
    plans_from = fields.Many2One('company.company', "Copy Plans From",
        help="The branch whose plans the new branch starts with (prices "
        "converted to its currency); empty: no plans.")
    web_domain = fields.Char("Portal Domain", strip=True)
    web_aliases = fields.Text("Other Portal Domains",
        help="One host name a line.")
    admin_login = fields.Char("Administrator Login", strip=True,
        help="The branch's first administrator: invited by e-mail to set "
        "the password (empty: none).")
    admin_name = fields.Char("Administrator Name", strip=True,
        states={'required': Eval('admin_login', '') != ''})
    admin_email = fields.Char("Administrator E-mail", strip=True,
        states={'required': Eval('admin_login', '') != ''})
    gateway = fields.Selection(SERVICE_CHOICES, "Payment Gateway",
        required=True)
    gateway_provider = fields.Selection([(None, '')] + PROVIDERS,
        "Gateway Provider",
        states={'invisible': Eval('gateway') != 'own',
            'required': Eval('gateway') == 'own'})
    gateway_credentials = fields.Text("Gateway Credentials",
        states={'invisible': Eval('gateway') != 'own',
            'required': Eval('gateway') == 'own'},
        help="One 'name: value' a line, e.g. 'server_key: SB-Mid-...'.")
    whatsapp = fields.Selection(SERVICE_CHOICES, "WhatsApp Provider",
        required=True)
    whatsapp_type = fields.Selection([(None, '')] + WHATSAPP_TYPES,
        "WhatsApp Type",
        states={'invisible': Eval('whatsapp') != 'own',
            'required': Eval('whatsapp') == 'own'})
    whatsapp_account = fields.Char("WhatsApp Account", strip=True,
        states={'invisible': Eval('whatsapp') != 'own'},
        help="Meta: the phone number ID.")
    whatsapp_token = fields.Char("WhatsApp Token", strip=True,
        states={'invisible': Eval('whatsapp') != 'own',
            'required': Eval('whatsapp') == 'own'})


class Onboarding(BranchWizardMixin, Wizard):
    "Branch Onboarding"
    __name__ = 'isp.branch.onboarding'
    start = StateView('isp.branch.onboarding.start',
        'isp_multicompany.onboarding_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Set Up", 'set_up', 'tryton-ok', default=True),
            ])
    set_up = StateTransition()

    def default_start(self, fields):
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        today = pool.get('ir.date').today()
        values = {
            'chart': ModelData.get_id(*branch_setup.DEFAULT_CHART),
            'fiscal_start': today.replace(month=1, day=1),
            'fiscal_end': today.replace(month=12, day=31),
            'ladder': ladder_text(),
            'gateway': 'central', 'whatsapp': 'central',
            }
        if self.model and self.model.__name__ == 'company.company' and (
                self.record):
            values.update(self.branch_values(self.record))
        return values

    @classmethod
    def branch_values(cls, company):
        "The wizard's values of an onboarded `company` (to fix a field)"
        pool = Pool()
        Location = pool.get('isp.location')
        Configuration = pool.get('isp.billing.configuration')
        Gateway = pool.get('isp.payment.gateway')
        Provider = pool.get('isp.message.provider')
        values = {
            'company': company.id, 'name': company.party.name,
            'country': company.isp_country.id if company.isp_country
            else None,
            'currency': company.currency.id, 'timezone': company.timezone,
            'web_domain': company.isp_web_domain,
            'web_aliases': company.isp_web_aliases,
            }
        template = branch_setup.chart_template(company)
        if template:
            values['chart'] = template.id
        with Transaction().set_context(company=company.id):
            config = Configuration.get_values(company.id)
            locations = Location.search([('company', '=', company.id)])
        if config['tax']:
            values['tax_name'] = config['tax'].name
            values['tax_rate'] = config['tax'].rate
        procedure = config['dunning_procedure']
        if procedure and procedure.name == cls.procedure_name(company):
            values['ladder'] = ladder_text([
                    (level.overdue.days, level.isp_action)
                    for level in procedure.levels if level.isp_action])
        values['locations'] = '\n'.join(
            '%s %s' % (loc.code, loc.name) for loc in locations)
        with without_check_access():
            if Gateway.search([('company', '=', company.id)], limit=1):
                values['gateway'] = 'own'
            if Provider.search([('company', '=', company.id),
                        ('type', 'like', 'whatsapp_%')], limit=1):
                values['whatsapp'] = 'own'
        return values

    @staticmethod
    def procedure_name(company):
        return "Reminders and isolation (%s)" % company.rec_name

    @classmethod
    def check_head_office(cls):
        "Only the head office's administrators (and root) onboard branches"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user_id = Transaction().user
        if not user_id:
            return
        group = ModelData.get_id('isp_base', 'group_isp_head_admin')
        if group not in {g.id for g in User(user_id).groups}:
            raise _error('msg_onboarding_head_office_only')

    def _execute(self, state_name):
        self.check_head_office()
        return super()._execute(state_name)

    def transition_set_up(self):
        plan = self.check()
        with without_check_access():
            self.apply(plan)
        return 'end'

    # -- the checks: nothing is written before they all pass --

    def check(self):
        "Check the form; return the parsed values of its text fields"
        start = self.start
        company = start.company or self.find_company(start.name)
        return {
            'company': company,
            'hosts': self.check_hosts(company),
            'locations': self.parse_locations(start.locations),
            'ladder': self.parse_ladder(start.ladder),
            'credentials': self.check_services(),
            'plans': self.check_plans(company),
            'admin': self.check_admin(company),
            **self.check_accounting(company),
            }

    @classmethod
    def find_company(cls, name):
        "The branch of party name `name` (a re-run with the same name)"
        Company = Pool().get('company.company')
        with without_check_access():
            companies = Company.search([('party.name', '=', name)], limit=1)
        return companies[0] if companies else None

    def check_hosts(self, company):
        """The normalized portal domain and aliases: valid host names, one
        a branch"""
        Company = Pool().get('company.company')
        start = self.start
        hosts = [normalize_host(h) for h in [start.web_domain or '']
            + (start.web_aliases or '').splitlines()]
        hosts = [h for h in hosts if h]
        with without_check_access():
            others = Company.search([
                    ('id', '!=', company.id if company else -1)])
        taken = {h for c in others for h in c.isp_web_hosts()}
        seen = set()
        for host in hosts:
            if not HOST_NAME.fullmatch(host):
                raise _error('msg_onboarding_host_invalid', host=host)
            if host in taken or host in seen:
                raise _error('msg_onboarding_host_taken', host=host)
            seen.add(host)
        return hosts

    @staticmethod
    def parse_locations(text):
        "[(code, name)] of the locations' lines"
        result = {}
        for line in (text or '').splitlines():
            if not line.strip():
                continue
            match = _LINE.match(line)
            code = match.group(1).upper() if match else line.strip()
            if not match or not LOCATION_CODE_RE.match(code) or (
                    code in result):
                raise _error('msg_onboarding_location_invalid',
                    line=line.strip())
            result[code] = match.group(2)
        return list(result.items())

    @staticmethod
    def parse_ladder(text):
        "[(days, action)] of the ladder's lines, by days"
        ladder = []
        for line in (text or '').splitlines():
            if not line.strip():
                continue
            match = _LINE.match(line)
            try:
                days = int(match.group(1)) if match else None
            except ValueError:
                days = None
            action = match.group(2).strip().lower() if match else None
            if days is None or action not in LADDER_ACTIONS or abs(
                    days) > 366:
                raise _error('msg_onboarding_ladder_invalid',
                    line=line.strip())
            ladder.append((days, action))
        if not ladder:
            raise _error('msg_onboarding_ladder_invalid', line='')
        return sorted(ladder)

    def check_services(self):
        "The credentials of the branch's own gateway account"
        start = self.start
        if start.gateway != 'own':
            return {}
        allowed = CREDENTIALS.get(start.gateway_provider) or []
        credentials = {}
        for line in (start.gateway_credentials or '').splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition(':')
            name = name.strip()
            if not sep or name not in allowed or not value.strip():
                raise _error('msg_onboarding_credentials_invalid',
                    name=name, names=', '.join(allowed))
            credentials[name] = value.strip()
        if not credentials:
            raise _error('msg_onboarding_credentials_invalid',
                name='', names=', '.join(allowed))
        return credentials

    def check_plans(self, company):
        """The values of the plans to copy from the template branch (the
        ones the branch has not by name), prices in the branch's currency"""
        pool = Pool()
        Template = pool.get('product.template')
        Currency = pool.get('currency.currency')
        start = self.start
        source = start.plans_from
        if not source or source == company:
            return []
        with without_check_access(), Transaction().set_context(
                company=source.id):
            plans = Template.search([
                    ('isp_plan', '=', True), ('isp_company', '=', source.id)])
            existing = set()
            if company:
                existing = {p.name for p in Template.search([
                            ('isp_plan', '=', True),
                            ('isp_company', '=', company.id)])}
            result = []
            for plan in plans:
                if plan.name in existing:
                    continue
                values = {f: getattr(plan, f) for f in PLAN_FIELDS}
                values['default_uom'] = plan.default_uom.id
                for name in ['list_price', 'setup_fee']:
                    amount = getattr(plan, name)
                    if amount is not None:
                        amount = Currency.compute(
                            source.currency, amount, start.currency)
                    values[name] = amount
                result.append(values)
        return result

    def check_admin(self, company):
        "The branch administrator's user when it exists (one of the branch)"
        User = Pool().get('res.user')
        login = self.start.admin_login
        if not login:
            return None
        with without_check_access():
            users = User.search([('login', '=', login)], limit=1)
        if users and not (company and [c.id for c in users[0].companies]
                == [company.id]):
            raise _error('msg_onboarding_admin_taken', login=login)
        return users[0] if users else None

    def check_accounting(self, company):
        "The chart and currency of an existing branch, the fiscal year"
        start = self.start
        if start.fiscal_end <= start.fiscal_start or (
                start.fiscal_end - start.fiscal_start).days > 731:
            raise _error('msg_onboarding_fiscal_year_dates')
        if company is None:
            return {}
        with without_check_access():
            template = branch_setup.chart_template(company)
            if template and (template != start.chart
                    or company.currency != start.currency):
                raise _error('msg_onboarding_chart_currency',
                    currency=company.currency.code,
                    chart=template.name)
            for fiscalyear in branch_setup.overlapping_fiscal_years(
                    company, start.fiscal_start, start.fiscal_end):
                if (fiscalyear.start_date, fiscalyear.end_date) != (
                        start.fiscal_start, start.fiscal_end):
                    raise _error('msg_onboarding_fiscal_year_overlap',
                        fiscalyear=fiscalyear.name)
        return {}

    # -- the writes --

    def apply(self, plan):
        "Create or bring up to date everything of the branch"
        company = self.apply_company(plan)
        self.start.company = company
        with Transaction().set_context(company=company.id):
            self.apply_accounting(company)
            self.apply_locations(company, plan['locations'])
            self.apply_plans(company, plan['plans'])
            self.apply_services(company, plan['credentials'])
            self.apply_admin(company, plan['admin'])
        return company

    def apply_company(self, plan):
        pool = Pool()
        Company = pool.get('company.company')
        Party = pool.get('party.party')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        start = self.start
        company = plan['company']
        hosts = plan['hosts']
        values = {
            'currency': start.currency.id, 'timezone': start.timezone,
            'isp_country': start.country.id,
            'isp_web_domain': hosts[0] if hosts else None,
            'isp_web_aliases': '\n'.join(hosts[1:]) or None,
            }
        if company is None:
            party, = Party.create([{
                        'name': start.name,
                        'addresses': [('create', [{
                                        'country': start.country.id}])],
                        }])
            company, = Company.create([{'party': party.id, **values}])
        else:
            if company.party.name != start.name:
                Party.write([company.party], {'name': start.name})
            changed = {k: v for k, v in values.items()
                if (getattr(company, k).id if k in {'currency', 'isp_country'}
                    and getattr(company, k) else getattr(company, k)) != v}
            if changed:
                Company.write([company], changed)
        # head-office administrators see every branch
        group = ModelData.get_id('isp_base', 'group_isp_head_admin')
        heads = User.search([
                ('groups', '=', group), ('companies', '!=', company.id)])
        if Transaction().user and Transaction().user not in {
                u.id for u in heads}:
            user = User(Transaction().user)
            if company not in user.companies:
                heads.append(user)
        if heads:
            User.write(heads, {'companies': [('add', [company.id])]})
        return company

    def apply_accounting(self, company):
        pool = Pool()
        Procedure = pool.get('account.dunning.procedure')
        start = self.start
        prefix = start.prefix.upper()
        year = start.fiscal_start.year
        branch_setup.create_chart(company, start.chart)
        tax = branch_setup.create_sales_tax(
            company, start.tax_name, Decimal(start.tax_rate))
        name = self.procedure_name(company)
        ladder = self.parse_ladder(start.ladder)
        procedures = Procedure.search([('name', '=', name)], limit=1)
        if not procedures:
            procedure, = Procedure.create([
                    Procedure.isp_ladder_values(name, ladder)])
        else:
            procedure, = procedures
            current = [(level.overdue.days, level.isp_action)
                for level in procedure.levels]
            if current != ladder:
                Procedure.write([procedure], {'levels': [
                            ('delete', [lv.id for lv in procedure.levels]),
                            ] + Procedure.isp_ladder_values(
                                name, ladder)['levels']})
        values = {'tax': tax.id, 'dunning_procedure': procedure.id}
        if company.isp_web_domain:
            values['pay_url'] = ('https://%s/{database}/isp_billing/pay/'
                '{token}' % company.isp_web_domain)
        branch_setup.setup_accounting(company,
            start.fiscal_start, start.fiscal_end, template=start.chart,
            name='%s %s' % (prefix, year),
            prefix='%s/%s/' % (prefix, year),
            credit_note_prefix='%s-CN/%s/' % (prefix, year), **values)
        # the finance setup (isp_finance): asset products, other income
        # products, bank and cash statement journals; found or created
        with Transaction().set_context(company=company.id):
            pool.get('account.asset').setup_asset_categories(company)
            pool.get('product.template').setup_other_income_products(company)
            pool.get('account.statement').setup_statement_journals(company)

    def apply_locations(self, company, locations):
        Location = Pool().get('isp.location')
        existing = {loc.code: loc for loc in Location.search([
                    ('company', '=', company.id)])}
        to_create = []
        for code, name in locations:
            location = existing.get(code)
            if location is None:
                to_create.append({
                        'company': company.id, 'code': code, 'name': name})
            elif location.name != name:
                Location.write([location], {'name': name})
        Location.create(to_create)

    def apply_plans(self, company, plans):
        Template = Pool().get('product.template')
        Template.create([{
                    **values, 'isp_company': company.id,
                    'products': [('create', [{}])],
                    } for values in plans])

    def apply_services(self, company, credentials):
        """The branch's own gateway account and WhatsApp provider, or none
        (deactivated): the central ones serve it"""
        pool = Pool()
        Gateway = pool.get('isp.payment.gateway')
        Provider = pool.get('isp.message.provider')
        start = self.start
        own_gateways = Gateway.search([('company', '=', company.id)])
        if start.gateway == 'own':
            values = {'provider': start.gateway_provider, **credentials}
            same = [g for g in own_gateways
                if g.provider == start.gateway_provider]
            if same:
                Gateway.write(same[:1], values)
            else:
                Gateway.create([{
                            'name': "%s %s" % (
                                start.name, start.gateway_provider.title()),
                            'company': company.id, **values}])
        elif own_gateways:
            Gateway.write(own_gateways, {'active': False})
        own_providers = Provider.search([
                ('company', '=', company.id), ('type', 'like', 'whatsapp_%')])
        if start.whatsapp == 'own':
            values = {'type': start.whatsapp_type,
                'account': start.whatsapp_account,
                'token': start.whatsapp_token}
            if own_providers:
                Provider.write(own_providers[:1], values)
            else:
                Provider.create([{
                            'name': "%s WhatsApp" % start.name,
                            'company': company.id, **values}])
        elif own_providers:
            Provider.write(own_providers, {'active': False})

    def apply_admin(self, company, user):
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        start = self.start
        if not start.admin_login:
            return
        values = {'name': start.admin_name, 'email': start.admin_email}
        if user is None:
            user, = User.create([{
                        'login': start.admin_login, **values,
                        'groups': [('add', [ModelData.get_id(
                                        'isp_base',
                                        'group_isp_branch_admin')])],
                        'companies': [('add', [company.id])],
                        'company': company.id,
                        }])
            # invited: the password is set by the reset link sent
            User.reset_password([user])
        elif (user.name, user.email) != (values['name'], values['email']):
            User.write([user], values)

