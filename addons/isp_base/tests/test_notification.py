# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Notifications against the fake providers, over real HTTP and SMTP.

Sending commits on purpose (a provider's slot is reserved and committed
before the HTTP call), so these tests run in their own database (restored
from the cache for the class and dropped after it), commit, and move time
through the `_isp_notify_now` context key.  Each test starts with every
provider deactivated and works in branches of its own.
"""
import contextlib
import datetime as dt
import itertools
import json
import pathlib
import sys
from collections import Counter, defaultdict
from types import SimpleNamespace

from trytond.model.exceptions import AccessError
from trytond.modules.company.tests import create_company
from trytond.modules.currency.tests import create_currency
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base.exceptions import (
    MessageTemplateValidationError,
)
from trytond.modules.isp_base.notification import BACKOFF, EVENTS

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.fake_messaging import (  # noqa: E402
    FakeAfricasTalking,
    FakeFonnte,
    FakeMeta,
    FakeSMTP,
    meta_inbound_payload,
    meta_signature,
    meta_status_payload,
)

T0 = dt.datetime(2030, 1, 7, 9, 0, 0)
MINUTE = dt.timedelta(minutes=1)
_numbers = itertools.count(1)


def _number(country='62'):
    "A fresh valid mobile number"
    if country == '254':
        return '+2547%08d' % next(_numbers)
    return '+62812%08d' % next(_numbers)


def _snapshot(record):
    "A plain copy of a message and its attempts, usable after the transaction"
    def value(v):
        if hasattr(v, '__name__') and hasattr(v, 'id'):
            return SimpleNamespace(id=v.id)
        return v
    data = {name: value(getattr(record, name)) for name in [
            'id', 'state', 'channel', 'company', 'provider', 'tries',
            'next_attempt', 'failure_reason', 'provider_message_id',
            'sent_at', 'delivered_at', 'body', 'recipient']}
    data['attempts'] = [SimpleNamespace(**{name: value(getattr(a, name))
                for name in ['provider', 'outcome', 'http_status', 'reason',
                    'answer', 'at']}) for a in record.attempts]
    return SimpleNamespace(**data)


class NotificationTestCase(RouteTestCase):
    "Test notifications against the fake providers"
    module = 'isp_base'

    @classmethod
    def setUpClass(cls):
        cls.metas = [
            FakeMeta(token='meta-%d' % i, phone_number_id='10%d' % i).start()
            for i in range(3)]
        cls.fonnte = FakeFonnte(token='fonnte-token').start()
        cls.at = FakeAfricasTalking('sandbox', 'at-key').start()
        cls.smtp = FakeSMTP().start()
        cls.fakes = cls.metas + [cls.fonnte, cls.at, cls.smtp]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for fake in cls.fakes:
            fake.stop()

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Lang = pool.get('ir.lang')
        Lang.write(Lang.search([('code', '=', 'id')]), {'active': True})
        cls.currency = create_currency('idr').id

    def setUp(self):
        super().setUp()
        for fake in self.fakes:
            fake.reset()
            fake.invalid_numbers.clear()
        with self.transaction():
            Provider = Pool().get('isp.message.provider')
            Provider.write(Provider.search([]), {'active': False})

    @contextlib.contextmanager
    def transaction(self, now=None, user=0, **context):
        "A committed transaction at the engine time `now`"
        if now is not None:
            context['_isp_notify_now'] = now
        with Transaction().start(DB_NAME, user, context=context) as t:
            try:
                yield t
            finally:
                t.tasks.clear()

    # -- fixtures ---------------------------------------------------------

    def _branch(self, name, country='ID'):
        pool = Pool()
        Country = pool.get('country.country')
        Currency = pool.get('currency.currency')
        company = create_company(name, currency=Currency(self.currency))
        countries = Country.search([('code', '=', country)])
        if not countries:
            countries = Country.create([{'name': country, 'code': country}])
        company.isp_country = countries[0]
        company.save()
        return company

    def _party(self, company, name="Budi", lang=None, **values):
        pool = Pool()
        Party = pool.get('party.party')
        Lang = pool.get('ir.lang')
        values.setdefault('whatsapp', _number())
        email = values.pop('email', None)
        party, = Party.create([{
                    'name': name, 'is_subscriber': True,
                    'isp_company': company.id,
                    'lang': Lang.get(lang).id if lang else None,
                    'contact_mechanisms': [('create', [{
                                    'type': 'email', 'value': email}])]
                    if email else [],
                    **values}])
        return party

    def _meta(self, fake, company=None, capacity=60, priority=10, **values):
        Provider = Pool().get('isp.message.provider')
        provider, = Provider.create([{
                    'name': 'Meta %s' % fake.phone_number_id,
                    'type': 'whatsapp_meta',
                    'company': company.id if company else None,
                    'base_url': fake.url + '/v21.0',
                    'account': fake.phone_number_id,
                    'token': fake.token,
                    'capacity': capacity,
                    'priority': priority,
                    'timeout': 2,
                    **values}])
        return provider

    def _provider(self, type_, url, company=None, **values):
        Provider = Pool().get('isp.message.provider')
        provider, = Provider.create([{
                    'name': type_, 'type': type_,
                    'company': company.id if company else None,
                    'base_url': url, 'capacity': 60, 'timeout': 2,
                    **values}])
        return provider

    def _send(self, party, event='invoice_issued', count=1, **kwargs):
        Message = Pool().get('isp.message')
        values = dict(EVENTS[event][1])
        return Message.send_events([{
                    'event': event, 'party': party, 'values': values,
                    **kwargs} for _ in range(count)])

    def _process(self, ids, now):
        "Process messages as a worker would, at `now`; return snapshots"
        with self.transaction(now=now):
            Message = Pool().get('isp.message')
            Message.process(Message.browse(ids))
        with self.transaction(now=now):
            Message = Pool().get('isp.message')
            return [_snapshot(m) for m in Message.browse(ids)]

    def _assert_window(self, provider_ids):
        "Never more attempts than the capacity in any minute"
        with self.transaction():
            pool = Pool()
            Attempt = pool.get('isp.message.attempt')
            Provider = pool.get('isp.message.provider')
            for provider in Provider.browse(provider_ids):
                times = sorted(a.at for a in Attempt.search(
                        [('provider', '=', provider.id)]))
                for at in times:
                    used = sum(at - MINUTE < t <= at for t in times)
                    self.assertLessEqual(used, provider.capacity,
                        msg=provider.name)

    # -- "Done when" ------------------------------------------------------

    def test_capacity_split(self):
        "3 providers of 10, 20, 30/min: capacities hold, the rest waits"
        with self.transaction(now=T0):
            branch = self._branch("Capacity")
            providers = [self._meta(fake, branch, capacity=capacity)
                for fake, capacity in zip(
                    self.metas, [10, 20, 30], strict=True)]
            provider_ids = [p.id for p in providers]
            parties = [self._party(branch, "P%d" % i) for i in range(5)]
            ids = [m.id for p in parties for m in self._send(p, count=10)]
        messages = self._process(ids, T0)
        self.assertEqual(Counter(m.state for m in messages), {'sent': 50})
        counts = Counter(m.provider.id for m in messages)
        # the lowest usage ratio first: the split follows the capacities
        for provider_id, expected in zip(
                provider_ids, [50 / 6, 50 / 3, 25], strict=True):
            self.assertLessEqual(abs(counts[provider_id] - expected), 1)
        self.assertEqual(
            [len(f.messages) for f in self.metas],
            [counts[i] for i in provider_ids])

        # 30 more within the same minute: 10 fit, 20 wait for the next one
        with self.transaction(now=T0 + dt.timedelta(seconds=10)):
            Party = Pool().get('party.party')
            more = [m.id for p in Party.browse([p.id for p in parties[:3]])
                for m in self._send(p, count=10)]
        messages = self._process(more, T0 + dt.timedelta(seconds=10))
        states = Counter(m.state for m in messages)
        self.assertEqual(states, {'sent': 10, 'queued': 20})
        self.assertEqual([len(f.messages) for f in self.metas], [10, 20, 30])
        waiting = [m for m in messages if m.state == 'queued']
        for message in waiting:
            self.assertEqual(message.next_attempt,
                T0 + MINUTE + dt.timedelta(milliseconds=1))
            self.assertEqual(message.tries, 0)
            self.assertFalse(message.attempts)

        # nothing goes before its time, everything goes after
        waiting_ids = [m.id for m in waiting]
        early = self._process(waiting_ids, T0 + dt.timedelta(seconds=30))
        self.assertEqual({m.state for m in early}, {'queued'})
        later = self._process(waiting_ids, T0 + dt.timedelta(seconds=61))
        self.assertEqual({m.state for m in later}, {'sent'})
        self.assertEqual(sum(len(f.messages) for f in self.metas), 80)
        self._assert_window(provider_ids)

    def test_failover(self):
        "A failing provider makes the message go through another one"
        with self.transaction(now=T0):
            branch = self._branch("Failover")
            first = self._meta(self.metas[0], branch, priority=1)
            second = self._meta(self.metas[1], branch, priority=2)
            party = self._party(branch)
            ids = [m.id for m in self._send(party, count=3)]
        self.metas[0].fail(1, status=500)
        self.metas[0].time_out(1, seconds=2.5)
        self.metas[0].rate_limit(1, retry_after=120)
        messages = self._process(ids, T0)
        self.assertEqual({m.state for m in messages}, {'sent'})
        self.assertEqual({m.provider.id for m in messages}, {second.id})
        outcomes = [[(a.provider.id, a.outcome) for a in m.attempts]
            for m in messages]
        self.assertEqual(outcomes, [
                [(first.id, 'provider'), (second.id, 'sent')],
                [(first.id, 'provider'), (second.id, 'sent')],
                [(first.id, 'rate_limited'), (second.id, 'sent')],
                ])
        self.assertEqual(messages[0].attempts[0].http_status, 500)
        self.assertIn('time-out', messages[1].attempts[0].reason)
        self.assertIn('130429', messages[2].attempts[0].answer)
        with self.transaction():
            Provider = Pool().get('isp.message.provider')
            self.assertEqual(Provider(first.id).paused_until,
                T0 + dt.timedelta(seconds=120))
        self.assertEqual(len(self.metas[1].messages), 3)

    def test_backoff_then_failed(self):
        "Rounds where every provider fails back off 1, 2, 4, 8, 16 min"
        with self.transaction(now=T0):
            branch = self._branch("Backoff")
            self._meta(self.metas[0], branch)
            self._meta(self.metas[1], branch)
            message_id, = [m.id for m in self._send(self._party(branch))]
        for fake in self.metas[:2]:
            fake.fail(None, status=503)
        now = T0
        for tries, minutes in enumerate(BACKOFF, 1):
            message, = self._process([message_id], now)
            self.assertEqual(message.state, 'queued')
            self.assertEqual(message.tries, tries)
            self.assertEqual(message.next_attempt,
                now + dt.timedelta(minutes=minutes))
            now = message.next_attempt
        message, = self._process([message_id], now)
        self.assertEqual(message.state, 'failed')
        self.assertEqual(message.tries, len(BACKOFF) + 1)
        self.assertEqual(len(message.attempts), 2 * (len(BACKOFF) + 1))
        self.assertTrue(message.failure_reason)
        # a failed message is not retried by the workers, only on request
        message, = self._process([message_id], now + dt.timedelta(hours=1))
        self.assertEqual(len(message.attempts), 12)
        for fake in self.metas[:2]:
            fake.clear_faults()
        with self.transaction(now=now):
            Message = Pool().get('isp.message')
            Message.retry([Message(message_id)])
        message, = self._process([message_id], now)
        self.assertEqual(message.state, 'sent')

    def test_invalid_number(self):
        "An invalid number fails at once with its reason, never retried"
        with self.transaction(now=T0):
            branch = self._branch("Invalid")
            self._meta(self.metas[0], branch, priority=1)
            self._meta(self.metas[1], branch, priority=2)
            party = self._party(branch)
            number = party.whatsapp
            message_id, = [m.id for m in self._send(party)]
        for fake in self.metas:
            fake.invalid_numbers.add(number.lstrip('+'))
        message, = self._process([message_id], T0)
        self.assertEqual(message.state, 'failed')
        self.assertIn('131026', message.failure_reason)
        self.assertIn('Undeliverable', message.failure_reason)
        self.assertEqual(len(message.attempts), 1)
        self.assertEqual(message.attempts[0].outcome, 'recipient')
        self.assertIsNone(message.next_attempt)
        message, = self._process([message_id], T0 + dt.timedelta(hours=1))
        self.assertEqual(len(message.attempts), 1)
        self.assertEqual(sum(len(f.requests) for f in self.metas), 1)

    def test_invalid_number_sms(self):
        "An SMS refused as InvalidPhoneNumber fails at once"
        with self.transaction(now=T0):
            branch = self._branch("Nairobi", country='KE')
            self._provider('sms_africastalking', self.at.url, branch,
                account='sandbox', token='at-key')
            party = self._party(branch, whatsapp=None,
                subscriber_phone=_number('254'))
            number = party.subscriber_phone
            message_id, = [m.id for m in self._send(party)]
        self.at.invalid_numbers.add(number.lstrip('+'))
        message, = self._process([message_id], T0)
        self.assertEqual(message.channel, 'sms')
        self.assertEqual(message.state, 'failed')
        self.assertIn('InvalidPhoneNumber', message.failure_reason)
        self.assertEqual(len(self.at.requests), 1)

    def test_branch_and_central(self):
        "A branch with its own provider never uses the central one"
        with self.transaction(now=T0):
            own = self._branch("Own")
            other = self._branch("Without")
            central = self._meta(self.metas[0], capacity=100)
            branch_provider = self._meta(self.metas[1], own, capacity=2)
            own_ids = [m.id for m in self._send(self._party(own), count=3)]
            other_ids = [m.id for m in self._send(
                    self._party(other), count=3)]
        messages = self._process(own_ids + other_ids, T0)
        by_company = defaultdict(Counter)
        for message in messages:
            by_company[message.company.id][
                (message.state, message.provider.id
                    if message.provider else None)] += 1
        # the branch's provider is full: the third waits, never central
        self.assertEqual(by_company[own.id], {
                ('sent', branch_provider.id): 2,
                ('queued', None): 1,
                })
        self.assertEqual(by_company[other.id], {('sent', central.id): 3})
        # nor when the branch's provider fails
        self.metas[1].fail(None)
        message, = self._process(own_ids[2:], T0 + 2 * MINUTE)
        self.assertEqual(message.state, 'queued')
        self.assertEqual(
            {a.provider.id for a in message.attempts}, {branch_provider.id})
        self.assertEqual(len(self.metas[0].messages), 3)

    # -- templates, channels, opt-out -------------------------------------

    def test_shipped_templates(self):
        "Every event has an Indonesian and an English template that renders"
        with self.transaction():
            Template = Pool().get('isp.message.template')
            templates = Template.search([('company', '=', None)])
            found = {(t.event, t.language.code) for t in templates}
            for event in EVENTS:
                for code in ['id', 'en']:
                    self.assertIn((event, code), found)
            for template in templates:
                template.check_render()

    def test_language_and_branch_template(self):
        "Messages use the party's language and the branch's own template"
        with self.transaction(now=T0):
            pool = Pool()
            Template = pool.get('isp.message.template')
            Lang = pool.get('ir.lang')
            branch = self._branch("Templates")
            self._meta(self.metas[0], branch)
            indonesian = self._party(branch, "Siti", lang='id')
            english = self._party(branch, "John", lang='en')
            message_id, = self._send(indonesian)
            message_en, = self._send(english)
            self.assertIn("tagihan INV/2026/00042", message_id.body)
            self.assertIn("Halo Siti", message_id.body)
            self.assertIn("invoice INV/2026/00042", message_en.body)
            Template.create([{
                        'company': branch.id, 'event': 'invoice_issued',
                        'language': Lang.get('id').id,
                        'body': "Tagihan {invoice_number}: {amount}"}])
            message, = self._send(indonesian)
            self.assertEqual(
                message.body, "Tagihan INV/2026/00042: Rp 150.000")

    def test_notice_language(self):
        """A notice's language (its template and its values' formats): the
        party's, else its branch's (the branch party's, else Indonesian in
        Indonesia and English elsewhere), never the staff user's"""
        with self.transaction(language='en') as transaction:
            pool = Pool()
            Message = pool.get('isp.message')
            Lang = pool.get('ir.lang')
            Party = pool.get('party.party')
            bandung = self._branch("Lang Bandung")
            nairobi = self._branch("Lang Nairobi", country='KE')
            for branch, lang, code in [
                    (bandung, None, 'id'), (bandung, 'en', 'en'),
                    (nairobi, None, 'en'), (nairobi, 'id', 'id')]:
                party = self._party(branch, lang=lang)
                with self.subTest(branch=branch.rec_name, lang=lang):
                    self.assertEqual(
                        Message.notice_language(party, branch).code, code)
                    # the party's branch when none is given
                    self.assertEqual(
                        Message.notice_language(party).code, code)
            Party.write([nairobi.party], {'lang': Lang.get('id').id})
            party = self._party(nairobi)
            self.assertEqual(Message.notice_language(party).code, 'id')
            self.assertEqual(Lang.get('id').strftime(
                    dt.date(2026, 11, 13)), '13/11/2026')
            transaction.rollback()

    def test_template_checked_at_save(self):
        "A template that does not render is refused when saved"
        with self.transaction():
            pool = Pool()
            Template = pool.get('isp.message.template')
            Lang = pool.get('ir.lang')
            for body in [
                    "Hello {nme}", "Hello {name.__class__}", "Hello {0}",
                    "Hello {name", "Hello {name!r}", "{amount:%d}"]:
                with self.subTest(body=body):
                    with self.assertRaises(MessageTemplateValidationError):
                        Template.create([{
                                    'event': 'invoice_issued',
                                    'language': Lang.get('en').id,
                                    'body': body}])
            Template.create([{'event': 'invoice_issued',
                        'language': Lang.get('en').id,
                        'body': "Hi {name}, {{literal}} {amount:>12}"}])
            Transaction().rollback()

    def test_opt_out_and_channels(self):
        "Opted-out channels fail at once; the default channel skips them"
        with self.transaction(now=T0):
            branch = self._branch("Opt-out")
            self._meta(self.metas[0], branch)
            self._provider('email', self.smtp.url, branch,
                sender='billing@isp.example')
            party = self._party(branch, email='budi@example.com',
                notification_opt_outs=['whatsapp'])
            refused, = self._send(party, channels=['whatsapp'])
            self.assertEqual(refused.state, 'failed')
            self.assertIn("opted out", refused.failure_reason)
            self.assertFalse(refused.attempts)
            chosen, = self._send(party)
            self.assertEqual(chosen.channel, 'email')
            self.assertEqual(chosen.recipient, 'budi@example.com')
            # an Indonesian branch speaks Indonesian by default
            self.assertEqual(chosen.subject, "Tagihan INV/2026/00042")
            chosen_id = chosen.id
            nobody = self._party(branch, "Nobody", whatsapp=None)
            missing, = self._send(nobody, channels=['sms'])
            self.assertEqual(missing.state, 'failed')
            self.assertIn("no SMS", missing.failure_reason)
        message, = self._process([chosen_id], T0)
        self.assertEqual(message.state, 'sent')
        self.assertEqual(len(self.smtp.messages), 1)
        self.assertIn("INV/2026/00042", self.smtp.messages[0]['text'])
        self.assertFalse(self.metas[0].requests)

    def test_token_gateway_and_callback(self):
        "Fonnte style: sent with the token, statuses and replies come back"
        with self.transaction(now=T0):
            branch = self._branch("Fonnte")
            provider = self._provider('whatsapp_token', self.fonnte.url,
                branch, token='fonnte-token')
            party = self._party(branch)
            number = party.whatsapp
            message_id, = [m.id for m in self._send(party)]
            provider_id, secret = provider.id, provider.callback_secret
        message, = self._process([message_id], T0)
        self.assertEqual(message.state, 'sent')
        request = self.fonnte.requests[0]
        self.assertEqual(request.headers['Authorization'], 'fonnte-token')
        self.assertEqual(request.data['target'], number[1:])
        url = '/%s/isp_base/notify/callback/%d/%s' % (
            DB_NAME, provider_id, secret)
        client = self.client()
        response = client.post(url + 'x', json={'id': '1', 'status': 'read'})
        self.assertEqual(response.status_code, 403)
        response = client.post(url, json={
                'device': '6281100000000', 'id': message.provider_message_id,
                'stateid': 'x', 'status': 'read', 'state': 'read'})
        self.assertEqual(response.status_code, 200, response.data)
        response = client.post(url, json={
                'device': '6281100000000', 'sender': number[1:],
                'message': "Internet mati", 'name': "Budi"})
        self.assertEqual(response.status_code, 200)
        with self.transaction():
            pool = Pool()
            Message = pool.get('isp.message')
            Inbound = pool.get('isp.message.inbound')
            self.assertEqual(Message(message_id).state, 'read')
            inbound, = Inbound.search([('provider', '=', provider_id)])
            self.assertEqual(inbound.party.id, party.id)
            self.assertEqual(inbound.company.id, branch.id)
            self.assertEqual(inbound.text, "Internet mati")
            self.assertEqual(Inbound(sender='+6281', text="Halo,\n\n"
                    "internet  mati\r\nsejak pagi").get_rec_name(None),
                '+6281: Halo, internet mati sejak pagi')

    # -- Meta webhook -----------------------------------------------------

    def test_meta_webhook(self):
        "Verification, signed inbound messages, statuses, STOP"
        with self.transaction(now=T0):
            branch = self._branch("Webhook")
            provider = self._meta(self.metas[0], branch,
                app_secret='app-secret', verify_token='verify-me')
            party = self._party(branch)
            number = party.whatsapp
            message_id, = [m.id for m in self._send(party)]
            provider_id = provider.id
        message, = self._process([message_id], T0)
        url = '/%s/isp_base/notify/meta/%d' % (DB_NAME, provider_id)
        client = self.client()

        response = client.get(url, query_string={'hub.mode': 'subscribe',
                'hub.verify_token': 'verify-me',
                'hub.challenge': '1158201444'})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.data, b'1158201444')
        response = client.get(url, query_string={'hub.mode': 'subscribe',
                'hub.verify_token': 'wrong', 'hub.challenge': '1'})
        self.assertEqual(response.status_code, 403)

        def post(payload, secret='app-secret'):
            body = json.dumps(payload).encode()
            return client.post(url, data=body, headers={
                    'Content-Type': 'application/json',
                    'X-Hub-Signature-256': meta_signature(body, secret)})

        inbound = meta_inbound_payload(self.metas[0].phone_number_id,
            number, "Halo, internet saya mati", name="Budi",
            message_id='wamid.IN1')
        self.assertEqual(post(inbound, secret='forged').status_code, 403)
        self.assertEqual(client.post(url, json=inbound).status_code, 403)
        self.assertEqual(post(inbound).status_code, 200)
        self.assertEqual(post(inbound).status_code, 200)  # replayed
        for status in ['delivered', 'sent', 'read']:
            self.assertEqual(post(meta_status_payload(
                        self.metas[0].phone_number_id,
                        message.provider_message_id, number,
                        status)).status_code, 200)
        self.assertEqual(post(meta_inbound_payload(
                    self.metas[0].phone_number_id, number, "STOP",
                    message_id='wamid.IN2')).status_code, 200)
        with self.transaction():
            pool = Pool()
            Message = pool.get('isp.message')
            Inbound = pool.get('isp.message.inbound')
            Party = pool.get('party.party')
            message = Message(message_id)
            self.assertEqual(message.state, 'read')
            self.assertTrue(message.delivered_at)
            received = Inbound.search([('provider', '=', provider_id)],
                order=[('id', 'ASC')])
            self.assertEqual([r.text for r in received],
                ["Halo, internet saya mati", "STOP"])
            self.assertEqual(received[0].party.id, party.id)
            self.assertEqual(received[0].sender_name, "Budi")
            self.assertIn('wamid.IN1', received[0].raw)
            self.assertEqual(
                Party(party.id).notification_opt_outs, ('whatsapp',))

        # an undeliverable status after sending fails the message
        with self.transaction(now=T0):
            Party = Pool().get('party.party')
            Party.write([Party(party.id)], {'notification_opt_outs': []})
            message_id, = [m.id for m in self._send(Party(party.id))]
        message, = self._process([message_id], T0)
        self.assertEqual(message.state, 'sent')
        self.assertEqual(post(meta_status_payload(
                    self.metas[0].phone_number_id,
                    message.provider_message_id, number, 'failed',
                    131026)).status_code, 200)
        with self.transaction():
            message = Pool().get('isp.message')(message_id)
            self.assertEqual(message.state, 'failed')
            self.assertIn('131026', message.failure_reason)

    def test_access_as_staff(self):
        "Credentials for administrators; branch admins own their providers"
        with self.transaction(now=T0):
            pool = Pool()
            User = pool.get('res.user')
            ModelData = pool.get('ir.model.data')
            branch = self._branch("Secrets")
            other = self._branch("Elsewhere")
            own_id = self._meta(self.metas[0], branch).id
            central_id = self._meta(self.metas[1]).id
            other_id = self._meta(self.metas[2], other).id
            party_id = self._party(branch).id
            users = {}
            for group in ['group_isp_customer_service',
                    'group_isp_branch_admin']:
                user, = User.create([{
                            'name': group, 'login': group + str(branch.id),
                            'companies': [('add', [branch.id])],
                            'company': branch.id,
                            'groups': [('add', [
                                        ModelData.get_id('isp_base', group)])],
                            }])
                users[group] = user.id
        with self.transaction(now=T0, company=branch.id):
            Message = Pool().get('isp.message')
            message_id, = [m.id for m in Message.send_event(
                    'invoice_issued', Pool().get('party.party')(party_id),
                    values=EVENTS['invoice_issued'][1])]

        with self.transaction(user=users['group_isp_customer_service']), \
                Transaction().set_context(_check_access=True):
            pool = Pool()
            Provider = pool.get('isp.message.provider')
            Message = pool.get('isp.message')
            self.assertEqual(
                sorted(p.id for p in Provider.search([])),
                sorted([own_id, central_id]))
            Provider.read([own_id], ['name', 'capacity'])
            for field in ['token', 'app_secret', 'webhook_url']:
                with self.assertRaises(AccessError):
                    Provider.read([own_id], [field])
            with self.assertRaises(AccessError):
                Provider.write([Provider(own_id)], {'capacity': 5})
            # customer service sees and cancels the branch's messages
            message, = Message.search([('id', '=', message_id)])
            Message.cancel([message])
            self.assertEqual(message.state, 'cancelled')

        with self.transaction(user=users['group_isp_branch_admin']), \
                Transaction().set_context(_check_access=True):
            Provider = Pool().get('isp.message.provider')
            token, = Provider.read([own_id], ['token'])
            self.assertEqual(token['token'], self.metas[0].token)
            Provider.write([Provider(own_id)], {'capacity': 5})
            with self.assertRaises(AccessError):
                Provider.write([Provider(central_id)], {'capacity': 5})
            with self.assertRaises(AccessError):
                Provider.read([other_id], ['name'])

    def test_cron_sends_due_messages(self):
        "Without workers, the cron sends the queued messages when due"
        with self.transaction(now=T0):
            branch = self._branch("Cron")
            self._meta(self.metas[0], branch)
            message_id, = [m.id for m in self._send(self._party(branch))]
        with self.transaction(now=T0 - MINUTE):
            Message = Pool().get('isp.message')
            Message.send_due()
        with self.transaction(now=T0):
            Message = Pool().get('isp.message')
            self.assertEqual(Message(message_id).state, 'queued')
            Message.send_due()
        with self.transaction():
            Message = Pool().get('isp.message')
            self.assertEqual(Message(message_id).state, 'sent')


del RouteTestCase
