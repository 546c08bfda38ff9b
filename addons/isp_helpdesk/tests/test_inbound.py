# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Inbound WhatsApp through isp_base's provider callback route: a known
subscriber's messages open a ticket then add to it, an unknown number opens
a ticket flagged for staff, STOP opens nothing.  Inbound e-mails through
Tryton's inbound_email route and a rule of the helpdesk's action."""
from email.message import EmailMessage

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_helpdesk.inbound import EMAIL_ACTION

from .helpdesk_setup import create_subscriber, two_branches

PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 32


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
        # an e-mail subscriber of her own: the WhatsApp one's open ticket
        # takes his messages
        siti, _ = create_subscriber(bdg['company'], "Siti",
            email='Siti_A@Example.com', portal=False)
        cls.siti = siti.id
        Inbox = pool.get('inbound.email.inbox')
        inbox, = Inbox.create([{'name': "Bandung helpdesk", 'rules': [
                        ('create', [{
                                    'destination': r'bantuan@',
                                    'action': EMAIL_ACTION,
                                    'helpdesk_category':
                                    bdg['internet'].id}])]}])
        Inbox.new_identifier([inbox])
        cls.email_url = '/%s/inbound_email/inbox/%s' % (
            DB_NAME, inbox.identifier)

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
            known, unknown = Ticket.search([('channel', '=', 'whatsapp')],
                order=[('id', 'ASC')])
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


    def email(self, sender, subject, text, to='bantuan@bandung.test',
            attachment=None):
        message = EmailMessage()
        message['From'] = 'Budi <%s>' % sender
        message['To'] = to
        message['Subject'] = subject
        message.set_content(text)
        if attachment:
            message.add_attachment(attachment, maintype='image',
                subtype='png', filename='../foto modem.png')
        response = self.client().post(self.email_url,
            data=message.as_bytes())
        self.assertEqual(response.status_code, 204, response.data)

    def test_email_tickets(self):
        """A known subscriber's e-mail opens a ticket (its photo attached),
        their reply citing the number adds to it; an unknown sender's opens
        a ticket To Review, and citing another's number does not reach
        it; an e-mail the rule does not match opens nothing"""
        with self.assertLogs('trytond.wsgi', level='INFO') as logs:
            self.email('siti_a@example.com', "Internet putus",
                "Sejak pagi.\n", attachment=PNG)
        # the inbox's identifier is its credential: not in the access log
        text = '\n'.join(logs.output)
        self.assertIn('/inbound_email/inbox/***', text)
        self.assertNotIn(self.email_url.rsplit('/', 1)[1], text)
        with Transaction().start(DB_NAME, 0):
            Ticket = Pool().get('isp.helpdesk.ticket')
            ticket, = Ticket.search([('channel', '=', 'email')])
            number = ticket.number
        self.email('SITI_A@example.COM', "Re: Tiket %s diperbarui" % number,
            "Sudah saya restart")
        self.email('orang@mail.test', "Mau pasang baru", "Alamat saya...")
        self.email('orang@mail.test', "Re: [%s]" % number, "Halo")
        self.email('siti_a@example.com', "Lain", "Bukan bantuan",
            to='tagihan@bandung.test')
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Ticket = pool.get('isp.helpdesk.ticket')
            Attachment = pool.get('ir.attachment')
            Email = pool.get('inbound.email')
            known, unknown, other = Ticket.search([
                    ('channel', '=', 'email')], order=[('id', 'ASC')])
            self.assertEqual((known.subscriber.id, known.company.id,
                    known.state, known.to_review), (
                    self.siti, self.company, 'assigned', False))
            self.assertIn(known.assignee.id, self.team)
            self.assertEqual((known.subject, known.description),
                ("Internet putus", "Sejak pagi."))
            self.assertEqual([(m.kind, m.body) for m in known.messages],
                [('customer', "Sudah saya restart")])
            attachment, = Attachment.search(
                [('resource', '=', str(known))])
            self.assertEqual((attachment.name, attachment.data),
                ('foto_modem.png', PNG))
            self.assertEqual((unknown.subscriber, unknown.to_review,
                    unknown.contact), (None, True, 'orang@mail.test'))
            self.assertEqual(other.contact, 'orang@mail.test')
            self.assertEqual(other.description, "Halo")
            emails = Email.search([], order=[('id', 'ASC')])
            self.assertEqual([e.result for e in emails],
                [known, known, unknown, other, None])
