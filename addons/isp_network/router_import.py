# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchWizardMixin,
    check_companies,
)

from . import routeros
from .converge import (
    SECRET,
    SECRET_FIELDS,
    TRUE,
    describe_changes,
    diff,
    open_client,
)
from .exceptions import ImportError_, RouterUnreachable


def read_secrets(router):
    "The PPPoE secrets of `router` as rows of strings"
    settings = router.get_settings()
    try:
        with open_client(settings) as client:
            rows = client.print(SECRET, ('.id', 'name') + SECRET_FIELDS)
    except routeros.RouterOSError as exception:
        raise RouterUnreachable(gettext(
                'isp_network.msg_router_unreachable',
                router=router.rec_name, error=str(exception))) from exception
    return [r for r in rows if r.get('service') in {'pppoe', 'any', None}]


class Router(metaclass=PoolMeta):
    __name__ = 'isp.router'

    def import_plan(self, profile, default_plan):
        "The plan whose PPP profile is `profile`, else `default_plan`"
        return self._import_plans().get(profile, default_plan)

    def _import_plans(self):
        pool = Pool()
        Template = pool.get('product.template')
        plans = Template.search([
                ('isp_plan', '=', True),
                ['OR',
                    ('isp_company', '=', None),
                    ('isp_company', '=', self.company.id),
                    ],
                ], order=[('id', 'ASC')])
        result = {}
        for plan in plans:
            result.setdefault(plan.ppp_profile_name, plan)
        return result

    def check_import_values(self, location, default_plan):
        """Refuse a location or plan of another branch than the router's
        (or than the user's)"""
        check_companies([self, location, default_plan])
        if ((location and location.company != self.company)
                or (default_plan and default_plan.isp_company
                    and default_plan.isp_company != self.company)):
            raise ImportError_(gettext('isp_network.msg_import_other_branch'))

    def import_values(self, row, plans, mapping, default_plan):
        """The service values importing `row` gives, keeping what the router
        has: its comment, `service`, disabled flag, and its profile unless a
        plan has it or staff mapped it to a plan (`mapping`: profile ->
        plan)"""
        profile = row.get('profile') or 'default'
        plan = plans.get(profile) or mapping.get(profile) or default_plan
        disabled = row.get('disabled') in TRUE
        isolation = (self.isolation_method == 'profile'
            and profile == self.isolation_profile)
        kept = profile not in plans and profile not in mapping
        return {
            'plan': plan,
            'router': self,
            'username': row['name'],
            'password': str(row.get('password') or ''),
            'remote_address': row.get('remote-address') or None,
            'caller_id': (row.get('caller-id') or '').upper() or None,
            'state': 'isolated' if disabled or isolation else 'active',
            'ppp_service': ('pppoe' if row.get('service') == 'pppoe'
                else 'any'),
            'router_comment': (row.get('comment') or '').strip() or None,
            'kept_profile': profile if kept else None,
            'kept_disabled': disabled,
            }

    def import_refusal(self, values):
        "Why the secret of `values` cannot be imported, or None"
        pool = Pool()
        Service = pool.get('isp.service')
        if not values['password']:
            return gettext('isp_network.msg_import_no_password')
        return Service.router_values_problem(
            values['username'], values['remote_address'],
            values['caller_id'])

    def import_changes(self, row, values):
        """What the first push after importing `row` with `values` changes
        on the router (the same spec the push builds)"""
        pool = Pool()
        Service = pool.get('isp.service')
        service = Service(**values, customer_id=gettext(
                'isp_network.msg_import_new_customer_id'))
        spec = service.get_router_spec(self)
        changes = diff(row, spec['secret'], SECRET_FIELDS)
        text = describe_changes(changes)
        if {'profile', 'disabled'} & changes.keys():
            text += gettext('isp_network.msg_import_change_kicks')
        return text

    def import_preview(self, rows, default_plan, mapping=None):
        """Lines describing what importing `rows` would do: new, existing
        or refused (with the reason), the plan each gets and every change
        the first push would make on the router"""
        pool = Pool()
        Service = pool.get('isp.service')
        mapping = mapping or {}
        existing = set()
        for sub in _chunks([r['name'] for r in rows], 1000):
            existing.update(s.username for s in Service.search([
                        ('company', '=', self.company.id),
                        ('username', 'in', sub),
                        ]))
        plans = self._import_plans()
        lines = []
        for row in rows:
            values = self.import_values(row, plans, mapping, default_plan)
            is_existing = row['name'] in existing
            refused = None if is_existing else self.import_refusal(values)
            changes = (self.import_changes(row, values)
                if not is_existing and not refused else None)
            lines.append({
                    'username': row['name'],
                    'profile': row.get('profile'),
                    'plan': values['plan'].id if values['plan'] else None,
                    'remote_address': row.get('remote-address'),
                    'comment': row.get('comment'),
                    'disabled': values['kept_disabled'],
                    'existing': is_existing,
                    'refused': refused,
                    'changes': changes or None,
                    })
        return lines

    def import_profiles(self, rows):
        """The profiles of `rows` that no plan has, with their number of
        secrets, for staff to map to plans"""
        plans = self._import_plans()
        counts = {}
        for row in rows:
            profile = row.get('profile') or 'default'
            if profile not in plans:
                counts[profile] = counts.get(profile, 0) + 1
        return counts

    def import_rows(self, rows, location, default_plan, mapping=None):
        """Create a subscriber and a service for every secret whose user
        name has no service yet and that the product accepts; return the
        new services and the refused secrets as (name, reason).  Importing
        twice creates nothing the second time.  What the router has is
        kept (see `import_values`), so the first push changes only what
        staff chose in `mapping` (profile -> plan).

        The router, the location and the plans must be of the user's
        branches, the location and the plans of the router's."""
        pool = Pool()
        Service = pool.get('isp.service')
        Party = pool.get('party.party')
        Date = pool.get('ir.date')
        if not default_plan:
            raise ImportError_(gettext('isp_network.msg_import_no_plan'))
        mapping = {k: v for k, v in (mapping or {}).items() if v}
        for plan in set(mapping.values()):
            self.check_import_values(location, plan)
        self.check_import_values(location, default_plan)
        self.__class__.lock([self])
        company = self.company.id
        existing = set()
        for sub in _chunks([r['name'] for r in rows], 1000):
            existing.update(s.username for s in Service.search([
                        ('company', '=', company),
                        ('username', 'in', sub),
                        ]))
        plans = self._import_plans()
        todo, refused = [], []
        for row in rows:
            if row['name'] in existing:
                continue
            values = self.import_values(row, plans, mapping, default_plan)
            reason = self.import_refusal(values)
            if reason:
                refused.append((row['name'], reason))
            else:
                todo.append((row, values))
        if not todo:
            return [], refused
        with Transaction().set_context(company=company):
            today = Date.today()
        parties = Party.create([{
                    'name': _party_name(row),
                    'is_subscriber': True,
                    'isp_company': company,
                    'location': location.id,
                    } for row, _ in todo])
        taken = []
        vlist = []
        for (_row, values), party in zip(todo, parties, strict=True):
            customer_id = Service.new_customer_id(
                location, self, date=today, taken=taken)
            taken.append(customer_id)
            vlist.append({
                    **values,
                    'plan': values['plan'].id,
                    'router': self.id,
                    'company': company,
                    'subscriber': party.id,
                    'location': location.id,
                    'customer_id': customer_id,
                    'activation_date': today,
                    'router_state': 'pending',
                    })
        services = Service.create(vlist)
        Service.push_to_routers(services)
        return services, refused


def _chunks(values, size):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _party_name(row):
    comment = (row.get('comment') or '').strip()
    return comment or row['name']


class RouterImportStart(BranchOnChangeMixin, ModelView):
    "Import Router Secrets"
    __name__ = 'isp.router.import.start'

    router = fields.Many2One('isp.router', "Router", readonly=True)
    company = fields.Many2One('company.company', "Company", readonly=True)
    location = fields.Many2One(
        'isp.location', "Location", required=True,
        domain=[('company', '=', Eval('company', -1))],
        help="The location of the imported subscribers.")
    default_plan = fields.Many2One(
        'product.template', "Default Plan",
        required=True,
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('isp_plan', '=', True),
            ['OR',
                ('isp_company', '=', None),
                ('isp_company', '=', Eval('company', -1)),
                ],
            ],
        help="The plan of the secrets whose profile matches no plan.")


class RouterImportPreview(ModelView):
    "Import Router Secrets"
    __name__ = 'isp.router.import.preview'

    company = fields.Many2One('company.company', "Company", readonly=True)
    mappings = fields.One2Many(
        'isp.router.import.mapping', None, "Profiles Without a Plan",
        help="Choose a plan for a profile to move its secrets to the plan's "
        "profile at the first push; leave it empty to keep the secrets on "
        "their profile (billed on the default plan) until staff change "
        "their plan.  Update the preview to see the changes.")
    lines = fields.One2Many(
        'isp.router.import.line', None, "Secrets", readonly=True)
    new_count = fields.Integer("New", readonly=True)
    existing_count = fields.Integer("Already Imported", readonly=True)
    refused_count = fields.Integer("Refused", readonly=True)
    changed_count = fields.Integer("Changed by the First Push",
        readonly=True,
        help="The secrets the first push after the import would change "
        "on the router (see the Changes column).")


class RouterImportMapping(ModelView):
    "Import Router Secrets Profile"
    __name__ = 'isp.router.import.mapping'

    company = fields.Many2One('company.company', "Company", readonly=True)
    profile = fields.Char("Profile", readonly=True)
    secrets = fields.Integer("Secrets", readonly=True)
    plan = fields.Many2One(
        'product.template', "Plan",
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('isp_plan', '=', True),
            ['OR',
                ('isp_company', '=', None),
                ('isp_company', '=', Eval('company', -1)),
                ],
            ])


class RouterImportLine(ModelView):
    "Import Router Secret"
    __name__ = 'isp.router.import.line'

    username = fields.Char("User Name", readonly=True)
    profile = fields.Char("Profile", readonly=True)
    plan = fields.Many2One('product.template', "Plan", readonly=True)
    remote_address = fields.Char("Static Address", readonly=True)
    comment = fields.Char("Comment", readonly=True)
    disabled = fields.Boolean("Disabled", readonly=True)
    existing = fields.Boolean("Already Imported", readonly=True)
    refused = fields.Char("Refused", readonly=True,
        help="Why the secret is not imported.")
    changes = fields.Char("Changes", readonly=True,
        help="What the first push after the import changes on the router.")


class RouterImport(BranchWizardMixin, Wizard):
    "Import Router Secrets"
    __name__ = 'isp.router.import'

    start = StateView('isp.router.import.start',
        'isp_network.router_import_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Preview", 'preview', 'tryton-forward', default=True),
            ])
    preview = StateView('isp.router.import.preview',
        'isp_network.router_import_preview_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Update Preview", 'preview', 'tryton-refresh'),
            Button("Import", 'import_', 'tryton-ok', default=True),
            ])
    import_ = StateTransition()

    def default_start(self, fields):
        return {
            'router': self.record.id,
            'company': self.record.company.id,
            }

    def _mapping(self):
        "The plans staff chose for the profiles without one"
        mappings = getattr(self.preview, 'mappings', None) or []
        return {m.profile: m.plan for m in mappings if m.plan}

    def default_preview(self, fields):
        router = self.record
        router.check_import_values(
            self.start.location, self.start.default_plan)
        mapping = self._mapping()
        for plan in set(mapping.values()):
            router.check_import_values(self.start.location, plan)
        rows = read_secrets(router)
        lines = router.import_preview(
            rows, self.start.default_plan, mapping)
        return {
            'company': router.company.id,
            'mappings': [{
                    'company': router.company.id,
                    'profile': profile,
                    'secrets': count,
                    'plan': mapping[profile].id if profile in mapping
                    else None,
                    } for profile, count in sorted(
                    router.import_profiles(rows).items())],
            'lines': lines,
            'new_count': sum(1 for line in lines
                if not line['existing'] and not line['refused']),
            'existing_count': sum(1 for line in lines if line['existing']),
            'refused_count': sum(1 for line in lines if line['refused']),
            'changed_count': sum(1 for line in lines if line['changes']),
            }

    def transition_import_(self):
        router = self.record
        rows = read_secrets(router)
        router.import_rows(rows, self.start.location,
            self.start.default_plan, self._mapping())
        return 'end'
