# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fixtures of the reporting tests and bench (run inside a transaction):
plans, locations, routers and services of a branch with given dates and
states, and posted service invoices on given dates."""
import datetime as dt
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.isp_billing.branch_setup import revenue_account


def create_plan(company, name, price, profile):
    "A plan of `company` with its variant"
    pool = Pool()
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')], limit=1)
    with Transaction().set_context(company=company.id):
        plan, = Template.create([{
                    'name': name,
                    'isp_plan': True,
                    'isp_company': company.id,
                    'type': 'service',
                    'default_uom': unit.id,
                    'list_price': Decimal(price),
                    'download_rate': 20000,
                    'upload_rate': 5000,
                    'ppp_profile': profile,
                    'products': [('create', [{}])],
                    }])
    return plan


def create_location(company, code, name):
    Location = Pool().get('isp.location')
    location, = Location.create([{
                'company': company.id, 'code': code, 'name': name}])
    return location


def create_router(company, code, name):
    Router = Pool().get('isp.router')
    router, = Router.create([{
                'company': company.id, 'code': code, 'name': name,
                'host': '192.0.2.1', 'api_password': 'x'}])
    return router


def create_services(company, specs):
    """Services of `company` from (name, location, router, plan, activation,
    termination, state) tuples; their subscribers are created.  Dates and
    states are written as they would be after the workflow (no router
    task is queued)."""
    pool = Pool()
    Party = pool.get('party.party')
    Service = pool.get('isp.service')
    with Transaction().set_context(company=company.id):
        parties = Party.create([{
                    'name': name,
                    'is_subscriber': True,
                    'isp_company': company.id,
                    'location': location.id,
                    'addresses': [('create', [{}])],
                    } for name, location, *_ in specs])
        services = Service.create([{
                    'company': company.id,
                    'subscriber': party.id,
                    'location': location.id,
                    'router': router.id,
                    'plan': plan.id,
                    'username': '%s%03d' % (router.code, i),
                    'customer_id': '%s-%s010127-%03d' % (
                        location.code, router.code, i),
                    } for i, (party, (_, location, router, plan, *_))
                in enumerate(zip(parties, specs, strict=True), 1)])
    set_service_dates(services, [s[4:] for s in specs])
    return services


def set_service_dates(services, values):
    "Write (activation, termination, state) of each service in SQL"
    Service = Pool().get('isp.service')
    table = Service.__table__()
    cursor = Transaction().connection.cursor()
    for service, (activation, termination, state) in zip(
            services, values, strict=True):
        cursor.execute(*table.update(
                [table.activation_date, table.termination_date,
                    table.state],
                [activation, termination, state],
                where=table.id == service.id))


def create_service_invoices(company, specs):
    """Posted invoices of `company` from (service, date, amount, due date)
    tuples: one recurring line of the service's plan each (a negative
    amount makes a credit note)"""
    pool = Pool()
    Invoice = pool.get('account.invoice')
    Journal = pool.get('account.journal')
    with Transaction().set_context(company=company.id):
        journal, = Journal.search([('type', '=', 'revenue')], limit=1)
        account = revenue_account(company)
        invoices = Invoice.create([{
                    'type': 'out',
                    'company': company.id,
                    'party': service.subscriber.id,
                    'invoice_address': service.subscriber.addresses[0].id,
                    'currency': company.currency.id,
                    'journal': journal.id,
                    'account': (
                        service.subscriber.account_receivable_used.id),
                    'invoice_date': date,
                    'payment_term_date': due,
                    'lines': [('create', [{
                                    'type': 'line',
                                    'company': company.id,
                                    'currency': company.currency.id,
                                    'product': service.plan.products[0].id,
                                    'unit': service.plan.default_uom.id,
                                    'quantity': 1 if amount > 0 else -1,
                                    'unit_price': abs(Decimal(amount)),
                                    'account': account.id,
                                    'description': service.plan.name,
                                    'isp_service': service.id,
                                    'isp_kind': (
                                        'recurring' if amount > 0 else None),
                                    'isp_period_start': date,
                                    }])],
                    } for service, date, amount, due in specs])
        with Transaction().set_context(_skip_warnings=True):
            Invoice.post(invoices)
    return invoices


def pay(invoice, amount, date):
    "Record a gateway payment of `amount` on `date`"
    Invoice = Pool().get('account.invoice')
    return Invoice.isp_record_payment(
        invoice, Decimal(amount), date=date, method='gateway')


def date(month, day, year=2027):
    return dt.date(year, month, day)
