# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from collections import defaultdict

from trytond.i18n import gettext
from trytond.model import Index, ModelView, Unique, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction

from .common import InputGuardMixin, set_branch_context
from .exceptions import (
    CoordinateValidationError,
    NationalIDValidationError,
    PhoneValidationError,
    SubscriberError,
)
from .field_access import SystemFieldsCopyMixin
from .validation import (
    coordinate_problem,
    email_problem,
    national_id_problem,
    normalize_phone,
)

_SUBSCRIBER = {'invisible': ~Eval('is_subscriber', False)}
PHONE_FIELDS = ('subscriber_phone', 'whatsapp')


class Party(InputGuardMixin, SystemFieldsCopyMixin, metaclass=PoolMeta):
    __name__ = 'party.party'

    is_subscriber = fields.Boolean(
        "Subscriber",
        help="Check if the party is a subscriber of the ISP.")
    isp_company = fields.Many2One(
        'company.company', "Branch", ondelete='RESTRICT',
        states={
            'required': Bool(Eval('is_subscriber')),
            },
        help="The branch (company) the subscriber belongs to.\n"
        "Only users of that branch see the party; "
        "leave empty for parties shared by all branches.")
    subscriber_code = fields.Char(
        "Subscriber Code", readonly=True, states=_SUBSCRIBER,
        help="Generated from the branch's subscriber sequence.")
    national_id = fields.Char(
        "National ID", strip=True, states=_SUBSCRIBER,
        help="The identity card number: for Indonesian branches the "
        "16-digit NIK.")
    subscriber_phone = fields.Char(
        "Phone", strip=True,
        help="Stored in E.164 (+62...); national numbers are read "
        "in the branch's country.")
    whatsapp = fields.Char(
        "WhatsApp", strip=True,
        help="The number that receives WhatsApp notices, in E.164.")
    latitude = fields.Float(
        "Latitude", digits=(3, 7), states=_SUBSCRIBER,
        help="In decimal degrees (WGS 84).")
    longitude = fields.Float(
        "Longitude", digits=(3, 7), states=_SUBSCRIBER,
        help="In decimal degrees (WGS 84).")
    house_photo = fields.Binary(
        "House Photo", file_id='house_photo_id', states=_SUBSCRIBER)
    house_photo_id = fields.Char("House Photo ID", readonly=True)
    location = fields.Many2One(
        'isp.location', "Location", ondelete='RESTRICT',
        domain=[('company', '=', Eval('isp_company', -1))],
        states=_SUBSCRIBER,
        help="The location code of the installation address.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('isp_company_national_id_uniq',
                Unique(t, t.isp_company, t.national_id),
                'isp_base.msg_party_national_id_unique'),
            ('isp_company_subscriber_code_uniq',
                Unique(t, t.isp_company, t.subscriber_code),
                'isp_base.msg_party_subscriber_code_unique'),
            ]
        cls._sql_indexes.update({
                Index(t,
                    (t.isp_company, Index.Range()),
                    (t.is_subscriber, Index.Equality())),
                Index(t, (t.subscriber_code, Index.Similarity())),
                Index(t, (t.subscriber_phone, Index.Equality())),
                Index(t, (t.whatsapp, Index.Equality())),
                })
        cls._buttons.update({
                'isp_portal_invite': {
                    'invisible': ~Eval('is_subscriber', False),
                    'depends': ['is_subscriber'],
                    },
                })

    @classmethod
    @ModelView.button_action('isp_base.wizard_portal_invite')
    def isp_portal_invite(cls, parties):
        "Invite the subscribers to the customer portal"
        pass

    @classmethod
    def __post_setup__(cls):
        super().__post_setup__()
        set_branch_context(cls, 'isp_company')

    @classmethod
    def default_is_subscriber(cls):
        return Transaction().context.get('default_is_subscriber', False)

    @classmethod
    def default_isp_company(cls):
        if cls.default_is_subscriber():
            return Transaction().context.get('company')

    @fields.depends('is_subscriber', 'isp_company')
    def on_change_is_subscriber(self):
        pool = Pool()
        Company = pool.get('company.company')
        company = Transaction().context.get('company')
        if self.is_subscriber and not self.isp_company and company:
            self.isp_company = Company(company)

    @fields.depends('isp_company', *PHONE_FIELDS)
    def _normalize_phones(self):
        country = self.isp_company.isp_phone_country() \
            if self.isp_company else None
        for name in PHONE_FIELDS:
            value = getattr(self, name)
            normalized = normalize_phone(value, country)
            if normalized:
                setattr(self, name, normalized)

    @fields.depends(methods=['_normalize_phones'])
    def on_change_subscriber_phone(self):
        self._normalize_phones()

    @fields.depends(methods=['_normalize_phones'])
    def on_change_whatsapp(self):
        self._normalize_phones()

    @classmethod
    def _isp_values_company(cls, values):
        pool = Pool()
        Company = pool.get('company.company')
        company = values.get('isp_company') or \
            Transaction().context.get('company')
        return Company(company) if company else None

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if (mode == 'create' and values.get('is_subscriber')
                and not values.get('isp_company')):
            values['isp_company'] = Transaction().context.get('company')
        if any(values.get(n) for n in PHONE_FIELDS):
            company = cls._isp_values_company(values)
            country = company.isp_phone_country() if company else None
            for name in PHONE_FIELDS:
                if values.get(name):
                    values[name] = (
                        normalize_phone(values[name], country)
                        or values[name])
        if values.get('national_id'):
            values['national_id'] = ''.join(values['national_id'].split())
        return values

    @classmethod
    def validate_fields(cls, parties, field_names):
        super().validate_fields(parties, field_names)
        cls.check_subscriber_branch(parties, field_names)
        cls.check_national_id(parties, field_names)
        cls.check_phones(parties, field_names)
        cls.check_coordinates(parties, field_names)

    def _isp_country(self):
        pool = Pool()
        Company = pool.get('company.company')
        company = self.isp_company
        if not company and Transaction().context.get('company'):
            company = Company(Transaction().context['company'])
        return company.isp_phone_country() if company else None

    @classmethod
    def check_subscriber_branch(cls, parties, field_names=None):
        """A subscriber belongs to a branch: without one it would be shared
        with every branch"""
        if field_names and not (
                field_names & {'is_subscriber', 'isp_company'}):
            return
        for party in parties:
            if party.is_subscriber and not party.isp_company:
                raise SubscriberError(gettext(
                        'isp_base.msg_subscriber_branch_required',
                        party=party.rec_name))

    @classmethod
    def check_national_id(cls, parties, field_names=None):
        if field_names and not (
                field_names & {'national_id', 'isp_company'}):
            return
        for party in parties:
            if not party.national_id:
                continue
            problem = national_id_problem(
                party.national_id, party._isp_country())
            if problem:
                raise NationalIDValidationError(gettext(
                        'isp_base.msg_party_national_id_invalid',
                        party=party.rec_name,
                        national_id=party.national_id,
                        reason=gettext(
                            'isp_base.msg_national_id_reason_%s' % problem)))

    @classmethod
    def check_phones(cls, parties, field_names=None):
        if field_names and not (field_names & set(PHONE_FIELDS)):
            return
        for party in parties:
            for name in PHONE_FIELDS:
                value = getattr(party, name)
                if value and normalize_phone(value) != value:
                    raise PhoneValidationError(gettext(
                            'isp_base.msg_party_phone_invalid',
                            field=cls.fields_get([name])[name]['string'],
                            number=value,
                            party=party.rec_name))

    @classmethod
    def check_coordinates(cls, parties, field_names=None):
        if field_names and not (field_names & {'latitude', 'longitude'}):
            return
        for party in parties:
            problem = coordinate_problem(party.latitude, party.longitude)
            if problem:
                raise CoordinateValidationError(gettext(
                        'isp_base.msg_party_coordinate_invalid',
                        field=cls.fields_get([problem])[problem]['string'],
                        value=getattr(party, problem),
                        limit=90 if problem == 'latitude' else 180,
                        party=party.rec_name))

    @classmethod
    def on_modification(cls, mode, parties, field_names=None):
        super().on_modification(mode, parties, field_names=field_names)
        if mode in {'create', 'write'}:
            cls.set_subscriber_code(parties)

    @classmethod
    def set_subscriber_code(cls, parties):
        "Number the subscribers that have no code yet, per branch"
        pool = Pool()
        Configuration = pool.get('isp.configuration')
        to_number = defaultdict(list)
        for party in parties:
            if (party.is_subscriber and party.isp_company
                    and not party.subscriber_code):
                to_number[party.isp_company.id].append(party)
        if not to_number:
            return
        config = Configuration(1)
        to_save = []
        for company, company_parties in to_number.items():
            with Transaction().set_context(company=company):
                sequence = config.get_multivalue(
                    'subscriber_sequence', company=company)
                codes = sequence.get_many(len(company_parties))
            for party, code in zip(company_parties, codes, strict=True):
                party.subscriber_code = code
                to_save.append(party)
        cls.save(to_save)

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('subscriber_code', None)
        default.setdefault('national_id', None)
        return super().copy(parties, default=default)


class ContactMechanism(metaclass=PoolMeta):
    __name__ = 'party.contact_mechanism'

    @classmethod
    def check_valid_email(cls, mechanisms, field_names=None):
        """party's check (email_validator when installed), and the syntax
        of `email_problem` always: the portal's profile and the back office
        accept the same addresses"""
        from trytond.modules.party.exceptions import InvalidEMail
        super().check_valid_email(mechanisms, field_names)
        if field_names and not (field_names & {'type', 'value'}):
            return
        for mechanism in mechanisms:
            if (mechanism.type == 'email' and mechanism.value
                    and email_problem(mechanism.value)):
                raise InvalidEMail(gettext(
                        'party.msg_email_invalid',
                        email=mechanism.value,
                        party=mechanism.party.rec_name))
