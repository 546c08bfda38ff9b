# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Helpdesk scenarios as the branch groups of Bandung (WIB, office hours)
and Nairobi (07:00-19:00): tickets, SLA clocks, assignment, conversation,
escalation, calendars and who sees what."""
import datetime as dt
import unittest

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_helpdesk.exceptions import (
    CalendarValidationError,
    SlaValidationError,
    TicketReopenError,
    TicketReplyError,
)

from .helpdesk_setup import as_user, hours, local, two_branches

WIB = 'Asia/Jakarta'
CS = 'group_isp_customer_service'
TECH = 'group_isp_technician'
ADMIN = 'group_isp_branch_admin'


def open_ticket(branch, user, now, category='internet', **values):
    pool = Pool()
    Ticket = pool.get('isp.helpdesk.ticket')
    with as_user(user, branch['company'], now):
        ticket, = Ticket.create([{
                    'company': branch['company'].id,
                    'subscriber': branch['subscriber'].id,
                    'category': branch[category].id,
                    'channel': 'phone',
                    'subject': "No internet",
                    **values,
                    }])
    return Ticket(ticket.id)


def post(ticket, user, company, now, body, kind='public'):
    pool = Pool()
    Message = pool.get('isp.helpdesk.ticket.message')
    with as_user(user, company, now):
        message, = Message.create([{
                    'ticket': ticket.id, 'kind': kind, 'body': body}])
    return message


class HelpdeskTestCase(ClassSetupMixin, unittest.TestCase):
    "Test the helpdesk as branch staff"
    setup_modules = ['isp_helpdesk']

    @classmethod
    def setup_class_data(cls):
        return two_branches()

    @with_transaction()
    def test_ticket_lifecycle(self):
        """Customer service opens, technicians are assigned in turn, the
        first public reply is kept, waiting pauses the clock, a priority
        change recomputes it, resolve/close/reopen"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Message = pool.get('isp.message')
        data = self.class_data()
        bdg = data['bdg']
        company = bdg['company']
        cs = bdg['users'][CS]
        tech1, tech2 = bdg['users'][TECH], bdg['tech2']
        monday = local(WIB, 2026, 12, 7, 9, 0)

        ticket = open_ticket(bdg, cs, monday)
        self.assertTrue(ticket.number.startswith('T-'))
        self.assertEqual(ticket.state, 'assigned')
        self.assertEqual(ticket.opened_at, monday)
        # 60 business minutes; 8 h: 09-12, 13-17 Monday and 08-09 Tuesday
        self.assertEqual(ticket.response_deadline,
            local(WIB, 2026, 12, 7, 10, 0))
        self.assertEqual(ticket.resolution_deadline,
            local(WIB, 2026, 12, 8, 9, 0))
        self.assertEqual(ticket.calendar, bdg['calendar'])

        # least loaded, then round-robin on ties
        others = [open_ticket(bdg, cs, monday + dt.timedelta(minutes=i))
            for i in range(1, 4)]
        assignees = [t.assignee for t in [ticket, *others]]
        self.assertEqual(set(assignees), {tech1, tech2})
        self.assertEqual(assignees[0], assignees[2])
        self.assertEqual(assignees[1], assignees[3])
        self.assertNotEqual(assignees[0], assignees[1])
        tech = ticket.assignee

        # the first public reply is the first response, never overwritten
        first = monday + dt.timedelta(minutes=30)
        post(ticket, tech, company, first, "Checking your line")
        post(ticket, cs, company, first + dt.timedelta(minutes=5),
            "Internal", kind='internal')
        post(ticket, cs, company, first + dt.timedelta(minutes=20),
            "Still checking")
        ticket = Ticket(ticket.id)
        self.assertEqual(ticket.first_response_at, first)
        sent = Message.search([('origin', '=', str(ticket))],
            order=[('id', 'ASC')])
        self.assertEqual([m.event for m in sent],
            ['ticket_created', 'ticket_updated', 'ticket_updated'])
        self.assertEqual({m.language.code for m in sent}, {'id'})
        self.assertIn(ticket.number, sent[0].body)
        self.assertIn("Checking your line", sent[1].body)
        self.assertIn("Still checking", sent[2].body)

        # waiting on the customer from Monday 10:00 to Tuesday 10:00
        with as_user(tech, company, local(WIB, 2026, 12, 7, 10, 0)):
            Ticket.wait([ticket])
        with as_user(tech, company, local(WIB, 2026, 12, 8, 10, 0)):
            Ticket.resume([Ticket(ticket.id)])
        ticket = Ticket(ticket.id)
        self.assertEqual(len(ticket.pauses), 1)
        # 7 business hours were left: Tuesday 10-12, 13-17, Wednesday 08-09
        self.assertEqual(ticket.resolution_deadline,
            local(WIB, 2026, 12, 9, 9, 0))

        # a priority change retargets the clock
        with as_user(cs, company, local(WIB, 2026, 12, 8, 11, 0)):
            Ticket.write([ticket], {'priority': 'urgent'})
        ticket = Ticket(ticket.id)
        self.assertEqual(ticket.resolution_target, 120)
        # 120 min: Monday 09-10, then Tuesday 10-11 after the pause
        self.assertEqual(ticket.resolution_deadline,
            local(WIB, 2026, 12, 8, 11, 0))
        self.assertEqual(ticket.first_response_at, first)
        kinds = [a.kind for a in ticket.activities]
        for kind in ['created', 'assignee', 'first_response', 'state',
                'priority', 'sla_recomputed']:
            self.assertIn(kind, kinds)
        priority, = [a for a in ticket.activities if a.kind == 'priority']
        self.assertEqual(priority.user, cs)
        self.assertEqual((priority.old_value, priority.new_value),
            ("Normal", "Urgent"))

        # resolve, close, reopen within the category's days
        resolved = local(WIB, 2026, 12, 8, 15, 0)
        with as_user(tech, company, resolved):
            Ticket.resolve([ticket])
        with as_user(cs, company, resolved):
            Ticket.close([Ticket(ticket.id)])
        with as_user(cs, company, resolved + dt.timedelta(days=8)):
            with self.assertRaises(TicketReopenError):
                Ticket.reopen([Ticket(ticket.id)])
        # the customer writes again within the days: reopened
        with as_user(cs, company, resolved + dt.timedelta(days=2)):
            post(ticket, cs, company, resolved + dt.timedelta(days=2),
                "It broke again", kind='customer')
        self.assertEqual(Ticket(ticket.id).state, 'in_progress')

    @with_transaction()
    def test_reply_closed_refused(self):
        "A category that refuses replies to closed tickets saves nothing"
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        TicketMessage = pool.get('isp.helpdesk.ticket.message')
        data = self.class_data()
        bdg = data['bdg']
        bdg['billing'].closed_reply = 'refuse'
        bdg['billing'].save()
        cs = bdg['users'][CS]
        now = local(WIB, 2026, 12, 7, 9, 0)
        ticket = open_ticket(bdg, cs, now, category='billing')
        with as_user(cs, bdg['company'], now):
            Ticket.resolve([ticket])
        count = TicketMessage.search([], count=True)
        for kind in ['public', 'customer']:
            with self.subTest(kind=kind):
                with self.assertRaises(TicketReplyError) as cm:
                    post(ticket, cs, bdg['company'], now, "Hello", kind=kind)
                self.assertIn(ticket.number, str(cm.exception))
        self.assertEqual(TicketMessage.search([], count=True), count)
        post(ticket, cs, bdg['company'], now, "Note", kind='internal')

    @with_transaction()
    def test_who_sees_what(self):
        """Technicians see their own and their team's tickets; branch staff
        their branch's; nobody another branch's"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        TicketMessage = pool.get('isp.helpdesk.ticket.message')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        now = local(WIB, 2026, 12, 7, 9, 0)
        cs = bdg['users'][CS]
        internet = open_ticket(bdg, cs, now)
        billing = open_ticket(bdg, cs, now, category='billing')
        post(billing, cs, bdg['company'], now, "Billing note",
            kind='internal')
        nairobi = open_ticket(nbo, nbo['users'][CS], now)
        self.assertEqual(billing.assignee, bdg['tech3'])

        def visible(user):
            with as_user(user, bdg['company']):
                return set(Ticket.search([]))
        self.assertEqual(visible(bdg['users'][TECH]), {internet})
        self.assertEqual(visible(bdg['tech2']), {internet})
        self.assertEqual(visible(bdg['tech3']), {billing})
        for group in [CS, ADMIN, 'group_isp_finance']:
            self.assertEqual(visible(bdg['users'][group]),
                {internet, billing}, msg=group)
        with as_user(bdg['tech3'], bdg['company']):
            self.assertEqual(len(TicketMessage.search([])), 1)
        with as_user(bdg['users'][TECH], bdg['company']):
            self.assertEqual(TicketMessage.search([]), [])
            with self.assertRaises(AccessError):
                Ticket.read([billing.id], ['subject'])
        for group in [CS, TECH, ADMIN]:
            with self.subTest(group=group):
                with as_user(bdg['users'][group], bdg['company']):
                    with self.assertRaises(AccessError):
                        Ticket.read([nairobi.id], ['subject'])
                    with self.assertRaises(UserError):
                        Ticket.create([{
                                    'company': bdg['company'].id,
                                    'subscriber': nbo['subscriber'].id,
                                    'category': bdg['internet'].id,
                                    'subject': "Probe",
                                    }])
                    with self.assertRaises(UserError):
                        Ticket.write([internet], {
                                'category': nbo['internet'].id})
        self.assertEqual(Ticket.search([('subject', '=', "Probe")]), [])

    @with_transaction()
    def test_calendar_validation(self):
        """Overlapping or inverted hours and negative targets are refused
        with their message, nothing saved"""
        pool = Pool()
        Calendar = pool.get('isp.helpdesk.calendar')
        Interval = pool.get('isp.helpdesk.calendar.interval')
        Sla = pool.get('isp.helpdesk.sla')
        data = self.class_data()
        bdg = data['bdg']
        admin = bdg['users'][ADMIN]
        calendars = Calendar.search([], count=True)
        cases = [
            (hours(('0', '08:00', '12:00'), ('0', '11:00', '13:00')),
                "overlap"),
            (hours(('1', '17:00', '08:00')), "must start before"),
            ([], "no opening hours"),
            ]
        for intervals, text in cases:
            with self.subTest(text=text):
                with as_user(admin, bdg['company']):
                    with self.assertRaises(CalendarValidationError) as cm:
                        Calendar.create([{
                                    'company': bdg['company'].id,
                                    'name': "Bad", 'timezone': WIB,
                                    'intervals': [('create', intervals)],
                                    }])
                self.assertIn(text, str(cm.exception))
        self.assertEqual(Calendar.search([], count=True), calendars)
        # an existing calendar's hours moved onto another's
        interval = bdg['calendar'].intervals[0]
        with as_user(admin, bdg['company']):
            # midnight closes the day
            Interval.create([{
                        'calendar': bdg['calendar'].id, 'weekday': '6',
                        'start_time': dt.time(20, 0),
                        'end_time': dt.time(0, 0)}])
            with self.assertRaises(CalendarValidationError) as cm:
                Interval.write([interval], {'end_time': dt.time(14, 0)})
            self.assertIn("13:00-17:00", str(cm.exception))
        for field in ['first_response', 'resolution']:
            with self.subTest(field=field):
                with as_user(admin, bdg['company']):
                    with self.assertRaises(SlaValidationError):
                        Sla.create([{
                                    'category': bdg['billing'].id,
                                    'priority': 'urgent',
                                    'first_response': 10,
                                    'resolution': 60,
                                    field: -5,
                                    }])
        self.assertEqual(len(bdg['billing'].slas), 1)

    @with_transaction()
    def test_escalation(self):
        """At risk then breached, raised once each; the assignee and the
        branch administrator notified inside business hours only"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Notification = pool.get('res.notification')
        Workload = pool.get('isp.helpdesk.workload')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        cs = bdg['users'][CS]
        admin = bdg['users'][ADMIN]
        # Friday 16:30: 60 min to respond (at risk after 45 min) = Saturday
        # 08:15 at risk, 08:30 breached
        ticket = open_ticket(bdg, cs, local(WIB, 2026, 12, 4, 16, 30))
        nairobi = open_ticket(nbo, nbo['users'][CS],
            local('Africa/Nairobi', 2026, 12, 5, 8, 0))
        self.assertEqual(ticket.response_risk_at,
            local(WIB, 2026, 12, 5, 8, 15))
        tech = ticket.assignee

        def run(*when):
            with Transaction().set_context(
                    _isp_helpdesk_now=local(WIB, *when)):
                Ticket.escalate()
            return Ticket(ticket.id)

        def notices(user):
            return [(n.label, n.records) for n in Notification.search([
                        ('user', '=', user.id)], order=[('id', 'ASC')])]

        ticket = run(2026, 12, 4, 22, 0)
        self.assertIsNone(ticket.response_escalation)
        ticket = run(2026, 12, 5, 8, 20)
        self.assertEqual(ticket.response_escalation, 'at_risk')
        self.assertEqual(ticket.response_notified, 'at_risk')
        self.assertEqual(len(notices(tech)), 1)
        self.assertEqual(len(notices(admin)), 1)
        self.assertIn(str(ticket.id), notices(admin)[0][1])
        ticket = run(2026, 12, 5, 8, 25)
        self.assertEqual(len(notices(tech)), 1)
        # Sunday: breached, logged, nobody woken up
        ticket = run(2026, 12, 6, 10, 0)
        self.assertEqual(ticket.response_escalation, 'breached')
        self.assertEqual(ticket.response_notified, 'at_risk')
        self.assertEqual(len(notices(tech)), 1)
        ticket = run(2026, 12, 7, 8, 5)
        self.assertEqual(ticket.response_notified, 'breached')
        self.assertEqual(len(notices(tech)), 2)
        self.assertEqual(len(notices(admin)), 2)
        ticket = run(2026, 12, 7, 9, 0)
        self.assertEqual(len(notices(tech)), 2)
        kinds = [a.kind for a in ticket.activities]
        self.assertEqual(kinds.count('response_at_risk'), 1)
        self.assertEqual(kinds.count('response_breached'), 1)
        # Monday 08:00 in Nairobi: its branch opens
        ticket = run(2026, 12, 7, 12, 0)
        self.assertEqual(len(notices(tech)), 2)
        # Nairobi's admin hears of Nairobi's ticket only
        nbo_notices = notices(nbo['users'][ADMIN])
        self.assertTrue(nbo_notices)
        self.assertTrue(all(str(ticket.id) not in r for _, r in nbo_notices))
        self.assertEqual(Ticket(nairobi.id).response_escalation, 'breached')

        # the workload of the branch's technicians
        with as_user(admin, bdg['company']):
            rows = Workload.search([])
            self.assertEqual({r.user for r in rows}, {tech})
            self.assertEqual(rows[0].breached, 1)
            self.assertEqual(rows[0].company, bdg['company'])

    @with_transaction()
    def test_assignment_and_policies(self):
        """Numbers per branch, manual override, a category change and a
        24/7 SLA calendar retarget the clocks; the customer's reply resumes
        a waiting ticket; finance cannot move tickets"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Calendar = pool.get('isp.helpdesk.calendar')
        Sla = pool.get('isp.helpdesk.sla')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company = bdg['company']
        cs = bdg['users'][CS]
        # Saturday 20:00 WIB: the office is closed until Monday 08:00
        night = local(WIB, 2026, 12, 5, 20, 0)
        ticket = open_ticket(bdg, cs, night)
        nairobi = open_ticket(nbo, nbo['users'][CS], night)
        self.assertEqual((ticket.number, nairobi.number),
            ('T-000001', 'T-000001'))
        self.assertEqual(ticket.response_deadline,
            local(WIB, 2026, 12, 7, 9, 0))

        # manual override, and a ticket opened with its assignee
        with as_user(cs, company, night):
            Ticket.write([ticket], {'assignee': bdg['tech3'].id})
        ticket = Ticket(ticket.id)
        self.assertEqual(ticket.assignee, bdg['tech3'])
        change = [a for a in ticket.activities if a.kind == 'assignee'][-1]
        self.assertEqual(change.new_value, bdg['tech3'].rec_name)
        given_ = open_ticket(bdg, cs, night, assignee=bdg['tech2'].id)
        self.assertEqual((given_.state, given_.assignee),
            ('assigned', bdg['tech2']))

        # a category change: the Billing targets (120 min to respond)
        with as_user(cs, company, night):
            Ticket.write([ticket], {'category': bdg['billing'].id})
        ticket = Ticket(ticket.id)
        self.assertEqual(ticket.response_target, 120)
        self.assertEqual(ticket.response_deadline,
            local(WIB, 2026, 12, 7, 10, 0))

        # urgent tickets counted 24/7
        always, = Calendar.create([{
                    'company': company.id, 'name': "24/7",
                    'timezone': WIB, 'always_open': True}])
        urgent, = Sla.search([
                ('category', '=', bdg['internet'].id),
                ('priority', '=', 'urgent')])
        urgent.calendar = always
        urgent.save()
        rush = open_ticket(bdg, cs, night, priority='urgent')
        self.assertEqual(rush.calendar, always)
        self.assertEqual(rush.response_deadline,
            night + dt.timedelta(minutes=15))

        # waiting, then the customer answers
        tech = rush.assignee
        with as_user(tech, company, night):
            Ticket.wait([rush])
        post(rush, cs, company, night + dt.timedelta(hours=1), "Done",
            kind='customer')
        rush = Ticket(rush.id)
        self.assertEqual(rush.state, 'in_progress')
        self.assertEqual(rush.pauses[0].end, night + dt.timedelta(hours=1))
        self.assertEqual(rush.resolution_deadline,
            night + dt.timedelta(hours=3))

        with as_user(bdg['users']['group_isp_finance'], company):
            with self.assertRaises(AccessError):
                Ticket.resolve([rush])
        self.assertEqual(Ticket(rush.id).state, 'in_progress')

    @with_transaction()
    def test_always_open_notifies_at_night_and_attachments(self):
        """A 24/7 SLA calendar escalates and notifies at night; a ticket's
        attachment is its branch's only"""
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Calendar = pool.get('isp.helpdesk.calendar')
        Sla = pool.get('isp.helpdesk.sla')
        Notification = pool.get('res.notification')
        Attachment = pool.get('ir.attachment')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company = bdg['company']
        cs = bdg['users'][CS]
        always, = Calendar.create([{
                    'company': company.id, 'name': "24/7",
                    'timezone': WIB, 'always_open': True}])
        Sla.write(Sla.search([('category', '=', bdg['internet'].id),
                    ('priority', '=', 'urgent')]), {'calendar': always.id})
        night = local(WIB, 2026, 12, 5, 22, 0)
        ticket = open_ticket(bdg, cs, night, priority='urgent')
        with Transaction().set_context(
                _isp_helpdesk_now=night + dt.timedelta(minutes=20)):
            Ticket.escalate()
        ticket = Ticket(ticket.id)
        self.assertEqual(ticket.response_escalation, 'breached')
        self.assertEqual(ticket.response_notified, 'breached')
        self.assertEqual(Notification.search([
                    ('user', '=', ticket.assignee.id)], count=True), 1)

        with as_user(cs, company):
            attachment, = Attachment.create([{
                        'name': 'router.jpg', 'resource': str(ticket),
                        'data': b'\xff\xd8photo'}])
        for group in [CS, TECH]:
            with self.subTest(group=group):
                with as_user(nbo['users'][group], nbo['company']):
                    with self.assertRaises(AccessError):
                        Attachment.read([attachment.id], ['data'])

    @with_transaction()
    def test_registration_work_order(self):
        """Registering a subscriber opens the installation ticket in the
        installation category, assigned to its team"""
        pool = Pool()
        Service = pool.get('isp.service')
        Ticket = pool.get('isp.helpdesk.ticket')
        Location = pool.get('isp.location')
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        Router = pool.get('isp.router')
        data = self.class_data()
        bdg = data['bdg']
        company = bdg['company']
        bdg['billing'].installation = True
        bdg['billing'].save()
        with Transaction().set_context(company=company.id):
            location, = Location.create([{
                        'company': company.id, 'code': 'BDG',
                        'name': "Bandung"}])
            unit, = Uom.search([('name', '=', 'Unit')])
            plan, = Template.create([{
                        'name': "Home 20M", 'isp_plan': True,
                        'type': 'service', 'isp_company': company.id,
                        'default_uom': unit.id,
                        'download_rate': 20000, 'upload_rate': 5000,
                        'products': [('create', [{}])]}])
            router, = Router.create([{
                        'name': "Router BD", 'code': 'BD',
                        'host': '127.0.0.1', 'port': 1, 'use_ssl': False,
                        'api_password': 'x'}])
        cs = bdg['users'][CS]
        # as the Register wizard calls it: the user, no access checks
        with Transaction().set_user(cs.id), Transaction().set_context(
                company=company.id,
                _isp_helpdesk_now=local(WIB, 2026, 12, 7, 9, 0)):
            service = Service.register({
                    'company': company.id, 'name': "Siti Rahma",
                    'location': location.id, 'plan': plan.id,
                    'router': router.id, 'street': "Jl. Dago 12",
                    'city': "Bandung", 'latitude': -6.8915,
                    'longitude': 107.6107})
        ticket, = Ticket.search([('service', '=', service.id)])
        self.assertEqual((ticket.kind, ticket.category, ticket.state),
            ('installation', bdg['billing'], 'assigned'))
        self.assertEqual(ticket.assignee, bdg['tech3'])
        self.assertEqual(ticket.subscriber, service.subscriber)
        # a work order is no support ticket: no notice to the subscriber
        # when it is received or resolved
        with as_user(ticket.assignee, company):
            Ticket.resolve([ticket])
        self.assertEqual(pool.get('isp.message').search(
                [('origin', '=', str(ticket))], count=True), 0)
        self.assertIsNotNone(Ticket(ticket.id).resolution_minutes)
        self.assertIn("Jl. Dago 12", ticket.description)
        self.assertIn("-6.8915, 107.6107", ticket.description)
        self.assertTrue(ticket.number.startswith('T-'))
        self.assertEqual(service.state, 'active')
        self.assertFalse(service.awaiting_installation)

        # the category activates on completion: the service waits, draft
        # (nothing on its router), the work order shows the site
        bdg['billing'].activate_on_completion = True
        bdg['billing'].save()
        photo = b'\x89PNG\r\n\x1a\n house'
        with Transaction().set_user(cs.id), Transaction().set_context(
                company=company.id,
                _isp_helpdesk_now=local(WIB, 2026, 12, 7, 10, 0)):
            waiting = Service.register({
                    'company': company.id, 'name': "Dewi Lestari",
                    'location': location.id, 'plan': plan.id,
                    'router': router.id, 'latitude': -6.9,
                    'longitude': 107.62, 'house_photo': photo})
        self.assertEqual(waiting.state, 'draft')
        self.assertTrue(waiting.awaiting_installation)
        self.assertIsNone(waiting.activation_date)
        self.assertEqual(waiting.router_state, 'synced')
        order, = Ticket.search([('service', '=', waiting.id)])
        self.assertEqual((order.house_photo, order.latitude,
                order.longitude), (photo, -6.9, 107.62))
        self.assertIsNone(Ticket(ticket.id).house_photo)
        with as_user(order.assignee, company):
            Ticket.start([order])
            self.assertEqual(Service(waiting.id).state, 'draft')
            Ticket.resolve([Ticket(order.id)])
        waiting = Service(waiting.id)
        self.assertEqual(waiting.state, 'active')
        self.assertFalse(waiting.awaiting_installation)
        self.assertIsNotNone(waiting.activation_date)
        self.assertEqual(waiting.router_state, 'pending')

    @with_transaction()
    def test_sla_compliance(self):
        "First responses and resolutions in time per technician and branch"
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Compliance = pool.get('isp.helpdesk.sla.compliance')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company = bdg['company']
        cs = bdg['users'][CS]
        monday = local(WIB, 2026, 12, 7, 9, 0)
        fast, slow = [open_ticket(bdg, cs, monday) for _ in range(2)]
        open_ticket(nbo, nbo['users'][CS], monday)
        post(fast, cs, company, monday + dt.timedelta(minutes=30), "On it")
        post(slow, cs, company, monday + dt.timedelta(hours=2), "Sorry")
        with as_user(cs, company, monday + dt.timedelta(hours=1)):
            Ticket.resolve([fast])
        with as_user(bdg['users'][ADMIN], company):
            rows = {r.user: r for r in Compliance.search([])}
        self.assertEqual(set(rows), {fast.assignee, slow.assignee})
        fast_row, slow_row = rows[fast.assignee], rows[slow.assignee]
        self.assertEqual((fast_row.tickets, fast_row.response_rate,
                fast_row.resolution_rate), (1, 1.0, 1.0))
        self.assertEqual((slow_row.tickets, slow_row.response_rate,
                slow_row.resolved, slow_row.resolution_rate),
            (1, 0.0, 0, None))
        self.assertEqual({r.company for r in rows.values()}, {company})

        # times in business minutes, backlog, ratings
        fast, slow = Ticket(fast.id), Ticket(slow.id)
        self.assertEqual((fast.response_minutes, fast.resolution_minutes),
            (30, 60))
        self.assertEqual((slow.response_minutes, slow.resolution_minutes),
            (120, None))
        Ticket.rate(fast, 4, " Fast ")
        for rating in [0, 6, None]:
            with self.assertRaises(UserError):
                Ticket.rate(fast, rating)
        with self.assertRaises(UserError):
            Ticket.rate(Ticket(fast.id), 5)      # once
        with self.assertRaises(UserError):
            Ticket.rate(slow, 5)                 # still open
        with as_user(bdg['users'][ADMIN], company):
            rows = {r.user: r for r in Compliance.search([])}
        fast_row, slow_row = rows[fast.assignee], rows[slow.assignee]
        self.assertEqual((fast_row.backlog, fast_row.response_minutes,
                fast_row.resolution_minutes, fast_row.rated,
                fast_row.rating), (0, 30, 60, 1, 4))
        self.assertEqual((slow_row.backlog, slow_row.response_minutes,
                slow_row.resolution_minutes, slow_row.rated,
                slow_row.rating), (1, 120, None, 0, None))
        self.assertEqual(Ticket(fast.id).rating_comment, "Fast")

        # a period of opening days, in the branch's days: Monday 06:00 WIB
        # is Sunday 23:00 UTC, and on Monday in Bandung
        open_ticket(bdg, cs, local(WIB, 2026, 12, 7, 6, 0))
        for period, count in [
                ({'from_date': dt.date(2026, 12, 7),
                        'to_date': dt.date(2026, 12, 7)}, 3),
                ({'from_date': dt.date(2026, 12, 8)}, 0),
                ({'to_date': dt.date(2026, 12, 6)}, 0)]:
            with self.subTest(period=period):
                with as_user(bdg['users'][ADMIN], company), \
                        Transaction().set_context(period):
                    self.assertEqual(sum(r.tickets
                            for r in Compliance.search([])), count)
