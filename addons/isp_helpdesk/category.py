# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Ticket categories (a team of technicians each) and their SLA policies
per priority."""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    fields,
)
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base.tenancy import BranchValuesMixin

from .exceptions import SlaValidationError

PRIORITIES = [
    ('low', "Low"),
    ('normal', "Normal"),
    ('high', "High"),
    ('urgent', "Urgent"),
    ]


class Category(BranchValuesMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Helpdesk Ticket Category"
    __name__ = 'isp.helpdesk.category'
    _branch_fields = ('company',)

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='CASCADE',
        help="The branch of the category and its team.")
    name = fields.Char("Name", required=True, translate=True)
    team = fields.Many2Many(
        'isp.helpdesk.category-res.user', 'category', 'user', "Team",
        domain=[('companies', '=', Eval('company', -1))],
        help="The technicians new tickets of the category are assigned to "
        "(the least loaded first).")
    slas = fields.One2Many(
        'isp.helpdesk.sla', 'category', "SLA Targets")
    inbound = fields.Boolean(
        "Inbound Default",
        help="New tickets from WhatsApp go to this category (else the "
        "branch's first one).")
    installation = fields.Boolean(
        "Installation Default",
        help="The work orders of new registrations go to this category "
        "(else the branch's first one).")
    activate_on_completion = fields.Boolean(
        "Activate on Completion",
        help="The registrations whose work order goes to this category "
        "stay draft (nothing on the router, nothing billed) until the work "
        "order is resolved or closed, which activates the service and "
        "invoices its first period.")
    at_risk_share = fields.Numeric(
        "At Risk Share", digits=(3, 2), required=True,
        help="A ticket is at risk when less than this share of its "
        "target's business time is left: 0.25 = the last quarter.")
    reopen_days = fields.Integer(
        "Reopen Days", required=True,
        help="How many days after its resolution a ticket may be "
        "reopened.")
    closed_reply = fields.Selection([
            ('reopen', "Reopen the Ticket"),
            ('refuse', "Refuse"),
            ], "Reply to a Closed Ticket", required=True,
        help="What a customer's message on a resolved or closed ticket "
        "does within the reopen days.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.company, Index.Equality())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_installation(cls):
        return False

    @classmethod
    def default_inbound(cls):
        return False

    @classmethod
    def default_activate_on_completion(cls):
        return False

    @classmethod
    def installation_categories(cls, companies):
        """The category of each company's installation work orders: the one
        marked Installation Default, else its first; {company id: category}
        (none for a company without categories)"""
        result = {}
        with without_check_access():
            for company in companies:
                found = cls.search([('company', '=', company.id)],
                    order=[('installation', 'DESC'), ('id', 'ASC')],
                    limit=1)
                if found:
                    result[company.id] = found[0]
        return result

    @classmethod
    def default_at_risk_share(cls):
        return Decimal('0.25')

    @classmethod
    def default_reopen_days(cls):
        return 7

    @classmethod
    def default_closed_reply(cls):
        return 'reopen'

    @classmethod
    def validate_fields(cls, categories, field_names):
        super().validate_fields(categories, field_names)
        for category in categories:
            if (category.at_risk_share is not None
                    and not 0 <= category.at_risk_share < 1):
                raise SlaValidationError(gettext(
                        'isp_helpdesk.msg_category_at_risk_share',
                        category=category.rec_name))
            if category.reopen_days is not None and category.reopen_days < 0:
                raise SlaValidationError(gettext(
                        'isp_helpdesk.msg_category_reopen_days',
                        category=category.rec_name))

    def policy(self, priority):
        "The SLA of a priority, or None"
        for sla in self.slas:
            if sla.priority == priority:
                return sla


class CategoryUser(ModelSQL):
    "ISP Helpdesk Category Team"
    __name__ = 'isp.helpdesk.category-res.user'

    category = fields.Many2One(
        'isp.helpdesk.category', "Category", required=True,
        ondelete='CASCADE')
    user = fields.Many2One(
        'res.user', "User", required=True, ondelete='CASCADE')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('category_user_uniq', Unique(t, t.category, t.user),
                'isp_helpdesk.msg_category_user_unique'),
            ]
        cls._sql_indexes.add(Index(t, (t.user, Index.Equality())))


class Sla(ModelSQL, ModelView):
    "ISP Helpdesk SLA"
    __name__ = 'isp.helpdesk.sla'

    category = fields.Many2One(
        'isp.helpdesk.category', "Category", required=True,
        ondelete='CASCADE')
    priority = fields.Selection(PRIORITIES, "Priority", required=True,
        sort=False)
    first_response = fields.Integer(
        "First Response", required=True,
        help="Business minutes to the first public reply.")
    resolution = fields.Integer(
        "Resolution", required=True,
        help="Business minutes to the resolution.")
    calendar = fields.Many2One(
        'isp.helpdesk.calendar', "Calendar", ondelete='RESTRICT',
        domain=[('company', '=', Eval('_parent_category', {}).get(
                    'company', -1))],
        help="The hours the clock runs in (e.g. a 24/7 calendar for "
        "urgent tickets); empty: the branch's calendar.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('category_priority_uniq', Unique(t, t.category, t.priority),
                'isp_helpdesk.msg_sla_priority_unique'),
            ]

    @classmethod
    def preprocess_values(cls, mode, values):
        "Refuse targets that are not positive before anything is saved"
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            cls(**{k: v for k, v in values.items()
                    if k in {'category', 'priority', 'first_response',
                        'resolution'}}).check_targets()
        return values

    @classmethod
    def validate_fields(cls, slas, field_names):
        super().validate_fields(slas, field_names)
        for sla in slas:
            sla.check_targets()

    def check_targets(self):
        for name in ['first_response', 'resolution']:
            value = getattr(self, name, None)
            if value is not None and value <= 0:
                raise SlaValidationError(gettext(
                        'isp_helpdesk.msg_sla_target_positive',
                        field=self.__names__(name)['field'],
                        category=self.category.rec_name
                        if getattr(self, 'category', None) else '',
                        priority=dict(PRIORITIES).get(
                            getattr(self, 'priority', None), '')))
