# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Vouchers sold to resellers: a posted invoice at the price less the
commission with the product's taxes, the vouchers sold to the reseller,
the credit limit refusing a sale with nothing written, the sales report per
reseller and month."""
import datetime as dt
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.modules.company.tests import set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction

from trytond.modules.isp_base.exceptions import BranchAccessError
from trytond.modules.isp_billing.tests.payment_setup import (
    create_branch,
    create_customer,
    create_invoices,
    create_sales_tax,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import (
    run_wizard,
)

from .voucher_setup import create_batch, create_profile, create_reseller


class ResellerTestCase(RouteTestCase):
    "Voucher resellers"
    module = 'isp_voucher'

    def setup_branch(self, name="NetKita"):
        company = create_branch(name)
        with set_company(company):
            create_sales_tax(company, '0.11')
        return company

    @with_transaction()
    def test_sell_batch(self):
        """The invoice: the profile's product, the price less the
        commission, the branch's tax, posted; the vouchers sold"""
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        Voucher = pool.get('isp.voucher')
        Sale = pool.get('isp.voucher.reseller.sale')
        company = self.setup_branch()
        with set_company(company):
            profile = create_profile(company, price='5000')
            batch = create_batch(profile, 30)
            reseller = create_reseller(company, rate='0.2')
            invoice = Reseller.sell(reseller, batch, 20)
            self.assertEqual(invoice.state, 'posted')
            self.assertEqual(invoice.party, reseller.party)
            line, = invoice.lines
            self.assertEqual(line.product, profile.product)
            self.assertEqual(line.quantity, 20)
            self.assertEqual(line.unit_price, Decimal('4000'))
            self.assertEqual(invoice.untaxed_amount, Decimal('80000'))
            self.assertEqual(invoice.tax_amount, Decimal('8800'))
            self.assertEqual(invoice.total_amount, Decimal('88800'))
            sold = Voucher.search([('reseller', '=', reseller.id)],
                order=[('id', 'ASC')])
            self.assertEqual(len(sold), 20)
            first = Voucher.search([('batch', '=', batch.id)],
                order=[('id', 'ASC')], limit=20)
            self.assertEqual(sold, first)
            for voucher in sold:
                self.assertEqual(voucher.state, 'sold')
                self.assertTrue(voucher.sold_date)
                self.assertEqual(voucher.invoice_line, line)
                self.assertEqual(voucher.sale_price, Decimal('5000'))
                self.assertEqual(voucher.commission, Decimal('1000'))
            self.assertEqual(Voucher.search_count(
                    [('batch', '=', batch.id), ('state', '=', 'new')]), 10)
            self.assertEqual(reseller.receivable, Decimal('88800'))

            sale, = Sale.search([])
            self.assertEqual(
                (sale.reseller, sale.company, sale.vouchers, sale.amount,
                    sale.commission, sale.invoiced),
                (reseller, company, 20, Decimal('100000'),
                    Decimal('20000'), Decimal('80000')))
            today = dt.date.today()
            self.assertEqual(sale.month, today.replace(day=1))

    @with_transaction()
    def test_sales_report_per_month(self):
        "One row per reseller and month"
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        Voucher = pool.get('isp.voucher')
        Sale = pool.get('isp.voucher.reseller.sale')
        company = self.setup_branch()
        with set_company(company):
            profile = create_profile(company, price='5000')
            batch = create_batch(profile, 20)
            toko = create_reseller(company, "Toko", rate='0.1')
            agen = create_reseller(company, "Agen", rate='0.25')
            Reseller.sell(toko, batch, 5)
            Reseller.sell(agen, batch, 4)
            Reseller.sell(toko, batch, 3)
            # the first sale of toko was last month
            last_month = dt.datetime.now().replace(day=1) - dt.timedelta(
                days=3)
            Voucher.write(Voucher.search([('reseller', '=', toko.id)],
                    order=[('id', 'ASC')], limit=5),
                {'sold_date': last_month})
            rows = {(s.reseller.id, s.month): (
                        s.vouchers, s.amount, s.commission)
                for s in Sale.search([])}
            this_month = dt.date.today().replace(day=1)
            self.assertEqual(rows, {
                    (toko.id, last_month.date().replace(day=1)): (
                        5, Decimal('25000'), Decimal('2500')),
                    (toko.id, this_month): (
                        3, Decimal('15000'), Decimal('1500')),
                    (agen.id, this_month): (
                        4, Decimal('20000'), Decimal('5000')),
                    })

    @with_transaction()
    def test_credit_limit(self):
        """A sale taking the receivable above the limit is refused, naming
        the amounts, and nothing is written"""
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        Voucher = pool.get('isp.voucher')
        Invoice = pool.get('account.invoice')
        company = self.setup_branch()
        with set_company(company):
            profile = create_profile(company, price='5000')
            batch = create_batch(profile, 30)
            # 10 vouchers: 10 x 4,000 + 11 % = 44,400
            reseller = create_reseller(company, rate='0.2', limit='60000')
            create_invoices(company, reseller.party, '20000')
            self.assertEqual(reseller.receivable, Decimal('20000'))
            invoices = Invoice.search([])
            with self.assertRaises(UserError) as cm:
                Reseller.sell(reseller, batch, 10)
            message = cm.exception.message
            self.assertIn("Credit Limit", message)
            self.assertIn("44400", message)
            self.assertIn("Toko Sinar", message)
            self.assertEqual(Invoice.search([]), invoices)
            self.assertEqual(Voucher.search_count(
                    [('batch', '=', batch.id), ('state', '!=', 'new')]), 0)
            # within the limit
            Reseller.sell(reseller, batch, 9)
            self.assertEqual(reseller.receivable, Decimal('59960'))

    @with_transaction()
    def test_bad_sales(self):
        "Zero, negative or unavailable quantities are refused, naming it"
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        Invoice = pool.get('account.invoice')
        Voucher = pool.get('isp.voucher')
        company = self.setup_branch()
        other = self.setup_branch("Other")
        with set_company(other):
            other_reseller = create_reseller(other, "Other Toko")
        with set_company(company):
            batch = create_batch(create_profile(company), 5)
            reseller = create_reseller(company)
            for quantity, words in [
                    (0, "greater than zero"), (-3, "greater than zero"),
                    (None, "greater than zero"),
                    (6, "5 new vouchers left")]:
                with self.subTest(quantity=quantity), \
                        self.assertRaises(UserError) as cm:
                    Reseller.sell(reseller, batch, quantity)
                self.assertIn("Quantity", cm.exception.message)
                self.assertIn(words, cm.exception.message)
            with self.assertRaises(UserError):
                Reseller.sell(other_reseller, batch, 1)
            Reseller.write([reseller], {'active': False})
            with self.assertRaises(UserError):
                Reseller.sell(reseller, batch, 1)
            self.assertEqual(Invoice.search([]), [])
            self.assertEqual(Voucher.search_count(
                    [('state', '!=', 'new')]), 0)

    @with_transaction()
    def test_reseller_values(self):
        "Commission 0-90 %, limit not negative, a party of the branch"
        pool = Pool()
        Reseller = pool.get('isp.voucher.reseller')
        company = self.setup_branch()
        with set_company(company):
            reseller = create_reseller(company)
            for values, field in [
                    ({'commission_rate': Decimal('-0.1')}, "Commission"),
                    ({'commission_rate': Decimal('0.95')}, "Commission"),
                    ({'credit_limit': Decimal('-1')}, "Credit Limit"),
                    ]:
                with self.subTest(values=values), \
                        self.assertRaises(UserError) as cm:
                    Reseller.write([Reseller(reseller.id)], values)
                self.assertIn(field, cm.exception.message)
                # the failed write is in the (not rolled back) transaction
                Reseller.write([Reseller(reseller.id)], {
                        'commission_rate': Decimal('0.2'),
                        'credit_limit': Decimal(0)})
            shared = create_customer("Shared Party")
            with self.assertRaises(UserError):
                Reseller.create([{
                            'company': company.id, 'party': shared.id,
                            'commission_rate': Decimal('0.1'),
                            'credit_limit': Decimal(0)}])

    @with_transaction()
    def test_wizard_other_branch(self):
        """The wizard run by a user of another branch: on this branch's
        batch, or on its own batch with this branch's reseller, refused
        without naming them; nothing sold"""
        pool = Pool()
        User = pool.get('res.user')
        Group = pool.get('res.group')
        Voucher = pool.get('isp.voucher')
        company = self.setup_branch()
        other = self.setup_branch("Other")
        with set_company(company):
            batch = create_batch(create_profile(company), 5, name="Mei-A")
            reseller = create_reseller(company)
        with set_company(other):
            other_batch = create_batch(
                create_profile(other, code='OT'), 5)
            other_reseller = create_reseller(other, "Other Toko")
        group, = Group.search([('name', '=', "ISP Customer Service")])
        user, = User.create([{
                    'name': "CS other", 'login': 'cs_other',
                    'groups': [('add', [group.id])],
                    'companies': [('add', [other.id])],
                    'company': other.id}])
        context = {'company': other.id, 'companies': [other.id]}
        for record, given in [
                (batch, other_reseller), (other_batch, reseller)]:
            with self.subTest(batch=record.company.rec_name), \
                    self.assertRaises((BranchAccessError, AccessError)) \
                    as cm:
                run_wizard(user, 'isp.voucher.sell_reseller', [
                        ('start', {}),
                        ('sell', {'start': {
                                    'reseller': given.id, 'quantity': 1}}),
                        ], {**context, 'active_model': 'isp.voucher.batch',
                        'active_id': record.id, 'active_ids': [record.id]})
            self.assertNotIn("Toko Sinar", cm.exception.message)
            self.assertNotIn(batch.name, cm.exception.message)
        self.assertEqual(Voucher.search_count([('state', '=', 'sold')]), 0)
        # its own batch and reseller: sold
        run_wizard(user, 'isp.voucher.sell_reseller', [
                ('start', {}),
                ('sell', {'start': {
                            'reseller': other_reseller.id, 'quantity': 2}}),
                ], {**context, 'active_model': 'isp.voucher.batch',
                'active_id': other_batch.id, 'active_ids': [other_batch.id]})
        self.assertEqual(Voucher.search_count([('state', '=', 'sold')]), 2)
