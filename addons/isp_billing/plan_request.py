# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Plan change requests: a subscriber asks (customer portal, or staff for
them) for another plan of the branch for one of their services; staff
approve (the service's plan is changed: the existing prorated plan change
invoices the rest of the billed period) or refuse it."""
import datetime as dt

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Workflow, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.isp_base.tenancy import BranchValuesMixin

from .exceptions import PlanChangeRequestError

STATES = [
    ('requested', "Requested"),
    ('approved', "Approved"),
    ('refused', "Refused"),
    ('cancelled', "Cancelled"),
    ]
#: the service states a plan change may be asked and applied for
OPEN_SERVICE_STATES = {'draft', 'active', 'isolated'}
_REQUESTED = {'readonly': Eval('state') != 'requested'}


def plan_domain(company_id):
    """The plans a branch offers: its own and the central ones (no
    branch), active"""
    return [
        ('isp_plan', '=', True),
        ('active', '=', True),
        ['OR',
            ('isp_company', '=', None),
            ('isp_company', '=', company_id),
            ],
        ]


class PlanChangeRequest(BranchValuesMixin, Workflow, ModelSQL, ModelView):
    "Plan Change Request"
    __name__ = 'isp.plan.change.request'
    _branch_fields = ('service', 'requested_plan')

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT', help="The branch of the service.")
    service = fields.Many2One(
        'isp.service', "Service", required=True, ondelete='CASCADE',
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': Eval('id', -1) >= 0})
    subscriber = fields.Many2One(
        'party.party', "Subscriber", readonly=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'})
    current_plan = fields.Many2One(
        'product.template', "Current Plan", readonly=True,
        ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        help="The service's plan when the request was made.")
    requested_plan = fields.Many2One(
        'product.template', "Requested Plan", required=True,
        ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('isp_plan', '=', True),
            ['OR',
                ('isp_company', '=', None),
                ('isp_company', '=', Eval('company', -1)),
                ],
            ],
        states=_REQUESTED)
    state = fields.Selection(
        STATES, "State", required=True, readonly=True, sort=False)
    request_date = fields.DateTime("Requested On", readonly=True)
    origin = fields.Selection([
            ('portal', "Customer Portal"),
            ('staff', "Staff"),
            ], "Origin", readonly=True)
    decision_date = fields.DateTime("Decided On", readonly=True)
    decided_by = fields.Many2One(
        'res.user', "Decided By", readonly=True, ondelete='SET NULL')
    note = fields.Text(
        "Note", states=_REQUESTED,
        help="A note of the staff, e.g. why the request is refused.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._order = [('request_date', 'DESC'), ('id', 'DESC')]
        cls._sql_indexes.update({
                Index(t, (t.company, Index.Range()),
                    (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.service, Index.Range()),
                    (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.subscriber, Index.Range())),
                })
        cls._transitions |= {
            ('requested', 'approved'),
            ('requested', 'refused'),
            ('requested', 'cancelled'),
            }
        cls._buttons.update({
                'approve': {
                    'invisible': Eval('state') != 'requested',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                'refuse': {
                    'invisible': Eval('state') != 'requested',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'cancel': {
                    'invisible': Eval('state') != 'requested',
                    'icon': 'tryton-clear',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'requested'

    @classmethod
    def default_origin(cls):
        return 'staff'

    def get_rec_name(self, name):
        return '%s: %s' % (self.service.rec_name,
            self.requested_plan.rec_name)

    @classmethod
    def preprocess_values(cls, mode, values):
        "company, subscriber and current plan come from the service"
        pool = Pool()
        Service = pool.get('isp.service')
        values = super().preprocess_values(mode, values)
        if mode == 'create' and values.get('service') is not None:
            service = Service(values['service'])
            values['company'] = service.company.id
            values['subscriber'] = service.subscriber.id
            values['current_plan'] = service.plan.id
            values.setdefault('request_date', dt.datetime.now())
        return values

    @classmethod
    def validate_fields(cls, requests, field_names):
        super().validate_fields(requests, field_names)
        if field_names is None or field_names & {
                'service', 'requested_plan', 'state'}:
            cls.check_request(
                [r for r in requests if r.state == 'requested'])

    @classmethod
    def check_request(cls, requests):
        """A pending request is for an open service, for an active plan of
        its branch other than the current one, and the only pending one of
        its service"""
        if not requests:
            return
        pending = cls.search([
                ('service', 'in', [r.service.id for r in requests]),
                ('state', '=', 'requested'),
                ], order=[])
        by_service = {}
        for request in pending:
            by_service.setdefault(request.service.id, []).append(request)
        for request in requests:
            service, plan = request.service, request.requested_plan
            if service.state not in OPEN_SERVICE_STATES:
                raise PlanChangeRequestError(gettext(
                        'isp_billing.msg_plan_request_service_closed',
                        service=service.rec_name))
            if (not plan.active or not plan.isp_plan or (
                        plan.isp_company
                        and plan.isp_company != request.company)):
                raise PlanChangeRequestError(gettext(
                        'isp_billing.msg_plan_request_plan_not_offered',
                        plan=plan.rec_name, service=service.rec_name))
            if plan == service.plan:
                raise PlanChangeRequestError(gettext(
                        'isp_billing.msg_plan_request_same_plan',
                        plan=plan.rec_name, service=service.rec_name))
            if len(by_service.get(service.id, [])) > 1:
                raise PlanChangeRequestError(gettext(
                        'isp_billing.msg_plan_request_pending',
                        service=service.rec_name))

    @classmethod
    def _decided(cls):
        return {
            'decision_date': dt.datetime.now(),
            'decided_by': Transaction().user or None,
            }

    @classmethod
    @ModelView.button
    @Workflow.transition('approved')
    def approve(cls, requests):
        """Change the services' plans: the existing prorated plan change
        credits the old plan and charges the new one for the rest of the
        billed period"""
        pool = Pool()
        Service = pool.get('isp.service')
        cls.check_request(requests)
        by_plan = {}
        for request in requests:
            by_plan.setdefault(request.requested_plan, []).append(
                request.service)
        args = []
        for plan, services in by_plan.items():
            args.extend([services, {'plan': plan.id}])
        if args:
            Service.write(*args)
        cls.write(requests, cls._decided())

    @classmethod
    @ModelView.button
    @Workflow.transition('refused')
    def refuse(cls, requests):
        cls.write(requests, cls._decided())

    @classmethod
    @ModelView.button
    @Workflow.transition('cancelled')
    def cancel(cls, requests):
        cls.write(requests, cls._decided())

    @classmethod
    def request(cls, service, plan, origin='portal'):
        """Create the pending request of `service` for `plan` (checked as
        any request: a plan the branch offers, not the current one, the
        only pending one of the service)"""
        request, = cls.create([{
                    'service': service.id,
                    'requested_plan': plan.id,
                    'origin': origin,
                    }])
        return request
