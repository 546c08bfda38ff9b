# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deterministic demo data: a head office, two branches, staff, locations,
plans and subscribers with valid national IDs and phone numbers.

The generator (`generate_subscribers`) is pure and deterministic, so the
benchmarks reuse it for 10k-100k subscribers; `load` writes the demo into a
database that has the ISP modules activated:

    python -m tools.demo_data -c trytond.conf -d isp_demo --password-file F \
        [--router-port N --router-control-port M]

With --router-port, the demo also gets routers (the RouterOS simulators that
scripts/demo starts on N, N+1, N+2), a service per subscriber registered on
them, some subscribers online and a few isolated.
"""
import argparse
import datetime
import json
import random
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
ISOLATED_EVERY = 9  # one in nine is isolated (overdue)

STAFF = [
    # login, name, group xml id, branch index (None = every company)
    ('head', "Head Office Admin", 'group_isp_head_admin', None),
    ('bdg_admin', "Bandung Admin", 'group_isp_branch_admin', 0),
    ('bdg_cs', "Bandung Customer Service", 'group_isp_customer_service', 0),
    ('bdg_finance', "Bandung Finance", 'group_isp_finance', 0),
    ('bdg_tech', "Bandung Technician", 'group_isp_technician', 0),
    ('nbo_admin', "Nairobi Admin", 'group_isp_branch_admin', 1),
    ('nbo_cs', "Nairobi Customer Service", 'group_isp_customer_service', 1),
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
    users = []
    for login, name, group, branch in STAFF:
        user_companies = companies if branch is None else [
            companies[branch + 1]]
        group_id = ModelData.get_id('isp_base', group)
        if User.search([('login', '=', login)]):
            continue
        user, = User.create([{
                    'login': login, 'name': name, 'password': password,
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
    # The demo is configured: no first-login configuration wizard.
    Item = pool.get('ir.module.config_wizard.item')
    Item.write(Item.search([('state', '!=', 'done')]), {'state': 'done'})
    return summary


def _routers(pool, branches, port, password):
    Router = pool.get('isp.router')
    routers = []
    for branch, code, name, index, isolation in ROUTERS:
        company = branches[branch]
        existing = Router.search([
                ('company', '=', company.id), ('code', '=', code)])
        if existing:
            routers.append(existing[0])
            continue
        values = {
            'company': company.id, 'code': code, 'name': name,
            'host': '127.0.0.1', 'port': port + index,
            'api_username': 'admin', 'api_password': password,
            'isolation_method': isolation,
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


def _isolate_some(pool, services):
    Service = pool.get('isp.service')
    to_isolate = [s for i, s in enumerate(services)
        if i % ISOLATED_EVERY == ISOLATED_EVERY - 1]
    if to_isolate:
        Service.isolate(to_isolate)
    return to_isolate


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
                error.fix(extras)
                continue
            transaction.commit()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
        for task_id in tasks:
            run_task(database, task_id)
        return result


def _branches(pool):
    Company = pool.get('company.company')
    return [Company.search([('party.name', '=', b[0])])[0] for b in BRANCHES]


def _register(pool, port, password):
    branches = _branches(pool)
    routers = _routers(pool, branches, port, password)
    return [s.id for s in _services(pool, branches, routers)]


def _isolate(pool, service_ids):
    Service = pool.get('isp.service')
    return [s.id for s in _isolate_some(pool, Service.browse(service_ids))]


def _sync(pool):
    Router = pool.get('isp.router')
    Router.sync(Router.search([]))


def load_network(database, password, port, control_port):
    """Routers on the simulators, a service per subscriber, sessions online
    and a few isolated services; then a sync reads the routers back."""
    service_ids = _transact(database, _register, port, password)
    if service_ids:
        _transact(database, _isolate, service_ids)
        logins = _transact(database, _session_logins, service_ids)
        _login_sessions(control_port, logins)
        _transact(database, _sync)
    return len(service_ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-c', '--config', required=True, nargs='+')
    parser.add_argument('-d', '--database', required=True)
    parser.add_argument('--password-file', required=True,
        help="file holding the password given to the demo staff")
    parser.add_argument('--router-port', type=int,
        help="API port of the first simulated router (scripts/demo)")
    parser.add_argument('--router-control-port', type=int,
        help="control port of the router simulators")
    args = parser.parse_args()
    import trytond.config as config
    config.update_etc(args.config)
    from trytond.pool import Pool
    with open(args.password_file) as fp:
        password = fp.read().strip()
    Pool.start()
    pool = Pool(args.database)
    pool.init()
    with Transaction().start(args.database, 0) as transaction:
        summary = load(pool, password)
        transaction.commit()
    for name, created in summary:
        print('%s: %d subscribers created' % (name, created))
    if args.router_port:
        count = load_network(args.database, password, args.router_port,
            args.router_control_port)
        print('%d services registered on the simulated routers' % count)


if __name__ == '__main__':
    main()
