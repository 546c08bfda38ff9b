# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tickets: workflow, SLA clocks, assignment, conversation and activity
trail; the escalation cron."""
import datetime as dt
import json
import math
from collections import defaultdict
from zoneinfo import ZoneInfo

from sql import Literal, Null
from sql.aggregate import Avg, Count, Max, Min
from sql.conditionals import Case
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Workflow, fields
from trytond.model.fields import SQL_OPERATORS
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, If
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchValuesMixin,
)

from . import sla
from .category import PRIORITIES
from .exceptions import (
    TicketRatingError,
    TicketReopenError,
    TicketReplyError,
)

CHANNELS = [
    ('portal', "Portal"),
    ('whatsapp', "WhatsApp"),
    ('phone', "Phone"),
    ('email', "E-mail"),
    ('staff', "Staff"),
    ]
STATES = [
    ('new', "New"),
    ('assigned', "Assigned"),
    ('in_progress', "In Progress"),
    ('waiting', "Waiting on Customer"),
    ('resolved', "Resolved"),
    ('closed', "Closed"),
    ]
#: the states whose tickets count in a technician's load
OPEN_STATES = ('new', 'assigned', 'in_progress', 'waiting')
#: the states the SLA clocks run in
RUNNING_STATES = ('new', 'assigned', 'in_progress')
#: the states that pause the clocks (a pause is opened on entering them)
PAUSED_STATES = ('waiting', 'resolved', 'closed')
ESCALATIONS = [
    (None, ""),
    ('at_risk', "At Risk"),
    ('breached', "Breached"),
    ]
RANK = {None: 0, 'at_risk': 1, 'breached': 2}
#: the ratings a subscriber gives a resolved or closed ticket
RATINGS = range(1, 6)
#: the portal page of a ticket (the rating link of ticket_resolved)
PORTAL_TICKET = '/isp_helpdesk/portal/ticket/%d'
CLOCKS = ('response', 'resolution')
_RO = {'readonly': ~Eval('state').in_(['new', 'assigned', 'in_progress',
            'waiting'])}


def _now():
    """The current time of the helpdesk (UTC, naive, whole seconds).

    Tests set the `_isp_helpdesk_now` context key to move time; clients
    cannot (keys starting with '_' are stripped from RPC contexts)."""
    now = (Transaction().context.get('_isp_helpdesk_now')
        or dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return now.replace(microsecond=0)


def _midnight(day, zone):
    "The naive UTC instant of the start of `day` in `zone`"
    return dt.datetime.combine(day, dt.time(), zone).astimezone(
        dt.UTC).replace(tzinfo=None)


def _timestamp(value):
    "A timestamp read by SQL (SQLite answers text)"
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


class Ticket(
        BranchValuesMixin, BranchOnChangeMixin, Workflow, ModelSQL,
        ModelView):
    "ISP Helpdesk Ticket"
    __name__ = 'isp.helpdesk.ticket'
    _rec_name = 'number'
    _branch_fields = ('company', 'subscriber', 'service', 'category')

    number = fields.Char("Number", readonly=True)
    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        states={'readonly': Eval('id', -1) >= 0})
    subscriber = fields.Many2One(
        'party.party', "Subscriber", ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('is_subscriber', '=', True),
            ('isp_company', '=', Eval('company', -1)),
            ],
        states=_RO)
    service = fields.Many2One(
        'isp.service', "Service", ondelete='RESTRICT',
        domain=[
            ('company', '=', Eval('company', -1)),
            If(Bool(Eval('subscriber')),
                ('subscriber', '=', Eval('subscriber', -1)),
                ()),
            ],
        states=_RO)
    category = fields.Many2One(
        'isp.helpdesk.category', "Category", required=True,
        ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))], states=_RO)
    priority = fields.Selection(
        PRIORITIES, "Priority", required=True, sort=False, states=_RO)
    kind = fields.Selection([
            ('support', "Support"),
            ('installation', "Installation"),
            ], "Type", required=True,
        states={'readonly': Eval('id', -1) >= 0},
        help="An installation ticket is the work order of a registration.")
    channel = fields.Selection(
        CHANNELS, "Channel", required=True,
        states={'readonly': Eval('id', -1) >= 0})
    contact = fields.Char("Contact", states=_RO,
        help="The number or address the ticket came from.")
    to_review = fields.Boolean("To Review",
        help="Opened from an unknown number: find the subscriber, then "
        "clear it.")
    subject = fields.Char("Subject", required=True, states=_RO)
    description = fields.Text("Description", states=_RO)
    house_photo = fields.Function(fields.Binary(
            "House Photo",
            states={'invisible': Eval('kind') != 'installation'}),
        'get_site')
    latitude = fields.Function(fields.Float(
            "Latitude", digits=(9, 6),
            states={'invisible': Eval('kind') != 'installation'}),
        'get_site')
    longitude = fields.Function(fields.Float(
            "Longitude", digits=(9, 6),
            states={'invisible': Eval('kind') != 'installation'}),
        'get_site')
    state = fields.Selection(STATES, "State", readonly=True, required=True,
        sort=False)
    assignee = fields.Many2One(
        'res.user', "Assignee", ondelete='RESTRICT',
        domain=[('companies', '=', Eval('company', -1))], states=_RO,
        help="Empty: the least loaded technician of the category's team.")
    assigned_at = fields.DateTime("Assigned At", readonly=True)
    opened_at = fields.DateTime("Opened At", readonly=True)
    first_response_at = fields.DateTime(
        "First Response At", readonly=True,
        help="The first public reply: later replies do not change it.")
    resolved_at = fields.DateTime("Resolved At", readonly=True)
    closed_at = fields.DateTime("Closed At", readonly=True)
    calendar = fields.Many2One(
        'isp.helpdesk.calendar', "Calendar", readonly=True,
        ondelete='SET NULL',
        help="The hours the SLA clocks run in; empty: 24/7 in UTC.")
    response_target = fields.Integer("Response Target", readonly=True,
        help="Business minutes to the first response.")
    resolution_target = fields.Integer("Resolution Target", readonly=True,
        help="Business minutes to the resolution.")
    response_deadline = fields.DateTime("Response Deadline", readonly=True)
    response_risk_at = fields.DateTime("Response At Risk", readonly=True)
    resolution_deadline = fields.DateTime(
        "Resolution Deadline", readonly=True,
        help="Moved by the time waiting on the customer.")
    resolution_risk_at = fields.DateTime("Resolution At Risk", readonly=True)
    response_escalation = fields.Selection(
        ESCALATIONS, "Response SLA", readonly=True)
    response_notified = fields.Selection(
        ESCALATIONS, "Response Notified", readonly=True)
    resolution_escalation = fields.Selection(
        ESCALATIONS, "Resolution SLA", readonly=True)
    resolution_notified = fields.Selection(
        ESCALATIONS, "Resolution Notified", readonly=True)
    pauses = fields.One2Many(
        'isp.helpdesk.ticket.pause', 'ticket', "Pauses", readonly=True)
    messages = fields.One2Many(
        'isp.helpdesk.ticket.message', 'ticket', "Conversation")
    activities = fields.One2Many(
        'isp.helpdesk.ticket.activity', 'ticket', "Activity",
        readonly=True)
    response_minutes = fields.Integer("Time to First Response",
        readonly=True,
        help="Business minutes from the opening to the first response "
        "(pauses left out).")
    resolution_minutes = fields.Integer("Time to Resolution",
        readonly=True,
        help="Business minutes from the opening to the last resolution "
        "(pauses left out).")
    rating = fields.Integer("Rating", readonly=True,
        help="The subscriber's rating after the resolution: 1 (bad) to 5.")
    rating_comment = fields.Text("Rating Comment", readonly=True)
    rated_at = fields.DateTime("Rated At", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        open_ = t.state.in_(list(OPEN_STATES))
        cls._sql_indexes.update({
                Index(t, (t.company, Index.Equality()),
                    (t.state, Index.Equality())),
                Index(t, (t.assignee, Index.Equality()), where=open_),
                Index(t, (t.subscriber, Index.Equality())),
                Index(t, (t.resolution_risk_at, Index.Range()), where=open_),
                Index(t, (t.response_risk_at, Index.Range()),
                    where=open_ & (t.first_response_at == Null)),
                })
        cls._order = [('opened_at', 'DESC'), ('id', 'DESC')]
        cls._transitions |= {
            ('new', 'assigned'),
            ('new', 'in_progress'),
            ('assigned', 'in_progress'),
            ('assigned', 'waiting'),
            ('in_progress', 'waiting'),
            ('waiting', 'in_progress'),
            ('new', 'resolved'),
            ('assigned', 'resolved'),
            ('in_progress', 'resolved'),
            ('waiting', 'resolved'),
            ('resolved', 'closed'),
            ('resolved', 'in_progress'),
            ('closed', 'in_progress'),
            }
        cls._buttons.update({
                'assign': {
                    'invisible': Eval('state') != 'new',
                    'depends': ['state'],
                    },
                'start': {
                    'invisible': ~Eval('state').in_(['new', 'assigned']),
                    'depends': ['state'],
                    },
                'wait': {
                    'invisible': ~Eval('state').in_(
                        ['assigned', 'in_progress']),
                    'depends': ['state'],
                    },
                'resume': {
                    'invisible': Eval('state') != 'waiting',
                    'depends': ['state'],
                    },
                'resolve': {
                    'invisible': ~Eval('state').in_(list(OPEN_STATES)),
                    'depends': ['state'],
                    },
                'close': {
                    'invisible': Eval('state') != 'resolved',
                    'depends': ['state'],
                    },
                'reopen': {
                    'invisible': ~Eval('state').in_(['resolved', 'closed']),
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_state(cls):
        return 'new'

    @classmethod
    def default_priority(cls):
        return 'normal'

    @classmethod
    def default_channel(cls):
        return 'staff'

    @classmethod
    def default_kind(cls):
        return 'support'

    @classmethod
    def default_to_review(cls):
        return False

    @classmethod
    def default_opened_at(cls):
        return _now()

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('//page[@id="installation"]', 'states', {
                    'invisible': Eval('kind') != 'installation',
                    }),
            ]

    def get_site(self, name):
        "The installation site of a work order: the subscriber's"
        if self.kind == 'installation' and self.subscriber:
            return getattr(self.subscriber, name)

    def get_rec_name(self, name):
        return '%s %s' % (self.number or '', self.subject or '')

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value = clause[:3]
        bool_op = 'AND' if operator.startswith('!') else 'OR'
        return [bool_op,
            ('number', operator, value),
            ('subject', operator, value),
            ]

    @fields.depends('subscriber', 'service', 'company')
    def on_change_subscriber(self):
        pool = Pool()
        Service = pool.get('isp.service')
        if self.service and self.service.subscriber != self.subscriber:
            self.service = None
        if self.subscriber and not self.service:
            services = Service.search([
                    ('subscriber', '=', self.subscriber.id),
                    ('company', '=', self.company.id if self.company else -1),
                    ], limit=2)
            if len(services) == 1:
                self.service, = services

    @fields.depends('service', 'subscriber')
    def on_change_service(self):
        if self.service and not self.subscriber:
            self.subscriber = self.service.subscriber

    # -- numbers --

    @classmethod
    def _number(cls, company_id):
        "The next number of a branch's ticket sequence (made when missing)"
        pool = Pool()
        Sequence = pool.get('ir.sequence')
        SequenceType = pool.get('ir.sequence.type')
        ModelData = pool.get('ir.model.data')
        type_id = ModelData.get_id('isp_helpdesk', 'sequence_type_ticket')
        with Transaction().set_context(active_test=False):
            sequences = Sequence.search([
                    ('sequence_type', '=', type_id),
                    ('company', '=', company_id),
                    ], limit=1)
        if not sequences:
            sequences = Sequence.create([{
                        'name': SequenceType(type_id).name,
                        'sequence_type': type_id,
                        'company': company_id,
                        'prefix': 'T-',
                        'padding': 6,
                        }])
        sequence, = sequences
        return sequence.get()

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            company = values.get('company') or cls.default_company()
            if company and not values.get('number'):
                values['number'] = cls._number(company)
        return values

    # -- modification --

    @classmethod
    def on_write(cls, tickets, values):
        callbacks = super().on_write(tickets, values)
        tracked = {'state', 'assignee', 'priority', 'category'} & set(values)
        if not tracked:
            return callbacks
        before = {t.id: {n: cls._tracked_value(t, n) for n in tracked}
            for t in tickets}
        callbacks.append(lambda: cls._after_tracked_write(
                [cls(i) for i in before], before, tracked))
        return callbacks

    @classmethod
    def _tracked_value(cls, ticket, name):
        value = getattr(ticket, name)
        if isinstance(value, ModelSQL):
            return value.id
        return value

    @classmethod
    def _after_tracked_write(cls, tickets, before, tracked):
        "Log the changes, open or close pauses, recompute the clocks"
        pool = Pool()
        Activity = pool.get('isp.helpdesk.ticket.activity')
        activities, resumed, retarget, assigned = [], [], [], []
        for ticket in tickets:
            old = before[ticket.id]
            for name in sorted(tracked):
                new = cls._tracked_value(ticket, name)
                if new == old[name]:
                    continue
                activities.append(Activity.value_change(ticket, name,
                        old[name], new))
                if name in {'priority', 'category'}:
                    retarget.append(ticket)
                elif name == 'assignee' and new:
                    assigned.append(ticket)
                elif name == 'state':
                    was_paused = old[name] in PAUSED_STATES
                    paused = new in PAUSED_STATES
                    if paused and not was_paused:
                        cls._open_pause(ticket, new)
                    elif was_paused and not paused:
                        resumed.append(ticket)
        Activity.create_many(activities)
        if assigned:
            cls.write(assigned, {'assigned_at': _now()})
            new = [t for t in assigned if t.state == 'new']
            if new:
                cls.write(new, {'state': 'assigned'})
        if resumed:
            cls._close_pauses(resumed)
        if resumed or retarget:
            cls.compute_sla(list({t.id: t for t in resumed + retarget}
                    .values()), reason='recomputed')

    @classmethod
    def _open_pause(cls, ticket, state):
        pool = Pool()
        Pause = pool.get('isp.helpdesk.ticket.pause')
        Pause.create([{
                    'ticket': ticket.id, 'start': _now(), 'reason': state}])

    @classmethod
    def _close_pauses(cls, tickets):
        pool = Pool()
        Pause = pool.get('isp.helpdesk.ticket.pause')
        pauses = Pause.search([
                ('ticket', 'in', [t.id for t in tickets]),
                ('end', '=', None),
                ])
        if pauses:
            Pause.write(pauses, {'end': _now()})

    @classmethod
    def on_modification(cls, mode, tickets, field_names=None):
        pool = Pool()
        Activity = pool.get('isp.helpdesk.ticket.activity')
        super().on_modification(mode, tickets, field_names=field_names)
        if mode == 'create':
            Activity.create_many([Activity.event(t, 'created', t.state)
                    for t in tickets])
            cls.compute_sla(tickets)
            cls.assign_auto([t for t in tickets
                    if t.state == 'new' and not t.assignee])
            with_assignee = [t for t in tickets
                if t.assignee and t.state == 'new']
            if with_assignee:
                cls.write(with_assignee, {
                        'state': 'assigned', 'assigned_at': _now()})
            cls.notify_created(tickets)

    @classmethod
    def notify_created(cls, tickets):
        """Tell the subscribers their support ticket was received (its
        number), through the notification queue in their language"""
        pool = Pool()
        Message = pool.get('isp.message')
        requests = [{
                'event': 'ticket_created',
                'party': t.subscriber,
                'company': t.company,
                'origin': t,
                'values': {'ticket_number': t.number, 'subject': t.subject},
                } for t in tickets
            if t.subscriber and t.kind == 'support']
        if requests:
            Message.send_events(requests)

    @classmethod
    def copy(cls, tickets, default=None):
        default = dict(default or {})
        for name in ['number', 'assigned_at', 'opened_at', 'rating',
                'response_minutes', 'resolution_minutes',
                'rating_comment', 'rated_at',
                'first_response_at', 'resolved_at', 'closed_at', 'pauses',
                'messages', 'activities', 'response_escalation',
                'response_notified', 'resolution_escalation',
                'resolution_notified']:
            default.setdefault(name, None)
        default.setdefault('state', 'new')
        return super().copy(tickets, default=default)

    # -- SLA --

    @classmethod
    def sla_calendars(cls, tickets):
        """{ticket id: (calendar record or None, sla.Calendar)}: the SLA's
        calendar, else the branch's, else 24/7 in the branch's zone"""
        pool = Pool()
        Calendar = pool.get('isp.helpdesk.calendar')
        branch = Calendar.for_companies({t.company.id for t in tickets})
        built = {}
        result = {}
        for ticket in tickets:
            policy = ticket.category.policy(ticket.priority)
            calendar = (policy.calendar if policy and policy.calendar
                else branch[ticket.company.id])
            if calendar is None:
                key = ('24/7', ticket.company.timezone)
                if key not in built:
                    built[key] = sla.Calendar(ticket.company.timezone,
                        always_open=True)
            else:
                key = calendar.id
                if key not in built:
                    built[key] = calendar.sla_calendar()
            result[ticket.id] = (calendar, built[key])
        return result

    @classmethod
    def compute_sla(cls, tickets, reason=None):
        """Store the SLA targets, deadlines and at-risk instants of the
        tickets' category and priority in their calendar, their pauses
        left out; a clock whose at-risk instant moved past now is no longer
        at risk (or breached) and may be raised again"""
        pool = Pool()
        Activity = pool.get('isp.helpdesk.ticket.activity')
        if not tickets:
            return
        now = _now()
        calendars = cls.sla_calendars(tickets)
        to_write, activities = [], []
        for ticket in tickets:
            calendar, clock = calendars[ticket.id]
            policy = ticket.category.policy(ticket.priority)
            pauses = [(p.start, p.end) for p in ticket.pauses]
            share = float(ticket.category.at_risk_share or 0)
            values = {'calendar': calendar.id if calendar else None}
            for name, target in [
                    ('response', policy.first_response if policy else None),
                    ('resolution', policy.resolution if policy else None)]:
                values[name + '_target'] = target
                if target is None:
                    values[name + '_deadline'] = None
                    values[name + '_risk_at'] = None
                    continue
                deadline = sla.deadline(
                    ticket.opened_at, target, clock, pauses)
                risk = sla.deadline(ticket.opened_at,
                    math.ceil(target * (1 - share)), clock, pauses)
                values[name + '_deadline'] = deadline
                values[name + '_risk_at'] = risk
                values.update(cls._lowered_escalation(
                        ticket, name, deadline, risk, now))
            to_write.extend(([ticket], values))
            if reason:
                activities.append(Activity.event(ticket, 'sla_' + reason,
                        Activity.deadline_text(values)))
        cls.write(*to_write)
        Activity.create_many(activities)

    @classmethod
    def _lowered_escalation(cls, ticket, clock, deadline, risk, now):
        """The escalation values of a clock whose new instants are later
        than its raised level: lowered (and its notice forgotten) so the
        cron raises it again at the new instants; a higher level is left
        to the cron"""
        level = getattr(ticket, clock + '_escalation')
        notified = getattr(ticket, clock + '_notified')
        if deadline and deadline <= now:
            due = 'breached'
        elif risk and risk <= now:
            due = 'at_risk'
        else:
            due = None
        if RANK[level] <= RANK[due]:
            return {}
        return {
            clock + '_escalation': due,
            clock + '_notified': due if RANK[notified] > RANK[due]
            else notified,
            }

    # -- assignment --

    @classmethod
    def workloads(cls, company_id, user_ids):
        """{user id: (open tickets, last assignment)} of the branch's
        tickets"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        result = {u: (0, dt.datetime.min) for u in user_ids}
        if not user_ids:
            return result
        cursor.execute(*table.select(
                table.assignee, Count(table.id), Max(table.assigned_at),
                where=(table.company == company_id)
                & SQL_OPERATORS['in'](table.assignee, list(user_ids))
                & table.state.in_(list(OPEN_STATES)),
                group_by=[table.assignee]))
        for user, count, last in cursor:
            result[user] = (count, _timestamp(last) or dt.datetime.min)
        # the last assignment among closed tickets too: round-robin
        cursor.execute(*table.select(
                table.assignee, Max(table.assigned_at),
                where=(table.company == company_id)
                & SQL_OPERATORS['in'](table.assignee, list(user_ids)),
                group_by=[table.assignee]))
        for user, last in cursor:
            count, _ = result[user]
            result[user] = (count, _timestamp(last) or dt.datetime.min)
        return result

    @classmethod
    def assign_auto(cls, tickets):
        """Give each ticket to the least loaded active technician of its
        category's team in its branch; on a tie the one assigned the
        longest ago (round-robin)"""
        groups = defaultdict(list)
        for ticket in tickets:
            groups[(ticket.company, ticket.category)].append(ticket)
        to_write = []
        now = _now()
        for (company, category), c_tickets in groups.items():
            team = [u.id for u in category.team
                if u.active and company in u.companies]
            if not team:
                continue
            loads = cls.workloads(company.id, team)
            for ticket in c_tickets:
                user = min(team, key=lambda u: (*loads[u], u))
                count, _ = loads[user]
                # a distinct instant for each pick keeps the rotation
                now += dt.timedelta(microseconds=1)
                loads[user] = (count + 1, now)
                to_write.extend(([ticket], {'assignee': user}))
        if to_write:
            cls.write(*to_write)

    @classmethod
    def open_installations(cls, services):
        """Open the installation work order of each registered service in
        its branch's installation category (else its first category): the
        subscriber's address, coordinates and plan in the description,
        assigned like any ticket; none in a branch without categories"""
        pool = Pool()
        Category = pool.get('isp.helpdesk.category')
        categories = Category.installation_categories(
            {s.company for s in services})
        to_create = []
        for service in services:
            company = service.company
            category = categories.get(company.id)
            if not category:
                continue
            subscriber = service.subscriber
            address = subscriber.address_get()
            lines = [
                '%s: %s' % (service.customer_id, service.plan.rec_name),
                address.full_address.replace('\n', ', ')
                if address and address.full_address else '',
                '%s, %s' % (subscriber.latitude, subscriber.longitude)
                if subscriber.latitude is not None else '',
                ]
            to_create.append({
                    'company': company.id,
                    'kind': 'installation',
                    'subscriber': subscriber.id,
                    'service': service.id,
                    'category': category.id,
                    'channel': 'staff',
                    'subject': subscriber.name,
                    'description': '\n'.join(filter(None, lines)),
                    })
        with without_check_access():
            return cls.create(to_create)

    # -- workflow --

    @classmethod
    @ModelView.button
    def assign(cls, tickets):
        "Assign the new tickets without assignee to their team"
        cls.assign_auto([t for t in tickets
                if t.state == 'new' and not t.assignee])
        assigned = [t for t in tickets if t.state == 'new' and t.assignee]
        if assigned:
            cls.write(assigned, {'state': 'assigned'})

    @classmethod
    @ModelView.button
    @Workflow.transition('in_progress')
    def start(cls, tickets):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('waiting')
    def wait(cls, tickets):
        "Wait on the customer: the clocks stop"

    @classmethod
    @ModelView.button
    @Workflow.transition('in_progress')
    def resume(cls, tickets):
        "Back from waiting: the clocks run again, moved by the pause"

    @classmethod
    @ModelView.button
    @Workflow.transition('resolved')
    def resolve(cls, tickets):
        now = _now()
        cls.write(tickets, {'resolved_at': now, 'closed_at': None})
        cls.store_minutes(tickets, 'resolution', now)
        cls.notify_resolved(tickets)
        cls.complete_installations(tickets)

    @classmethod
    def complete_installations(cls, tickets):
        """Activate the services whose registration waits for the
        installation of these work orders (which invoices their first
        period): the technician resolving the work order may not be
        allowed to activate services himself"""
        pool = Pool()
        Service = pool.get('isp.service')
        services = [t.service for t in tickets
            if t.kind == 'installation' and t.service
            and t.service.state == 'draft'
            and t.service.awaiting_installation]
        if services:
            with without_check_access():
                Service.activate(Service.browse(services))

    @classmethod
    def store_minutes(cls, tickets, clock, end):
        """Store the business minutes of `clock` (response or resolution)
        from the opening to `end` in each ticket's SLA calendar, its pauses
        left out"""
        calendars = cls.sla_calendars(tickets)
        to_write = []
        for ticket in tickets:
            _, calendar = calendars[ticket.id]
            pauses = [(p.start, p.end) for p in ticket.pauses]
            minutes = sla.elapsed(ticket.opened_at, end, calendar, pauses)
            to_write.extend(([ticket], {
                        clock + '_minutes': round(minutes)}))
        if to_write:
            cls.write(*to_write)

    @classmethod
    def notify_resolved(cls, tickets):
        """Tell the subscribers their support ticket is resolved, with the
        link to rate it on the portal, through the notification queue in
        their language"""
        pool = Pool()
        Message = pool.get('isp.message')
        database = Transaction().database.name
        requests = [{
                'event': 'ticket_resolved',
                'party': t.subscriber,
                'company': t.company,
                'origin': t,
                'values': {
                    'ticket_number': t.number,
                    'subject': t.subject,
                    'rating_url': t.portal_url(database),
                    },
                } for t in tickets
            if t.subscriber and t.kind == 'support']
        if requests:
            Message.send_events(requests)

    def portal_url(self, database):
        "The URL of the ticket's page on its branch's portal"
        from trytond.modules.isp_base.web_user import portal_base_url
        return '%s/%s%s' % (portal_base_url(self.company), database,
            PORTAL_TICKET % self.id)

    @classmethod
    def rate(cls, ticket, rating, comment=None):
        """The subscriber's rating (1-5) and comment of a resolved or
        closed ticket, once"""
        pool = Pool()
        Activity = pool.get('isp.helpdesk.ticket.activity')
        if rating not in RATINGS:
            raise TicketRatingError(gettext(
                    'isp_helpdesk.msg_ticket_rating_range'))
        if ticket.state not in ('resolved', 'closed'):
            raise TicketRatingError(gettext(
                    'isp_helpdesk.msg_ticket_rating_open',
                    ticket=ticket.rec_name))
        if ticket.rating:
            raise TicketRatingError(gettext(
                    'isp_helpdesk.msg_ticket_rated', ticket=ticket.rec_name))
        cls.write([ticket], {
                'rating': rating,
                'rating_comment': (comment or '').strip() or None,
                'rated_at': _now(),
                })
        Activity.create_many([Activity.event(ticket, 'rating', str(rating))])

    @classmethod
    @ModelView.button
    @Workflow.transition('closed')
    def close(cls, tickets):
        cls.write(tickets, {'closed_at': _now()})
        cls.complete_installations(tickets)

    @classmethod
    @ModelView.button
    def reopen(cls, tickets):
        "Reopen within the category's reopen days of the resolution"
        now = _now()
        for ticket in tickets:
            if not ticket.can_reopen(now):
                raise TicketReopenError(gettext(
                        'isp_helpdesk.msg_ticket_reopen_late',
                        ticket=ticket.rec_name,
                        days=ticket.category.reopen_days))
        cls._reopen(tickets)

    @classmethod
    @Workflow.transition('in_progress')
    def _reopen(cls, tickets):
        cls.write(tickets, {'resolved_at': None, 'closed_at': None})

    def takes_reply(self, now=None):
        """A message from the customer is taken: the ticket is open, or
        its category reopens it and the reopen days are not over"""
        return self.state in OPEN_STATES or (
            self.category.closed_reply == 'reopen'
            and self.can_reopen(now or _now()))

    @classmethod
    def from_inbound_email(cls, email_, rule):
        "The action of an inbound e-mail rule (see inbound.email_ticket)"
        from .inbound import email_ticket
        return email_ticket(email_, rule)

    def can_reopen(self, now):
        return bool(self.state in ('resolved', 'closed')
            and self.resolved_at
            and now - self.resolved_at <= dt.timedelta(
                days=self.category.reopen_days))

    # -- escalation --

    @classmethod
    def escalate(cls):
        """Cron: raise the clocks past their at-risk instant or deadline
        (once per level, logged), then notify the assignees and branch
        administrators of the raises not yet notified, for the tickets
        whose calendar is open now"""
        now = _now()
        cls._raise_escalations(now)
        cls._notify_escalations(now)
        cls._forget_cached()

    @classmethod
    def _forget_cached(cls):
        "Drop the transaction's cached tickets after bulk SQL updates"
        transaction = Transaction()
        transaction.counter += 1
        for cache in transaction.cache.values():
            cache.pop(cls.__name__, None)

    @classmethod
    def _escalation_where(cls, table, clock, level, now):
        running = table.state.in_(list(RUNNING_STATES))
        if clock == 'response':
            running &= table.first_response_at == Null
        column = getattr(table, clock + ('_deadline' if level == 'breached'
                else '_risk_at'))
        escalation = getattr(table, clock + '_escalation')
        where = running & (column != Null) & (column <= now)
        if level == 'breached':
            where &= (escalation == Null) | (escalation != 'breached')
        else:
            where &= escalation == Null
        company = Transaction().context.get('company')
        if company:
            where &= table.company == company
        return where

    @classmethod
    def _raise_escalations(cls, now):
        "Set the levels in bulk and log one activity per raise"
        pool = Pool()
        Activity = pool.get('isp.helpdesk.ticket.activity')
        table = cls.__table__()
        activity = Activity.__table__()
        cursor = Transaction().connection.cursor()
        user = Transaction().user
        for level in ['breached', 'at_risk']:
            for clock in CLOCKS:
                where = cls._escalation_where(table, clock, level, now)
                cursor.execute(*activity.insert(
                        [activity.create_uid, activity.create_date,
                            activity.ticket, activity.date, activity.user,
                            activity.kind, activity.new_value],
                        table.select(
                            Literal(user), Literal(now), table.id,
                            Literal(now), Literal(user),
                            Literal('%s_%s' % (clock, level)),
                            Literal(level), where=where)))
                cursor.execute(*table.update(
                        [getattr(table, clock + '_escalation')],
                        [level], where=where))

    @classmethod
    def _notify_escalations(cls, now):
        pool = Pool()
        Calendar = pool.get('isp.helpdesk.calendar')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        where = table.state.in_(list(RUNNING_STATES)) & (
            ((table.response_escalation != Null)
                & ((table.response_notified == Null)
                    | (table.response_notified
                        != table.response_escalation)))
            | ((table.resolution_escalation != Null)
                & ((table.resolution_notified == Null)
                    | (table.resolution_notified
                        != table.resolution_escalation))))
        company = Transaction().context.get('company')
        if company:
            where &= table.company == company
        cursor.execute(*table.select(
                table.calendar, table.company, Count(table.id),
                where=where, group_by=[table.calendar, table.company]))
        groups = [(c, co) for c, co, _ in cursor]
        calendars = Calendar.sla_calendars(
            Calendar.browse({c for c, _ in groups if c}))
        # {(user, clock, level): [ticket ids]}
        notices = defaultdict(list)
        notified = defaultdict(list)
        admins = cls._branch_admins({co for _, co in groups})
        for calendar_id, company_id in groups:
            if calendar_id and not calendars[calendar_id].is_open(now):
                continue
            g_where = where & (table.company == company_id) & (
                (table.calendar == calendar_id) if calendar_id
                else (table.calendar == Null))
            cursor.execute(*table.select(
                    table.id, table.assignee,
                    table.response_escalation, table.response_notified,
                    table.resolution_escalation, table.resolution_notified,
                    where=g_where))
            for (ticket, assignee, r_level, r_notified,
                    s_level, s_notified) in cursor:
                for clock, level, done in [
                        ('response', r_level, r_notified),
                        ('resolution', s_level, s_notified)]:
                    if not level or level == done:
                        continue
                    notified[(clock, level)].append(ticket)
                    for user in {assignee, *admins.get(company_id, ())}:
                        if user:
                            notices[(user, clock, level)].append(ticket)
        cls._send_escalation_notices(notices)
        for (clock, level), ids in notified.items():
            for sub_ids in grouped_slice(ids, 10000):
                cursor.execute(*table.update(
                        [getattr(table, clock + '_notified')], [level],
                        where=SQL_OPERATORS['in'](table.id, list(sub_ids))))

    @classmethod
    def _branch_admins(cls, company_ids):
        "{company id: [ids of its branch administrators]}"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        group = ModelData.get_id('isp_base', 'group_isp_branch_admin')
        result = defaultdict(list)
        for user in User.search([
                    ('groups', '=', group),
                    ('companies', 'in', list(company_ids)),
                    ]):
            for company in user.companies:
                if company.id in company_ids:
                    result[company.id].append(user.id)
        return result

    @classmethod
    def _send_escalation_notices(cls, notices):
        "One client notification per user, clock and level of a run"
        pool = Pool()
        Notification = pool.get('res.notification')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        if not notices:
            return
        users = {u.id: u
            for u in User.browse(list({u for u, _, _ in notices}))}
        action = ModelData.get_id('isp_helpdesk', 'act_ticket_form')
        to_create = []
        for (user, clock, level), ids in sorted(notices.items()):
            language = users[user].language
            with Transaction().set_context(
                    language=language.code if language else None):
                label = gettext('isp_helpdesk.msg_notice_%s_%s'
                    % (clock, level), count=len(ids))
            to_create.append({
                    'user': user,
                    'label': label,
                    'icon': 'tryton-warning',
                    'model': cls.__name__,
                    'records': json.dumps(sorted(ids)),
                    'action': action,
                    })
        Notification.create(to_create)


class _TicketChild:
    "A line of a ticket (pause, message, activity): indexed by ticket"
    __slots__ = ()
    _order_field = 'date'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.ticket, Index.Equality())))
        cls._order = [(cls._order_field, 'ASC'), ('id', 'ASC')]


class TicketPause(_TicketChild, ModelSQL, ModelView):
    "ISP Helpdesk Ticket Pause"
    __name__ = 'isp.helpdesk.ticket.pause'
    _order_field = 'start'

    ticket = fields.Many2One(
        'isp.helpdesk.ticket', "Ticket", required=True, ondelete='CASCADE')
    start = fields.DateTime("Start", required=True, readonly=True)
    end = fields.DateTime("End", readonly=True)
    reason = fields.Selection(STATES, "Reason", readonly=True)


class TicketMessage(_TicketChild, ModelSQL, ModelView):
    "ISP Helpdesk Ticket Message"
    __name__ = 'isp.helpdesk.ticket.message'

    ticket = fields.Many2One(
        'isp.helpdesk.ticket', "Ticket", required=True, ondelete='CASCADE',
        states={'readonly': Eval('id', -1) >= 0})
    kind = fields.Selection([
            ('public', "Public Reply"),
            ('internal', "Internal Note"),
            ('customer', "From the Customer"),
            ], "Kind", required=True,
        states={'readonly': Eval('id', -1) >= 0},
        help="A public reply is sent to the subscriber; an internal note "
        "is seen by staff only.")
    body = fields.Text("Message", required=True,
        states={'readonly': Eval('id', -1) >= 0})
    date = fields.DateTime("Date", readonly=True)
    author = fields.Many2One('res.user', "Author", readonly=True)
    notification = fields.Many2One(
        'isp.message', "Notification", readonly=True, ondelete='SET NULL',
        help="The message sent to the subscriber.")

    @classmethod
    def default_kind(cls):
        return 'public'

    @classmethod
    def default_date(cls):
        return _now()

    @classmethod
    def default_author(cls):
        user = Transaction().user
        return user or None

    @classmethod
    def preprocess_values(cls, mode, values):
        """Refuse a reply to a resolved or closed ticket the category does
        not reopen, before anything is saved"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        values = super().preprocess_values(mode, values)
        if (mode == 'create' and values.get('ticket')
                and values.get('kind', cls.default_kind()) != 'internal'):
            ticket = Ticket(values['ticket'])
            if (ticket.state in ('resolved', 'closed')
                    and (ticket.category.closed_reply == 'refuse'
                        or not ticket.can_reopen(_now()))):
                raise TicketReplyError(gettext(
                        'isp_helpdesk.msg_ticket_reply_closed',
                        ticket=ticket.rec_name))
        return values

    @classmethod
    def check_modification(cls, mode, messages, values=None, external=False):
        super().check_modification(
            mode, messages, values=values, external=external)
        if mode == 'write' and external:
            raise TicketReplyError(gettext(
                    'isp_helpdesk.msg_ticket_message_write'))

    @classmethod
    def on_modification(cls, mode, messages, field_names=None):
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Activity = pool.get('isp.helpdesk.ticket.activity')
        super().on_modification(mode, messages, field_names=field_names)
        if mode != 'create':
            return
        first, reopen, resume = {}, {}, {}
        for message in messages:
            ticket = message.ticket
            if message.kind == 'internal':
                continue
            if ticket.state in ('resolved', 'closed'):
                reopen[ticket.id] = ticket
            elif message.kind == 'customer' and ticket.state == 'waiting':
                resume[ticket.id] = ticket
            if (message.kind == 'public' and not ticket.first_response_at
                    and ticket.id not in first):
                first[ticket.id] = message
        for message in first.values():
            Ticket.write([message.ticket], {
                    'first_response_at': message.date})
            Ticket.store_minutes([message.ticket], 'response', message.date)
        Activity.create_many([
                Activity.event(m.ticket, 'first_response', None)
                for m in first.values()])
        if reopen:
            Ticket._reopen(list(reopen.values()))
        if resume:
            Ticket.resume(list(resume.values()))
        cls.send_public([m for m in messages if m.kind == 'public'])

    @classmethod
    def send_public(cls, messages):
        """Send public replies to the subscriber through the notification
        queue, in the subscriber's language"""
        pool = Pool()
        Message = pool.get('isp.message')
        Ticket = pool.get('isp.helpdesk.ticket')
        requests, sent = [], []
        for message in messages:
            ticket = message.ticket
            if not ticket.subscriber:
                continue
            language = Message.notice_language(
                ticket.subscriber, ticket.company)
            with Transaction().set_context(language=language.code):
                status = dict(Ticket.fields_get(['state'])['state'][
                        'selection'])[ticket.state]
            requests.append({
                    'event': 'ticket_updated',
                    'party': ticket.subscriber,
                    'company': ticket.company,
                    'origin': ticket,
                    'values': {
                        'ticket_number': ticket.number,
                        'subject': ticket.subject,
                        'status': status,
                        'comment': message.body,
                        },
                    })
            sent.append(message)
        if not requests:
            return
        notifications = Message.send_events(requests)
        # one notification per request (the preferred channel)
        to_write = []
        for message, notification in zip(sent, notifications, strict=False):
            to_write.extend(([message], {'notification': notification.id}))
        if to_write:
            cls.write(*to_write)


class TicketActivity(_TicketChild, ModelSQL, ModelView):
    "ISP Helpdesk Ticket Activity"
    __name__ = 'isp.helpdesk.ticket.activity'

    ticket = fields.Many2One(
        'isp.helpdesk.ticket', "Ticket", required=True, ondelete='CASCADE',
        readonly=True)
    date = fields.DateTime("Date", readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    kind = fields.Selection([
            ('created', "Created"),
            ('state', "State"),
            ('assignee', "Assignment"),
            ('priority', "Priority"),
            ('category', "Category"),
            ('first_response', "First Response"),
            ('sla_recomputed', "SLA Recomputed"),
            ('response_at_risk', "Response At Risk"),
            ('response_breached', "Response Breached"),
            ('resolution_at_risk', "Resolution At Risk"),
            ('resolution_breached', "Resolution Breached"),
            ('rating', "Rating"),
            ], "Kind", readonly=True)
    old_value = fields.Char("Old Value", readonly=True)
    new_value = fields.Char("New Value", readonly=True)

    @classmethod
    def event(cls, ticket, kind, new_value, old_value=None):
        return {
            'ticket': ticket.id,
            'date': _now(),
            'user': Transaction().user or None,
            'kind': kind,
            'old_value': old_value,
            'new_value': new_value,
            }

    @classmethod
    def value_change(cls, ticket, name, old, new):
        "The activity of a tracked field's change (names, not ids)"
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        field = Ticket._fields[name]

        def text(value):
            if value is None:
                return None
            if isinstance(field, fields.Selection):
                return dict(field.selection).get(value, value)
            target = pool.get(field.model_name)
            with without_check_access():
                return target(value).rec_name
        return cls.event(ticket, name, text(new), text(old))

    @classmethod
    def deadline_text(cls, values):
        return ' / '.join(
            values[n].isoformat(' ') + ' UTC' if values.get(n) else '-'
            for n in ['response_deadline', 'resolution_deadline'])

    @classmethod
    def create_many(cls, vlist):
        if vlist:
            cls.create(vlist)


class Workload(ModelSQL, ModelView):
    "ISP Helpdesk Technician Workload"
    __name__ = 'isp.helpdesk.workload'

    company = fields.Many2One('company.company', "Company")
    user = fields.Many2One('res.user', "Technician")
    open_tickets = fields.Integer("Open Tickets")
    at_risk = fields.Integer("At Risk")
    breached = fields.Integer("Breached")
    oldest = fields.DateTime("Oldest Opened")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('open_tickets', 'DESC'), ('user', 'ASC'), ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        t = Ticket.__table__()
        breached = (t.response_escalation == 'breached') | (
            t.resolution_escalation == 'breached')
        at_risk = ~breached & (
            (t.response_escalation == 'at_risk')
            | (t.resolution_escalation == 'at_risk'))
        return t.select(
            Min(t.id).as_('id'),
            Literal(0).as_('create_uid'),
            Min(t.create_date).as_('create_date'),
            Literal(None).as_('write_uid'),
            Literal(None).as_('write_date'),
            t.company.as_('company'),
            t.assignee.as_('user'),
            Count(t.id).as_('open_tickets'),
            Count(Case((at_risk, t.id))).as_('at_risk'),
            Count(Case((breached, t.id))).as_('breached'),
            Min(t.opened_at).as_('oldest'),
            where=t.state.in_(list(OPEN_STATES)) & (t.assignee != Null),
            group_by=[t.company, t.assignee])


class SlaComplianceContext(ModelView):
    "ISP Helpdesk SLA Compliance Context"
    __name__ = 'isp.helpdesk.sla.compliance.context'

    from_date = fields.Date("From Date",
        domain=['OR',
            ('from_date', '<=', Eval('to_date', None)),
            ('from_date', '=', None),
            ],
        help="The tickets opened from this day (the branch's days); "
        "empty: since the first.")
    to_date = fields.Date("To Date",
        domain=['OR',
            ('to_date', '>=', Eval('from_date', None)),
            ('to_date', '=', None),
            ],
        help="The tickets opened up to this day included; empty: today.")


class SlaCompliance(ModelSQL, ModelView):
    "ISP Helpdesk SLA Compliance"
    __name__ = 'isp.helpdesk.sla.compliance'

    company = fields.Many2One('company.company', "Company")
    category = fields.Many2One('isp.helpdesk.category', "Category")
    priority = fields.Selection(PRIORITIES, "Priority", sort=False)
    user = fields.Many2One('res.user', "Technician")
    tickets = fields.Integer("Tickets")
    responded = fields.Integer("Responded")
    response_met = fields.Integer("Response in Time")
    resolved = fields.Integer("Resolved")
    resolution_met = fields.Integer("Resolved in Time")
    breached = fields.Integer("Breached",
        help="Tickets past a deadline while running (by the cron).")
    backlog = fields.Integer("Backlog",
        help="Tickets not resolved yet (new, assigned, in progress or "
        "waiting on the customer).")
    response_minutes = fields.Float("Average Time to First Response",
        digits=(16, 0),
        help="Business minutes from the opening to the first response.")
    resolution_minutes = fields.Float("Average Time to Resolution",
        digits=(16, 0),
        help="Business minutes from the opening to the resolution, pauses "
        "left out.")
    rated = fields.Integer("Rated")
    rating = fields.Float("Average Rating", digits=(3, 2),
        help="The subscribers' ratings, 1 (bad) to 5.")
    response_rate = fields.Function(fields.Float(
            "Response Compliance", digits=(3, 2),
            help="The share of the first responses given in time."),
        'get_rate')
    resolution_rate = fields.Function(fields.Float(
            "Resolution Compliance", digits=(3, 2),
            help="The share of the resolutions made in time."),
        'get_rate')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('company', 'ASC'), ('category', 'ASC'), ('priority', 'ASC'),
            ('user', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _period_where(cls, table):
        """The tickets opened within the context's from and to dates, each
        branch's days in its own time zone"""
        pool = Pool()
        Company = pool.get('company.company')
        context = Transaction().context
        from_date, to_date = context.get('from_date'), context.get(
            'to_date')
        if not from_date and not to_date:
            return Literal(True)
        where = Literal(False)
        with without_check_access():
            companies = Company.search([])
        for company in companies:
            zone = ZoneInfo(company.timezone or 'UTC')
            clause = table.company == company.id
            if from_date:
                clause &= table.opened_at >= _midnight(from_date, zone)
            if to_date:
                clause &= table.opened_at < _midnight(
                    to_date + dt.timedelta(days=1), zone)
            where |= clause
        return where

    @classmethod
    def table_query(cls):
        "One row per branch, category, priority and assignee"
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        t = Ticket.__table__()
        breached = (t.response_escalation == 'breached') | (
            t.resolution_escalation == 'breached')
        return t.select(
            Min(t.id).as_('id'),
            Literal(0).as_('create_uid'),
            Min(t.create_date).as_('create_date'),
            Literal(None).as_('write_uid'),
            Literal(None).as_('write_date'),
            t.company.as_('company'),
            t.category.as_('category'),
            t.priority.as_('priority'),
            t.assignee.as_('user'),
            Count(t.id).as_('tickets'),
            Count(t.first_response_at).as_('responded'),
            Count(Case((t.first_response_at <= t.response_deadline,
                        t.id))).as_('response_met'),
            Count(t.resolved_at).as_('resolved'),
            Count(Case((t.resolved_at <= t.resolution_deadline,
                        t.id))).as_('resolution_met'),
            Count(Case((breached, t.id))).as_('breached'),
            Count(Case((t.state.in_(list(OPEN_STATES)), t.id))).as_(
                'backlog'),
            # floats on both backends (PostgreSQL averages in numeric)
            cls.response_minutes.sql_cast(Avg(t.response_minutes)).as_(
                'response_minutes'),
            cls.resolution_minutes.sql_cast(Avg(t.resolution_minutes)).as_(
                'resolution_minutes'),
            Count(t.rating).as_('rated'),
            cls.rating.sql_cast(Avg(t.rating)).as_('rating'),
            where=cls._period_where(t),
            group_by=[t.company, t.category, t.priority, t.assignee])

    def get_rate(self, name):
        done, met = {
            'response_rate': (self.responded, self.response_met),
            'resolution_rate': (self.resolved, self.resolution_met),
            }[name]
        return round(met / done, 2) if done else None
