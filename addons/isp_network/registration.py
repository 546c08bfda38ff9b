# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, If
from trytond.transaction import Transaction
from trytond.wizard import (
    Button,
    StateAction,
    StateTransition,
    StateView,
    Wizard,
)

from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchWizardMixin,
    check_companies,
)

from .exceptions import RegistrationError

SUBSCRIBER_FIELDS = [
    'name', 'national_id', 'subscriber_phone', 'whatsapp', 'latitude',
    'longitude', 'house_photo']


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    @classmethod
    def register(cls, values):
        """Register a subscriber (PSB) from a dictionary of the registration
        form's fields and return the active service.

        The router comes from `router`, or else from `router_pool`; the
        customer ID, user name and password are generated; the service is
        activated (which queues it for its router) and its first period
        invoiced, unless `register_waits_installation` keeps it draft for
        its installation; then the hooks for the welcome message and the
        installation work order run.

        Every record given must be of the user's branches
        (`check_companies`): the values come from a client."""
        pool = Pool()
        Company = pool.get('company.company')
        Party = pool.get('party.party')
        Router = pool.get('isp.router')
        Location = pool.get('isp.location')
        Template = pool.get('product.template')
        RouterPool = pool.get('isp.router.pool')
        context = Transaction().context
        company = values.get('company') or context.get('company')
        if not company:
            raise RegistrationError(gettext(
                    'isp_network.msg_registration_no_company'))
        location = Location(values['location'])
        plan = Template(values['plan'])
        given = {
            'router': Router, 'router_pool': RouterPool, 'subscriber': Party}
        check_companies([Company(company), location, plan] + [
                Model(values[name]) for name, Model in given.items()
                if values.get(name)])
        if values.get('router'):
            router = Router(values['router'])
        elif values.get('router_pool'):
            router = RouterPool(values['router_pool']).pick_router()
        else:
            raise RegistrationError(gettext(
                    'isp_network.msg_registration_no_router'))
        # one registration at a time per router: numbers are per router
        Router.lock([router])
        if values.get('subscriber'):
            subscriber = Party(values['subscriber'])
        else:
            party_values = {
                k: values[k] for k in SUBSCRIBER_FIELDS if values.get(k)}
            party_values.update({
                    'is_subscriber': True,
                    'isp_company': company,
                    'location': location.id,
                    })
            if values.get('street') or values.get('city'):
                party_values['addresses'] = [('create', [{
                                'street': values.get('street'),
                                'city': values.get('city'),
                                }])]
            if values.get('email'):
                party_values['contact_mechanisms'] = [('create', [{
                                'type': 'email',
                                'value': values['email'],
                                }])]
            subscriber, = Party.create([party_values])
        service, = cls.create([{
                    'company': company,
                    'subscriber': subscriber.id,
                    'location': location.id,
                    'plan': plan.id,
                    'router': router.id,
                    'username': cls.new_username(router),
                    'customer_id': cls.new_customer_id(location, router),
                    'remote_address': values.get('remote_address'),
                    'caller_id': values.get('caller_id'),
                    }])
        waiting = cls.register_waits_installation([service])
        if waiting:
            cls.write(waiting, {'awaiting_installation': True})
        else:
            cls.activate([service])
            cls.register_first_invoice([service])
        cls.register_welcome([service])
        cls.register_work_order([service])
        return service

    @classmethod
    def register_waits_installation(cls, services):
        """Hook: the registered services that stay draft until their
        installation is done (activating them then bills the first
        period); none by default: a registration activates at once"""
        return []

    @classmethod
    def register_first_invoice(cls, services):
        "Hook: the billing module invoices the first (prorated) period"

    @classmethod
    def register_welcome(cls, services):
        "Hook: the notification module sends the welcome message"

    @classmethod
    def register_work_order(cls, services):
        "Hook: the helpdesk module opens the installation work order"


class RegisterStart(BranchOnChangeMixin, ModelView):
    "Register Subscriber"
    __name__ = 'isp.service.register.start'

    company = fields.Many2One('company.company', "Company", readonly=True)
    subscriber = fields.Many2One(
        'party.party', "Existing Subscriber",
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('is_subscriber', '=', True),
            ('isp_company', '=', Eval('company', -1)),
            ],
        help="Leave empty to register a new subscriber from the fields "
        "below.")
    name = fields.Char("Full Name",
        states={'required': ~Eval('subscriber')})
    national_id = fields.Char("National ID",
        help="For Indonesian branches the 16-digit NIK.")
    subscriber_phone = fields.Char("Phone")
    whatsapp = fields.Char("WhatsApp")
    email = fields.Char("E-mail")
    street = fields.Text("Installation Address")
    city = fields.Char("City")
    latitude = fields.Float("Latitude", digits=(3, 7))
    longitude = fields.Float("Longitude", digits=(3, 7))
    house_photo = fields.Binary("House Photo")
    location = fields.Many2One(
        'isp.location', "Location", required=True,
        domain=[('company', '=', Eval('company', -1))])
    plan = fields.Many2One(
        'product.template', "Plan",
        required=True,
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('isp_plan', '=', True),
            ['OR',
                ('isp_company', '=', None),
                ('isp_company', '=', Eval('company', -1)),
                ],
            ])
    router = fields.Many2One(
        'isp.router', "Router",
        domain=[('company', '=', Eval('company', -1))],
        states={'required': ~Eval('router_pool')},
        help="Leave empty to let the pool pick one.")
    router_pool = fields.Many2One(
        'isp.router.pool', "Router Pool",
        domain=[('company', '=', Eval('company', -1))],
        states={
            'required': ~Eval('router'),
            'invisible': If(Eval('router'), True, False),
            })
    remote_address = fields.Char("Static Address")
    caller_id = fields.Char("Caller ID")

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @fields.depends('subscriber', 'location')
    def on_change_subscriber(self):
        if self.subscriber and self.subscriber.location and not self.location:
            self.location = self.subscriber.location


class Register(BranchWizardMixin, Wizard):
    "Register Subscriber"
    __name__ = 'isp.service.register'

    start = StateView('isp.service.register.start',
        'isp_network.service_register_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Register", 'register', 'tryton-ok', default=True),
            ])
    register = StateTransition()
    open_ = StateAction('isp_network.act_service_form')

    def transition_register(self):
        pool = Pool()
        Service = pool.get('isp.service')
        values = {}
        for name in self.start._fields:
            value = getattr(self.start, name, None)
            if isinstance(value, ModelView):
                value = value.id
            values[name] = value
        self.service_id = Service.register(values).id
        return 'open_'

    def do_open_(self, action):
        action['res_id'] = [self.service_id]
        action['views'].reverse()
        return action, {}
