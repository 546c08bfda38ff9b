# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import SQLConstraintError
from trytond.modules.company.tests import (
    CompanyTestMixin,
    PartyCompanyCheckEraseMixin,
    create_company,
    set_company,
)
from trytond.modules.party.tests import PartyCheckReplaceMixin
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONEncoder
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

from trytond.modules.isp_base.exceptions import (
    CoordinateValidationError,
    LocationCodeValidationError,
    NationalIDValidationError,
    PhoneValidationError,
    PlanValidationError,
)
from trytond.modules.isp_base.tests.views import ListViewTestMixin
from trytond.modules.isp_base.validation import (
    format_rate,
    national_id_problem,
    nik_birth_date,
    nik_problem,
    normalize_phone,
    rate_limit,
)


def _country(code):
    Country = Pool().get('country.country')
    country, = Country.create([{'name': code, 'code': code}])
    return country


class IspBaseTestCase(
        PartyCompanyCheckEraseMixin, PartyCheckReplaceMixin,
        ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test ISP Base module"
    module = 'isp_base'

    @property
    def _skip_company_rule(self):
        # Subscribers and plans are shared when their branch is empty: their
        # rules are ['OR', (field, '=', None), (field, 'in', companies)],
        # checked by test_shared_company_rules below.
        return super()._skip_company_rule | {
            ('party.party', 'isp_company'),
            ('product.template', 'isp_company'),
            ('isp.message.provider', 'company'),
            ('isp.message.template', 'company'),
            ('isp.message.inbound', 'company'),
            ('web.user', 'isp_company'),
            # central records' entries (no branch): the head office's;
            # checked by test_audit_log_rules
            ('isp.audit.log', 'company'),
            }

    @with_transaction()
    def test_shared_company_rules(self):
        "Subscribers and plans have their 'empty or in companies' rule"
        pool = Pool()
        Rule = pool.get('ir.rule')
        for model in ['party.party', 'product.template']:
            rules = Rule.search([
                    ('rule_group.model', '=', model),
                    ('rule_group.global_p', '=', True),
                    ('domain', 'like', '%isp_company%'),
                    ])
            self.assertEqual(len(rules), 1, msg=model)

    @with_transaction()
    def test_audit_log_rules(self):
        "The audit trail: a global branch rule, narrowed for branch admins"
        pool = Pool()
        Rule = pool.get('ir.rule')
        ModelData = pool.get('ir.model.data')
        encode = PYSONEncoder(sort_keys=True).encode
        shared = encode(['OR', ('company', '=', None),
                ('company', 'in', Eval('companies', []))])
        strict = encode([('company', 'in', Eval('companies', []))])
        rule, = Rule.search([
                ('rule_group.model', '=', 'isp.audit.log'),
                ('rule_group.global_p', '=', True)])
        self.assertEqual(rule.domain, shared)
        rule, = Rule.search([
                ('rule_group.model', '=', 'isp.audit.log'),
                ('rule_group.global_p', '=', False)])
        self.assertEqual(rule.domain, strict)
        self.assertEqual([g.id for g in rule.rule_group.groups], [
                ModelData.get_id('isp_base', 'group_isp_branch_admin')])

    @with_transaction()
    def test_notification_company_rules(self):
        "Central providers, templates and inbound messages are shared"
        pool = Pool()
        Rule = pool.get('ir.rule')
        shared = PYSONEncoder(sort_keys=True).encode(['OR',
                ('company', '=', None),
                ('company', 'in', Eval('companies', []))])
        strict = PYSONEncoder(sort_keys=True).encode(
            [('company', 'in', Eval('companies', []))])
        for model in [
                'isp.message.provider', 'isp.message.template',
                'isp.message.inbound']:
            rules = Rule.search([
                    ('rule_group.model', '=', model),
                    ('rule_group.global_p', '=', True),
                    ('rule_group.perm_read', '=', True),
                    ('domain', '=', shared),
                    ])
            self.assertEqual(len(rules), 1, msg=model)
        for model in ['isp.message.provider', 'isp.message.template']:
            # a branch administrator changes only the branch's own records
            rules = Rule.search([
                    ('rule_group.model', '=', model),
                    ('rule_group.global_p', '=', False),
                    ('rule_group.perm_write', '=', True),
                    ('rule_group.perm_read', '=', False),
                    ('domain', '=', strict),
                    ])
            self.assertEqual(len(rules), 1, msg=model)

    def test_nik_valid(self):
        "Valid NIKs: man and woman (day + 40)"
        self.assertIsNone(nik_problem('3201011708900001'))
        self.assertIsNone(nik_problem('3201015708900002'))
        self.assertEqual(
            nik_birth_date('3201015708900002')[1], 'female')
        self.assertEqual(
            str(nik_birth_date('3201011708900001')[0]), '1990-08-17')

    def test_nik_invalid(self):
        "Invalid NIKs and their reason"
        for nik, reason in [
                ('320101170890000', 'length'),
                ('32010117089000012', 'length'),
                ('32010117089O0001', 'length'),
                ('0001011708900001', 'region'),
                ('3200011708900001', 'region'),
                ('3201001708900001', 'region'),
                ('3201013208900001', 'birth_date'),
                ('3201017213900001', 'birth_date'),
                ('3201010013900001', 'birth_date'),
                ('3201013002900001', 'birth_date'),
                ('3201011708900000', 'serial'),
                ]:
            with self.subTest(nik=nik):
                self.assertEqual(nik_problem(nik), reason)

    def test_nik_leap_day(self):
        "29 February is a valid birth date only in a leap year"
        self.assertIsNone(nik_problem('3201012902000001'))
        self.assertIsNone(nik_problem('3201016902960001'))
        self.assertEqual(nik_problem('3201012902010001'), 'birth_date')

    def test_national_id_by_country(self):
        "National ID rules follow the branch's country"
        self.assertIsNone(national_id_problem('3201011708900001', 'ID'))
        self.assertIsNone(national_id_problem('23456789', 'KE'))
        self.assertEqual(national_id_problem('3201011708900001', 'KE'),
            'length_ke')
        self.assertEqual(national_id_problem('12', 'US'), 'format')

    def test_normalize_phone(self):
        "Phones are stored in E.164, national numbers read in the country"
        self.assertEqual(
            normalize_phone('0812-3456-7890', 'ID'), '+6281234567890')
        self.assertEqual(
            normalize_phone('+62 812 3456 7890', 'KE'), '+6281234567890')
        self.assertEqual(
            normalize_phone('0712 345678', 'KE'), '+254712345678')
        self.assertEqual(
            normalize_phone('00254712345678'), '+254712345678')
        self.assertIsNone(normalize_phone('12345', 'ID'))
        self.assertIsNone(normalize_phone('0812345', None))

    def test_rate_limit(self):
        "MikroTik rate-limit strings: upload/download, bursts"
        self.assertEqual(format_rate(512), '512k')
        self.assertEqual(format_rate(20000), '20M')
        self.assertEqual(format_rate(1500), '1500k')
        self.assertEqual(rate_limit(5000, 20000), '5M/20M')
        self.assertEqual(
            rate_limit(5000, 20000, 10000, 40000, 4000, 16000, 8),
            '5M/20M 10M/40M 4M/16M 8/8')

    def _subscriber(self, company, **values):
        pool = Pool()
        Party = pool.get('party.party')
        values.setdefault('name', 'Budi Santoso')
        values.setdefault('is_subscriber', True)
        values.setdefault('isp_company', company.id)
        party, = Party.create([values])
        return party

    def _company(self, country='ID'):
        company = create_company()
        company.isp_country = _country(country)
        company.save()
        return company

    @with_transaction()
    def test_subscriber_normalized_and_numbered(self):
        "A subscriber gets a code and E.164 numbers"
        company = self._company('ID')
        with set_company(company):
            party = self._subscriber(
                company, national_id='3201 0117 0890 0001',
                subscriber_phone='0812-3456-7890', whatsapp='081234567891',
                latitude=-6.2, longitude=106.8)
            other = self._subscriber(company, name="Siti")
        self.assertEqual(party.national_id, '3201011708900001')
        self.assertEqual(party.subscriber_phone, '+6281234567890')
        self.assertEqual(party.whatsapp, '+6281234567891')
        self.assertTrue(party.subscriber_code)
        self.assertNotEqual(party.subscriber_code, other.subscriber_code)

    @with_transaction()
    def test_subscriber_kenyan_branch(self):
        "A Kenyan branch reads national numbers and IDs the Kenyan way"
        company = self._company('KE')
        with set_company(company):
            party = self._subscriber(
                company, national_id='23456789', whatsapp='0712345678')
            self.assertEqual(party.whatsapp, '+254712345678')
            with self.assertRaises(NationalIDValidationError):
                self._subscriber(company, national_id='3201011708900001')

    @with_transaction()
    def test_subscriber_invalid_values(self):
        "Invalid NIK, phone and coordinates raise errors naming the field"
        company = self._company('ID')
        with set_company(company):
            for values, error, text in [
                    ({'national_id': '3201013208900001'},
                        NationalIDValidationError, 'National ID'),
                    ({'whatsapp': '0812'}, PhoneValidationError, 'WhatsApp'),
                    ({'subscriber_phone': 'abc'},
                        PhoneValidationError, 'Phone'),
                    ({'latitude': 91.0}, CoordinateValidationError,
                        'Latitude'),
                    ({'longitude': -180.5}, CoordinateValidationError,
                        'Longitude'),
                    ]:
                with self.subTest(values=values):
                    with self.assertRaises(error) as cm:
                        self._subscriber(company, **values)
                    self.assertIn(text, cm.exception.message)

    @with_transaction()
    def test_subscriber_national_id_unique(self):
        "A national ID is unique within a branch"
        company = self._company('ID')
        with set_company(company):
            self._subscriber(company, national_id='3201011708900001')
            with self.assertRaises(SQLConstraintError):
                self._subscriber(
                    company, name="Other", national_id='3201011708900001')

    @with_transaction()
    def test_location_code(self):
        "Location codes are 2-5 capital letters, unique per company"
        pool = Pool()
        Location = pool.get('isp.location')
        company = self._company()
        with set_company(company):
            location, = Location.create([{'code': 'kcb', 'name': "Kecubung"}])
            self.assertEqual(location.code, 'KCB')
            self.assertEqual(location.company, company)
            for code in ['K', 'KCBDEF', 'K1', 'K B']:
                with self.subTest(code=code):
                    with self.assertRaises(LocationCodeValidationError):
                        Location.create([{'code': code, 'name': code}])
            with self.assertRaises(SQLConstraintError):
                Location.create([{'code': 'KCB', 'name': "Again"}])

    def _plan(self, **values):
        pool = Pool()
        Template = pool.get('product.template')
        Uom = pool.get('product.uom')
        unit, = Uom.search([('name', '=', 'Unit')])
        values = {
            'name': "Home 20M",
            'type': 'service',
            'default_uom': unit.id,
            'isp_plan': True,
            'download_rate': 20000,
            'upload_rate': 5000,
            **values,
            }
        template, = Template.create([values])
        return template

    @with_transaction()
    def test_plan_rate_limit(self):
        "A plan derives its MikroTik rate limits"
        company = self._company()
        with set_company(company):
            plan = self._plan(
                burst_download_rate=40000, burst_upload_rate=10000,
                burst_threshold_download=16000, burst_threshold_upload=4000,
                burst_time=8, quota=300, throttled_download_rate=2000,
                throttled_upload_rate=1000, setup_fee=Decimal('150000'))
        self.assertEqual(plan.rate_limit, '5M/20M 10M/40M 4M/16M 8/8')
        self.assertEqual(plan.throttled_rate_limit, '1M/2M')

    @with_transaction()
    def test_plan_validation(self):
        "Incoherent plans are refused with a message naming the problem"
        company = self._company()
        with set_company(company):
            for values in [
                    {'download_rate': 0},
                    {'burst_download_rate': 10000, 'burst_upload_rate': 6000,
                        'burst_threshold_download': 16000,
                        'burst_threshold_upload': 4000, 'burst_time': 8},
                    {'burst_download_rate': 40000},
                    {'burst_download_rate': 40000, 'burst_upload_rate': 10000,
                        'burst_threshold_download': 16000,
                        'burst_threshold_upload': 4000},
                    {'quota': 100},
                    {'quota': 0},
                    {'quota': 100, 'throttled_download_rate': 30000,
                        'throttled_upload_rate': 1000},
                    {'setup_fee': Decimal('-1')},
                    {'type': 'goods'},
                    ]:
                with self.subTest(values=values):
                    with self.assertRaises(PlanValidationError):
                        self._plan(**values)

    @with_transaction()
    def test_subscriber_sequence_per_company(self):
        "Each branch may number its subscribers with its own sequence"
        pool = Pool()
        Configuration = pool.get('isp.configuration')
        Sequence = pool.get('ir.sequence')
        SequenceType = pool.get('ir.sequence.type')
        company = self._company()
        with set_company(company):
            sequence_type, = SequenceType.search(
                [('name', '=', "Subscriber")])
            sequence, = Sequence.create([{
                        'name': "Branch", 'sequence_type': sequence_type.id,
                        'prefix': 'BDG-', 'company': company.id}])
            config = Configuration(1)
            config.subscriber_sequence = sequence
            config.save()
            party = self._subscriber(company)
        self.assertTrue(party.subscriber_code.startswith('BDG-'))

    @with_transaction()
    def test_subscriber_requires_branch(self):
        "A subscriber without a branch is refused"
        pool = Pool()
        Party = pool.get('party.party')
        with self.assertRaises(UserError):
            Party.create([{'name': "Nobody", 'is_subscriber': True}])


del ModuleTestCase
