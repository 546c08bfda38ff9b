# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The plan change page of the customer portal: the subscriber asks for
another plan of the branch for one of their services (an
isp.plan.change.request staff approve or refuse in the back office), sees
their requests and cancels a pending one."""
from trytond.modules.isp_base.web import N_, form_id, portal_page

from ..plan_request import OPEN_SERVICE_STATES, plan_domain

PLAN_PATH = '/isp_billing/portal/plan'
CANCEL_PATH = '/isp_billing/portal/plan/cancel'
DONE = {
    'requested': N_("Your request is sent. We will let you know when it "
        "is decided."),
    'cancelled': N_("Your request is cancelled."),
    }


def _services(page):
    "The subscriber's services whose plan may change"
    Service = page.pool.get('isp.service')
    return page.search_own(Service,
        [('state', 'in', sorted(OPEN_SERVICE_STATES))],
        party_field='subscriber', order=[('customer_id', 'ASC'),
            ('id', 'ASC')])


def _plans(page):
    "The plans the branch offers: its own and the central ones, active"
    Template = page.pool.get('product.template')
    return Template.search(plan_domain(page.company.id),
        order=[('name', 'ASC'), ('id', 'ASC')])


def _form(page, status=200, error=None, service_id=None, plan_id=None):
    Request = page.pool.get('isp.plan.change.request')
    services = _services(page)
    requests = page.search_own(Request, [], party_field='subscriber',
        limit=20)
    pending = {r.service.id for r in requests if r.state == 'requested'}
    done = page.request.args.get('done')
    return page.render('isp_billing/plan.html', status=status,
        services=services, plans=_plans(page), requests=requests,
        pending=pending, currency=page.company.currency,
        service_id=service_id, plan_id=plan_id, error=error,
        notice=page.gettext(DONE[done]) if done in DONE else None)


@portal_page(PLAN_PATH, methods=('GET', 'POST'), nav='plan')
def plan(page):
    "Ask for another plan of the branch for one of the services"
    if page.request.method != 'POST':
        return _form(page)
    pool = page.pool
    Service = pool.get('isp.service')
    Template = pool.get('product.template')
    Request = pool.get('isp.plan.change.request')
    service_id, plan_id = page.form.get('service'), page.form.get('plan')
    if not service_id or not plan_id:
        return _form(page, 400, page.gettext(
                N_("Choose a service and a plan.")), form_id(service_id),
            form_id(plan_id))
    service = page.get_own(Service, service_id, party_field='subscriber')
    # another branch's plan, an inactive or unknown one: not found
    plan_id = form_id(plan_id)
    plans = Template.search([('id', '=', plan_id or 0),
            plan_domain(page.company.id)], limit=1) if plan_id else []
    if not plans:
        raise page.not_found()
    plan, = plans
    if service.state not in OPEN_SERVICE_STATES:
        raise page.not_found()
    if plan == service.plan:
        return _form(page, 400, page.gettext(
                N_("This is already the plan of the service.")),
            service.id, plan.id)
    if Request.search([('service', '=', service.id),
                ('state', '=', 'requested')], limit=1):
        return _form(page, 400, page.gettext(
                N_("A request is already pending for this service: cancel "
                    "it first to ask for another plan.")),
            service.id, plan.id)
    Request.request(service, plan, origin='portal')
    return page.redirect(PLAN_PATH, done='requested')


@portal_page(CANCEL_PATH, methods=('POST',))
def cancel(page):
    "Cancel a pending request of the subscriber"
    Request = page.pool.get('isp.plan.change.request')
    request = page.get_own(Request, page.form.get('request'),
        party_field='subscriber')
    if request.state != 'requested':
        return _form(page, 400, page.gettext(
                N_("This request is already decided.")))
    Request.cancel([request])
    return page.redirect(PLAN_PATH, done='cancelled')
