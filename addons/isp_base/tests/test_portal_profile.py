# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The profile page of the customer portal: contact data validated as in
the back office, nothing saved on any error, notification opt-outs."""
import unittest.mock

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from .portal_tools import (
    PASSWORD,
    PortalClient,
    create_branch,
    create_subscriber,
)

A_HOST, B_HOST = 'bandung.profile.test', 'nairobi.profile.test'
PROFILE = '/isp_base/portal/profile'


class PortalProfileTestCase(RouteTestCase):
    "The subscriber's profile page"
    module = 'isp_base'

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Country = pool.get('country.country')
        indonesia, kenya = Country.create([
                {'name': "Indonesia", 'code': 'ID'},
                {'name': "Kenya", 'code': 'KE'}])
        a = create_branch("NetKita Bandung", A_HOST, lang='id')
        b = create_branch("NetKita Nairobi", B_HOST, lang='en')
        a.isp_country = indonesia
        a.save()
        b.isp_country = kenya
        b.save()
        siti, _ = create_subscriber(a, "Siti Aminah",
            email='siti@example.com', lang='id', whatsapp='+6281234500001')
        create_subscriber(a, "Budi Santoso", email='budi@example.com')
        create_subscriber(a, "Rina", email='rina@example.com', lang='en')
        john, _ = create_subscriber(b, "John Kamau", email='john@example.com',
            lang='en')
        cls.codes = {p.name: p.subscriber_code for p in [siti, john]}

    def setUp(self):
        super().setUp()
        patcher = unittest.mock.patch(
            'trytond.modules.isp_base.web_user.throttle')
        patcher.start()
        self.addCleanup(patcher.stop)

    def portal(self, host=A_HOST, **kwargs):
        return PortalClient(self.client(), DB_NAME, host, **kwargs)

    def state(self, name):
        """What the profile writes of the subscriber `name`: phone,
        WhatsApp, e-mails (party, web user), language, opt-outs"""
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Party = pool.get('party.party')
            WebUser = pool.get('web.user')
            party, = Party.search([('name', '=', name)])
            with Transaction().set_context(company=party.isp_company.id):
                party = Party(party.id)
                user, = WebUser.search([('party', '=', party.id)])
                return (party.subscriber_phone, party.whatsapp, party.email,
                    user.email, party.lang.code if party.lang else None,
                    tuple(party.notification_opt_outs or ()))

    def form(self, **values):
        data = {'phone': '', 'whatsapp': '', 'email': '', 'lang': 'id',
            'notify_whatsapp': '1', 'notify_sms': '1', 'notify_email': '1'}
        data.update(values)
        return {k: v for k, v in data.items() if v is not None}

    def test_profile_languages(self):
        "The page in the subscriber's language, Indonesian or English"
        client = self.portal()
        client.login('siti@example.com', PASSWORD)
        body = client.get(PROFILE).get_data(as_text=True)
        self.assertIn('lang="id"', body)
        self.assertIn('Kirimi saya pengingat dan pemberitahuan lewat', body)
        self.assertIn('value="+6281234500001"', body)
        self.assertIn('data-nav="profile" aria-current="page"', body)
        client = self.portal(B_HOST)
        client.login('john@example.com', PASSWORD)
        body = client.get(PROFILE).get_data(as_text=True)
        self.assertIn('lang="en"', body)
        self.assertIn('Send me reminders and notices by', body)

    def test_profile_saved(self):
        """National numbers in the branch's country become E.164; the new
        e-mail is the login (the customer ID still logs in); language and
        opt-outs are the party's"""
        client = self.portal()
        client.login('siti@example.com', PASSWORD)
        client.get(PROFILE)
        response = client.post(PROFILE, self.form(phone='0812-3456-7890',
                whatsapp='+62 812 3456 7891', email='Siti.New@Example.com',
                lang='en', notify_whatsapp=None, notify_sms=None))
        self.assertEqual(response.status_code, 303)
        self.assertEqual(self.state("Siti Aminah"), ('+6281234567890',
                '+6281234567891', 'Siti.New@Example.com',
                'siti.new@example.com', 'en', ('sms', 'whatsapp')))
        body = client.get(response.headers['Location']).get_data(
            as_text=True)
        self.assertIn('Your profile is saved.', body)
        self.assertIn('lang="en"', body)
        self.portal().login('siti@example.com', PASSWORD, expect=401)
        self.portal().login('siti.new@example.com', PASSWORD)
        self.portal().login(self.codes["Siti Aminah"], PASSWORD)
        # Nairobi reads national numbers as Kenyan ones; an empty e-mail
        # leaves the login by customer ID
        client = self.portal(B_HOST)
        client.login('john@example.com', PASSWORD)
        client.get(PROFILE)
        response = client.post(PROFILE, self.form(phone='0712 345678',
                lang='en'))
        self.assertEqual(response.status_code, 303)
        self.assertEqual(self.state("John Kamau"),
            ('+254712345678', None, '', None, 'en', ()))
        self.portal(B_HOST).login(self.codes["John Kamau"], PASSWORD)

    def test_profile_refused_saves_nothing(self):
        """A form with one bad field: 400 with the field's message in the
        visitor's language, and none of its other changes saved"""
        before = self.state("Rina")
        good = dict(phone='081234567899', whatsapp='081234567898',
            email='rina.new@example.com', lang='id', notify_email=None)
        cases = [
            ({'phone': 'abc'}, 'phone', 'This phone number is not valid',
                'Nomor telepon ini tidak valid'),
            ({'whatsapp': '+6212'}, 'whatsapp',
                'This phone number is not valid',
                'Nomor telepon ini tidak valid'),
            ({'phone': '+1 555'}, 'phone',
                'This phone number is not valid',
                'Nomor telepon ini tidak valid'),
            ({'email': 'not-an-email'}, 'email',
                'This e-mail address is not valid',
                'Alamat e-mail ini tidak valid'),
            ({'email': 'BUDI@example.com'}, 'email',
                'already used by another account',
                'sudah dipakai akun lain'),
            ({'lang': 'fr'}, 'lang', 'This language is not available',
                'Bahasa ini tidak tersedia'),
            ]
        for bad, field, english, indonesian in cases:
            for language, text in [('en', english), ('id', indonesian)]:
                with self.subTest(bad=bad, language=language):
                    client = self.portal()
                    client.login('rina@example.com', PASSWORD)
                    client.get(PROFILE)
                    client.post('/isp_base/portal/lang', {'lang': language})
                    client.get(PROFILE)
                    response = client.post(PROFILE,
                        self.form(**{**good, **bad}))
                    self.assertEqual(response.status_code, 400)
                    body = response.get_data(as_text=True)
                    self.assertIn('id="%s-error"' % field, body)
                    self.assertIn(text, body)
                    self.assertIn('lang="%s"' % language, body)
                    if field != 'lang':
                        # the visitor's input is kept in the form
                        self.assertIn('value="%s"' % bad[field], body)
                    self.assertEqual(self.state("Rina")[:4], before[:4])
                    self.assertEqual(self.state("Rina")[5], before[5])

    def test_profile_one_transaction(self):
        """A refusal of the models after a first write (the party's) rolls
        the whole form back"""
        before = self.state("Budi Santoso")
        client = self.portal(language='en')
        client.login('budi@example.com', PASSWORD)
        client.get(PROFILE)
        with unittest.mock.patch(
                'trytond.modules.isp_base.web.profile.problems',
                return_value={}):
            response = client.post(PROFILE, self.form(
                    phone='081234567897', email='siti@example.com',
                    lang='en', notify_sms=None))
        self.assertEqual(response.status_code, 400)
        body = response.get_data(as_text=True)
        self.assertIn('Nothing was saved', body)
        self.assertIn('already the login of another portal user', body)
        self.assertEqual(self.state("Budi Santoso"), before)

    def test_profile_refusals(self):
        """Not logged in: to the login page; a POST without the CSRF token:
        403, nothing saved"""
        response = self.portal().get(PROFILE)
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])
        anonymous = self.portal()
        anonymous.get('/isp_base/portal/login')
        response = anonymous.post(PROFILE, self.form(phone='081234567896'))
        self.assertEqual(response.status_code, 303)
        self.assertIn('/isp_base/portal/login', response.headers['Location'])
        before = self.state("Budi Santoso")
        client = self.portal()
        client.login('budi@example.com', PASSWORD)
        client.get(PROFILE)
        response = client.post(PROFILE, self.form(phone='081234567896'),
            csrf=False)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.state("Budi Santoso"), before)

    def test_opt_out_keeps_requested_messages(self):
        """Opted out of every channel on the profile: no reminder is sent,
        a password reset asked for still is"""
        client = self.portal()
        client.login(self.codes["Siti Aminah"], PASSWORD)
        client.get(PROFILE)
        response = client.post(PROFILE, self.form(
                whatsapp='+6281234500001', email='siti@example.com',
                notify_whatsapp=None, notify_sms=None, notify_email=None))
        self.assertEqual(response.status_code, 303)
        reset = self.portal()
        reset.get('/isp_base/portal/reset')
        reset.post('/isp_base/portal/reset',
            {'login': self.codes["Siti Aminah"], 'channel': 'whatsapp'})
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Message = pool.get('isp.message')
            Party = pool.get('party.party')
            siti, = Party.search([('name', '=', "Siti Aminah")])
            with transaction.set_context(company=siti.isp_company.id):
                siti = Party(siti.id)
                reminders = Message.send_events([{
                            'event': event, 'party': siti,
                            'channels': channels,
                            } for event, channels in [
                            ('invoice_reminder', None),
                            ('invoice_reminder', ['email']),
                            ('invoice_overdue', ['whatsapp'])]])
            self.assertEqual({m.state for m in reminders}, {'failed'})
            self.assertTrue(all('opted out' in m.failure_reason
                    for m in reminders))
            resets = Message.search([('event', '=', 'portal_reset'),
                    ('party', '=', siti.id)])
            self.assertEqual([(m.channel, m.recipient) for m in resets],
                [('whatsapp', '+6281234500001')])
            self.assertNotEqual(resets[0].state, 'failed')
            transaction.rollback()

    def test_back_office_same_rules(self):
        """The back office refuses what the profile refuses: a phone that
        is no number of the branch's country, a malformed e-mail (party
        and portal user)"""
        from trytond.exceptions import UserError
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Party = pool.get('party.party')
            Mechanism = pool.get('party.contact_mechanism')
            WebUser = pool.get('web.user')
            budi, = Party.search([('name', '=', "Budi Santoso")])
            user, = WebUser.search([('party', '=', budi.id)])
            with transaction.set_context(company=budi.isp_company.id):
                for model, records, values in [
                        (Party, [budi], {'subscriber_phone': 'abc'}),
                        (Party, [budi], {'whatsapp': '0712 34'}),
                        (WebUser, [user], {'email': 'not-an-email'}),
                        (WebUser, [user], {'email': 'a..b@example.com'}),
                        ]:
                    with self.subTest(values=values), \
                            self.assertRaises(UserError):
                        model.write(records, values)
                    transaction.rollback()
                for value in ['not-an-email', 'budi@example', 'x y@a.com']:
                    with self.subTest(value=value), \
                            self.assertRaises(UserError):
                        Mechanism.create([{'party': budi.id,
                                    'type': 'email', 'value': value}])
                    transaction.rollback()
