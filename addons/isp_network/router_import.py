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
from .converge import SECRET, SECRET_FIELDS, open_client
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

    def import_preview(self, rows, default_plan):
        """Lines describing what importing `rows` would do: new or
        existing, and the plan each gets"""
        pool = Pool()
        Service = pool.get('isp.service')
        existing = {s.username for s in Service.search([
                    ('company', '=', self.company.id),
                    ('username', 'in', [r['name'] for r in rows]),
                    ])}
        plans = self._import_plans()
        lines = []
        for row in rows:
            plan = plans.get(row.get('profile'), default_plan)
            lines.append({
                    'username': row['name'],
                    'profile': row.get('profile'),
                    'plan': plan.id if plan else None,
                    'remote_address': row.get('remote-address'),
                    'comment': row.get('comment'),
                    'disabled': row.get('disabled') == 'true',
                    'existing': row['name'] in existing,
                    })
        return lines

    def import_rows(self, rows, location, default_plan):
        """Create a subscriber and an active (or, when disabled on the
        router, isolated) service for every secret whose user name has no
        service yet; return the new services.  Importing twice creates
        nothing the second time.

        The router, the location and the plan must be of the user's
        branches, the location and the plan of the router's."""
        pool = Pool()
        Service = pool.get('isp.service')
        Party = pool.get('party.party')
        Date = pool.get('ir.date')
        if not default_plan:
            raise ImportError_(gettext('isp_network.msg_import_no_plan'))
        self.check_import_values(location, default_plan)
        self.__class__.lock([self])
        company = self.company.id
        existing = set()
        for sub in _chunks([r['name'] for r in rows], 1000):
            existing.update(s.username for s in Service.search([
                        ('company', '=', company),
                        ('username', 'in', sub),
                        ]))
        rows = [r for r in rows if r['name'] not in existing]
        if not rows:
            return []
        plans = self._import_plans()
        with Transaction().set_context(company=company):
            today = Date.today()
        parties = Party.create([{
                    'name': _party_name(row),
                    'is_subscriber': True,
                    'isp_company': company,
                    'location': location.id,
                    } for row in rows])
        taken = []
        vlist = []
        for row, party in zip(rows, parties, strict=True):
            customer_id = Service.new_customer_id(
                location, self, date=today, taken=taken)
            taken.append(customer_id)
            isolated = (row.get('disabled') == 'true'
                or (self.isolation_method == 'profile'
                    and row.get('profile') == self.isolation_profile))
            plan = plans.get(row.get('profile'), default_plan)
            vlist.append({
                    'company': company,
                    'subscriber': party.id,
                    'location': location.id,
                    'plan': plan.id,
                    'router': self.id,
                    'username': row['name'],
                    'password': str(row.get('password') or ''),
                    'remote_address': row.get('remote-address') or None,
                    'caller_id': row.get('caller-id') or None,
                    'customer_id': customer_id,
                    'state': 'isolated' if isolated else 'active',
                    'activation_date': today,
                    'router_state': 'pending',
                    })
        services = Service.create(vlist)
        Service.push_to_routers(services)
        return services


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

    lines = fields.One2Many(
        'isp.router.import.line', None, "Secrets", readonly=True)
    new_count = fields.Integer("New", readonly=True)
    existing_count = fields.Integer("Already Imported", readonly=True)


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
            Button("Import", 'import_', 'tryton-ok', default=True),
            ])
    import_ = StateTransition()

    def default_start(self, fields):
        return {
            'router': self.record.id,
            'company': self.record.company.id,
            }

    def default_preview(self, fields):
        router = self.record
        router.check_import_values(
            self.start.location, self.start.default_plan)
        rows = read_secrets(router)
        lines = router.import_preview(rows, self.start.default_plan)
        return {
            'lines': lines,
            'new_count': sum(1 for line in lines if not line['existing']),
            'existing_count': sum(1 for line in lines if line['existing']),
            }

    def transition_import_(self):
        router = self.record
        rows = read_secrets(router)
        router.import_rows(rows, self.start.location, self.start.default_plan)
        return 'end'
