# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deterministic demo data: a head office, two branches, staff, locations,
plans and subscribers with valid national IDs and phone numbers.

The generator (`generate_subscribers`) is pure and deterministic, so the
benchmarks reuse it for 10k-100k subscribers; `load` writes the demo into a
database that has the ISP modules activated:

    python -m tools.demo_data -c trytond.conf -d isp_demo --password-file F \
        [--router-port N --router-control-port M] [--public-url URL] \
        [--gateway-port N --gateway-credentials FILE]

Every branch gets its accounting: a chart of accounts, fiscal years (with
periods and invoice sequences), its sales tax (PPN 11 % in Bandung, VAT 16 %
in Nairobi) and its billing configuration (payment methods, the payment link
of --public-url), through isp_billing's branch_setup.  The Nairobi branch is
onboarded by isp_multicompany's onboarding wizard on the first run (company,
chart, fiscal year, tax, ladder, locations, portal domain; ONBOARDED).

With --router-port, the demo also gets routers (the RouterOS simulators that
scripts/demo starts on N, N+1, N+2), a service per subscriber registered on
them and billed, some subscribers online and a few isolated for non-payment.
The services are registered as if 20 to 23 days ago (`ir.date` answers that
day while they are): registration posts each first invoice, most
subscribers paid theirs at the counter within a week, the others did not
and the reminder ladder, run today, isolates them.

With --gateway-port, the demo's payment gateway accounts point at the fake
gateways of tools/fake_gateways.py (scripts/demo starts them on N..N+3):
Midtrans, Xendit and Duitku central for Rupiah, M-Pesa for Nairobi.

Each step runs in its own transaction and reuses what exists: running it
again creates nothing (it brings the URLs, ports and gateway keys up to
date).  On SQLite it never runs with `[cache] clean_timeout = 0`: with 0,
trytond's cache sync at each transaction start leaves SQLite's shared
connection in autocommit, and a transaction Tryton restarts to take a lock
would keep what its first attempt wrote.
"""
import argparse
import collections
import contextlib
import datetime
import json
import os
import random
import time
import types
import urllib.request
from decimal import Decimal

from trytond.transaction import Transaction

SEED = 20261123

# Subscriber-facing data per country: name parts, region codes for the NIK,
# mobile prefixes (national significant number), and city centres.
COUNTRIES = {
    'ID': {
        'first': [
            "Budi", "Siti", "Agus", "Dewi", "Rudi", "Sri", "Andi", "Wati",
            "Hendra", "Rina", "Joko", "Ayu", "Bayu", "Putri", "Eko", "Indah",
            "Fajar", "Lestari", "Dedi", "Nur", "Yusuf", "Ratna", "Rizky",
            "Maya", "Ahmad", "Fitri", "Dimas", "Sari", "Teguh", "Citra"],
        'last': [
            "Santoso", "Wijaya", "Saputra", "Hidayat", "Kusuma", "Pratama",
            "Nugroho", "Setiawan", "Siregar", "Halim", "Gunawan", "Lubis",
            "Hasibuan", "Susanto", "Rahman", "Purnomo", "Wibowo", "Sutanto"],
        # province/regency codes of West Java (32xx) and Jakarta (31xx)
        'regions': ['3273', '3204', '3217', '3277', '3171', '3174'],
        'mobile': ['812', '813', '821', '822', '852', '853', '857', '878'],
        'mobile_digits': 8,
        'calling_code': '62',
        'centre': (-6.9175, 107.6191),
        },
    'KE': {
        'first': [
            "Wanjiru", "Kamau", "Achieng", "Otieno", "Njeri", "Mwangi",
            "Akinyi", "Kiprop", "Chebet", "Mutua", "Wambui", "Omondi",
            "Nyambura", "Kipchoge", "Atieno", "Kariuki", "Jepkosgei", "Ouma"],
        'last': [
            "Kamau", "Otieno", "Mwangi", "Odhiambo", "Kiprotich", "Njoroge",
            "Wafula", "Ochieng", "Mutiso", "Kimani", "Barasa", "Cheruiyot"],
        'mobile': ['710', '711', '712', '720', '721', '722', '740', '757',
            '768', '790'],
        'mobile_digits': 6,
        'calling_code': '254',
        'centre': (-1.2864, 36.8172),
        },
    }


def _permute(index, modulus, seed):
    "A bijection of range(modulus): distinct indexes give distinct values"
    multiplier = 2654435761  # coprime with powers of 10
    return (index * multiplier + seed) % modulus


def _nik(rng, index, regions):
    region = regions[index % len(regions)]
    district = '%02d' % (1 + (index // len(regions)) % 40)
    birth = datetime.date(1960, 1, 1) + datetime.timedelta(
        days=rng.randrange(0, 16000))
    day = birth.day + (40 if rng.random() < 0.5 else 0)
    serial = '%04d' % (1 + (index // (len(regions) * 40)) % 9999)
    return '%s%s%02d%02d%02d%s' % (
        region, district, day, birth.month, birth.year % 100, serial)


def _kenyan_id(index, seed):
    return '%08d' % (10000000 + _permute(index, 89999999, seed))


def _mobile(index, country, seed):
    data = COUNTRIES[country]
    digits = data['mobile_digits']
    number = _permute(index, 10 ** digits, seed)
    prefix = data['mobile'][index % len(data['mobile'])]
    return '+%s%s%0*d' % (data['calling_code'], prefix, digits, number)


def generate_subscribers(count, country='ID', seed=SEED, locations=('KCB',),
        start=0):
    """Yield `count` subscriber dicts for a branch in `country`.

    Deterministic for (country, seed, locations, start): national IDs and
    phone numbers are unique across the whole range, so a benchmark can ask
    for 100,000 of them.  Keys: name, national_id, subscriber_phone,
    whatsapp, email, latitude, longitude, location_code, plan_index.
    """
    data = COUNTRIES[country]
    rng = random.Random('%s-%s-%s' % (seed, country, start))
    for index in range(start, start + count):
        first = data['first'][rng.randrange(len(data['first']))]
        last = data['last'][rng.randrange(len(data['last']))]
        if country == 'ID':
            national_id = _nik(rng, index, data['regions'])
        else:
            national_id = _kenyan_id(index, seed)
        whatsapp = _mobile(index, country, seed)
        lat, lon = data['centre']
        yield {
            'name': '%s %s' % (first, last),
            'national_id': national_id,
            'whatsapp': whatsapp,
            'subscriber_phone': whatsapp,
            'email': '%s.%s.%d@example.com' % (
                first.lower(), last.lower(), index),
            'latitude': round(lat + rng.uniform(-0.08, 0.08), 6),
            'longitude': round(lon + rng.uniform(-0.08, 0.08), 6),
            'location_code': locations[index % len(locations)],
            'plan_index': rng.choice([0, 0, 1, 1, 1, 2, 3]),
            }


CURRENCIES = [
    ('IDR', "Indonesian Rupiah", 'Rp', Decimal('1')),
    ('KES', "Kenyan Shilling", 'KSh', Decimal('0.01')),
    ('USD', "US Dollar", '$', Decimal('0.01')),
    ]
HEAD_OFFICE = "Nusantara Net Head Office"
BRANCHES = [
    # name, currency, country, timezone, locations, plans, subscribers
    ("Nusantara Net Bandung", 'IDR', ('ID', "Indonesia"), 'Asia/Jakarta',
        [('KCB', "Kecubung"), ('CMH', "Cimahi"), ('DGO', "Dago")],
        [("Home 10 Mbps", 10000, 3000, '166500', None),
            ("Home 20 Mbps", 20000, 5000, '250000', None),
            ("Family 50 Mbps", 50000, 10000, '400000', 500),
            ("Business 100 Mbps", 100000, 30000, '1100000', None)],
        40),
    ("Nusantara Net Nairobi", 'KES', ('KE', "Kenya"), 'Africa/Nairobi',
        [('WSTL', "Westlands"), ('KLM', "Kilimani"), ('RNG', "Rongai")],
        [("Home 8 Mbps", 8000, 2000, '2500', None),
            ("Home 15 Mbps", 15000, 4000, '3500', None),
            ("Premium 40 Mbps", 40000, 10000, '6000', 800),
            ("Business 80 Mbps", 80000, 20000, '12000', None)],
        25),
    ]
# Demo routers: branch index, code, name, simulator index, isolation method
ROUTERS = [
    (0, 'CKP', "Cikapundung core", 0, 'profile'),
    (0, 'MLGT', "Malangbong POP", 1, 'address_list'),
    (1, 'WSTL', "Westlands POP", 2, 'disable'),
    ]
ONLINE_EVERY = 4  # three subscribers in four are online
ISOLATED_EVERY = 9  # one in nine did not pay: overdue, then isolated
# Accounting per branch (index in BRANCHES): invoice number prefix, sales
# tax name and rate
ACCOUNTING = {
    0: ('BDG', "PPN 11%", Decimal('0.11')),
    1: ('NBO', "VAT 16%", Decimal('0.16')),
    }
# How the demo's subscribers paid their first invoice, by service index
PAYMENT_METHODS = ['cash', 'cash', 'bank_transfer', 'cash', 'qris']
# Payment gateway accounts: provider, name, branch index (None: central,
# the head office's), offset of its fake's port
GATEWAYS = [
    ('midtrans', "Midtrans (sandbox)", None, 0),
    ('xendit', "Xendit (sandbox)", None, 1),
    ('duitku', "Duitku (sandbox)", None, 2),
    ('mpesa', "M-Pesa Nairobi (sandbox)", 1, 3),
    ]
PAY_PATH = '/{database}/isp_billing/pay/{token}'

STAFF = [
    # login, name, group xml id, branch index (None = every company)
    ('head', "Head Office Admin", 'group_isp_head_admin', None),
    ('bdg_admin', "Bandung Admin", 'group_isp_branch_admin', 0),
    ('bdg_cs', "Bandung Customer Service", 'group_isp_customer_service', 0),
    ('bdg_finance', "Bandung Finance", 'group_isp_finance', 0),
    ('bdg_tech', "Bandung Technician", 'group_isp_technician', 0),
    ('nbo_admin', "Nairobi Admin", 'group_isp_branch_admin', 1),
    ('nbo_cs', "Nairobi Customer Service", 'group_isp_customer_service', 1),
    ('nbo_tech', "Nairobi Technician", 'group_isp_technician', 1),
    ]
#: The language the staff of each branch (index in BRANCHES) work in; the
#: head office's: English
STAFF_LANGUAGES = {0: 'id', 1: 'en'}
#: The helpdesk per branch (index in BRANCHES): business hours (weekdays
#: 0-6, local HH:MM) and categories (name, inbound default, installation
#: default, {priority: (first response, resolution) business minutes})
HELPDESK_HOURS = {
    0: [(d, '08:00', '12:00') for d in '012345']
    + [(d, '13:00', '17:00') for d in '01234'],
    1: [(d, '07:00', '19:00') for d in '012345'],
    }
HELPDESK_CATEGORIES = [
    ("Internet", True, False, {
            'normal': (60, 8 * 60), 'high': (30, 4 * 60),
            'urgent': (15, 2 * 60)}),
    ("Billing", False, False, {'normal': (120, 16 * 60)}),
    ("Installation", False, True, {'normal': (240, 3 * 8 * 60)}),
    ]
#: The demo's support tickets per branch: (channel, priority, subject, what
#: happens to it: open, assigned, progress, waiting, resolved, rated,
#: closed, breached (opened three days before), review (unknown number))
#: The number an unknown sender wrote from, per branch country
UNKNOWN_NUMBERS = {'ID': '+6289900000001', 'KE': '+254799000001'}
HELPDESK_TICKETS = [
    ('portal', 'normal', "Internet slow in the evening", 'open'),
    ('whatsapp', 'high', "LOS light red on the modem", 'progress'),
    ('phone', 'normal', "Wi-Fi password change", 'waiting'),
    ('email', 'normal', "Invoice amount question", 'resolved'),
    ('portal', 'normal', "No internet after the storm", 'rated'),
    ('staff', 'normal', "Cable moved to the living room", 'closed'),
    ('phone', 'urgent', "Whole street offline", 'breached'),
    ('whatsapp', 'normal', "I want to subscribe", 'review'),
    ]


def _get_or_create(Model, domain, values):
    records = Model.search(domain, limit=1)
    if records:
        return records[0]
    record, = Model.create([values])
    return record


def _currency(pool, code):
    Currency = pool.get('currency.currency')
    Rate = pool.get('currency.currency.rate')
    name, symbol, rounding = next(
        (n, s, r) for c, n, s, r in CURRENCIES if c == code)
    currency = Currency.search([('code', '=', code)], limit=1)
    if currency:
        return currency[0]
    currency, = Currency.create([{
                'code': code, 'name': name, 'symbol': symbol,
                'rounding': rounding, 'digits': 2 if rounding < 1 else 0}])
    Rate.create([{'currency': currency.id, 'rate': Decimal(1),
                'date': datetime.date(2000, 1, 1)}])
    return currency


def _company(pool, name, currency, country, timezone):
    Company = pool.get('company.company')
    Party = pool.get('party.party')
    Country = pool.get('country.country')
    code, country_name = country
    country = _get_or_create(Country, [('code', '=', code)],
        {'code': code, 'name': country_name})
    companies = Company.search([('party.name', '=', name)], limit=1)
    if companies:
        return companies[0]
    party, = Party.create([{
                'name': name,
                'addresses': [('create', [{'country': country.id}])]}])
    company, = Company.create([{
                'party': party.id, 'currency': currency.id,
                'timezone': timezone, 'isp_country': country.id}])
    return company


#: The branches (index in BRANCHES) set up by the onboarding wizard
#: (isp_multicompany) instead of the code above: company, accounting,
#: ladder, locations and portal domain
ONBOARDED = {1}


def _onboard(pool, index):
    """The branch BRANCHES[index] as the onboarding wizard sets it up, on
    the first run (later runs reuse it: the demo's own steps add its M-Pesa
    account, which a re-run choosing the central gateway would deactivate)"""
    Company = pool.get('company.company')
    Country = pool.get('country.country')
    ModelData = pool.get('ir.model.data')
    Onboarding = pool.get('isp.branch.onboarding', type='wizard')
    from trytond.modules.isp_multicompany.onboarding import ladder_text
    name, currency, (code, country_name), timezone, locations, _, _ = (
        BRANCHES[index])
    companies = Company.search([('party.name', '=', name)], limit=1)
    if companies:
        return companies[0]
    country = _get_or_create(Country, [('code', '=', code)],
        {'code': code, 'name': country_name})
    prefix, tax_name, rate = ACCOUNTING[index]
    year = _today().year
    session_id, _, _ = Onboarding.create()
    Onboarding.execute(session_id, {'start': {
                'name': name, 'country': country.id,
                'currency': _currency(pool, currency).id,
                'timezone': timezone, 'tax_name': tax_name, 'tax_rate': rate,
                'chart': ModelData.get_id(
                    'account', 'account_template_root_en'),
                'fiscal_start': datetime.date(year, 1, 1),
                'fiscal_end': datetime.date(year, 12, 31),
                'prefix': prefix,
                'ladder': ladder_text(),
                'locations': '\n'.join('%s %s' % loc for loc in locations),
                'web_domain': PORTAL_HOSTS[index],
                'gateway': 'central', 'whatsapp': 'central',
                }}, 'set_up')
    Onboarding.delete(session_id)
    company, = Company.search([('party.name', '=', name)])
    return company


def _plans(pool, company, plans):
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    unit, = Uom.search([('name', '=', 'Unit')], limit=1)
    result = []
    for name, down, up, price, quota in plans:
        existing = Template.search([
                ('name', '=', name), ('isp_company', '=', company.id)])
        if existing:
            result.append(existing[0])
            continue
        values = {
            'name': name, 'type': 'service', 'default_uom': unit.id,
            'isp_plan': True, 'isp_company': company.id,
            'download_rate': down, 'upload_rate': up,
            'list_price': Decimal(price),
            'products': [('create', [{}])],
            }
        if quota:
            values.update(quota=quota, throttled_download_rate=down // 10,
                throttled_upload_rate=up // 10)
        if down >= 80000:
            values.update(burst_download_rate=down * 2,
                burst_upload_rate=up * 2,
                burst_threshold_download=down * 3 // 4,
                burst_threshold_upload=up * 3 // 4, burst_time=16)
        template, = Template.create([values])
        result.append(template)
    return result


def _subscribers(pool, company, country, locations, plans, count):
    Party = pool.get('party.party')
    if Party.search([
                ('isp_company', '=', company.id),
                ('is_subscriber', '=', True)], limit=1):
        return 0
    by_code = {loc.code: loc for loc in locations}
    vlist = []
    for row in generate_subscribers(
            count, country, locations=[loc.code for loc in locations]):
        vlist.append({
                'name': row['name'],
                'is_subscriber': True,
                'isp_company': company.id,
                'national_id': row['national_id'],
                'whatsapp': row['whatsapp'],
                'subscriber_phone': row['subscriber_phone'],
                'latitude': row['latitude'],
                'longitude': row['longitude'],
                'location': by_code[row['location_code']].id,
                'contact_mechanisms': [('create', [
                            {'type': 'email', 'value': row['email']}])],
                })
    Party.create(vlist)
    return len(vlist)


def _staff(pool, companies, password):
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    Lang = pool.get('ir.lang')
    users = []
    for login, name, group, branch in STAFF:
        user_companies = companies if branch is None else [
            companies[branch + 1]]
        group_id = ModelData.get_id('isp_base', group)
        language = Lang.get(STAFF_LANGUAGES.get(branch, 'en'))
        existing = User.search([('login', '=', login)])
        if existing:
            User.write(existing, {'language': language.id})
            continue
        user, = User.create([{
                    'login': login, 'name': name, 'password': password,
                    'language': language.id,
                    'groups': [('add', [group_id])],
                    'companies': [('add', [c.id for c in user_companies])],
                    'company': user_companies[0].id,
                    'company_filter': 'all',
                    }])
        users.append(user)
    admin, = User.search([('login', '=', 'admin')])
    User.write([admin], {
            'companies': [('add', [c.id for c in companies])],
            'company': companies[0].id,
            'company_filter': 'all',
            })
    return users


def _accounting(pool, company, spec, years, public_url=None):
    """The branch's chart, fiscal years (numbers PREFIX/YEAR/00001, credit
    notes PREFIX-CN/YEAR/00001), sales tax, payment methods and billing
    configuration: isp_billing's branch_setup, as the onboarding wizard"""
    from trytond.modules.isp_billing import branch_setup
    prefix, tax_name, rate = spec
    with Transaction().set_context(company=company.id):
        branch_setup.create_chart(company)
        for year in years:
            start, end = datetime.date(year, 1, 1), datetime.date(year, 12, 31)
            if not branch_setup.overlapping_fiscal_years(company, start, end):
                branch_setup.create_fiscal_year(company, start, end,
                    name='%s %d' % (prefix, year),
                    prefix='%s/%d/' % (prefix, year),
                    credit_note_prefix='%s-CN/%d/' % (prefix, year))
        tax = branch_setup.create_sales_tax(company, tax_name, rate)
        methods = branch_setup.create_payment_methods(company)
        values = {'tax': tax.id}
        if public_url:
            values['pay_url'] = public_url.rstrip('/') + PAY_PATH
        branch_setup.configure_billing(company, methods, **values)


def history_start(today):
    """The day the demo's services were activated: 20 days before `today`,
    or the 28th before when that falls on the 29th-31st (billing days are
    1-28), so that their first invoice, due 10 days later, is at least ten
    days overdue and the next period has not started yet"""
    start = today - datetime.timedelta(days=20)
    if start.day > 28:
        start = start.replace(day=28)
    return start


def _today():
    return datetime.datetime.now(datetime.UTC).date()


def _setup_accounting(pool, years, public_url):
    for index, company in enumerate(_branches(pool)):
        _accounting(pool, company, ACCOUNTING[index], years, public_url)


#: A year of a branch's running costs: isp_finance expense categories,
#: each on an expense account of its own beside the chart's (code), with
#: its supplier, the day of the month it is paid, the months between its
#: invoices and its monthly amount in IDR (other currencies: FINANCE_RATE)
EXPENSES = [
    ('BW', "Upstream Bandwidth", '5.1.11', "Upstream Transit", 5, 1,
        Decimal(2_500_000)),
    ('EL', "Electricity", '5.1.12', "Power Utility", 10, 3, Decimal(600_000)),
    ('SAL', "Salaries", '5.1.13', "Payroll", 25, 1, Decimal(4_000_000)),
    ('TWR', "Tower Rent", '5.1.14', "Tower Landlord", 1, 3,
        Decimal(1_000_000)),
    ('EQ', "Equipment", '5.1.15', "Equipment Supplier", 15, 3,
        Decimal(350_000)),
    ]
#: The assets each branch bought during the year: ISP asset product
#: (isp_finance's setup_asset_categories), description, month of the year
#: (0: its first) and price in IDR
ASSETS = [
    ('router', "Core router", 0, Decimal(18_000_000)),
    ('ont', "40 ONTs", 1, Decimal(12_000_000)),
    ('tower', "Tower", 2, Decimal(60_000_000)),
    ]
#: Installations a month and their price in IDR (other income)
INSTALLATIONS = 4
INSTALLATION_PRICE = Decimal(750_000)
#: The other income's customer of each branch
WALK_IN = "Walk-in customers"
#: Months between a branch's expense invoices at least (index in
#: BRANCHES); months between installation invoices
EXPENSE_EVERY = {0: 1, 1: 3}
INSTALLATION_EVERY = 3
#: the owners' capital each branch starts its finance year with (IDR)
OPENING_CAPITAL = Decimal(250_000_000)
#: IDR to a branch's currency, for the finance demo's amounts
FINANCE_RATE = {'IDR': Decimal(1), 'KES': Decimal('0.008')}
#: Each branch's budget of the year (isp_finance, account_budget): the
#: expense categories' monthly amount (EXPENSES) x 12 x this factor (below
#: 1: the bandwidth costs more than planned), the installations'
#: (INSTALLATIONS x INSTALLATION_PRICE) x 12, and the service revenue
#: invoiced so far in the year, a month on average x 12 x REVENUE_TARGET
BUDGET_FACTOR = {'BW': Decimal('0.9'), 'EL': Decimal('1.1'),
    'SAL': Decimal(1), 'TWR': Decimal(1), 'EQ': Decimal('1.2')}
REVENUE_TARGET = Decimal('1.1')


def finance_start(today):
    """The first day of the finance demo's year: the first of the month
    eleven months before `today`'s, as the finance reports' default
    period"""
    return _add_months(today.replace(day=1), -11)


def _finance(pool, today):
    """Each branch's year of finance (finance_start(today) .. today): its
    expenses by category (posted supplier invoices paid in cash, in bulk
    through isp_finance's create_expense_invoices; Bandung's monthly,
    Nairobi's quarterly: EXPENSE_EVERY) and its assets bought during the
    year (paid supplier invoices, running, depreciated monthly up to
    `today` by account_asset's create_moves); once per branch.  Run after
    the services' invoices: a customer invoice is numbered only after the
    invoices of its sequence dated later (the supplier invoices share it)"""
    Invoice = pool.get('account.invoice')
    _lock_sequences(pool)
    for index, company in enumerate(_branches(pool)):
        with Transaction().set_context(company=company.id):
            if Invoice.search([('company', '=', company.id),
                        ('type', '=', 'in')], limit=1):
                continue
            _branch_finance(pool, company, today, EXPENSE_EVERY[index])


def _lock_sequences(pool):
    """Lock every strict sequence (the invoices' numbers) up front: the
    transaction restarts once for them all (_transact), not once for each
    sequence met, doing the work again every time"""
    Sequence = pool.get('ir.sequence.strict')
    Sequence.lock(Sequence.search([]))


def _finance_income(pool, today):
    """Each branch's other income of the year (installations), once; run
    before the services' invoices (dated later in the same sequence)"""
    Party = pool.get('party.party')
    PaymentMethod = pool.get('account.invoice.payment.method')
    _lock_sequences(pool)
    for company in _branches(pool):
        with Transaction().set_context(company=company.id):
            if Party.search([('name', '=', WALK_IN),
                        ('isp_company', '=', company.id)], limit=1):
                continue
            method, = PaymentMethod.search([('company', '=', company.id)],
                order=[('id', 'ASC')], limit=1)
            _other_income(pool, company, finance_start(today), today,
                FINANCE_RATE.get(company.currency.code, Decimal(1)), method)


def _finance_setup(pool, company):
    """(expense categories by code, suppliers by name, payment method) of
    `company`"""
    Account = pool.get('account.account')
    Category = pool.get('isp.expense.category')
    Party = pool.get('party.party')
    PaymentMethod = pool.get('account.invoice.payment.method')
    from trytond.modules.isp_finance.asset import sibling_account
    expense, = Account.search([('company', '=', company.id),
            ('type.expense', '=', True), ('closed', '!=', True),
            ('code', '!=', None)], order=[('code', 'ASC')], limit=1)
    categories = Category.create([{
                'company': company.id, 'code': code, 'name': name,
                'account': sibling_account(
                    company, account, name, expense).id}
            for code, name, account, *_ in EXPENSES])
    suppliers = Party.create([{'name': supplier, 'isp_company': company.id,
                'addresses': [('create', [{}])]}
            for _, _, _, supplier, *_ in EXPENSES])
    method, = PaymentMethod.search([('company', '=', company.id)],
        order=[('id', 'ASC')], limit=1)
    return ({c.code: c for c in categories},
        {s.name: s for s in suppliers}, method)


def _branch_finance(pool, company, today, every):
    from trytond.modules.isp_finance.expense import create_expense_invoices
    start = finance_start(today)
    rate = FINANCE_RATE.get(company.currency.code, Decimal(1))
    categories, suppliers, method = _finance_setup(pool, company)
    _opening_capital(pool, company, start, rate, method)
    entries = []
    for month in range(12):
        first = _add_months(start, month)
        for code, name, _, supplier, day, months, amount in EXPENSES:
            months = max(months, every)
            date = first.replace(day=day)
            if date > today or month % months != months - 1:
                continue
            entries.append(types.SimpleNamespace(
                    category=categories[code], supplier=suppliers[supplier],
                    date=date, payment_method=method,
                    amount=company.currency.round(amount * rate * months),
                    description='%s %s' % (name, date.strftime('%Y-%m'))))
    create_expense_invoices(entries)
    assets = _assets(pool, company, start, today, rate, categories['EQ'],
        suppliers["Equipment Supplier"], method)
    _budget(pool, company, today, rate, categories)
    _investment(pool, company, today, assets, categories['EQ'])


def _investment(pool, company, today, assets, category):
    """The branch's investment (isp_finance): its core router asset (and
    the supplier invoice that bought it, counted once) and its latest
    equipment expense, against the revenue of its first router's services
    since they were activated (history_start): ROI and payback of the
    subscribers' first month; none without routers (no simulators)"""
    Investment = pool.get('isp.investment')
    Invoice = pool.get('account.invoice')
    Router = pool.get('isp.router')
    routers = Router.search([('company', '=', company.id)],
        order=[('id', 'ASC')], limit=1)
    if not routers:
        return
    router, = routers
    asset = assets[[key for key, *_ in ASSETS].index('router')]
    expenses = Invoice.search([('company', '=', company.id),
            ('type', '=', 'in'), ('state', 'in', ['posted', 'paid']),
            ('isp_expense_category', '=', category.id),
            ('lines.product', '=', None)],
        order=[('invoice_date', 'DESC'), ('id', 'DESC')], limit=1)
    Investment.create([{
                'name': "Tower expansion %s" % router.code,
                'company': company.id,
                'start_date': history_start(today),
                'scope': 'router', 'router': router.id,
                'assets': [('add', [asset.id])],
                'invoices': [('add', [asset.supplier_invoice_line.invoice.id]
                        + [e.id for e in expenses])],
                'notes': "The core router and its installation, paid back "
                "by the subscribers it serves.",
                }])


def _budget(pool, company, today, rate, categories):
    """The budget of the fiscal year of `today` (BUDGET_FACTOR,
    REVENUE_TARGET), spread over its months by isp_finance's
    setup_monthly, so that actual against budget shows real variances"""
    Budget = pool.get('account.budget')
    FiscalYear = pool.get('account.fiscalyear')
    Template = pool.get('product.template')
    from trytond.modules.isp_billing.branch_setup import revenue_account
    fiscalyear = FiscalYear.find(company, date=today)
    amounts = collections.Counter()
    for code, _, _, _, _, _, amount in EXPENSES:
        amounts[categories[code].account] -= company.currency.round(
            amount * rate * 12 * BUDGET_FACTOR[code])
    installation = Template.setup_other_income_products(
        company)['installation']
    amounts[installation.account_revenue_used] += company.currency.round(
        INSTALLATIONS * INSTALLATION_PRICE * rate * 12)
    revenue = revenue_account(company)
    with Transaction().set_context(fiscalyear=fiscalyear.id):
        invoiced = revenue.credit - revenue.debit
    months = max(1, (today.year - fiscalyear.start_date.year) * 12
        + today.month - fiscalyear.start_date.month + 1)
    amounts[revenue] += company.currency.round(
        invoiced / months * 12 * REVENUE_TARGET)
    Budget.setup_monthly(company, fiscalyear, "Plan %s" % fiscalyear.name,
        dict(amounts))


def _opening_capital(pool, company, start, rate, method):
    """The owners' capital paid into the branch's cash on the first day of
    the finance year (a posted move: cash to the chart's issued capital
    account, 3.1.1 of the universal chart), so the balance sheet starts
    from the money the branch was set up with, not from nothing"""
    Account = pool.get('account.account')
    Journal = pool.get('account.journal')
    Move = pool.get('account.move')
    Period = pool.get('account.period')
    equity, = Account.search([('company', '=', company.id),
            ('code', '=', '3.1.1'), ('type', '!=', None),
            ('closed', '!=', True)], limit=1)
    journal, = Journal.search([('type', '=', 'general')], limit=1)
    amount = company.currency.round(OPENING_CAPITAL * rate)
    move = Move(company=company, journal=journal, date=start,
        period=Period.find(company, date=start),
        description="Opening capital")
    move.lines = [
        {'account': method.debit_account.id, 'debit': amount, 'credit': 0},
        {'account': equity.id, 'debit': 0, 'credit': amount},
        ]
    move.save()
    Move.post([move])


def _other_income(pool, company, start, today, rate, method):
    """INSTALLATIONS a month, invoiced every INSTALLATION_EVERY months on
    the 12th on the branch's installation product (other income,
    isp_finance) to its walk-in customers and paid with `method`"""
    Invoice = pool.get('account.invoice')
    Journal = pool.get('account.journal')
    Party = pool.get('party.party')
    Template = pool.get('product.template')
    from trytond.modules.isp_finance.expense import pay_invoice
    product = Template.setup_other_income_products(company)['installation']
    journal, = Journal.search([('type', '=', 'revenue')], limit=1)
    party, = Party.create([{'name': WALK_IN,
                'isp_company': company.id, 'addresses': [('create', [{}])]}])
    invoices = []
    for month in range(INSTALLATION_EVERY - 1, 12, INSTALLATION_EVERY):
        date = _add_months(start, month).replace(day=12)
        # before the services' first invoices, numbered after these
        if date >= history_start(today):
            break
        invoice = Invoice(type='out', company=company, party=party,
            currency=company.currency, journal=journal, invoice_date=date,
            accounting_date=date, description="Installations")
        invoice.on_change_party()
        invoice.lines = [{
                'type': 'line', 'company': company,
                'currency': company.currency, 'product': product,
                'account': product.account_revenue_used,
                'quantity': INSTALLATIONS * INSTALLATION_EVERY,
                'unit': product.default_uom,
                'unit_price': company.currency.round(
                    INSTALLATION_PRICE * rate),
                'description': "Installations %s" % date.strftime('%Y-%m')}]
        invoices.append(invoice)
    Invoice.save(invoices)
    Invoice.post(invoices)
    for invoice in invoices:
        pay_invoice(invoice, method, invoice.invoice_date,
            invoice.description)


def _assets(pool, company, start, today, rate, category, supplier, method):
    """The ASSETS bought by `company` on the 20th of their month from
    `supplier`, paid with `method`, running and depreciated up to
    `today`; returned in ASSETS' order"""
    Asset = pool.get('account.asset')
    Invoice = pool.get('account.invoice')
    Journal = pool.get('account.journal')
    from trytond.modules.isp_finance.expense import pay_invoice
    products = Asset.setup_asset_categories(company)
    expense_journal, = Journal.search([('type', '=', 'expense')], limit=1)
    asset_journal, = Journal.search([('type', '=', 'asset')], limit=1)
    invoices = []
    for key, description, month, price in ASSETS:
        date = _add_months(start, month).replace(day=20)
        product = products[key]
        invoice = Invoice(type='in', company=company, party=supplier,
            currency=company.currency, journal=expense_journal,
            invoice_date=date, accounting_date=date,
            isp_expense_category=category, description=description)
        invoice.on_change_party()
        invoice.lines = [{
                'type': 'line', 'company': company,
                'currency': company.currency, 'product': product,
                'account': product.account_asset_used, 'quantity': 1,
                'unit': product.default_uom,
                'unit_price': company.currency.round(price * rate),
                'description': description}]
        invoices.append(invoice)
    Invoice.save(invoices)
    Invoice.post(invoices)
    assets = []
    for invoice in invoices:
        pay_invoice(invoice, method, invoice.invoice_date,
            invoice.description)
        line, = invoice.lines
        months = line.product.depreciation_duration
        assets.append(Asset(company=company, product=line.product,
                supplier_invoice_line=line, value=line.amount,
                residual_value=Decimal(0), quantity=1,
                unit=line.product.default_uom,
                purchase_date=invoice.invoice_date,
                start_date=invoice.invoice_date,
                end_date=_add_months(invoice.invoice_date, months)
                - datetime.timedelta(days=1),
                account_journal=asset_journal,
                depreciation_method='linear', frequency='monthly'))
    Asset.save(assets)
    Asset.run(assets)
    Asset.create_moves(assets, today)
    return assets


def _add_months(date, months):
    index = date.month - 1 + months
    return date.replace(year=date.year + index // 12, month=index % 12 + 1)


@contextlib.contextmanager
def clock(date):
    """Make `ir.date` answer `date` (at 03:00 UTC: the same day in Jakarta
    and Nairobi) in this process, to write the demo's history through the
    product's own code (it dates invoices and payments today)"""
    from trytond.ir import date as ir_date
    real = datetime.datetime
    moment = real.combine(date, datetime.time(3, 0))

    class Frozen(real):
        @classmethod
        def now(cls, tz=None):
            if tz is None:
                return moment
            return moment.replace(tzinfo=datetime.UTC).astimezone(tz)
    saved = ir_date.datetime
    ir_date.datetime = types.SimpleNamespace(datetime=Frozen)
    try:
        yield
    finally:
        ir_date.datetime = saved


def load(pool, password):
    """Write the demo into the database of `pool` (inside a transaction,
    as root); running it again adds nothing."""
    head_currency = _currency(pool, 'IDR')
    for code, *_ in CURRENCIES:
        _currency(pool, code)
    head = _company(pool, HEAD_OFFICE, head_currency, ('ID', "Indonesia"),
        'Asia/Jakarta')
    companies = [head]
    summary = []
    for (name, currency, country, timezone, locations, plans,
            count) in BRANCHES:
        Location = pool.get('isp.location')
        if len(companies) - 1 in ONBOARDED:
            company = _onboard(pool, len(companies) - 1)
        else:
            company = _company(
                pool, name, _currency(pool, currency), country, timezone)
        companies.append(company)
        location_records = [
            _get_or_create(Location,
                [('company', '=', company.id), ('code', '=', code)],
                {'company': company.id, 'code': code, 'name': lname})
            for code, lname in locations]
        with Transaction().set_context(company=company.id):
            plan_records = _plans(pool, company, plans)
            created = _subscribers(pool, company, country[0],
                location_records, plan_records, count)
        summary.append((name, created))
    _staff(pool, companies, password)
    _helpdesk_setup(pool, companies[1:])
    # The demo is configured: no first-login configuration wizard.
    Item = pool.get('ir.module.config_wizard.item')
    Item.write(Item.search([('state', '!=', 'done')]), {'state': 'done'})
    return summary


def router_password(passwords, index):
    """The API password of the simulator of ROUTERS' `index`: its own, from
    {simulator name: password} (the simulators are sim1, sim2...)"""
    return passwords['sim%d' % (index + 1)]


def _routers(pool, branches, port, passwords):
    Router = pool.get('isp.router')
    routers = []
    for branch, code, name, index, isolation in ROUTERS:
        company = branches[branch]
        password = router_password(passwords, index)
        existing = Router.search([
                ('company', '=', company.id), ('code', '=', code)])
        # where the router shows on the network map (docs/map.md)
        lat, lon = COUNTRIES[BRANCHES[branch][2][0]]['centre']
        place = {'latitude': round(lat + 0.03 * index, 6),
            'longitude': round(lon - 0.02 * index, 6)}
        if existing:
            if existing[0].api_password != password:
                # a demo made when the routers used the staff password
                Router.write(existing, {'api_password': password})
            if existing[0].latitude is None:
                Router.write(existing, place)
            routers.append(existing[0])
            continue
        values = {
            'company': company.id, 'code': code, 'name': name,
            'host': '127.0.0.1', 'port': port + index,
            'api_username': 'admin', 'api_password': password,
            'isolation_method': isolation, **place,
            }
        if isolation == 'profile':
            values.update(isolation_profile='isolir',
                isolation_rate_limit='256k/256k')
        elif isolation == 'address_list':
            values['isolation_address_list'] = 'isolir'
        router, = Router.create([values])
        routers.append(router)
    return routers


def _services(pool, branches, routers):
    "Register a service for every demo subscriber that has none"
    Party = pool.get('party.party')
    Service = pool.get('isp.service')
    Template = pool.get('product.template')
    created = []
    for branch_index, company in enumerate(branches):
        branch_routers = [r for r, spec in zip(routers, ROUTERS, strict=True)
            if spec[0] == branch_index]
        plans = Template.search([
                ('isp_plan', '=', True), ('isp_company', '=', company.id)],
            order=[('id', 'ASC')])
        subscribers = Party.search([
                ('isp_company', '=', company.id),
                ('is_subscriber', '=', True),
                ], order=[('id', 'ASC')])
        with_service = {s.subscriber.id for s in Service.search([
                    ('subscriber', 'in', [p.id for p in subscribers])])}
        with Transaction().set_context(company=company.id):
            if any(p.id not in with_service for p in subscribers):
                # the branch bills on the day its services were activated
                Date = pool.get('ir.date')
                Configuration = pool.get('isp.billing.configuration')
                Configuration.write([Configuration(1)], {
                        'billing_day': min(Date.today().day, 28)})
            for i, party in enumerate(subscribers):
                if party.id in with_service:
                    continue
                created.append(Service.register({
                            'company': company.id,
                            'subscriber': party.id,
                            'location': party.location.id,
                            'plan': plans[(i * 7) % len(plans)].id,
                            'router': branch_routers[
                                i % len(branch_routers)].id,
                            }))
    return created


def _service_invoices(pool, services):
    "The posted (or paid) customer invoices of each service, by service id"
    Line = pool.get('account.invoice.line')
    result = {s.id: [] for s in services}
    for line in Line.search([
                ('isp_service', 'in', [s.id for s in services]),
                ('invoice.type', '=', 'out'),
                ('invoice.state', 'in', ['posted', 'paid']),
                ], order=[('id', 'ASC')]):
        if line.invoice not in result[line.isp_service.id]:
            result[line.isp_service.id].append(line.invoice)
    return result


def _pay_some(pool, services, start):
    """All subscribers but one in nine paid their first invoice at the
    counter in the week after it (cash, bank transfer or QRIS)"""
    Invoice = pool.get('account.invoice')
    invoices = _service_invoices(pool, services)
    # every invoice at once: one restart of the transaction, not one each
    Invoice.lock(sum(invoices.values(), []))
    paid = []
    for i, service in enumerate(services):
        if i % ISOLATED_EVERY == ISOLATED_EVERY - 1:
            continue
        for invoice in invoices[service.id]:
            if invoice.state != 'posted' or invoice.amount_to_pay <= 0:
                continue
            Invoice.isp_record_payment(invoice, invoice.amount_to_pay,
                date=start + datetime.timedelta(days=1 + i % 7),
                method=PAYMENT_METHODS[i % len(PAYMENT_METHODS)])
            paid.append(invoice)
    return paid


def _session_logins(pool, service_ids):
    """The PPPoE logins of the subscribers who are online: three in four of
    the active ones, as (simulator name, login request)"""
    Router = pool.get('isp.router')
    Service = pool.get('isp.service')
    routers = Router.search([])
    names = {r.id: 'sim%d' % (spec[3] + 1)
        for spec in ROUTERS for r in routers if r.code == spec[1]}
    logins = []
    for i, service in enumerate(Service.browse(service_ids)):
        if i % ONLINE_EVERY == ONLINE_EVERY - 1 or service.state != 'active':
            continue
        logins.append((names[service.router.id], {
                    'name': service.username,
                    'address': '10.%d.%d.%d' % (
                        10 + service.router.id, i // 250, 2 + i % 250),
                    'caller_id': '02:00:00:%02X:%02X:%02X' % (
                        service.router.id, i // 256, i % 256),
                    }))
    return logins


def _login_sessions(control_port, logins):
    "Put subscribers online on the simulators, as their CPEs would"
    for name, login in logins:
        request = urllib.request.Request(
            'http://127.0.0.1:%d/routers/%s/ppp/login' % (control_port, name),
            data=json.dumps(login).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=10):
            pass


def _transact(database, func, *args):
    """Run func(pool, *args) in a transaction as root, retried the way the
    server does when Tryton asks for a lock; then run the queued tasks as a
    worker would (SQLite has no worker)."""
    from trytond.pool import Pool
    from trytond.transaction import TransactionError
    from trytond.worker import run_task
    pool = Pool(database)
    extras = {}
    while True:
        with Transaction().start(database, 0, **extras) as transaction:
            try:
                result = func(pool, *args)
            except TransactionError as error:
                transaction.rollback()
                transaction.tasks.clear()
                error.fix(extras)
                continue
            transaction.commit()
        # tasks queued by the tasks join the same (thread's) list
        while transaction.tasks:
            run_task(database, transaction.tasks.pop(0))
        return result


def _branches(pool):
    Company = pool.get('company.company')
    return [Company.search([('party.name', '=', b[0])])[0] for b in BRANCHES]


#: Portal logins per branch (its first subscribers) and each branch's
#: portal host (*.localhost reaches 127.0.0.1 in browsers).
PORTAL_LOGINS = 3
PORTAL_HOSTS = ['bandung.localhost', 'nairobi.localhost']


def _portal(pool, passwords):
    """Each branch's portal domain and portal logins for its first
    subscribers, with the passwords of `passwords` ({e-mail: password},
    completed with new random ones); return [(branch, host, code, e-mail,
    password)]"""
    import secrets
    Company = pool.get('company.company')
    Party = pool.get('party.party')
    WebUser = pool.get('web.user')
    logins = []
    for company, host in zip(_branches(pool), PORTAL_HOSTS, strict=True):
        if company.isp_web_domain != host:
            Company.write([company], {'isp_web_domain': host})
        parties = Party.search([
                ('isp_company', '=', company.id),
                ('is_subscriber', '=', True),
                ], order=[('id', 'ASC')], limit=PORTAL_LOGINS)
        users = {u.party.id: u for u in WebUser.search([
                    ('party', 'in', [p.id for p in parties])])}
        for party in parties:
            email = party.email.lower() if party.email else None
            password = passwords.setdefault(email or party.subscriber_code,
                secrets.token_urlsafe(9))
            user = users.get(party.id)
            if user is None:
                user, = WebUser.create([{
                            'party': party.id, 'isp_company': company.id,
                            'email': email}])
            if not (user.password_hash and WebUser.check_password(
                        password, user.password_hash)[0]):
                WebUser.write([user], {
                        'password_hash': WebUser.hash_password(password)})
            logins.append((company.rec_name, host, party.subscriber_code,
                    email, password))
    return logins


def load_portal(database, passwords_file):
    """The portal logins, their passwords kept per machine in
    `passwords_file` (created with random ones, mode 600)"""
    passwords = {}
    if os.path.exists(passwords_file):
        with open(passwords_file) as fp:
            passwords = json.load(fp)
    logins = _transact(database, _portal, passwords)
    with open(os.open(passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                0o600), 'w') as fp:
        json.dump(passwords, fp, indent=1)
    return logins


def _register(pool, port, passwords):
    branches = _branches(pool)
    routers = _routers(pool, branches, port, passwords)
    return [s.id for s in _services(pool, branches, routers)]


def _pay(pool, service_ids, start):
    Service = pool.get('isp.service')
    return len(_pay_some(pool, Service.browse(service_ids), start))


def _remind(pool):
    """Today's run of the reminder ladder (the cron's method): the unpaid
    invoices are more than ten days overdue, so their subscribers' services
    are isolated"""
    Dunning = pool.get('account.dunning')
    Service = pool.get('isp.service')
    Dunning.isp_run()
    return Service.search_count([
            ('state', '=', 'isolated'), ('isolated_by_billing', '=', True)])


def _bill_unbilled(pool):
    """Bill the services that have never been (a database from before the
    demo had billing): their first period, today"""
    Service = pool.get('isp.service')
    services = Service.search([
            ('state', 'in', ['active', 'isolated']),
            ('billed_until', '=', None),
            ('activation_date', '!=', None),
            ])
    return len(Service.isp_bill(services)) if services else 0


def billing_summary(pool):
    """Per branch: (name, currency, posted invoices of subscribers, paid,
    overdue, pay link of an overdue invoice of an isolated subscriber); the
    resellers' voucher invoices are not counted"""
    Invoice = pool.get('account.invoice')
    Service = pool.get('isp.service')
    Date = pool.get('ir.date')
    summary = []
    for company in _branches(pool):
        with Transaction().set_context(company=company.id):
            today = Date.today()
        invoices = Invoice.search([
                ('company', '=', company.id), ('type', '=', 'out'),
                ('party.is_subscriber', '=', True),
                ('state', 'in', ['posted', 'paid'])], order=[('id', 'ASC')])
        overdue = [i for i in invoices if i.state == 'posted'
            and i.isp_due_date and i.isp_due_date < today]
        isolated = {s.subscriber.id for s in Service.search([
                    ('company', '=', company.id),
                    ('state', '=', 'isolated'),
                    ('isolated_by_billing', '=', True)])}
        link = next((i.isp_pay_url() for i in overdue
                if i.party.id in isolated), None)
        summary.append((company.rec_name, company.currency.code,
                len(invoices), len([i for i in invoices if i.state == 'paid']),
                len(overdue), link))
    return summary


def _sync(pool):
    Router = pool.get('isp.router')
    Router.sync(Router.search([]))


# Hotspot vouchers on the simulated routers, per branch: price, vouchers
# logged in through the simulator (the last one 2 days ago, so it expires)
VOUCHER_PRICES = {0: '5000', 1: '50'}
VOUCHER_LOGINS = 3


def _voucher_batches(pool):
    """Per branch, a generated batch of an API voucher profile on its first
    router: one that exists (another step of the demo may make it), else
    a "Hotspot 1 day" profile and a batch of 20 made here"""
    Batch = pool.get('isp.voucher.batch')
    Profile = pool.get('isp.voucher.profile')
    Router = pool.get('isp.router')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    batches = []
    for index, company in enumerate(_branches(pool)):
        found = Batch.search([
                ('company', '=', company.id),
                ('state', '=', 'generated'),
                ('profile.mode', '=', 'api'),
                ], order=[('id', 'ASC')], limit=1)
        if found:
            batches.append(found[0])
            continue
        code = next(spec[1] for spec in ROUTERS if spec[0] == index)
        router, = Router.search([
                ('company', '=', company.id), ('code', '=', code)])
        unit, = Uom.search([('name', '=', 'Unit')])
        with Transaction().set_context(company=company.id):
            template = _get_or_create(Template, [
                    ('name', '=', "Hotspot 1 day"),
                    ('isp_company', '=', company.id)], {
                    'name': "Hotspot 1 day", 'type': 'service',
                    'isp_company': company.id, 'default_uom': unit.id,
                    'list_price': Decimal(VOUCHER_PRICES[index]),
                    'products': [('create', [{}])]})
            profile = _get_or_create(Profile, [
                    ('company', '=', company.id), ('mode', '=', 'api')], {
                    'company': company.id, 'name': "1 day 5 Mbps",
                    'product': template.products[0].id,
                    'router': router.id, 'mode': 'api',
                    'validity': 1, 'validity_unit': 'days',
                    'uptime_limit': datetime.timedelta(hours=8),
                    'data_quota': 2000, 'rate_limit': '2M/5M',
                    'shared_users': 1})
            batch, = Batch.create([{
                        'company': company.id, 'name': "Demo hotspot",
                        'profile': profile.id, 'quantity': 20,
                        'prefix': 'HS'}])
            Batch.generate([batch])
        batches.append(batch)
    return [b.id for b in batches]


def _voucher_logins(pool, batch_ids):
    """Hotspot logins of the first vouchers of each batch, as (simulator
    name, login request); none for a batch already used"""
    Batch = pool.get('isp.voucher.batch')
    Voucher = pool.get('isp.voucher')
    logins = []
    for batch in Batch.browse(batch_ids):
        vouchers = Voucher.search([('batch', '=', batch.id)],
            order=[('id', 'ASC')])
        if any(v.first_login for v in vouchers):
            continue
        router = batch.profile.router
        name = next('sim%d' % (spec[3] + 1) for spec in ROUTERS
            if spec[1] == router.code)
        for i, voucher in enumerate(vouchers[:VOUCHER_LOGINS]):
            last = i == VOUCHER_LOGINS - 1
            logins.append((name, {
                        'user': voucher.code, 'password': voucher.password,
                        'uptime': 2 * 86400 if last else 600 * (i + 1)}))
    return logins


def load_vouchers(database, control_port):
    """Each branch's hotspot vouchers on its router, some logged in through
    the simulator; the sync reads them back: active, and the one logged in
    two days ago expired and removed from the router"""
    batch_ids = _transact(database, _voucher_batches)
    logins = _transact(database, _voucher_logins, batch_ids)
    for name, login in logins:
        request = urllib.request.Request(
            'http://127.0.0.1:%d/routers/%s/hotspot/login' % (
                control_port, name),
            data=json.dumps(login).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=10):
            pass
    _transact(database, _sync)
    return len(logins)


# Voucher cards and sales: per branch, its batch's cards printed (the PDF
# attached to the batch) and some vouchers sold to a reseller
VOUCHER_RESELLER_SALE = 5


def _voucher_sales(pool, batch_ids):
    """Per branch: the hotspot DNS name of the batch's profile, the batch's
    cards attached as a PDF, a reseller (15 % commission) buying
    VOUCHER_RESELLER_SALE of its new vouchers on a posted invoice; once"""
    Attachment = pool.get('ir.attachment')
    Batch = pool.get('isp.voucher.batch')
    Party = pool.get('party.party')
    Profile = pool.get('isp.voucher.profile')
    Reseller = pool.get('isp.voucher.reseller')
    Voucher = pool.get('isp.voucher')
    sales = []
    for batch in Batch.browse(batch_ids):
        company = batch.company
        with Transaction().set_context(company=company.id):
            profile = batch.profile
            if not profile.hotspot_dns_name:
                Profile.write([profile], {
                        'hotspot_dns_name': 'hotspot%d.demo.isp' % company.id,
                        })
            if not profile.shop:
                # offered in the branch's e-voucher shop (docs/shop.md)
                Profile.write([profile], {'shop': True})
            if not Attachment.search([('resource', '=', str(batch))]):
                Batch.attach_cards([batch])
            name = "Agen Voucher %s" % company.party.name
            party = _get_or_create(Party, [
                    ('name', '=', name), ('isp_company', '=', company.id)], {
                    'name': name, 'isp_company': company.id,
                    'addresses': [('create', [{}])]})
            reseller = _get_or_create(Reseller, [
                    ('company', '=', company.id), ('party', '=', party.id)], {
                    'company': company.id, 'party': party.id,
                    'commission_rate': Decimal('0.15'),
                    'credit_limit': 100 * profile.price_with_tax})
            if not Voucher.search([('reseller', '=', reseller.id)], limit=1):
                Reseller.sell(reseller, batch, VOUCHER_RESELLER_SALE)
            sales.append((company.rec_name, reseller.rec_name))
    return sales


def load_voucher_sales(database):
    "Each branch's voucher cards printed and some sold to a reseller"
    batch_ids = _transact(database, _voucher_batches)
    return _transact(database, _voucher_sales, batch_ids)


def _helpdesk_setup(pool, branches):
    """Each branch's business calendar and helpdesk categories with their
    SLA targets, the branch's technicians as the team (before the
    registrations, which open the installation work orders)"""
    Calendar = pool.get('isp.helpdesk.calendar')
    Category = pool.get('isp.helpdesk.category')
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    technician = ModelData.get_id('isp_base', 'group_isp_technician')
    for index, company in enumerate(branches):
        with Transaction().set_context(company=company.id):
            if Calendar.search([('company', '=', company.id)], limit=1):
                continue
            Calendar.create([{
                        'company': company.id,
                        'name': "%s office hours" % company.rec_name,
                        'timezone': company.timezone,
                        'intervals': [('create', [{
                                        'weekday': day,
                                        'start_time': datetime.time(
                                            *map(int, start.split(':'))),
                                        'end_time': datetime.time(
                                            *map(int, end.split(':'))),
                                        } for day, start, end
                                    in HELPDESK_HOURS[index]])],
                        }])
            team = [u.id for u in User.search([
                        ('groups', '=', technician),
                        ('companies', '=', company.id)])]
            Category.create([{
                        'company': company.id,
                        'name': name,
                        'inbound': inbound,
                        'installation': installation,
                        'team': [('add', team)],
                        'slas': [('create', [{
                                        'priority': priority,
                                        'first_response': response,
                                        'resolution': resolution,
                                        } for priority, (response, resolution)
                                    in targets.items()])],
                        } for name, inbound, installation, targets
                    in HELPDESK_CATEGORIES])


def _helpdesk_tickets(pool):
    """The support tickets of HELPDESK_TICKETS in each branch (once), on
    its first subscribers, in every channel and state, one breached; then
    the escalation cron; return [(branch, tickets, breached)]"""
    Ticket = pool.get('isp.helpdesk.ticket')
    now = datetime.datetime.now(datetime.UTC).replace(
        tzinfo=None, microsecond=0)
    summary = []
    for company in _branches(pool):
        with Transaction().set_context(company=company.id):
            if not Ticket.search([('company', '=', company.id),
                        ('kind', '=', 'support')], limit=1):
                _branch_tickets(pool, company, now)
            Ticket.escalate()
            tickets = Ticket.search([('company', '=', company.id)])
            summary.append((company.rec_name, len(tickets), len([
                            t for t in tickets
                            if 'breached' in {t.response_escalation,
                                t.resolution_escalation}])))
    return summary


def _branch_tickets(pool, company, now):
    Ticket = pool.get('isp.helpdesk.ticket')
    Category = pool.get('isp.helpdesk.category')
    Message = pool.get('isp.helpdesk.ticket.message')
    Party = pool.get('party.party')
    internet = Category.search([('company', '=', company.id),
            ('inbound', '=', True)], limit=1)
    subscribers = Party.search([('isp_company', '=', company.id),
            ('is_subscriber', '=', True)], order=[('id', 'ASC')],
        limit=len(HELPDESK_TICKETS))
    if not internet or not subscribers:
        return
    for index, (channel, priority, subject, fate) in enumerate(
            HELPDESK_TICKETS):
        opened = now - datetime.timedelta(
            days=3 if fate == 'breached' else 0, hours=len(
                HELPDESK_TICKETS) - index)
        with Transaction().set_context(_isp_helpdesk_now=opened):
            review = fate == 'review'
            subscriber = subscribers[index % len(subscribers)]
            ticket, = Ticket.create([{
                        'company': company.id,
                        'subscriber': None if review else subscriber.id,
                        'category': internet[0].id,
                        'channel': channel, 'priority': priority,
                        'subject': subject,
                        'description': subject + ".",
                        'contact': UNKNOWN_NUMBERS.get(
                            company.isp_phone_country()) if review
                        else None,
                        'to_review': review,
                        }])
        later = opened + datetime.timedelta(minutes=20)
        with Transaction().set_context(_isp_helpdesk_now=later):
            if fate not in {'open', 'breached', 'review'}:
                Ticket.start([ticket])
                Message.create([{'ticket': ticket.id, 'kind': 'public',
                            'body': "We are checking it."}])
            if fate == 'waiting':
                Ticket.wait([ticket])
            if fate in {'resolved', 'rated', 'closed'}:
                Ticket.resolve([ticket])
            if fate == 'rated':
                Ticket.rate(ticket, 5, "Fixed the same day, thank you.")
            if fate == 'closed':
                Ticket.close([ticket])


def load_helpdesk(database):
    "The helpdesk's tickets (after the registrations' work orders)"
    return _transact(database, _helpdesk_tickets)


def load_network(database, passwords, port, control_port, today=None):
    """Routers on the simulators and a service per subscriber, registered
    (and so billed) 20-23 days before `today`; most first invoices paid,
    the others isolated by today's reminder run; sessions online; then a
    sync reads the routers back."""
    start = history_start(today or _today())
    with clock(start):
        service_ids = _transact(database, _register, port, passwords)
    if service_ids:
        with clock(start + datetime.timedelta(days=7)):
            _transact(database, _pay, service_ids, start)
        _transact(database, _remind)
        logins = _transact(database, _session_logins, service_ids)
        _login_sessions(control_port, logins)
        _transact(database, _sync)
    else:
        _transact(database, _bill_unbilled)
    return len(service_ids)


def _gateways(pool, port, public_url, credentials):
    """The gateway accounts on the fakes (sandbox), created once, their URLs
    and credentials brought up to date on every run"""
    Gateway = pool.get('isp.payment.gateway')
    branches = _branches(pool)
    gateways = []
    for provider, name, branch, offset in GATEWAYS:
        company = branches[branch].id if branch is not None else None
        values = {
            'name': name, 'provider': provider, 'company': company,
            'sandbox': True, 'timeout': 10,
            'base_url': 'http://127.0.0.1:%d' % (port + offset),
            'public_url': public_url,
            }
        values.update({k: v for k, v in credentials.get(provider, {}).items()
                if k in Gateway._fields})
        with Transaction().set_context(active_test=False):
            existing = Gateway.search([
                    ('provider', '=', provider), ('company', '=', company),
                    ('name', '=', name)], limit=1)
        if existing:
            Gateway.write(existing, values)
            gateways.extend(existing)
        else:
            gateways.extend(Gateway.create([values]))
    # Xendit calls back the URL set on the account (its dashboard or API)
    for gateway in gateways:
        if gateway.provider == 'xendit':
            gateway.get_adapter().set_callback_url(gateway.webhook())
    return [(g.name, g.company.rec_name if g.company else None, g.base_url)
        for g in gateways]


# Views earlier demo runs added to work around date-time list columns sao
# could not show (the product's list views have date and time widgets now)
SAO_VIEW = 'isp_demo_sao_datetime'


def _drop_sao_workaround(pool):
    View = pool.get('ir.ui.view')
    View.delete(View.search([('name', '=', SAO_VIEW)]))


def load_gateways(database, port, public_url, credentials):
    return _transact(database, _gateways, port, public_url, credentials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-c', '--config', required=True, nargs='+')
    parser.add_argument('-d', '--database', required=True)
    parser.add_argument('--password-file', required=True,
        help="file holding the password given to the demo staff")
    parser.add_argument('--router-port', type=int,
        help="API port of the first simulated router (scripts/demo)")
    parser.add_argument('--router-passwords-file',
        help="JSON file of the simulated routers' API passwords by "
        "simulator name (sim1, sim2...), one each (scripts/demo)")
    parser.add_argument('--router-control-port', type=int,
        help="control port of the router simulators")
    parser.add_argument('--public-url',
        help="the root of the demo server as subscribers and gateways "
        "reach it (payment links, webhooks), e.g. http://127.0.0.1:8000")
    parser.add_argument('--gateway-port', type=int,
        help="port of the first fake payment gateway (scripts/demo)")
    parser.add_argument('--portal-passwords-file',
        help="JSON file of the portal logins' passwords (created with "
        "random ones when missing)")
    parser.add_argument('--portal-port', type=int,
        help="port of the server in the printed portal URLs")
    parser.add_argument('--gateway-credentials',
        help="JSON file of the fakes' credentials by provider (default: "
        "the fakes' fixed ones)")
    args = parser.parse_args()
    if args.router_port and not args.router_passwords_file:
        parser.error("--router-port needs --router-passwords-file")
    import trytond.config as config
    config.update_etc(args.config)
    from trytond import backend
    if backend.name == 'sqlite' and not config.getint(
            'cache', 'clean_timeout', default=300):
        # this process alone uses the file: no cache sync, which would put
        # SQLite's connection in autocommit (see the docstring)
        config.set('cache', 'clean_timeout', str(10 ** 8))
    from trytond.pool import Pool
    with open(args.password_file) as fp:
        password = fp.read().strip()
    Pool.start()
    pool = Pool(args.database)
    pool.init()
    # restarted with the locks it asks for (the onboarding wizard's chart)
    summary = _transact(args.database, load, password)
    for name, created in summary:
        print('%s: %d subscribers created' % (name, created))
    today = _today()
    start = history_start(today)
    years = sorted({finance_start(today).year, start.year, today.year,
            today.year + 1})
    _transact(args.database, _setup_accounting, years, args.public_url)
    finance_started = time.monotonic()
    _transact(args.database, _finance_income, today)
    finance_time = time.monotonic() - finance_started
    _transact(args.database, _drop_sao_workaround)
    if args.gateway_port:
        if args.gateway_credentials:
            with open(args.gateway_credentials) as fp:
                credentials = json.load(fp)
        else:
            from tools.fake_gateways import DEMO_CREDENTIALS as credentials
        gateways = load_gateways(args.database, args.gateway_port,
            args.public_url, credentials)
        for name, company, url in gateways:
            print('payment gateway %s (%s) on %s' % (
                    name, company or "central", url))
    if args.router_port:
        with open(args.router_passwords_file) as fp:
            router_passwords = json.load(fp)
        count = load_network(args.database, router_passwords,
            args.router_port, args.router_control_port, today)
        print('%d services registered on the simulated routers' % count)
        logins = load_vouchers(args.database, args.router_control_port)
        print('%d hotspot vouchers logged in on the simulated routers'
            % logins)
        for branch, reseller in load_voucher_sales(args.database):
            print('%s: voucher cards printed, %d vouchers sold to %s' % (
                    branch, VOUCHER_RESELLER_SALE, reseller))
    if args.portal_passwords_file:
        port = ':%d' % args.portal_port if args.portal_port else ''
        for branch, host, code, email, secret in load_portal(
                args.database, args.portal_passwords_file):
            print('portal of %s: http://%s%s/%s/isp_base/portal/login '
                '%s or %s, password %s' % (branch, host, port,
                    args.database, code, email, secret))
    for branch, count, breached in load_helpdesk(args.database):
        print('%s: %d helpdesk tickets, %d breached' % (
                branch, count, breached))
    finance_started = time.monotonic()
    _transact(args.database, _finance, today)
    finance_time += time.monotonic() - finance_started
    print('finance: a year of expenses, assets and installations per '
        'branch (%.1f s)' % finance_time)
    for name, currency, posted, paid, overdue, link in _transact(
            args.database, billing_summary):
        print('%s: %d invoices in %s, %d paid, %d overdue' % (
                name, posted, currency, paid, overdue))
        if link:
            print('  pay an overdue invoice: %s' % link)


if __name__ == '__main__':
    main()
