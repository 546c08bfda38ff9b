# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Subscribers' accounts of the customer portal: web_user's web.user of a
branch (company) and a subscriber (party).

Login by e-mail or customer ID (the party's subscriber code) with web_user's
password hashing and rate limiting (`web.user.authenticate.attempt`: per
login and per IP network, delay doubling with each failure).  An unknown
login costs the same password check as a known one (a dummy hash) and gets
the same answer."""
import datetime as dt
import logging
import secrets
import time

import trytond.config as config
from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.model import Index, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.res.user import PASSWORD_HASH
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import PortalInviteError, WebUserValidationError
from .tenancy import BranchWizardMixin
from .validation import email_problem

logger = logging.getLogger(__name__)
_DUMMY_HASH = []
#: Days an invitation link is valid.
INVITE_DAYS = 7
#: A reset link is sent again only after this delay (the same link is not
#: re-sent: it is not kept readable).
RESEND_DELAY = dt.timedelta(minutes=10)
#: The route of the link's page, under the database.
PASSWORD_PATH = '/isp_base/portal/password'
#: The shortest password a subscriber may choose.
MIN_PASSWORD = 8


def reset_seconds():
    "Seconds a reset link is valid (web_user's [session] web_timeout_reset)"
    return config.getint('session', 'web_timeout_reset', default=24 * 3600)


def portal_base_url(company):
    """The URL of a branch's public pages without the database:
    `[isp_portal] url` (default ``https://{host}``) with the branch's portal
    domain"""
    template = config.get('isp_portal', 'url', default='https://{host}')
    return template.format(
        host=company.isp_web_domain or 'localhost').rstrip('/')


def throttle(count):
    "The delay after a login attempt: doubles with each recent failure"
    time.sleep(2 ** count - 1)


def _dummy_hash():
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(PASSWORD_HASH.hash(secrets.token_hex(16)))
    return _DUMMY_HASH[0]


class WebUser(metaclass=PoolMeta):
    __name__ = 'web.user'

    isp_company = fields.Many2One(
        'company.company', "Branch", ondelete='CASCADE',
        help="The branch whose customer portal the user logs in to.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.isp_company, Index.Equality()),
                (t.party, Index.Equality())))
        # a subscriber may have no e-mail (WhatsApp only)
        cls.email.states = dict(cls.email.states)
        cls.email.states['required'] = (
            Eval('active', True) & ~Eval('party'))
        cls.email.depends = set(cls.email.depends) | {'party'}
        # the party's company-dependent values (language) of the branch
        for field in [cls.party, cls.secondary_parties]:
            field.context = dict(field.context or {},
                company=Eval('isp_company', -1))
            field.depends = set(field.depends) | {'isp_company'}

    @classmethod
    def validate_fields(cls, users, field_names):
        super().validate_fields(users, field_names)
        if field_names is None or field_names & {'isp_company', 'party'}:
            cls.check_isp_party(users)

    @classmethod
    def check_valid_email(cls, users, fields_names=None):
        "web_user's check, and the syntax of isp_base's `email_problem`"
        super().check_valid_email(users, fields_names)
        if fields_names and 'email' not in fields_names:
            return
        for user in users:
            if user.email and email_problem(user.email):
                raise WebUserValidationError(gettext(
                        'web_user.msg_user_email_invalid',
                        user=user.rec_name, email=user.email))

    @classmethod
    def check_isp_party(cls, users):
        "A portal user's party is a subscriber of the user's branch"
        for user in users:
            if not user.isp_company:
                continue
            party = user.party
            if (not party or not party.is_subscriber
                    or party.isp_company != user.isp_company):
                raise WebUserValidationError(gettext(
                        'isp_base.msg_web_user_party_branch',
                        user=user.rec_name))

    def isp_portal_of(self, company):
        "Is the user an active portal user of `company` (a subscriber's)?"
        return bool(self.active and self.isp_company
            and self.isp_company.id == company.id and self.party
            and self.party.isp_company
            and self.party.isp_company.id == company.id)

    @classmethod
    def isp_find(cls, login, company):
        "The active portal user of `company` of an e-mail or customer ID"
        login = (login or '').strip()
        if not login or len(login) > 254:
            return None
        if '@' in login:
            domain = [('email', '=', login.lower())]
        else:
            domain = [('party.subscriber_code', 'in',
                    sorted({login, login.upper()}))]
        users = cls.search([
                ('isp_company', '=', company.id),
                ('party.isp_company', '=', company.id),
                ('active', '=', True),
                domain,
                ], limit=2)
        return users[0] if len(users) == 1 else None

    @classmethod
    def authenticate(cls, email, password, company=None):
        """web_user's authenticate; with `company`, the portal's: `email`
        is an e-mail or a customer ID of that branch"""
        if company is None:
            return super().authenticate(email, password)
        pool = Pool()
        Attempt = pool.get('web.user.authenticate.attempt')
        key = 'isp:%d:%s' % (company.id, (email or '').strip().lower())
        if Attempt.count_ip() > config.getint(
                'session', 'max_attempt_ip_network', default=300):
            raise RateLimitException()
        count = Attempt.count(key)
        if count > config.getint('session', 'max_attempt', default=5):
            Attempt.add(key)
            raise RateLimitException()
        Transaction().atexit(throttle, count)
        user = cls.isp_find(email, company)
        hash_ = user.password_hash if user and user.password_hash \
            else _dummy_hash()
        try:
            valid, new_hash = cls.check_password(password or '', hash_)
        except ValueError:
            valid, new_hash = False, None
        if user and user.password_hash and valid:
            if new_hash:
                cls.write([user], {'password_hash': new_hash})
            Attempt.remove(key)
            return user
        Attempt.add(key)
        return None

    @classmethod
    def isp_end_sessions(cls, users, keep=None):
        "Delete the sessions of `users` but the session key `keep`"
        pool = Pool()
        Session = pool.get('web.user.session')
        domain = [('user', 'in', [u.id for u in users])]
        if keep:
            domain.append(('key', '!=', keep))
        Session.delete(Session.search(domain))

    @classmethod
    def isp_issue_tokens(cls, users, seconds, force=False):
        """Give `users` a new reset token valid `seconds`, and return those
        that got one: a token issued less than RESEND_DELAY ago is kept
        (and nothing sent again) unless `force`"""
        now = dt.datetime.now()
        issued = []
        for user in users:
            expire = user.reset_password_token_expire
            if (not force and user.reset_password_token and expire
                    and expire - dt.timedelta(seconds=seconds)
                    > now - RESEND_DELAY):
                continue
            user.reset_password_token = secrets.token_hex(32)
            user.reset_password_token_expire = now + dt.timedelta(
                seconds=seconds)
            issued.append(user)
        cls.save(issued)
        return issued

    @classmethod
    def isp_send_links(cls, users, event, base_url=None, channel=None,
            values=None):
        """Send each of `users` the link to its password page through the
        notification queue (`event`: portal_reset or portal_invite), on
        `channel` (email, whatsapp; default: the party's preferred)"""
        pool = Pool()
        Message = pool.get('isp.message')
        database = Transaction().database.name
        requests = []
        for user in users:
            base = base_url or portal_base_url(user.isp_company)
            url = '%s/%s%s?token=%s' % (base, database, PASSWORD_PATH,
                user.reset_password_token)
            requests.append({
                    'event': event,
                    'party': user.party,
                    'company': user.isp_company,
                    'channels': [channel] if channel else None,
                    'origin': user.party,
                    'values': {'url': url, **(values or {})},
                    })
        if requests:
            Message.send_events(requests)

    @classmethod
    def isp_request_reset(cls, login, company, base_url, channel=None):
        """A reset link for the portal user of `login` in `company`, if
        there is one (the caller answers the same either way); rate
        limited per login and IP network"""
        pool = Pool()
        Attempt = pool.get('web.user.authenticate.attempt')
        key = 'isp-reset:%d:%s' % (company.id, (login or '').strip().lower())
        if (Attempt.count_ip() > config.getint(
                    'session', 'max_attempt_ip_network', default=300)
                or Attempt.count(key) > config.getint(
                    'session', 'max_attempt', default=5)):
            return False
        Attempt.add(key)
        user = cls.isp_find(login, company)
        if user is None:
            return False
        seconds = reset_seconds()
        issued = cls.isp_issue_tokens([user], seconds)
        cls.isp_send_links(issued, 'portal_reset', base_url=base_url,
            channel=channel, values={'hours': str(seconds // 3600)})
        return bool(issued)

    @classmethod
    def isp_from_token(cls, token, company):
        "The portal user of `company` whose link `token` is valid, or None"
        if not token or not isinstance(token, str) or not (
                16 <= len(token) <= 128) or not token.isalnum():
            return None
        users = cls.search([
                ('reset_password_token', '=', token),
                ('isp_company', '=', company.id),
                ('active', '=', True),
                ], limit=1)
        if not users:
            return None
        user, = users
        expire = user.reset_password_token_expire
        if not expire or expire < dt.datetime.now():
            return None
        if not user.isp_portal_of(company):
            return None
        return user

    @classmethod
    def isp_check_password(cls, password, user):
        """Raise PasswordError (a UserError) unless `password` may be
        `user`'s"""
        pool = Pool()
        User = pool.get('res.user')
        if len(password) < MIN_PASSWORD:
            from trytond.res.exceptions import PasswordError
            raise PasswordError(gettext('isp_base.msg_portal_password_length',
                    length=MIN_PASSWORD))
        User.validate_password(password, [user])
        if user.party and password.lower() in {
                (user.party.name or '').lower(),
                (user.party.subscriber_code or '').lower()}:
            from trytond.res.exceptions import PasswordError
            raise PasswordError(gettext('res.msg_password_name'))

    @classmethod
    def isp_set_password(cls, user, password, keep_session=None):
        """Set `user`'s password (checked), clear its link and end its
        sessions but `keep_session`"""
        cls.isp_check_password(password, user)
        cls.write([user], {
                'password_hash': cls.hash_password(password),
                'reset_password_token': None,
                'reset_password_token_expire': None,
                })
        cls.isp_end_sessions([user], keep=keep_session)

    @classmethod
    def isp_email_taken(cls, email, user):
        """Is `email` another web user's login (active or not: an inactive
        user is reactivated by an invitation)?"""
        from trytond.tools.email_ import normalize_email
        if not email:
            return False
        with Transaction().set_context(active_test=False):
            return bool(cls.search([
                        ('email', '=', normalize_email(email).lower()),
                        ('id', '!=', user.id),
                        ], limit=1))

    @classmethod
    def isp_update_profile(cls, user, values):
        """Write the subscriber's contact data of the portal's profile
        through the back office's models and their validation (E.164 of
        the branch's country, e-mail syntax): `values` holds `phone`,
        `whatsapp`, `email` (the login too; empty: login by customer ID
        only), `lang` (an ir.lang code) and `opt_outs` (notification
        channels).  A UserError leaves the caller to roll back."""
        pool = Pool()
        Party = pool.get('party.party')
        Mechanism = pool.get('party.contact_mechanism')
        Lang = pool.get('ir.lang')
        party = user.party
        email = values.get('email') or None
        Party.write([party], {
                'subscriber_phone': values.get('phone') or None,
                'whatsapp': values.get('whatsapp') or None,
                'lang': Lang.get(values['lang']).id,
                'notification_opt_outs': sorted(values.get('opt_outs', [])),
                })
        mechanisms = Mechanism.search([
                ('party', '=', party.id),
                ('type', '=', 'email'),
                ], order=[('sequence', 'ASC NULLS FIRST'), ('id', 'ASC')])
        if cls.isp_email_taken(email, user):
            raise WebUserValidationError(gettext(
                    'isp_base.msg_web_user_email_taken', email=email))
        if email:
            if mechanisms:
                if mechanisms[0].value != email:
                    Mechanism.write(mechanisms[:1], {'value': email})
            else:
                Mechanism.create([{
                            'party': party.id, 'type': 'email',
                            'value': email}])
        elif mechanisms:
            Mechanism.write(mechanisms, {'active': False})
        if (user.email or None) != (email.lower() if email else None):
            cls.write([user], {'email': email})

    @classmethod
    def isp_invite(cls, parties, channel=None):
        """Give each subscriber of `parties` an active portal user of its
        branch (created when missing, with the party's e-mail unless another
        portal user has it) and send the invitation link; return the
        users"""
        subscribers = [p for p in parties
            if p.is_subscriber and p.isp_company]
        if not subscribers:
            raise PortalInviteError(gettext(
                    'isp_base.msg_portal_invite_no_subscriber'))
        with Transaction().set_context(active_test=False):
            existing = cls.search([
                    ('party', 'in', [p.id for p in subscribers]),
                    ('isp_company', '!=', None),
                    ], order=[('active', 'DESC'), ('id', 'ASC')])
        by_party = {}
        for user in existing:
            if user.isp_company == user.party.isp_company:
                by_party.setdefault(user.party.id, user)
        emails = {p.email.lower() for p in subscribers
            if p.id not in by_party and p.email}
        taken = {u.email for u in cls.search([('email', 'in', list(emails))])}
        to_create, seen = [], set()
        for party in subscribers:
            if party.id in by_party:
                continue
            email = party.email.lower() if party.email else None
            if email in taken or email in seen:
                email = None
            seen.add(email)
            to_create.append({
                    'party': party.id,
                    'isp_company': party.isp_company.id,
                    'email': email,
                    })
        created = cls.create(to_create)
        inactive = [u for u in by_party.values() if not u.active]
        if inactive:
            cls.write(inactive, {'active': True})
        users = list(by_party.values()) + created
        seconds = INVITE_DAYS * 24 * 3600
        cls.isp_issue_tokens(users, seconds, force=True)
        cls.isp_send_links(users, 'portal_invite', channel=channel,
            values={'days': str(INVITE_DAYS)})
        return users


class PortalInviteStart(ModelView):
    "Invite to the Customer Portal"
    __name__ = 'isp.portal.invite.start'

    channel = fields.Selection([
            (None, "Preferred"),
            ('email', "E-mail"),
            ('whatsapp', "WhatsApp"),
            ('sms', "SMS"),
            ], "Channel",
        help="How the invitation link is sent; Preferred: the first channel "
        "the subscriber can receive.")
    subscribers = fields.Integer("Subscribers", readonly=True)


class PortalInvite(BranchWizardMixin, Wizard):
    """Invite subscribers to the customer portal: their portal user is
    created when missing and a link to choose a password is sent"""
    __name__ = 'isp.portal.invite'
    start = StateView('isp.portal.invite.start',
        'isp_base.portal_invite_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Invite", 'invite', 'tryton-ok', default=True),
            ])
    invite = StateTransition()

    def default_start(self, fields):
        return {'subscribers': len(self.records)}

    def transition_invite(self):
        pool = Pool()
        WebUser = pool.get('web.user')
        WebUser.isp_invite(self.records, channel=self.start.channel)
        return 'end'
