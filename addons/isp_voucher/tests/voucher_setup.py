# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fixtures of the voucher tests (run inside a transaction): a branch's
voucher product, router, profile and batch."""
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.isp_billing.tests.payment_setup import create_customer


def create_voucher_product(company, price='5000', name="Hotspot 1 day"):
    "A service product of `company` sold at `price`"
    pool = Pool()
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')])
    with Transaction().set_context(company=company.id):
        template, = Template.create([{
                    'name': name, 'type': 'service',
                    'isp_company': company.id,
                    'default_uom': unit.id,
                    'list_price': Decimal(price),
                    'products': [('create', [{}])]}])
    return template.products[0]


def create_router(company, code):
    "A router of `company` (never reached)"
    Router = Pool().get('isp.router')
    router, = Router.create([{
                'company': company.id, 'name': "Router %s" % code,
                'code': code, 'host': '127.0.0.1', 'port': 1,
                'api_password': 'x'}])
    return router


def create_profile(company, code='HS', price='5000', **values):
    "A voucher profile of `company` with its product and router"
    Profile = Pool().get('isp.voucher.profile')
    product = create_voucher_product(company, price=price)
    router = create_router(company, code)
    profile, = Profile.create([{
                'company': company.id, 'name': "1 day 5M",
                'product': product.id, 'router': router.id,
                'validity': 1, 'validity_unit': 'days',
                'rate_limit': '2M/5M',
                **values}])
    return profile


def create_batch(profile, quantity, generate=True, **values):
    "A batch of `quantity` vouchers of `profile`, its codes generated"
    Batch = Pool().get('isp.voucher.batch')
    batch, = Batch.create([{
                'company': profile.company.id, 'name': "Batch",
                'profile': profile.id, 'quantity': quantity,
                **values}])
    if generate:
        Batch.generate([batch])
    return batch


def create_reseller(company, name="Toko Sinar", rate='0.2',
        limit='1000000'):
    "A reseller of `company`: a party of the branch with its commission"
    pool = Pool()
    Reseller = pool.get('isp.voucher.reseller')
    party = create_customer(name)
    party.isp_company = company
    party.save()
    reseller, = Reseller.create([{
                'company': company.id, 'party': party.id,
                'commission_rate': Decimal(rate),
                'credit_limit': Decimal(limit)}])
    return reseller
