# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Voucher profiles, batches and vouchers: validation, bulk generation of
unique codes, states."""
import datetime as dt
import unittest
from decimal import Decimal
from unittest import mock

from trytond.exceptions import UserError
from trytond.model.exceptions import SQLConstraintError
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.validation import (
    parse_rate_limit,
    rate_problem,
)
from trytond.modules.isp_voucher import voucher as voucher_module
from trytond.modules.isp_voucher.exceptions import (
    BatchGeneratedError,
    CodeSpaceError,
    ProfileValidationError,
    VoucherDeleteError,
)
from trytond.modules.isp_voucher.voucher import (
    ALPHABET,
    CHUNK_SIZE,
    minimum_code_length,
)

from .voucher_setup import create_batch, create_profile, create_router

LOOK_ALIKES = set('01OIL')


class RateLimitTestCase(unittest.TestCase):
    "MikroTik's rate-limit syntax, read as plans' rates"

    def test_parse(self):
        self.assertEqual(parse_rate_limit('2M/5M'), {
                'upload_rate': 2000, 'download_rate': 5000,
                'burst_upload_rate': None, 'burst_download_rate': None,
                'burst_threshold_upload': None,
                'burst_threshold_download': None, 'burst_time': None})
        self.assertEqual(parse_rate_limit('512k')['download_rate'], 512)
        self.assertEqual(parse_rate_limit('64000/1G')['upload_rate'], 64)
        full = parse_rate_limit('2M/5M 4M/10M 1500k/4M 8/8 5 1M/2M')
        self.assertEqual(
            (full['burst_upload_rate'], full['burst_download_rate'],
                full['burst_threshold_upload'],
                full['burst_threshold_download'], full['burst_time']),
            (4000, 10000, 1500, 4000, 8))
        # a burst part of 0 is none (priority without burst)
        self.assertIsNone(
            parse_rate_limit('2M/5M 0/0 0/0 0/0 8')['burst_upload_rate'])

    def test_malformed(self):
        for text in [
                '', '   ', '5 Mbps', '2M/5M/7M', '2m/5m', '-2M/5M',
                '2.5M/5M', '1500/5M', '2M/5M 4M/10M 1M/4M 8/8 9',
                '2M/5M 4M/10M 1M/4M 8/8 0', '2M/5M 4M/10M 1M/4M x/8',
                '2M/5M 0/0 0/0 0/0 8 3M/1M', '2M/5M a b c d e f']:
            with self.subTest(text=text):
                self.assertIsNone(parse_rate_limit(text))

    def test_problems(self):
        "The rules of plans: positive rates, bursts above, thresholds below"
        for text, expected in [
                ('2M/5M', None),
                ('0/5M', ('rate_positive', 'upload_rate')),
                ('2M/5M 4M/4M 1M/4M 8', (
                        'burst_above_rate', 'burst_download_rate')),
                ('2M/5M 4M/10M 1M/6M 8', (
                        'burst_threshold', 'burst_threshold_download')),
                ('2M/5M 4M/10M', (
                        'burst_threshold', 'burst_threshold_download')),
                ('2M/5M 0/10M 0/4M 8', ('burst_both', None)),
                ('2M/5M 4M/10M 1M/4M', ('burst_time', None)),
                ('2M/5M 4M/10M 1M/4M 0/0', ('burst_time', None)),
                ('2M/5M 4M/10M 1M/4M 8/8 8', None),
                ]:
            with self.subTest(text=text):
                self.assertEqual(
                    rate_problem(parse_rate_limit(text)), expected)

    def test_minimum_code_length(self):
        self.assertEqual(minimum_code_length(1), 4)
        self.assertEqual(minimum_code_length(10_000), 5)
        self.assertEqual(minimum_code_length(100_000), 6)
        self.assertFalse(LOOK_ALIKES & set(ALPHABET))
        self.assertEqual(len(set(ALPHABET)), len(ALPHABET))


class VoucherTestCase(RouteTestCase):
    "Test voucher profiles, batches and vouchers"
    module = 'isp_voucher'

    def branch(self, name="NetKita"):
        company = create_company(name)
        User = Pool().get('res.user')
        User.write([User(Transaction().user)], {
                'companies': [('add', [company.id])]})
        return company

    # -- profiles --

    @with_transaction()
    def test_profile_price_with_tax(self):
        "The price with taxes: the product's price and the branch's tax"
        from trytond.modules.isp_billing.tests.payment_setup import (
            create_branch,
            create_sales_tax,
        )
        company = create_branch("NetKita")
        with set_company(company):
            create_sales_tax(company, '0.11')
            profile = create_profile(company, price='5000')
            self.assertEqual(profile.list_price, Decimal('5000'))
            self.assertEqual(profile.price_with_tax, Decimal('5550'))

    @with_transaction()
    def test_profile_rate_limit_refused(self):
        "A malformed or incoherent rate limit names the problem"
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            for text, words in [
                    ('5 Mbps', "syntax"),
                    ('2M/5M 4M/4M 1M/4M 8', "Burst Download Rate"),
                    ('2M/5M 4M/10M 1M/4M', "burst time"),
                    ]:
                with self.subTest(text=text), \
                        self.assertRaises(ProfileValidationError) as cm:
                    profile.rate_limit = text
                    profile.save()
                self.assertIn(words, cm.exception.message)
                self.assertIn(profile.name, cm.exception.message)
            profile.rate_limit = '  2M/5M   4M/10M 1500k/4M 8/8 '
            profile.save()
            self.assertEqual(profile.rate_limit, '2M/5M 4M/10M 1500k/4M 8/8')

    @with_transaction()
    def test_profile_limits_refused(self):
        "Out-of-bounds limits, both a router and a pool, other branches"
        pool = Pool()
        RouterPool = pool.get('isp.router.pool')
        company = self.branch()
        other = self.branch("Other")
        with set_company(other):
            other_router = create_router(other, 'OT')
        with set_company(company):
            profile = create_profile(company)
            Profile = profile.__class__
            router = profile.router
            router_pool, = RouterPool.create([{'name': "Pool"}])
            for values, words in [
                    ({'validity': 0}, "Validity"),
                    ({'validity': -1}, "Validity"),
                    ({'shared_users': 0}, "Shared Users"),
                    ({'data_quota': 0}, "Data Quota"),
                    ({'uptime_limit': dt.timedelta(0)}, "uptime limit"),
                    ({'router_pool': router_pool.id}, "not both"),
                    ({'router': other_router.id}, "Router"),
                    ({'router': None}, "Router"),
                    ]:
                with self.subTest(values=values), \
                        self.assertRaises(UserError) as cm:
                    Profile.write([Profile(profile.id)], values)
                self.assertIn(words, cm.exception.message)
                # the failed write is in the (not rolled back) transaction
                Profile.write([Profile(profile.id)], {
                        'uptime_limit': None, 'router': router.id,
                        'router_pool': None})
            Profile.write([profile], {
                    'router': None, 'router_pool': router_pool.id,
                    'uptime_limit': dt.timedelta(hours=3),
                    'data_quota': 2000, 'shared_users': 2})

    # -- batches --

    @with_transaction()
    def test_batch_bad_input(self):
        "Bad quantities, prefixes and code lengths: nothing created"
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            for values, field in [
                    ({'quantity': 0}, "Quantity"),
                    ({'quantity': -5}, "Quantity"),
                    ({'quantity': 100_001}, "Quantity"),
                    ({'quantity': 10, 'prefix': 'HO'}, "Prefix"),
                    ({'quantity': 10, 'prefix': 'H-1'}, "Prefix"),
                    ({'quantity': 10, 'prefix': 'HOTSPOTXX'}, "Prefix"),
                    ({'quantity': 10_000, 'code_length': 4},
                        "Code Length"),
                    ({'quantity': 10, 'code_length': 3}, "Code Length"),
                    ]:
                with self.subTest(values=values), \
                        self.assertRaises(UserError) as cm:
                    Batch.create([{
                                'name': "Bad", 'profile': profile.id,
                                **values}])
                self.assertIn(field, cm.exception.message)
            self.assertEqual(Voucher.search([]), [])
            # lower case is read as upper case
            batch = create_batch(profile, 3, prefix='hs')
            self.assertEqual(batch.prefix, 'HS')

    @with_transaction()
    def test_generate_10000(self):
        "10,000 codes: unique, of the alphabet, in bulk"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            create = Voucher.create
            calls = []

            def counting_create(vlist):
                calls.append(len(vlist))
                return create(vlist)
            with mock.patch.object(Voucher, 'create', counting_create):
                batch = create_batch(
                    profile, 10_000, prefix='HS', code_length=6)
            self.assertEqual(calls, [CHUNK_SIZE] * 10)
            # the stored rows, read with one query (10,000 instances would
            # cost more than the generation)
            table = Voucher.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.select(
                    table.code, table.password, table.state,
                    table.company, table.profile,
                    where=table.batch == batch.id))
            rows = cursor.fetchall()
            codes = [code for code, *_ in rows]
            self.assertEqual(len(codes), 10_000)
            self.assertEqual(len(set(codes)), 10_000)
            for code, password, state, company_id, profile_id in rows:
                self.assertEqual(len(code), 8)
                self.assertTrue(code.startswith('HS'))
                self.assertTrue(set(code) <= set(ALPHABET), code)
                self.assertEqual(password, code)
                self.assertEqual(state, 'new')
                self.assertEqual(
                    (company_id, profile_id), (company.id, profile.id))
            self.assertEqual(batch.voucher_count, 10_000)
            self.assertEqual(batch.state, 'generated')
            self.assertTrue(batch.generated_date)

    @with_transaction()
    def test_collision_retried(self):
        """A code drawn twice, or already stored (any branch), is drawn
        again and stored once"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        other = self.branch("Other")
        company = self.branch()
        draws = iter(['ABCD',
                'ABCD', 'ABCD', 'EFGH', 'EFGH', 'JKMN', 'ABCD', 'PQRS'])
        with mock.patch.object(voucher_module, 'random_code',
                lambda length: next(draws)):
            with set_company(other):
                first = create_batch(
                    create_profile(other, code='OT'), 1, code_length=4)
            with set_company(company):
                second = create_batch(
                    create_profile(company), 3, code_length=4)
            self.assertIsNone(next(draws, None))
        self.assertEqual(
            [v.code for v in Voucher.search([('batch', '=', first.id)])],
            ['ABCD'])
        self.assertEqual(
            sorted(v.code for v in Voucher.search(
                    [('batch', '=', second.id)])),
            ['EFGH', 'JKMN', 'PQRS'])

    @with_transaction()
    def test_code_never_a_username(self):
        """A code drawn equal to a PPPoE user name (any branch) is drawn
        again; a user name equal to a voucher's code is refused: RADIUS
        finds both by the user name alone"""
        from trytond.modules.isp_billing.tests.payment_setup import (
            create_plan_and_router,
            create_services,
        )
        from trytond.modules.isp_network.exceptions import (
            ServiceValidationError,
        )
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Service = pool.get('isp.service')
        other = self.branch("Other")
        company = self.branch()
        with set_company(other):
            plan, router = create_plan_and_router(other, "Home", 300000, 'WX')
            service, = create_services(other, plan, router, ["Siti"], 'WX')
        draws = iter([service.username, 'ABCD'])
        with mock.patch.object(voucher_module, 'random_code',
                lambda length: next(draws)), set_company(company):
            batch = create_batch(create_profile(company), 1, code_length=4,
                prefix='')
        self.assertIsNone(next(draws, None))
        self.assertEqual([v.code for v in batch.vouchers], ['ABCD'])
        with set_company(other), self.assertRaises(
                ServiceValidationError) as cm:
            Service.write([service], {'username': 'ABCD'})
        self.assertIn('ABCD', str(cm.exception))
        self.assertEqual(Voucher.search([('code', '=', 'ABCD')], count=True),
            1)

    @with_transaction()
    def test_code_space_exhausted(self):
        "A generator that finds no new code stops with an error"
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            with mock.patch.object(voucher_module, 'random_code',
                    lambda length: 'ABCD'):
                create_batch(profile, 1, code_length=4)
                with self.assertRaises(CodeSpaceError):
                    create_batch(profile, 2, code_length=4)

    @with_transaction()
    def test_code_unique_constraint(self):
        "The database refuses a code stored twice, whatever the branch"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        other = self.branch("Other")
        with set_company(company):
            voucher, = Voucher.search([('batch', '=',
                        create_batch(create_profile(company), 1).id)])
        with set_company(other):
            batch = create_batch(
                create_profile(other, code='OT'), 1, generate=False)
            with self.assertRaises(SQLConstraintError):
                Voucher.create([{
                            'company': other.id, 'batch': batch.id,
                            'profile': batch.profile.id,
                            'code': voucher.code, 'password': 'x'}])

    @with_transaction()
    def test_separate_password(self):
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        with set_company(company):
            batch = create_batch(create_profile(company), 200,
                password_mode='separate', password_length=5)
            vouchers = Voucher.search([('batch', '=', batch.id)])
            for voucher in vouchers:
                self.assertEqual(len(voucher.password), 5)
                self.assertTrue(set(voucher.password) <= set(ALPHABET))
            self.assertGreater(
                sum(v.password != v.code for v in vouchers), 190)

    @with_transaction()
    def test_batch_generated_frozen(self):
        "The codes settings of a generated batch cannot change"
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        company = self.branch()
        with set_company(company):
            batch = create_batch(create_profile(company), 5)
            for values in [{'quantity': 6}, {'prefix': 'X'},
                    {'code_length': 9}, {'password_mode': 'separate'}]:
                with self.subTest(values=values), \
                        self.assertRaises(BatchGeneratedError):
                    Batch.write([batch], values)
            Batch.write([batch], {'name': "Renamed"})
            # a batch generates once
            Batch.generate([batch])
            self.assertEqual(batch.voucher_count, 5)
            copy, = Batch.copy([batch])
            self.assertEqual((copy.state, copy.voucher_count), ('draft', 0))

    # -- states --

    @with_transaction()
    def test_voucher_states(self):
        "new -> sold -> active -> expired; disabled and back; voided"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company, validity=3,
                validity_unit='hours', uptime_limit=dt.timedelta(hours=1),
                data_quota=100)
            batch = create_batch(profile, 6)
            a, b, c, d, e, f = Voucher.search([('batch', '=', batch.id)])
            Voucher.sell([a, b, c, d])
            self.assertEqual(a.state, 'sold')
            self.assertTrue(a.sold_date)
            login = (dt.datetime.now() - dt.timedelta(hours=4)).replace(
                microsecond=0)
            Voucher.activate([a, b, c, e], first_login=login)
            self.assertEqual(e.state, 'active')
            self.assertEqual(a.expiry, login + dt.timedelta(hours=3))
            # b used its hour, c its data, e (not sold) is still valid
            Voucher.write([b, c, e], {'expiry': dt.datetime.now()
                        + dt.timedelta(hours=1)})
            Voucher.write([b], {'uptime_used': 3600})
            Voucher.write([c], {'bytes_used': 100 * 10 ** 6})
            Voucher.write([e], {'uptime_used': 60, 'bytes_used': 10})
            expired = Voucher.expire_due()
            self.assertEqual(sorted(expired), sorted([a, b, c]))
            self.assertEqual(
                [v.state for v in [a, b, c, d, e, f]],
                ['expired', 'expired', 'expired', 'sold', 'active', 'new'])
            # disabled vouchers come back to the state of their dates
            Voucher.disable([a, d, e, f])
            self.assertEqual([v.state for v in [a, d, e, f]],
                ['expired', 'disabled', 'disabled', 'disabled'])
            Voucher.enable([d, e, f])
            self.assertEqual([v.state for v in [d, e, f]],
                ['sold', 'active', 'new'])
            Voucher.void([a, d, f])
            self.assertEqual([v.state for v in [a, d, f]],
                ['expired', 'voided', 'voided'])
            Voucher.sell([f])
            self.assertEqual(f.state, 'voided')
            with self.assertRaises(VoucherDeleteError):
                Voucher.delete([d])

    @with_transaction()
    def test_batch_disable_void_delete(self):
        pool = Pool()
        Batch = pool.get('isp.voucher.batch')
        Voucher = pool.get('isp.voucher')
        company = self.branch()
        with set_company(company):
            profile = create_profile(company)
            batch = create_batch(profile, 4)
            a, b, c, d = Voucher.search([('batch', '=', batch.id)])
            Voucher.sell([a, b])
            Voucher.activate([b])
            Batch.disable([batch])
            self.assertEqual(batch.state, 'disabled')
            self.assertEqual({v.state for v in [a, b, c, d]}, {'disabled'})
            Batch.enable([batch])
            self.assertEqual([v.state for v in [a, b, c, d]],
                ['sold', 'active', 'new', 'new'])
            with self.assertRaises(VoucherDeleteError):
                Batch.delete([batch])
            Batch.void([batch])
            self.assertEqual(batch.state, 'voided')
            self.assertEqual({v.state for v in [a, b, c, d]}, {'voided'})

            unused = create_batch(profile, 3)
            Batch.disable([unused])
            Batch.delete([unused])
            self.assertEqual(
                Voucher.search([('batch', '=', unused.id)]), [])
            self.assertEqual(len(Voucher.search([])), 4)
