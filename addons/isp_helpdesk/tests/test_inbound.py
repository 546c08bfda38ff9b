# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Inbound WhatsApp through isp_base's provider callback route: a known
subscriber's messages open a ticket then add to it, an unknown number opens
a ticket flagged for staff, STOP opens nothing."""
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from .helpdesk_setup import two_branches


class InboundTestCase(RouteTestCase):
    "Test WhatsApp messages becoming tickets"
    module = 'isp_helpdesk'

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        Lang = pool.get('ir.lang')
        Lang.write(Lang.search([('code', '=', 'id')]), {'active': True})
        data = two_branches()
        bdg = data['bdg']
        provider, = Provider.create([{
                    'name': "Fonnte", 'type': 'whatsapp_token',
                    'company': bdg['company'].id,
                    'base_url': 'http://127.0.0.1:9', 'token': 'token',
                    'capacity': 60, 'timeout': 2}])
        cls.url = '/%s/isp_base/notify/callback/%d/%s' % (
            DB_NAME, provider.id, provider.callback_secret)
        cls.company = bdg['company'].id
        cls.subscriber = bdg['subscriber'].id
        cls.team = {u.id for u in bdg['internet'].team}

    def post(self, sender, text, id_):
        response = self.client().post(self.url, json={
                'device': '6281100000000', 'sender': sender,
                'message': text, 'name': "Budi", 'id': id_})
        self.assertEqual(response.status_code, 200, response.data)

    def test_whatsapp_tickets(self):
        # one line: isp_base's inbound rec_name refuses a line break in
        # the tests' validation of function fields
        self.post('6281234500001', "Internet mati sejak pagi", 'm1')
        self.post('6281234500001', "Lampu LOS merah", 'm2')
        self.post('6281234500001', "Lampu LOS merah", 'm2')  # replayed
        self.post('6289999999999', "Mau pasang baru", 'm3')
        self.post('6281234500001', "STOP", 'm4')
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Inbound = pool.get('isp.message.inbound')
            known, unknown = Ticket.search([], order=[('id', 'ASC')])
            self.assertEqual(known.subscriber.id, self.subscriber)
            self.assertEqual(known.company.id, self.company)
            self.assertEqual((known.channel, known.state), (
                    'whatsapp', 'assigned'))
            self.assertIn(known.assignee.id, self.team)
            self.assertEqual(known.subject, "Internet mati sejak pagi")
            self.assertIsNotNone(known.resolution_deadline)
            self.assertFalse(known.to_review)
            self.assertEqual([(m.kind, m.body) for m in known.messages],
                [('customer', "Lampu LOS merah")])
            self.assertIsNone(unknown.subscriber)
            self.assertTrue(unknown.to_review)
            self.assertEqual(unknown.contact, '+6289999999999')
            inbound = {i.provider_message_id: i for i in Inbound.search([])}
            self.assertEqual(len(inbound), 4)
            self.assertEqual(inbound['m1'].ticket, known)
            self.assertEqual(inbound['m2'].ticket, known)
            self.assertEqual(inbound['m3'].ticket, unknown)
            self.assertEqual((inbound['m4'].ticket, inbound['m4'].state),
                (None, 'new'))

