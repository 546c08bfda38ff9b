# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The posting shortcuts of the billing run keep the stock results: the
amounts cache stored once at validation and kept at posting, no tax
recomputation for writes that change no tax, the cached billing
configuration."""
import unittest
from decimal import Decimal

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .payment_setup import (
    create_branch,
    create_customer,
    create_plan_and_router,
    create_sales_tax,
    create_services,
)


class InvoicePostingTestCase(unittest.TestCase):
    "Test the amounts cache, taxes and numbers of posted service invoices"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_billing')

    def setup_branch(self):
        "A branch with a tax of 11 % and one of 16 %: (company, tax, tax)"
        company = create_branch("Posting Branch")
        with Transaction().set_context(company=company.id):
            taxes = [create_sales_tax(company, rate, name, configure=False)
                for name, rate in [("PPN", '0.11'), ("VAT", '0.16')]]
        return (company, *taxes)

    def draft_invoice(self, company, tax, prices):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Configuration = pool.get('isp.billing.configuration')
        Journal = pool.get('account.journal')
        party = create_customer()
        revenue = Configuration.get_value(company, 'revenue_account')
        journal, = Journal.search([('type', '=', 'revenue')], limit=1)
        invoice, = Invoice.create([{
                    'type': 'out', 'company': company.id,
                    'party': party.id,
                    'invoice_address': party.addresses[0].id,
                    'currency': company.currency.id,
                    'journal': journal.id,
                    'account': party.account_receivable_used.id,
                    'lines': [('create', [{
                                    'type': 'line', 'company': company.id,
                                    'currency': company.currency.id,
                                    'quantity': 1,
                                    'unit_price': Decimal(price),
                                    'account': revenue.id,
                                    'taxes': [('add', [tax.id])],
                                    'description': "Internet",
                                    } for price in prices])],
                    }])
        return invoice

    def amounts(self, invoice):
        "(cached amounts, computed amounts) of `invoice` read again"
        Invoice = Pool().get('account.invoice')
        invoice = Invoice(invoice.id)
        cached = (invoice.untaxed_amount_cache, invoice.tax_amount_cache,
            invoice.total_amount_cache)
        return cached, (invoice.untaxed_amount, invoice.tax_amount,
            invoice.total_amount)

    @with_transaction()
    def test_amounts_cache_validated_then_posted(self):
        "The cache is stored at validation, kept at posting, renewed"
        Invoice = Pool().get('account.invoice')
        company, ppn, _ = self.setup_branch()
        with Transaction().set_context(company=company.id):
            invoice = self.draft_invoice(company, ppn, ['100000'])
            self.assertEqual(self.amounts(invoice)[0], (None, None, None))
            self.assertEqual(invoice.number_alnum, None)
            self.assertEqual(invoice.number_digit, None)

            Invoice.validate_invoice([invoice])
            amounts = (Decimal(100000), Decimal(11000), Decimal(111000))
            self.assertEqual(self.amounts(invoice), (amounts, amounts))

            # back to draft clears the cache; a changed line changes the
            # taxes and the amounts stored at the next validation
            Invoice.draft([invoice])
            self.assertEqual(self.amounts(invoice)[0], (None, None, None))
            line, = Invoice(invoice.id).lines
            Invoice.write([invoice], {'lines': [('write', [line.id], {
                                'unit_price': Decimal(200000)})]})
            invoice = Invoice(invoice.id)
            tax_line, = invoice.taxes
            self.assertEqual(tax_line.base, Decimal(200000))
            Invoice.validate_invoice([invoice])
            amounts = (Decimal(200000), Decimal(22000), Decimal(222000))
            self.assertEqual(self.amounts(invoice), (amounts, amounts))

            Invoice.post([invoice])
            invoice = Invoice(invoice.id)
            self.assertEqual(invoice.state, 'posted')
            self.assertEqual(self.amounts(invoice), (amounts, amounts))
            self.assertEqual(invoice.move.state, 'posted')
            receivable, = [m for m in invoice.move.lines if m.debit]
            self.assertEqual(receivable.debit, Decimal(222000))
            # the number's search columns are written at numbering
            self.assertTrue(invoice.number)
            self.assertEqual(invoice.number_digit,
                int(''.join(c for c in invoice.number if c.isdigit())))
            self.assertEqual(
                Invoice.search([
                        ('company', '=', company.id),
                        ('number', '=', invoice.number)]),
                [invoice])

    @with_transaction()
    def test_draft_posted_directly(self):
        "A draft posted without validation stores the cache and taxes"
        Invoice = Pool().get('account.invoice')
        company, ppn, _ = self.setup_branch()
        with Transaction().set_context(company=company.id):
            invoice = self.draft_invoice(company, ppn, ['50000', '25000'])
            Invoice.post([invoice])
            amounts = (Decimal(75000), Decimal(8250), Decimal(83250))
            self.assertEqual(self.amounts(invoice), (amounts, amounts))
            self.assertEqual(Invoice(invoice.id).state, 'posted')

    @with_transaction()
    def test_draft_taxes_follow_their_lines(self):
        "Writes of a draft's lines or taxes still recompute its taxes"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        company, ppn, vat = self.setup_branch()
        with Transaction().set_context(company=company.id):
            invoice = self.draft_invoice(company, ppn, ['100000'])
            line, = invoice.lines
            Invoice.write([invoice], {'lines': [('write', [line.id], {
                                'taxes': [('remove', [ppn.id]),
                                    ('add', [vat.id])]})]})
            tax_line, = Invoice(invoice.id).taxes
            self.assertEqual(tax_line.tax, vat)
            self.assertEqual(tax_line.amount, Decimal(16000))
            # a write of the invoice's other fields recomputes them too
            # (here: a tax line removed behind its back comes back)
            Tax = pool.get('account.invoice.tax')
            Tax.delete([tax_line])
            Invoice.write([invoice], {'description': "November"})
            tax_line, = Invoice(invoice.id).taxes
            self.assertEqual(tax_line.amount, Decimal(16000))
            # a write of the amounts cache alone does not
            Tax.delete([tax_line])
            Invoice.write([invoice], {'untaxed_amount_cache': None})
            self.assertEqual(Invoice(invoice.id).taxes, ())

    @with_transaction()
    def test_configuration_values_follow_writes(self):
        "The cached billing values change with the configuration"
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        company, ppn, vat = self.setup_branch()
        with Transaction().set_context(company=company.id):
            Configuration.write([Configuration(1)], {
                    'tax': ppn.id, 'due_days': 14})
            self.assertEqual(Configuration.get_value(company, 'tax'), ppn)
            self.assertEqual(
                Configuration.get_values(company)['due_days'], 14)
            Configuration.write([Configuration(1)], {
                    'tax': vat.id, 'due_days': 7})
            self.assertEqual(Configuration.get_value(company, 'tax'), vat)
            self.assertEqual(
                Configuration.get_values(company)['due_days'], 7)
            # a plan without account category takes the configured tax
            Line = pool.get('account.invoice.line')
            Template = pool.get('product.template')
            Uom = pool.get('product.uom')
            unit, = Uom.search([('name', '=', 'Unit')])
            plan, = Template.create([{
                        'name': "Home", 'isp_plan': True, 'type': 'service',
                        'isp_company': company.id, 'default_uom': unit.id,
                        'list_price': Decimal(100000),
                        'download_rate': 20000, 'upload_rate': 5000,
                        'products': [('create', [{}])]}])
            line = Line(company=company, currency=company.currency,
                invoice_type='out', type='line', product=plan.products[0])
            line.on_change_product()
            self.assertEqual(list(line.taxes), [vat])


class CancelledInvoiceTestCase(unittest.TestCase):
    "Test that the periods of cancelled service invoices are billed again"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_billing')

    def create_service(self, name="Cancel Branch"):
        "An active service of 300,000 activated on the 1st of this month"
        pool = Pool()
        Date = pool.get('ir.date')
        Company = pool.get('company.company')
        company = create_branch(name)
        Company.write([company], {'cancel_invoice_out': True})
        with Transaction().set_context(company=company.id):
            today = Date.today()
            create_sales_tax(company, '0.11', "PPN")
            plan, router = create_plan_and_router(
                company, "Home 20", 300000, 'CB')
            service, = create_services(company, plan, router,
                ["Siti Rahayu"], 'CB', activation_date=today.replace(day=1))
        return company, service, today

    def period_lines(self, invoice):
        return [(line_.isp_kind, line_.isp_period_key, line_.amount)
            for line_ in invoice.lines]

    @with_transaction()
    def test_cancelled_posted_invoice_billed_again(self):
        "A cancelled posted invoice's period is billed by the next run"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Service = pool.get('isp.service')
        company, service, today = self.create_service()
        first = today.replace(day=1)
        with Transaction().set_context(company=company.id):
            invoice, = Service.isp_bill([service], today)
            self.assertEqual(invoice.state, 'posted')
            self.assertEqual(self.period_lines(invoice),
                [('recurring', first, Decimal(300000))])
            self.assertTrue(Service(service.id).billed_until)

            Invoice.cancel([invoice])
            invoice = Invoice(invoice.id)
            self.assertEqual(invoice.state, 'cancelled')
            self.assertEqual(self.period_lines(invoice),
                [('recurring', None, Decimal(300000))])
            self.assertEqual(Service(service.id).billed_until, None)

            again, = Service.isp_bill([Service(service.id)], today)
            self.assertNotEqual(again, invoice)
            self.assertEqual(again.state, 'posted')
            self.assertEqual(self.period_lines(again),
                [('recurring', first, Decimal(300000))])
            self.assertEqual(again.total_amount, Decimal(333000))
            # and only once
            self.assertEqual(Service.isp_bill([Service(service.id)], today),
                [])

    @with_transaction()
    def test_cancelled_then_draft_claims_its_period(self):
        "A cancelled invoice set back to draft takes its period back"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Service = pool.get('isp.service')
        company, service, today = self.create_service()
        with Transaction().set_context(company=company.id):
            invoice, = Service._isp_bill([service], today, post=False)
            billed_until = Service(service.id).billed_until
            Invoice.cancel([invoice])
            self.assertEqual(Service(service.id).billed_until, None)
            Invoice.draft([Invoice(invoice.id)])
            invoice = Invoice(invoice.id)
            self.assertEqual(invoice.state, 'draft')
            self.assertEqual(self.period_lines(invoice),
                [('recurring', today.replace(day=1), Decimal(300000))])
            self.assertEqual(Service(service.id).billed_until, billed_until)
            # the run does not bill the period a second time
            self.assertEqual(Service.isp_bill([Service(service.id)], today),
                [])


class AwaitingInstallationTestCase(unittest.TestCase):
    "Test that a service waiting for its installation is billed on activation"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_billing')

    @with_transaction()
    def test_activation_bills_first_period(self):
        "Nothing billed while it waits; its activation invoices the first"
        pool = Pool()
        Date = pool.get('ir.date')
        Invoice = pool.get('account.invoice')
        Service = pool.get('isp.service')
        company = create_branch("Installation Branch")
        with Transaction().set_context(company=company.id):
            today = Date.today()
            create_sales_tax(company, '0.11', "PPN")
            plan, router = create_plan_and_router(
                company, "Home 20", 300000, 'IB')
            waiting, active = create_services(company, plan, router,
                ["Dewi Lestari", "Agus Salim"], 'IB', state='draft')
            Service.write([waiting], {'awaiting_installation': True})
            # the billing run leaves draft services alone
            self.assertEqual(Service.isp_bill([waiting], today), [])

            Service.activate([waiting, active])
            waiting, active = Service.browse([waiting, active])
            self.assertEqual((waiting.state, active.state),
                ('active', 'active'))
            self.assertFalse(waiting.awaiting_installation)
            self.assertEqual(waiting.activation_date, today)
            invoice, = Invoice.search([('party', '=', waiting.subscriber)])
            self.assertEqual(invoice.state, 'posted')
            self.assertTrue(waiting.billed_until)
            # a draft service activated by hand without waiting: as before,
            # billed by the run
            self.assertEqual(Invoice.search(
                    [('party', '=', active.subscriber)], count=True), 0)
