# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Subscribers' accounts of the customer portal: web_user's web.user of a
branch (company) and a subscriber (party).

Login by e-mail or customer ID (the party's subscriber code) with web_user's
password hashing and rate limiting (`web.user.authenticate.attempt`: per
login and per IP network, delay doubling with each failure).  An unknown
login costs the same password check as a known one (a dummy hash) and gets
the same answer."""
import logging
import secrets
import time

import trytond.config as config
from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.model import Index, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.res.user import PASSWORD_HASH
from trytond.transaction import Transaction

from .exceptions import WebUserValidationError

logger = logging.getLogger(__name__)
_DUMMY_HASH = []


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
