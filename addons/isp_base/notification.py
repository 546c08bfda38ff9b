# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Notifications: providers, templates, the message log and its sending.

Every module notifies through one call::

    Message = Pool().get('isp.message')
    Message.send_event('invoice_issued', party, values={...}, origin=invoice)

which renders the event's template in the party's language, writes one
`isp.message` per channel and hands them to `ir.queue`.  Workers pick a
provider (the branch's own active ones for the channel, else the central
ones; the lowest usage ratio over the last minute, never above capacity),
fail over on error and retry with backoff.  See docs/notifications.md.
"""
import datetime as dt
import logging
import random
import secrets
import time
import urllib.parse
from collections import defaultdict, namedtuple

import trytond.config as config
from sql import Column
from sql.aggregate import Count, Min
from sql.functions import CurrentTimestamp
from trytond import backend
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    Workflow,
    fields,
)
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from . import messaging, metrics
from .common import InputGuardMixin, SecretDefaultsMixin
from .exceptions import (
    MessageCompanyError,
    MessageTemplateValidationError,
    ProviderValidationError,
)
from .validation import normalize_phone

logger = logging.getLogger(__name__)

CHANNELS = [
    ('whatsapp', "WhatsApp"),
    ('sms', "SMS"),
    ('email', "E-mail"),
    ]
#: The order in which a channel is chosen when the caller names none.
CHANNEL_PREFERENCE = ['whatsapp', 'sms', 'email']
PROVIDER_TYPES = [
    ('whatsapp_meta', "WhatsApp Cloud API (Meta)"),
    ('whatsapp_token', "WhatsApp token gateway (Fonnte style)"),
    ('sms_africastalking', "SMS (Africa's Talking style)"),
    ('email', "E-mail (SMTP)"),
    ]
TYPE_CHANNEL = {
    'whatsapp_meta': 'whatsapp',
    'whatsapp_token': 'whatsapp',
    'sms_africastalking': 'sms',
    'email': 'email',
    }
#: Minutes to wait after the 1st, 2nd... failed round; then failed.
BACKOFF = [1, 2, 4, 8, 16]
WINDOW = dt.timedelta(minutes=1)
#: A message left 'sending' this long (its worker died) is sent again.
STALE_SENDING = dt.timedelta(minutes=10)
QUEUE_NAME = 'isp_message'
QUEUE_BATCH = 10
STATUS_RANK = {'sent': 1, 'delivered': 2, 'read': 3}
#: Events the party asked for (a password reset link): sent even on the
#: channels the party opted out of, which stop reminders and notices only.
REQUESTED_EVENTS = {'portal_reset'}
OPT_OUT_WORDS = {'STOP', 'BERHENTI', 'UNSUBSCRIBE'}
OPT_IN_WORDS = {'START', 'MULAI', 'SUBSCRIBE'}

#: Values every template may use, with the sample used to check templates.
COMMON_VALUES = {
    'name': "Budi Santoso",
    'subscriber_code': "S000123",
    'company': "NetKita Cabang Bandung",
    }
_INVOICE = {
    'invoice_number': "INV/2026/00042",
    'amount': "Rp 150.000",
    'due_date': "10/12/2026",
    'pay_url': "https://pay.example.com/i/42",
    }
#: event: (label, {value name: sample})
EVENTS = {
    'welcome': ("Welcome with credentials", {
            'username': "CKP000123", 'password': "s3cret",
            'plan': "Home 20M", 'portal_url': "https://my.example.com"}),
    'invoice_issued': ("Invoice issued", dict(_INVOICE)),
    'invoice_reminder': ("Reminder before the due date", {
            **_INVOICE, 'days': 3}),
    'invoice_overdue': ("Reminder after the due date", {
            **_INVOICE, 'days_overdue': 2}),
    'service_isolated': ("Service isolated", {
            **_INVOICE, 'plan': "Home 20M"}),
    'payment_received': ("Payment received", {
            'amount': "Rp 150.000", 'invoice_number': "INV/2026/00042",
            'payment_date': "08/12/2026"}),
    'service_reconnected': ("Service reconnected", {'plan': "Home 20M"}),
    'voucher_delivered': ("Voucher delivered", {
            'voucher_code': "K7PX-9QRT", 'profile': "1 day 5M",
            'validity': "24 hours", 'login_url': "http://hotspot.example"}),
    'ticket_created': ("Ticket created", {
            'ticket_number': "T-000321", 'subject': "No internet"}),
    'ticket_updated': ("Ticket updated", {
            'ticket_number': "T-000321", 'subject': "No internet",
            'status': "In progress", 'comment': "Technician on the way"}),
    'portal_reset': ("Portal password reset", {
            'url': "https://my.example.com/isp/isp_base/portal/password"
            "?token=4f1c", 'hours': "24"}),
    'portal_invite': ("Portal invitation", {
            'url': "https://my.example.com/isp/isp_base/portal/password"
            "?token=4f1c", 'days': "7"}),
    'ticket_resolved': ("Ticket resolved", {
            'ticket_number': "T-000321", 'subject': "No internet",
            'rating_url': "https://my.example.com/t/321"}),
    }


def _now():
    """The current time of the notification engine (UTC, naive).

    Tests set the `_isp_notify_now` context key to move time; clients cannot
    (keys starting with '_' are stripped from RPC contexts)."""
    return (Transaction().context.get('_isp_notify_now')
        or dt.datetime.now())


def _timestamp(value):
    "A timestamp read by SQL: SQLite answers aggregates as text"
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _credential(string, help):
    return fields.Char(string, strip=True, help=help)


class MessageProvider(InputGuardMixin,
        SecretDefaultsMixin, DeactivableMixin, ModelSQL, ModelView):
    "Message Provider"
    __name__ = 'isp.message.provider'
    #: The fields holding credentials, masked wherever a provider's answer
    #: is kept or logged (listed, not guessed from their names).
    CREDENTIAL_FIELDS = ('token', 'app_secret', 'verify_token',
        'callback_secret')

    name = fields.Char("Name", required=True)
    company = fields.Many2One(
        'company.company', "Company", ondelete='RESTRICT',
        help="The branch that uses the provider.\n"
        "Leave empty for a central provider: branches without active "
        "providers of their own for the channel use the central ones.")
    type = fields.Selection(PROVIDER_TYPES, "Type", required=True)
    channel = fields.Function(
        fields.Selection(CHANNELS, "Channel"),
        'on_change_with_channel', searcher='search_channel')
    capacity = fields.Integer(
        "Capacity", required=True,
        domain=[('capacity', '>', 0)],
        help="The most messages the provider may take per minute.")
    priority = fields.Integer(
        "Priority", required=True,
        help="Between providers equally used, the lowest number is "
        "chosen first.")
    base_url = fields.Char(
        "Base URL", strip=True,
        help="The API root (e.g. https://graph.facebook.com/v21.0, "
        "https://api.fonnte.com, https://api.africastalking.com) or, for "
        "e-mail, an SMTP URI (smtp://host:25); empty for the default.")
    account = fields.Char(
        "Account", strip=True,
        states={'required': Eval('type').in_(
                ['whatsapp_meta', 'sms_africastalking'])},
        help="Meta: the phone number ID; Africa's Talking: the username.")
    sender = fields.Char(
        "Sender", strip=True,
        help="E-mail: the From address; SMS: the sender ID or short code.")
    token = _credential(
        "Token", "The access token, API key or device token.")
    app_secret = _credential(
        "App Secret", "Meta: the app secret that signs the webhooks.")
    verify_token = _credential(
        "Verify Token", "Meta: the token echoed when the webhook is "
        "verified.")
    callback_secret = _credential(
        "Callback Secret", "The secret part of the callback URL of "
        "gateways that do not sign their callbacks.")
    webhook_url = fields.Function(fields.Char(
            "Webhook URL",
            help="The URL to give the provider for inbound messages and "
            "delivery statuses."), 'get_webhook_url')
    timeout = fields.Integer(
        "Time-out", required=True, domain=[('timeout', '>', 0)],
        help="In seconds.")
    paused_until = fields.Timestamp(
        "Paused Until", readonly=True,
        help="Set when the provider answers that its rate is exceeded.")
    usage = fields.Function(fields.Integer(
            "Usage", help="Messages handed over in the last minute."),
        'get_usage')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('priority', 'ASC'))
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.company, Index.Range()), (t.type, Index.Equality())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_capacity(cls):
        return 60

    @classmethod
    def default_priority(cls):
        return 10

    @classmethod
    def default_timeout(cls):
        return 10

    @classmethod
    def default_callback_secret(cls):
        return secrets.token_urlsafe(24)

    @classmethod
    def _secret_defaults(cls):
        return {
            **super()._secret_defaults(),
            'callback_secret': lambda: secrets.token_urlsafe(24),
            }

    @fields.depends('type')
    def on_change_with_channel(self, name=None):
        return TYPE_CHANNEL.get(self.type)

    @classmethod
    def search_channel(cls, name, clause):
        _, operator, value = clause[:3]
        values = value if isinstance(value, (list, tuple)) else [value]
        types = [t for t, c in TYPE_CHANNEL.items() if c in values]
        if operator in {'=', 'in'}:
            return [('type', 'in', types)]
        return [('type', 'not in', types)]

    def get_webhook_url(self, name):
        from trytond.url import http_host
        if not self.id or self.id < 0:
            return None
        database = Transaction().database.name
        if self.type == 'whatsapp_meta':
            path = 'meta/%d' % self.id
        else:
            path = 'callback/%d/%s' % (self.id, self.callback_secret or '')
        return '%s/%s/isp_base/notify/%s' % (http_host(), database, path)

    @classmethod
    def get_usage(cls, providers, name):
        usage = cls.usage_since(providers, _now() - WINDOW)
        return {p.id: usage.get(p.id, 0) for p in providers}

    @classmethod
    def usage_since(cls, providers, since):
        "Return {provider id: attempts since `since`}"
        pool = Pool()
        Attempt = pool.get('isp.message.attempt')
        attempt = Attempt.__table__()
        cursor = Transaction().connection.cursor()
        ids = [p.id for p in providers]
        if not ids:
            return {}
        cursor.execute(*attempt.select(
                attempt.provider, Count(attempt.id),
                where=attempt.provider.in_(ids)
                & (attempt.at > since),
                group_by=[attempt.provider]))
        return dict(cursor)

    @classmethod
    def oldest_since(cls, providers, since):
        "Return {provider id: oldest attempt since `since`}"
        pool = Pool()
        Attempt = pool.get('isp.message.attempt')
        attempt = Attempt.__table__()
        cursor = Transaction().connection.cursor()
        ids = [p.id for p in providers]
        if not ids:
            return {}
        cursor.execute(*attempt.select(
                attempt.provider, Min(attempt.at),
                where=attempt.provider.in_(ids)
                & (attempt.at > since),
                group_by=[attempt.provider]))
        return dict(cursor)

    @classmethod
    def usable(cls, company, channel):
        """Return the active providers a branch uses for a channel: its own
        ones if it has any, else the central ones."""
        providers = cls.search([
                ('channel', '=', channel),
                ('company', 'in', [company.id if company else None, None]),
                ])
        own = [p for p in providers if p.company]
        return own or [p for p in providers if not p.company]

    def adapter(self):
        "Return the wire adapter of the provider (holds its credentials)"
        return messaging.ADAPTERS[self.type](
            base_url=self.base_url, token=self.token, account=self.account,
            sender=self.sender, timeout=self.timeout,
            secrets=self.credentials())

    def credentials(self):
        """The provider's credentials: the values of CREDENTIAL_FIELDS and
        the password of an SMTP URI; never kept in answers or logs"""
        values = [getattr(self, n) for n in self.CREDENTIAL_FIELDS]
        try:
            values.append(urllib.parse.urlsplit(self.base_url or '').password)
        except ValueError:
            pass
        return [v for v in values if v]

    @classmethod
    def validate_fields(cls, providers, field_names):
        super().validate_fields(providers, field_names)
        for provider in providers:
            if provider.base_url and provider.type != 'email' and not (
                    provider.base_url.startswith(('http://', 'https://'))):
                raise ProviderValidationError(gettext(
                        'isp_base.msg_provider_base_url',
                        provider=provider.rec_name))

    @classmethod
    def copy(cls, providers, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('paused_until', None)
        return super().copy(providers, default=default)


class MessageTemplate(
        InputGuardMixin, DeactivableMixin, ModelSQL, ModelView):
    "Message Template"
    __name__ = 'isp.message.template'

    company = fields.Many2One(
        'company.company', "Company", ondelete='CASCADE',
        help="Leave empty for the templates shared by all branches; a "
        "branch's own template of an event and language wins.")
    event = fields.Selection('get_events', "Event", required=True)
    language = fields.Many2One(
        'ir.lang', "Language", required=True, ondelete='RESTRICT')
    channel = fields.Selection(
        [(None, "All")] + CHANNELS, "Channel",
        help="Leave empty for every channel; a template of the channel "
        "wins.")
    subject = fields.Char(
        "Subject", help="The e-mail subject; placeholders allowed.")
    body = fields.Text(
        "Text", required=True,
        help="Placeholders in braces, e.g. {name}; {{ and }} for braces.")
    variables = fields.Function(fields.Text(
            "Placeholders", help="The placeholders of the event."),
        'on_change_with_variables')
    meta_template = fields.Char(
        "WhatsApp Template", strip=True,
        help="The name of an approved WhatsApp template: the Meta Cloud "
        "API sends it instead of the text (required outside the 24-hour "
        "customer service window).")
    meta_parameters = fields.Char(
        "WhatsApp Parameters", strip=True,
        states={'invisible': ~Eval('meta_template')},
        help="The placeholder names giving the template's body parameters "
        "{{1}}, {{2}}..., separated by commas.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.event, Index.Equality())))
        cls._order = [('event', 'ASC'), ('id', 'ASC')]

    @classmethod
    def get_events(cls):
        return [(e, label) for e, (label, _) in cls.events().items()]

    @classmethod
    def events(cls):
        """Return {event: (label, {placeholder: sample value})}: other
        modules extend it to add their events."""
        return dict(EVENTS)

    @classmethod
    def event_samples(cls, event):
        label, samples = cls.events().get(event, (None, {}))
        return {**COMMON_VALUES, **samples}

    @fields.depends('event')
    def on_change_with_variables(self, name=None):
        if not self.event:
            return None
        return ' '.join('{%s}' % n for n in self.event_samples(self.event))

    def get_rec_name(self, name):
        return '%s (%s%s)' % (
            dict(self.get_events()).get(self.event, self.event),
            self.language.code if self.language else '',
            ', ' + self.channel if self.channel else '')

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        for template in templates:
            template.check_render()

    def check_render(self):
        "Render with the event's sample values: fail now, not at send time"
        samples = self.event_samples(self.event)
        for name in ['subject', 'body']:
            try:
                messaging.render(getattr(self, name), samples, strict=True)
            except messaging.TemplateError as exception:
                raise MessageTemplateValidationError(gettext(
                        'isp_base.msg_template_render',
                        template=self.rec_name,
                        field=self.__names__(name)['field'],
                        reason=exception.reason)) from exception
        for parameter in self.meta_parameter_names():
            if parameter not in samples:
                raise MessageTemplateValidationError(gettext(
                        'isp_base.msg_template_render',
                        template=self.rec_name,
                        field=self.__names__('meta_parameters')['field'],
                        reason="{%s} is not a known value" % parameter))

    def meta_parameter_names(self):
        return [p.strip().strip('{}') for p in
            (self.meta_parameters or '').split(',') if p.strip()]

    def snapshot(self):
        "The template as plain data, to render many messages cheaply"
        return TemplateData(
            self.id, self.company.id if self.company else None, self.event,
            self.channel, self.language.code, self.subject, self.body,
            self.meta_template, tuple(self.meta_parameter_names()))

    def render(self, values):
        "Return (subject, body, meta template or None) for `values`"
        return self.snapshot().render(values)

    @classmethod
    def pick(cls, templates, company, event, channel, language):
        """Return the best of `templates` (snapshots) for a message: the
        branch's own before the shared one, the language before English
        before any, the channel's own before the all-channel one."""
        company_id = company.id if company else None
        code = language.code if language else None
        best, best_score = None, None
        for template in templates:
            if template.company and template.company != company_id:
                continue
            if template.event != event:
                continue
            if template.channel and template.channel != channel:
                continue
            if code and template.language == code:
                lang = 2
            elif template.language == 'en':
                lang = 1
            else:
                lang = 0
            score = (lang, bool(template.company), bool(template.channel),
                -template.id)
            if best_score is None or score > best_score:
                best, best_score = template, score
        return best


class TemplateData(namedtuple('TemplateData', [
            'id', 'company', 'event', 'channel', 'language', 'subject',
            'body', 'meta_template', 'meta_parameters'])):
    "A template's values, detached from the ORM"
    __slots__ = ()

    def render(self, values):
        "Return (subject, body, meta template or None) for `values`"
        subject = messaging.render(self.subject, values) or None
        body = messaging.render(self.body, values)
        meta = None
        if self.meta_template:
            meta = [self.meta_template, self.language, [
                    values.get(p, '') for p in self.meta_parameters]]
        return subject, body, meta


MESSAGE_STATES = [
    ('queued', "Queued"),
    ('sending', "Sending"),
    ('sent', "Sent"),
    ('delivered', "Delivered"),
    ('read', "Read"),
    ('failed', "Failed"),
    ('cancelled', "Cancelled"),
    ]


class Message(Workflow, ModelSQL, ModelView):
    "Message"
    __name__ = 'isp.message'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    channel = fields.Selection(CHANNELS, "Channel", required=True,
        readonly=True)
    event = fields.Selection('get_events', "Event", readonly=True)
    language = fields.Many2One('ir.lang', "Language", readonly=True)
    recipient = fields.Char("Recipient", readonly=True,
        help="The E.164 number or e-mail address.")
    template = fields.Many2One(
        'isp.message.template', "Template", readonly=True,
        ondelete='SET NULL')
    subject = fields.Char("Subject", readonly=True)
    body = fields.Text("Text", readonly=True)
    meta_template = fields.Dict(None, "WhatsApp Template", readonly=True)
    origin = fields.Reference(
        "Origin", selection='get_origins', readonly=True,
        help="The record that caused the message (invoice, ticket...).")
    state = fields.Selection(MESSAGE_STATES, "State", required=True,
        readonly=True, sort=False)
    tries = fields.Integer("Rounds", readonly=True,
        help="The failed sending rounds; each round may try several "
        "providers.")
    next_attempt = fields.Timestamp("Next Attempt", readonly=True)
    provider = fields.Many2One(
        'isp.message.provider', "Provider", readonly=True,
        ondelete='RESTRICT')
    provider_message_id = fields.Char("Provider Message ID", readonly=True)
    provider_answer = fields.Text("Provider Answer", readonly=True)
    failure_reason = fields.Char("Reason", readonly=True)
    sent_at = fields.Timestamp("Sent At", readonly=True)
    delivered_at = fields.Timestamp("Delivered At", readonly=True)
    attempts = fields.One2Many(
        'isp.message.attempt', 'message', "Attempts", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.state, Index.Equality()),
                    (t.next_attempt, Index.Range())),
                Index(t, (t.provider, Index.Equality()),
                    (t.provider_message_id, Index.Equality())),
                Index(t, (t.party, Index.Equality())),
                })
        cls._order.insert(0, ('id', 'DESC'))
        cls._transitions |= {
            ('queued', 'cancelled'),
            ('failed', 'queued'),
            ('cancelled', 'queued'),
            }
        cls._buttons.update({
                'cancel': {
                    'invisible': Eval('state') != 'queued',
                    'depends': ['state'],
                    },
                'retry': {
                    'invisible': ~Eval('state').in_(['failed', 'cancelled']),
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'queued'

    @classmethod
    def default_tries(cls):
        return 0

    @classmethod
    def get_events(cls):
        pool = Pool()
        Template = pool.get('isp.message.template')
        return [(None, '')] + Template.get_events()

    @classmethod
    def _get_origins(cls):
        "Return the models that may cause messages (other modules extend)"
        return ['party.party']

    @classmethod
    def get_origins(cls):
        pool = Pool()
        IrModel = pool.get('ir.model')
        return [(None, '')] + [
            (m, IrModel.get_name(m)) for m in cls._get_origins()]

    def get_rec_name(self, name):
        return '%s: %s' % (self.event or self.channel, self.recipient or '')

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('recipient',) + tuple(clause[1:])]

    @classmethod
    @ModelView.button
    @Workflow.transition('cancelled')
    def cancel(cls, messages):
        cls.write(messages, {'next_attempt': None})

    @classmethod
    @ModelView.button
    @Workflow.transition('queued')
    def retry(cls, messages):
        "Send failed or cancelled messages again, from a fresh start"
        cls.write(messages, {
                'tries': 0,
                'next_attempt': _now(),
                'failure_reason': None,
                })
        cls.enqueue(messages)

    # -- the API --------------------------------------------------------------

    @classmethod
    def send_event(cls, event, party, values=None, company=None,
            channels=None, origin=None, language=None):
        """Notify `party` of `event` and return the new messages.

        values: the event's placeholders (text, already formatted);
        company: the sending branch (default: the party's branch, then the
        context company); channels: a list among whatsapp, sms, email
        (default: the first the party can receive and the branch can send);
        origin: the record that caused it; language: an ir.lang.
        Messages that cannot be sent (opted out, no or invalid address, no
        template) are created failed with their reason.
        """
        return cls.send_events([{
                    'event': event, 'party': party, 'values': values,
                    'company': company, 'channels': channels,
                    'origin': origin, 'language': language,
                    }])

    @classmethod
    def send_events(cls, requests):
        """Bulk form of send_event: `requests` is a list of dicts with the
        keys of send_event's arguments.  One search per model, one create,
        queue tasks of QUEUE_BATCH messages."""
        pool = Pool()
        Template = pool.get('isp.message.template')
        now = _now()
        events = {r['event'] for r in requests}
        templates = [t.snapshot() for t in Template.search(
                [('event', 'in', list(events))])]
        companies, parties = {}, {}
        to_create = []
        for request in requests:
            company = cls._request_company(request, companies)
            party = cls._request_party(request['party'], company, parties)
            for values in cls._request_messages(
                    request, company, party, templates):
                values.setdefault('next_attempt', now)
                to_create.append(values)
        messages = cls.create(to_create)
        cls.enqueue([m for m, v in zip(messages, to_create, strict=True)
                if v.get('state', 'queued') == 'queued'])
        return messages

    @classmethod
    def _request_company(cls, request, cache):
        """Return the sending branch of a request as a dict of plain values
        (record, name, channels with usable providers, default language)"""
        pool = Pool()
        Company = pool.get('company.company')
        Provider = pool.get('isp.message.provider')
        company = request.get('company')
        party = request['party']
        if company is None and party and party.isp_company:
            company = party.isp_company
        if company is None and Transaction().context.get('company'):
            company = Transaction().context['company']
        if company is None:
            raise MessageCompanyError(gettext(
                    'isp_base.msg_message_company', party=party.rec_name))
        company_id = int(company)
        if company_id not in cache:
            record = Company(company_id)
            cache[company_id] = {
                'record': record,
                'name': record.rec_name,
                'channels': {c for c in dict(CHANNELS)
                    if Provider.usable(record, c)},
                'language': cls.branch_language(record),
                }
        return cache[company_id]

    @classmethod
    def branch_language(cls, company):
        """The ir.lang of the branch `company`'s notices: its party's, else
        Indonesian for a branch in Indonesia and English elsewhere"""
        Lang = Pool().get('ir.lang')
        language = company.party.lang
        if not language:
            code = 'id' if company.isp_phone_country() == 'ID' else 'en'
            try:
                language = Lang.get(code)
            except (KeyError, ValueError, IndexError):
                language = None
        return language

    @classmethod
    def notice_language(cls, party, company=None):
        """The ir.lang a notice to `party` from `company` (default: the
        party's branch) is written in: the party's, else the branch's
        (branch_language).  The values of a notice (dates, amounts, status
        names) are formatted in it, as its template is chosen in it."""
        Lang = Pool().get('ir.lang')
        if party.lang:
            return party.lang
        company = company or getattr(party, 'isp_company', None)
        language = cls.branch_language(company) if company else None
        return language or Lang.get()

    @classmethod
    def _request_party(cls, party, company, cache):
        "Return what messages need of a party, read once per party"
        key = (party.id, company['record'].id)
        if key not in cache:
            cache[key] = {
                'record': party,
                'name': party.name,
                'subscriber_code': getattr(party, 'subscriber_code', None),
                'language': party.lang or company['language'],
                'opt_outs': set(party.notification_opt_outs or ()),
                'addresses': {c: cls.party_address(party, c)
                    for c in dict(CHANNELS)},
                }
        return cache[key]

    @classmethod
    def _request_messages(cls, request, company, party, templates):
        "Yield the values of the messages of one send_event request"
        pool = Pool()
        Template = pool.get('isp.message.template')
        event = request['event']
        language = request.get('language') or party['language']
        values = {
            'name': party['name'],
            'subscriber_code': party['subscriber_code'],
            'company': company['name'],
            **(request.get('values') or {}),
            }
        opt_outs = party['opt_outs'] if event not in REQUESTED_EVENTS \
            else set()
        addresses = party['addresses']
        channels = request.get('channels')
        if not channels:
            channels = [c for c in CHANNEL_PREFERENCE
                if c in company['channels'] and c not in opt_outs
                and addresses[c]]
            channels = channels[:1] or CHANNEL_PREFERENCE[:1]
        origin = request.get('origin')
        for channel in channels:
            recipient = addresses.get(channel)
            result = {
                'company': company['record'].id,
                'party': party['record'].id,
                'channel': channel,
                'event': event,
                'language': language.id if language else None,
                'recipient': recipient,
                'origin': str(origin) if origin else None,
                }
            template = Template.pick(
                templates, company['record'], event, channel, language)
            if template:
                subject, body, meta = template.render(values)
                result.update({
                        'template': template.id,
                        'subject': subject,
                        'body': body,
                        'meta_template': {
                            'name': meta[0], 'language': meta[1],
                            'parameters': meta[2]} if meta else None,
                        })
            reason = cls._unsendable(channel, recipient, template, opt_outs)
            if reason:
                result.update({
                        'state': 'failed',
                        'failure_reason': reason,
                        'next_attempt': None,
                        })
            yield result

    @classmethod
    def _unsendable(cls, channel, recipient, template, opt_outs):
        "Return why the message cannot be sent at all, or None"
        if channel in opt_outs:
            return gettext('isp_base.msg_message_opted_out',
                channel=dict(CHANNELS)[channel])
        if not recipient:
            return gettext('isp_base.msg_message_no_address',
                channel=dict(CHANNELS)[channel])
        if channel != 'email' and normalize_phone(recipient) != recipient:
            return gettext('isp_base.msg_message_invalid_number',
                number=recipient)
        if channel == 'email' and '@' not in recipient:
            return gettext('isp_base.msg_message_invalid_email',
                email=recipient)
        if not template:
            return gettext('isp_base.msg_message_no_template')
        return None

    @classmethod
    def party_address(cls, party, channel):
        "Return the party's number or address for the channel"
        if channel == 'whatsapp':
            return party.whatsapp or None
        if channel == 'sms':
            return party.subscriber_phone or party.mobile or None
        if channel == 'email':
            return party.email or None

    @classmethod
    def enqueue(cls, messages, delay=None):
        "Hand messages to ir.queue workers, in tasks of QUEUE_BATCH"
        if not messages:
            return
        context = {'queue_name': QUEUE_NAME, 'queue_batch': QUEUE_BATCH}
        if delay is not None:
            context['queue_scheduled_at'] = max(delay, dt.timedelta(0))
        with Transaction().set_context(**context):
            cls.__queue__.process(messages)

    # -- sending --------------------------------------------------------------

    @classmethod
    def process(cls, messages):
        """Send the due `messages` (an ir.queue task).

        It commits several times per message, on purpose: the provider's
        slot is reserved and committed under a lock of the provider table
        before the HTTP call, so concurrent workers never exceed a
        provider's capacity, and the answer is committed right after the
        call, so a later error never sends an accepted message twice.
        """
        for message_id in [m.id for m in messages]:
            cls._send_one(message_id)

    @classmethod
    def _send_one(cls, message_id):
        tried = set()
        while True:
            reservation = cls._reserve_slot(message_id, tried)
            if reservation is None:
                return
            attempt_id, provider_id, adapter, send = reservation
            result = adapter.send(**send)
            if cls._store_result(message_id, attempt_id, provider_id, result):
                return
            tried.add(provider_id)

    @classmethod
    def _retrying(cls, func, *args):
        "Run func in its own transaction step, retried on lock conflicts"
        transaction = Transaction()
        for count in range(200):
            try:
                result = func(*args)
                transaction.commit()
                return result
            except backend.DatabaseOperationalError:
                transaction.rollback()
                if count >= 199:
                    raise
                time.sleep(random.uniform(0.002, 0.02) * min(count + 1, 10))

    @classmethod
    def _lock_providers(cls):
        """Serialize the choice of providers between workers.  LOCK TABLE
        takes no snapshot, so the usage read after it sees every reservation
        committed before."""
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        transaction = Transaction()
        transaction.database.lock(transaction.connection, Provider._table)

    @classmethod
    def _reserve_slot(cls, message_id, tried):
        Transaction().commit()
        return cls._retrying(cls._reserve_step, message_id, tried)

    @classmethod
    def _reserve_step(cls, message_id, tried):
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        Attempt = pool.get('isp.message.attempt')
        cls._lock_providers()
        now = _now()
        messages = cls.search([('id', '=', message_id)])
        if not messages:
            return None
        message, = messages
        if message.state != 'queued' or (
                message.next_attempt and message.next_attempt > now):
            return None
        usable = Provider.usable(message.company, message.channel)
        candidates = [p for p in usable
            if not p.paused_until or p.paused_until <= now]
        usage = Provider.usage_since(candidates, now - WINDOW)
        untried = [p for p in candidates if p.id not in tried]
        available = [p for p in untried
            if usage.get(p.id, 0) < p.capacity]
        if not available:
            paused = [p.paused_until for p in usable if p not in candidates]
            if untried:
                cls._wait_for_capacity(message, untried, now)
            elif paused and not tried:
                cls._wait(message, min(paused), now)
            else:
                cls._round_failed(message, usable, now)
            return None
        provider = min(available, key=lambda p: (
                usage.get(p.id, 0) / p.capacity, p.priority, p.id))
        attempt, = Attempt.create([{
                    'message': message.id,
                    'company': message.company.id,
                    'provider': provider.id,
                    'at': now,
                    'outcome': 'pending',
                    }])
        cls._update(cls, message.id, {
                'state': 'sending', 'provider': provider.id})
        meta = message.meta_template if provider.type == 'whatsapp_meta' \
            else None
        send = {
            'to': message.recipient,
            'body': message.body,
            'subject': message.subject,
            'template': (meta['name'], meta['language'], meta['parameters'])
            if meta else None,
            }
        return attempt.id, provider.id, provider.adapter(), send

    @classmethod
    def _wait_for_capacity(cls, message, providers, now):
        "Every usable provider is full: wait for the first free slot"
        pool = Pool()
        Provider = pool.get('isp.message.provider')
        oldest = Provider.oldest_since(providers, now - WINDOW)
        free_at = min((_timestamp(at) + WINDOW for at in oldest.values()),
            default=now + WINDOW)
        cls._wait(message, free_at, now)

    @classmethod
    def _wait(cls, message, at, now):
        "Come back to the message at `at`, without counting a round"
        at = max(at, now) + dt.timedelta(milliseconds=1)
        message.next_attempt = at
        message.save()
        cls._schedule(message, at - now)

    @classmethod
    def _round_failed(cls, message, candidates, now):
        "Every provider failed (or none exists): back off, then fail"
        message.tries = (message.tries or 0) + 1
        if not candidates and not message.failure_reason:
            message.failure_reason = gettext(
                'isp_base.msg_message_no_provider',
                channel=dict(CHANNELS)[message.channel])
        if message.tries > len(BACKOFF):
            message.state = 'failed'
            message.next_attempt = None
            message.save()
            metrics.NOTIFICATIONS.labels('failed').inc()
            return
        delay = dt.timedelta(minutes=BACKOFF[message.tries - 1])
        message.next_attempt = now + delay
        message.save()
        cls._schedule(message, delay)

    @classmethod
    def _schedule(cls, message, delay):
        """Ask a worker to come back after `delay`.  Without workers the
        task would run at once: the cron picks the message up instead."""
        if config.getboolean('queue', 'worker', default=False):
            cls.enqueue([message], delay=delay)

    @classmethod
    def _store_result(cls, message_id, attempt_id, provider_id, result):
        done = cls._retrying(cls._store_result_step,
            message_id, attempt_id, provider_id, result)
        if done:
            metrics.NOTIFICATIONS.labels('sent'
                if result.outcome == messaging.SENT else 'failed').inc()
        return done

    @classmethod
    def _store_result_step(cls, message_id, attempt_id, provider_id, result):
        """Store the provider's answer; return True when the message is
        done with (sent or failed), False to try another provider."""
        pool = Pool()
        Attempt = pool.get('isp.message.attempt')
        Provider = pool.get('isp.message.provider')
        now = _now()
        cls._update(Attempt, attempt_id, {
                'outcome': result.outcome,
                'http_status': result.http_status,
                'answer': result.answer,
                'reason': result.reason,
                'provider_message_id': result.message_id,
                'duration': result.duration,
                })
        logger.info("message %d, provider %d: %s %s", message_id,
            provider_id, result.outcome, result.reason or '')
        values = {'provider_answer': result.answer}
        if result.outcome == messaging.SENT:
            values.update(state='sent', provider_message_id=result.message_id,
                sent_at=now, next_attempt=None, failure_reason=None)
            done = True
        elif result.outcome == messaging.RECIPIENT:
            values.update(state='failed', next_attempt=None,
                failure_reason=result.reason)
            done = True
        else:
            values.update(state='queued', failure_reason=result.reason)
            if result.outcome == messaging.RATE_LIMITED:
                Provider.write([Provider(provider_id)], {
                        'paused_until': now + dt.timedelta(
                            seconds=result.retry_after or 60)})
            done = False
        cls._update(cls, message_id, values)
        return done

    @staticmethod
    def _update(Model, record_id, values):
        """UPDATE one record without the ORM's validation and hooks.

        Only for the engine's own bookkeeping on the hot path of sending
        (state, provider, answers): the values come from the engine and the
        providers' adapters, never from users, and skipping the ORM halves
        the cost of a message."""
        table = Model.__table__()
        values = {
            **values,
            'write_uid': Transaction().user,
            'write_date': CurrentTimestamp(),
            }
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update(
                [Column(table, name) for name in values],
                list(values.values()),
                where=table.id == record_id))

    # -- cron, callbacks ------------------------------------------------------

    @classmethod
    def send_due(cls):
        """Cron: send the queued messages whose time has come (retries when
        no worker runs, or tasks lost), and repair messages left 'sending'
        by a dead worker."""
        pool = Pool()
        Attempt = pool.get('isp.message.attempt')
        now = _now()
        company = Transaction().context.get('company')
        domain = [('company', '=', company)] if company else []
        stale = Attempt.search(domain + [
                ('outcome', '=', 'pending'),
                ('at', '<', now - STALE_SENDING),
                ])
        if stale:
            Attempt.write(stale, {
                    'outcome': 'provider', 'reason': "interrupted"})
            cls.write([a.message for a in stale
                    if a.message.state == 'sending'], {'state': 'queued'})
        worker = config.getboolean('queue', 'worker', default=False)
        grace = dt.timedelta(minutes=5) if worker else dt.timedelta(0)
        messages = cls.search(domain + [
                ('state', '=', 'queued'),
                ('next_attempt', '<=', now - grace),
                ], order=[('next_attempt', 'ASC')])
        if worker:
            cls.enqueue(messages)
        else:
            cls.process(messages)

    @classmethod
    def update_statuses(cls, provider, statuses):
        """Apply delivery statuses (dicts with id, status, reason) reported
        by `provider`: a status never goes back (read > delivered > sent);
        a failure after sending fails the message with its reason."""
        ids = [s['id'] for s in statuses if s.get('id')]
        if not ids:
            return []
        messages = []
        for sub_ids in grouped_slice(ids, count=1000):
            messages += cls.search([
                    ('provider', '=', provider.id),
                    ('provider_message_id', 'in', list(sub_ids)),
                    ])
        by_id = {m.provider_message_id: m for m in messages}
        now = _now()
        to_save = []
        for status in statuses:
            message = by_id.get(status.get('id'))
            if not message or message.state not in STATUS_RANK:
                continue
            state = status.get('status')
            if state == 'failed':
                message.state = 'failed'
                message.failure_reason = status.get('reason') or state
            elif STATUS_RANK.get(state, 0) > STATUS_RANK[message.state]:
                message.state = state
                if state in {'delivered', 'read'} and not (
                        message.delivered_at):
                    message.delivered_at = now
            else:
                continue
            to_save.append(message)
        cls.save(to_save)
        return to_save


class MessageAttempt(ModelSQL, ModelView):
    "Message Attempt"
    __name__ = 'isp.message.attempt'

    message = fields.Many2One(
        'isp.message', "Message", required=True, ondelete='CASCADE',
        readonly=True)
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    provider = fields.Many2One(
        'isp.message.provider', "Provider", required=True,
        ondelete='RESTRICT', readonly=True)
    at = fields.Timestamp("At", required=True, readonly=True)
    outcome = fields.Selection([
            ('pending', "Pending"),
            ('sent', "Sent"),
            ('recipient', "Refused for the recipient"),
            ('provider', "Provider error"),
            ('rate_limited', "Rate limited"),
            ], "Outcome", required=True, readonly=True, sort=False)
    http_status = fields.Integer("HTTP Status", readonly=True)
    duration = fields.Integer("Duration", readonly=True,
        help="In milliseconds.")
    provider_message_id = fields.Char("Provider Message ID", readonly=True)
    reason = fields.Char("Reason", readonly=True)
    answer = fields.Text("Answer", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.provider, Index.Equality()),
                    (t.at, Index.Range())),
                Index(t, (t.outcome, Index.Equality()),
                    (t.at, Index.Range())),
                })
        cls._order.insert(0, ('at', 'ASC'))

    def get_rec_name(self, name):
        return '%s @ %s' % (self.provider.rec_name, self.at)


class MessageInbound(ModelSQL, ModelView):
    "Inbound Message"
    __name__ = 'isp.message.inbound'

    company = fields.Many2One(
        'company.company', "Company", readonly=True,
        help="The branch of the sender, or of the provider; empty when "
        "neither is known.")
    provider = fields.Many2One(
        'isp.message.provider', "Provider", required=True, readonly=True,
        ondelete='RESTRICT')
    channel = fields.Selection(CHANNELS, "Channel", required=True,
        readonly=True)
    party = fields.Many2One(
        'party.party', "Party",
        context={'company': Eval('company', -1)}, depends={'company'},
        help="Found from the sender's number.")
    sender = fields.Char("Sender", required=True, readonly=True)
    sender_name = fields.Char("Sender Name", readonly=True)
    text = fields.Text("Text", readonly=True)
    received_at = fields.Timestamp("Received At", required=True,
        readonly=True)
    provider_message_id = fields.Char("Provider Message ID", readonly=True)
    raw = fields.Text("Raw", readonly=True,
        help="The provider's callback as received.")
    state = fields.Selection([
            ('new', "New"),
            ('done', "Done"),
            ], "State", required=True, sort=False,
        help="The helpdesk marks the messages it handled as done.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('provider_message_uniq',
                Unique(t, t.provider, t.provider_message_id),
                'isp_base.msg_inbound_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.state, Index.Equality()),
                    (t.company, Index.Range())),
                Index(t, (t.party, Index.Equality())),
                })
        cls._order.insert(0, ('received_at', 'DESC'))

    @classmethod
    def default_state(cls):
        return 'new'

    def get_rec_name(self, name):
        # one line: a message's line breaks would break lists and titles
        text = ' '.join((self.text or '').split())
        return '%s: %s' % (self.sender, text[:40])

    @classmethod
    def receive(cls, provider, inbound, raw=None):
        """Store inbound messages (dicts with id, sender, text, name,
        timestamp) from `provider`, once each, against the party found by
        phone; STOP / START words opt the party out of or back into the
        channel.  Return the new records."""
        pool = Pool()
        Party = pool.get('party.party')
        ids = [i['id'] for i in inbound if i.get('id')]
        known = {r.provider_message_id for r in cls.search([
                    ('provider', '=', provider.id),
                    ('provider_message_id', 'in', ids),
                    ])} if ids else set()
        to_create, seen, opt = [], set(), defaultdict(list)
        for item in inbound:
            if item.get('id') in known or item.get('id') in seen:
                continue
            if not item.get('sender'):
                continue
            seen.add(item.get('id'))
            sender = normalize_phone(item['sender']) or item['sender']
            party = cls.find_party(provider, sender)
            company = (party.isp_company if party and party.isp_company
                else provider.company)
            word = (item.get('text') or '').strip().upper()
            if party and word in OPT_OUT_WORDS | OPT_IN_WORDS:
                opt[party].append(word in OPT_OUT_WORDS)
            to_create.append({
                    'company': company.id if company else None,
                    'provider': provider.id,
                    'channel': provider.channel,
                    'party': party.id if party else None,
                    'sender': sender,
                    'sender_name': item.get('name'),
                    'text': item.get('text'),
                    'received_at': cls._timestamp(item.get('timestamp')),
                    'provider_message_id': item.get('id'),
                    'raw': raw,
                    })
        for party, flags in opt.items():
            outs = set(party.notification_opt_outs or ())
            if flags[-1]:
                outs.add(provider.channel)
            else:
                outs.discard(provider.channel)
            party.notification_opt_outs = sorted(outs)
        Party.save(list(opt))
        return cls.create(to_create)

    @classmethod
    def _timestamp(cls, value):
        try:
            return dt.datetime.fromtimestamp(
                int(value), dt.UTC).replace(tzinfo=None)
        except (TypeError, ValueError, OverflowError, OSError):
            return dt.datetime.now()

    @classmethod
    def find_party(cls, provider, number):
        "Return the party whose WhatsApp or phone number is `number`"
        pool = Pool()
        Party = pool.get('party.party')
        domain = [['OR',
                ('whatsapp', '=', number),
                ('subscriber_phone', '=', number),
                ]]
        if provider.company:
            domain.append(['OR',
                    ('isp_company', '=', provider.company.id),
                    ('isp_company', '=', None),
                    ])
        parties = Party.search(domain, order=[
                ('is_subscriber', 'DESC'), ('id', 'ASC')], limit=1)
        return parties[0] if parties else None


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    notification_opt_outs = fields.MultiSelection(
        CHANNELS, "Notification Opt-outs",
        help="The channels on which the party does not want notices.\n"
        "Inbound STOP (BERHENTI) and START (MULAI) messages change it.")


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('isp.message|send_due', "Send Due Messages"))

