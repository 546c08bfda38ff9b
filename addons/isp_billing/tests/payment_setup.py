# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Fixtures of the online payment tests: a branch with its accounting, open
invoices, and gateway accounts pointing at the fakes of
tools/fake_gateways.py (run inside a transaction)."""
import datetime as dt
import time
import urllib.parse
from decimal import Decimal

from trytond.modules.company.tests import create_company
from trytond.pool import Pool
from trytond.transaction import Transaction, TransactionError

from trytond.modules.isp_billing import branch_setup

#: The sequence tables posting locks (asked for up front: one run, not three)
SEQUENCES = ['ir_sequence', 'ir_sequence_strict']
#: What a class setup making branches and posted invoices locks on its way
#: (the chart's and billing's configuration, fiscal year, periods, journal
#: periods): asked for up front, since each lock asked for on the way
#: restarts the whole setup, charts of accounts included (five runs of it)
SETUP_TABLES = SEQUENCES + ['account_configuration', 'account_fiscalyear',
    'account_period', 'account_journal_period', 'isp_billing_configuration']

#: The credentials each fake is started with (its defaults).
FAKE_CREDENTIALS = {
    'midtrans': {'server_key': 'SB-Mid-server-fake'},
    'xendit': {'secret_key': 'xnd_development_fake',
        'callback_token': 'fake-callback-token'},
    'duitku': {'merchant_code': 'DS00001',
        'api_key': 'fake-duitku-api-key'},
    'mpesa': {'consumer_key': 'fake-consumer-key',
        'consumer_secret': 'fake-consumer-secret', 'shortcode': '174379',
        'passkey': 'fake-passkey', 'callback_secret': 'test-callback-secret'},
    }


def run_locked(func, user=0, tables=(), run_tasks=True, **context):
    """Run `func` in a committed transaction, restarted with the locks it
    asks for, as Tryton's own wrappers and the worker do (`tables` are
    locked from the start); then run the tasks it queued the same way, as
    without workers.  Return (result, restarts, tasks run); with
    `run_tasks` False the tasks are not run: (result, restarts, their
    ids)."""
    from trytond.tests.test_tryton import DB_NAME
    from trytond.worker import run_task
    extras = {'_lock_tables': list(tables)} if tables else {}
    restarts = 0
    while True:
        with Transaction().start(DB_NAME, user, context=context,
                **extras) as transaction:
            try:
                result = func()
            except TransactionError as exception:
                transaction.rollback()
                transaction.tasks.clear()
                exception.fix(extras)
                restarts += 1
                continue
            transaction.commit()
        tasks = list(transaction.tasks)
        transaction.tasks.clear()
        if not run_tasks:
            return result, restarts, tasks
        for task_id in tasks:
            run_task(DB_NAME, task_id)
        return result, restarts, len(tasks)


def get_currency(code):
    Currency = Pool().get('currency.currency')
    currencies = Currency.search([('code', '=', code)], limit=1)
    if currencies:
        return currencies[0]
    # Rupiah and Shilling payments are whole amounts
    currency, = Currency.create([{
                'name': code, 'symbol': code, 'code': code,
                'rounding': Decimal(1), 'digits': 0}])
    return currency


def create_branch(name, currency_code='IDR', today=None):
    """A company with a chart of accounts, a fiscal year (periods and
    invoice sequences) and a payment method (the onboarding wizard's
    implementation: isp_billing/branch_setup.py)"""
    pool = Pool()
    User = pool.get('res.user')
    company = create_company(name, currency=get_currency(currency_code))
    User.write([User(Transaction().user)], {
            'companies': [('add', [company.id])], 'company': company.id})
    today = today or dt.date.today()
    branch_setup.setup_accounting(company,
        today.replace(month=1, day=1), today.replace(month=12, day=31),
        methods=[('gateway', "Online payments")])
    return company


def create_sales_tax(company, rate, name="VAT", configure=True):
    """A percentage tax of `company` (the context company) on its tax
    account; `configure`: the billing configuration's tax"""
    pool = Pool()
    Account = pool.get('account.account')
    Tax = pool.get('account.tax')
    Configuration = pool.get('isp.billing.configuration')
    tax_account, = Account.search([
            ('company', '=', company.id),
            ('code', '=', '6.3.6')], limit=1)
    tax, = Tax.create([{
                'name': name, 'description': name,
                'type': 'percentage', 'rate': Decimal(rate),
                'company': company.id,
                'invoice_account': tax_account.id,
                'credit_note_account': tax_account.id}])
    if configure:
        Configuration.write([Configuration(1)], {'tax': tax.id})
    return tax


def create_plan_and_router(company, name, price, code):
    """A plan of `price` (20/5 Mbps, its variant) and a router of
    `company` (the context company)"""
    pool = Pool()
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    Router = pool.get('isp.router')
    unit, = Uom.search([('name', '=', 'Unit')])
    plan, = Template.create([{
                'name': name, 'isp_plan': True,
                'type': 'service', 'isp_company': company.id,
                'default_uom': unit.id,
                'list_price': Decimal(price),
                'download_rate': 20000, 'upload_rate': 5000,
                'products': [('create', [{}])]}])
    router, = Router.create([{
                'name': "Router %s" % code, 'code': code[:2],
                'host': '127.0.0.1', 'port': 1,
                'use_ssl': False, 'api_password': 'x'}])
    return plan, router


def create_services(company, plan, router, names, code, **values):
    """An active service of `plan` for a new subscriber of each name
    (`values`: the services' other values)"""
    pool = Pool()
    Party = pool.get('party.party')
    Service = pool.get('isp.service')
    parties = Party.create([{
                'name': name, 'is_subscriber': True,
                'isp_company': company.id,
                'addresses': [('create', [{}])],
                } for name in names])
    return Service.create([{
                'company': company.id, 'subscriber': p.id,
                'plan': plan.id, 'router': router.id,
                'username': '%s%03d' % (code[:2], i),
                'password': 'secret%d' % i,
                'customer_id': '%s-%03d' % (code, i),
                'state': 'active', 'billing_day': 1,
                **values,
                } for i, p in enumerate(parties)])


def create_customer(name="Budi Santoso", phone='+6281234567890',
        email='budi@example.com'):
    Party = Pool().get('party.party')
    party, = Party.create([{
                'name': name,
                'addresses': [('create', [{}])],
                'contact_mechanisms': [('create', [
                            {'type': 'mobile', 'value': phone},
                            {'type': 'email', 'value': email}])],
                }])
    return party


def create_invoices(company, party, amount, count=1, date=None):
    "Posted customer invoices of `amount` each"
    pool = Pool()
    Invoice = pool.get('account.invoice')
    Account = pool.get('account.account')
    Journal = pool.get('account.journal')
    with Transaction().set_context(company=company.id):
        receivable, = Account.search([
                ('company', '=', company.id),
                ('type.receivable', '=', True),
                ('party_required', '=', True),
                ('closed', '!=', True),
                ], limit=1)
        revenue, = Account.search([
                ('company', '=', company.id),
                ('type.revenue', '=', True),
                ('closed', '!=', True),
                ], limit=1)
        journal, = Journal.search([('type', '=', 'revenue')], limit=1)
        invoices = Invoice.create([{
                    'type': 'out',
                    'company': company.id,
                    'party': party.id,
                    'invoice_address': party.addresses[0].id,
                    'currency': company.currency.id,
                    'journal': journal.id,
                    'account': receivable.id,
                    'invoice_date': date or dt.date.today(),
                    'lines': [('create', [{
                                    'type': 'line',
                                    'company': company.id,
                                    'currency': company.currency.id,
                                    'quantity': 1,
                                    'unit_price': Decimal(amount),
                                    'account': revenue.id,
                                    'description': "Internet 20 Mbps",
                                    }])],
                    } for _ in range(count)])
        Invoice.post(invoices)
    return invoices


def set_due_date(invoices, date):
    """Make posted `invoices` due on `date` (their lines to pay, in SQL: a
    posted move is not written): overdue when `date` is past"""
    MoveLine = Pool().get('account.move.line')
    table = MoveLine.__table__()
    ids = [line.id for invoice in invoices for line in invoice.lines_to_pay]
    Transaction().connection.cursor().execute(*table.update(
            [table.maturity_date], [date], where=table.id.in_(ids)))


def create_gateway(provider, url, company=None, **values):
    "An account of `provider` on the fake at `url`"
    Gateway = Pool().get('isp.payment.gateway')
    gateway, = Gateway.create([{
                'name': provider.title(),
                'provider': provider,
                'company': company.id if company else None,
                'base_url': url,
                'timeout': 5,
                **FAKE_CREDENTIALS[provider],
                **values}])
    return gateway


def deliver_in_process(*fakes):
    """Make the fakes post their callbacks to this process's WSGI
    application, in the calling thread, instead of over HTTP: scenarios run
    on SQLite's in-memory database, which exists only in their thread.
    The callbacks are the ones the fakes build (bodies, headers, URLs)."""
    from trytond.wsgi import app
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    from tools.fake_gateways import Delivery
    client = Client(app, Response)

    def patch(fake):
        def deliver(url, headers, body):
            delivery = Delivery(url, dict(headers), body, time.time())
            if fake._take_drop():
                delivery.dropped = True
            else:
                parts = urllib.parse.urlsplit(url)
                path = parts.path + ('?' + parts.query if parts.query else '')
                response = client.post(path, data=body, headers=headers)
                delivery.status = response.status_code
                delivery.answer = response.data
            with fake.lock:
                fake.callbacks.append(delivery)
            return delivery
        fake._deliver = deliver
    for fake in fakes:
        patch(fake)
