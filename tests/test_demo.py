# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The README's demo command, run as a newcomer would: it installs, creates
the SQLite database, activates the six modules, loads the demo data and
serves the back office; the printed login lists the demo data over the
server's JSON-RPC, and a branch user sees only the branch.  The demo bills
(invoices per branch, paid and overdue ones, isolated subscribers) and an
overdue invoice is paid through its payment link on the fake gateways,
which reconnects the subscriber on the simulated router."""
import datetime
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from tools.chromium import CHROMIUM_ARGS, loopback_only
from tools.rpc import RPCClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _free_ports(count):
    "`count` consecutive free loopback ports"
    for _ in range(200):
        first = random.randrange(20000, 30000)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(('127.0.0.1', port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free ports")


class Demo(tuple):
    "(url, login, password), with the ports of the simulators and fakes"
    router_control_port = gateway_port = None


def _start_demo(demo_dir, port):
    router_port = _free_ports(4)
    gateway_port = _free_ports(4)
    while abs(gateway_port - router_port) < 4:
        gateway_port = _free_ports(4)
    env = dict(os.environ, ISP_DEMO_DIR=str(demo_dir), ISP_DEMO_PORT=str(port),
        ISP_DEMO_ROUTER_PORT=str(router_port),
        ISP_DEMO_ROUTER_CONTROL_PORT=str(router_port + 3),
        ISP_DEMO_GATEWAY_PORT=str(gateway_port))
    for name in ['TRYTOND_DATABASE_URI', 'DB_NAME', 'DB_CACHE']:
        env.pop(name, None)
    process = subprocess.Popen(
        [os.path.join(ROOT, 'scripts', 'demo')], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    output = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if 'Login:' in line:
            break
    text = ''.join(output)
    match = re.search(r'Login: (\S+)\s+Password: (\S+)', text)
    url = re.search(r'ISP suite demo: (http://127\.0\.0\.1:\d+/)', text)
    if not (match and url):
        _stop(process)
        pytest.fail('the demo did not print its login:\n' + text)
    # the demo's server and cron go on writing to this pipe: read it for
    # as long as they run, or a full pipe (64 KiB, a few hundred requests
    # logged) blocks them and every request after it times out
    threading.Thread(target=_drain, args=(process.stdout, output),
        daemon=True).start()
    for _ in range(300):
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    demo = Demo((url.group(1), match.group(1), match.group(2)))
    demo.router_control_port = router_port + 3
    demo.gateway_port = gateway_port
    return process, demo, text


def _drain(stream, output, keep=2000):
    "Read `stream` to its end, keeping its last `keep` lines in `output`"
    for line in stream:
        output.append(line)
        del output[:-keep]


def _stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('demo')


@pytest.fixture(scope='module')
def demo(demo_dir):
    "The demo command, run once for the first tests of this module"
    port = _free_port()
    process, demo, output = _start_demo(demo_dir, port)
    try:
        assert demo[0] == f'http://127.0.0.1:{port}/'
        demo.output = output
        yield demo
    finally:
        _stop(process)


def test_demo_serves_back_office_with_demo_data(demo):
    url, login, password = demo
    page = requests.get(url, timeout=30)
    assert page.status_code == 200
    assert 'sao' in page.text.lower()

    client = RPCClient(url, 'isp_demo')
    assert client.login(login, password)
    subscribers = client.call('model.party.party.search_read',
        [('is_subscriber', '=', True)], 0, None, None,
        ['name', 'national_id', 'whatsapp', 'isp_company.rec_name'])
    assert len(subscribers) >= 60
    assert all(s['whatsapp'].startswith('+') for s in subscribers)
    branches = {s['isp_company.']['rec_name'] for s in subscribers}
    assert branches == {'Nusantara Net Bandung', 'Nusantara Net Nairobi'}
    plans = client.call('model.product.template.search_read',
        [('isp_plan', '=', True)], 0, None, None, ['name', 'rate_limit'])
    assert len(plans) == 8
    assert all(p['rate_limit'] for p in plans)
    locations = client.call('model.isp.location.search_read',
        [], 0, None, None, ['code'])
    assert {loc['code'] for loc in locations} >= {'KCB', 'WSTL'}

    branch_user = RPCClient(url, 'isp_demo')
    branch_user.login('bdg_cs', password)
    seen = branch_user.call('model.party.party.search_read',
        [('is_subscriber', '=', True)], 0, None, None,
        ['isp_company.rec_name'])
    assert len(seen) == 40
    assert {s['isp_company.']['rec_name'] for s in seen} == {
        'Nusantara Net Bandung'}


def test_demo_portal_logins(demo):
    """The printed portal logins of each branch log in on their branch's
    host, by customer ID and by e-mail, and not on the other branch's"""
    url = demo[0]
    logins = re.findall(r'portal of (.+?): http://(\S+?):(\d+)(/\S+) '
        r'(\S+) or (\S+), password (\S+)', demo.output)
    assert len(logins) == 6, demo.output
    hosts = {host for _, host, *_ in logins}
    assert hosts == {'bandung.localhost', 'nairobi.localhost'}
    for branch, host, port, path, code, email, password in logins:
        for login, on_host, status in [(code, host, 303),
                (email, host, 303),
                (code, (hosts - {host}).pop(), 401)]:
            session = requests.Session()
            headers = {'Host': '%s:%s' % (on_host, port)}
            page = session.get(url.rstrip('/') + path, headers=headers,
                timeout=30)
            assert page.status_code == 200, (on_host, page.text[:300])
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                page.text).group(1)
            answer = session.post(url.rstrip('/') + path, headers=headers,
                data={'csrf_token': token, 'login': login,
                    'password': password},
                allow_redirects=False, timeout=30)
            assert answer.status_code == status, (branch, on_host, login)


def test_demo_helpdesk_tickets(demo):
    """Each branch has support tickets in every channel and state, one
    breached by the escalation cron, one from an unknown number to review,
    one rated, and a work order per registration; branch staff see only
    their branch's"""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    assert client.login(login, password)
    tickets = client.call('model.isp.helpdesk.ticket.search_read',
        [], 0, None, None,
        ['company.rec_name', 'kind', 'channel', 'state', 'to_review',
            'rating', 'response_escalation', 'resolution_escalation',
            'service'])
    services = client.call('model.isp.service.search_count', [])
    assert len([t for t in tickets if t['kind'] == 'installation']) \
        == services
    for branch in ['Nusantara Net Bandung', 'Nusantara Net Nairobi']:
        support = [t for t in tickets if t['kind'] == 'support'
            and t['company.']['rec_name'] == branch]
        assert {t['channel'] for t in support} == {
            'portal', 'whatsapp', 'phone', 'email', 'staff'}, branch
        states = {t['state'] for t in support}
        assert states >= {
            'in_progress', 'waiting', 'resolved', 'closed'}, branch
        assert states & {'new', 'assigned'}, branch
        assert [t for t in support if 'breached' in {
                    t['response_escalation'], t['resolution_escalation']}]
        assert [t['rating'] for t in support if t['rating']] == [5]
        assert len([t for t in support if t['to_review']]) == 1
    staff = RPCClient(url, 'isp_demo')
    assert staff.login('nbo_cs', password)
    seen = staff.call('model.isp.helpdesk.ticket.search_read',
        [], 0, None, None, ['company.rec_name'])
    assert seen and {t['company.']['rec_name'] for t in seen} == {
        'Nusantara Net Nairobi'}


def test_demo_network_on_simulated_routers(demo):
    "Every demo subscriber has a service provisioned on a simulated router"
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    services = client.call('model.isp.service.search_read', [], 0, None,
        None, ['state', 'live_status', 'router_state', 'customer_id'])
    assert len(services) == 65
    assert all(s['router_state'] == 'synced' for s in services)
    assert {s['state'] for s in services} == {'active', 'isolated'}
    assert any(s['live_status'] == 'online' for s in services)
    assert all(re.fullmatch(r'[A-Z]{2,5}-[A-Z]{2,6}\d{6}-\d{3}',
                s['customer_id']) for s in services)
    routers = client.call('model.isp.router.search_read', [], 0, None,
        None, ['code', 'reachable', 'secret_count', 'api_password'])
    assert {r['code'] for r in routers} == {'CKP', 'MLGT', 'WSTL'}
    assert all(r['reachable'] for r in routers)
    assert sum(r['secret_count'] for r in routers) == 65
    # each router its own API password, none the staff's
    passwords = [r['api_password'] for r in routers]
    assert all(passwords) and len(set(passwords)) == 3
    assert password not in passwords


def test_demo_vouchers_on_simulated_routers(demo):
    "Each branch's vouchers: some active through the router, one expired"
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    vouchers = client.call('model.isp.voucher.search_read',
        [('profile.mode', '=', 'api')], 0, None, [('id', 'ASC')],
        ['code', 'state', 'company.rec_name', 'first_login',
            'profile.router.code'])
    for branch, sim in [('Nusantara Net Bandung', 'sim1'),
            ('Nusantara Net Nairobi', 'sim3')]:
        mine = [v for v in vouchers if v['company.']['rec_name'] == branch]
        states = [v['state'] for v in mine]
        assert states.count('active') >= 2, states
        assert states.count('expired') >= 1, states
        answer = requests.get('http://127.0.0.1:%d/routers/%s/menu' % (
                demo.router_control_port, sim),
            params={'path': '/ip/hotspot/user'}, timeout=10)
        answer.raise_for_status()
        on_router = {u['name'] for u in answer.json()}
        for voucher in mine:
            if voucher['state'] == 'expired':
                assert voucher['code'] not in on_router
            elif voucher['state'] in {'new', 'sold', 'active'}:
                assert voucher['code'] in on_router
    routers = client.call('model.isp.router.search_read',
        [('code', 'in', ['CKP', 'WSTL'])], 0, None, None,
        ['voucher_state'])
    assert {r['voucher_state'] for r in routers} == {'synced'}


def test_demo_voucher_cards_and_reseller(demo):
    """Each branch's batch printed (a PDF of its cards attached) and five
    of its vouchers sold to a reseller on a posted invoice"""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    batches = client.call('model.isp.voucher.batch.search_read',
        [('profile.mode', '=', 'api')], 0, None, [('id', 'ASC')],
        ['company.rec_name'])
    assert len({b['company.']['rec_name'] for b in batches}) >= 2
    for batch in batches:
        attachments = client.call('model.ir.attachment.search_read',
            [('resource', '=', 'isp.voucher.batch,%d' % batch['id'])],
            0, None, None, ['name'])
        assert [a['name'].endswith('.pdf') for a in attachments] == [True]
    sold = client.call('model.isp.voucher.search_read',
        [('reseller', '!=', None)], 0, None, None,
        ['state', 'company.rec_name', 'invoice_line.invoice.state'])
    assert len(sold) == 5 * len(batches), sold
    assert {v['invoice_line.']['invoice.']['state'] for v in sold} == {
        'posted'}
    sales = client.call('model.isp.voucher.reseller.sale.search_read',
        [], 0, None, None, ['vouchers', 'commission'])
    assert sorted(s['vouchers'] for s in sales) == [5] * len(batches)


def _invoices(client):
    "The subscribers' invoices (not the resellers' voucher invoices)"
    return client.call('model.account.invoice.search_read',
        [('type', '=', 'out'), ('party.is_subscriber', '=', True)], 0, None,
        [('id', 'ASC')],
        ['state', 'number', 'party', 'company.rec_name', 'currency.code',
            'untaxed_amount', 'tax_amount', 'total_amount',
            'payment_term_date', 'isp_pay_token'])


def _amount(value):
    "A Numeric of JSON-RPC ({'__class__': 'Decimal', ...}) as a float"
    if isinstance(value, dict):
        value = value['decimal']
    return float(value)


def _date(value):
    if isinstance(value, dict):
        return datetime.date(value['year'], value['month'], value['day'])
    return value


def test_demo_bills_and_isolates_for_non_payment(demo):
    """Each branch invoices its services in its currency with its tax; most
    first invoices are paid, the others overdue and their subscribers
    isolated for non-payment; the gateway accounts point at the fakes"""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    invoices = _invoices(client)
    today = datetime.date.today()
    by_branch = {}
    for invoice in invoices:
        by_branch.setdefault(invoice['company.']['rec_name'], []).append(
            invoice)
    assert set(by_branch) == {'Nusantara Net Bandung', 'Nusantara Net Nairobi'}
    for branch, currency, rate, count in [
            ('Nusantara Net Bandung', 'IDR', 0.11, 40),
            ('Nusantara Net Nairobi', 'KES', 0.16, 25)]:
        invoices = by_branch[branch]
        assert len(invoices) == count
        assert {i['currency.']['code'] for i in invoices} == {currency}
        assert {i['state'] for i in invoices} == {'posted', 'paid'}
        for invoice in invoices:
            untaxed = _amount(invoice['untaxed_amount'])
            assert untaxed > 0
            assert _amount(invoice['tax_amount']) == pytest.approx(
                untaxed * rate, abs=1)
            assert invoice['number'].startswith(
                'BDG/' if currency == 'IDR' else 'NBO/')
        overdue = [i for i in invoices if i['state'] == 'posted']
        assert overdue
        assert all(_date(i['payment_term_date']) < today - datetime.timedelta(
                days=9) for i in overdue)
    assert 'pay an overdue invoice: %sisp_demo/isp_billing/pay/' % url in (
        demo.output)

    services = client.call('model.isp.service.search_read', [], 0, None,
        None, ['state', 'subscriber', 'isolated_by_billing'])
    isolated = {s['subscriber'] for s in services if s['state'] == 'isolated'}
    assert len(isolated) == 7
    assert all(s['isolated_by_billing'] for s in services
        if s['state'] == 'isolated')
    unpaid = {i['party'] for i in _invoices(client) if i['state'] == 'posted'}
    assert unpaid == isolated

    gateways = client.call('model.isp.payment.gateway.search_read', [],
        0, None, None, ['provider', 'company.rec_name', 'sandbox',
            'base_url', 'webhook_url'])
    assert sorted((g['provider'], (g['company.'] or {}).get('rec_name'))
        for g in gateways) == [
        ('duitku', None), ('midtrans', None),
        ('mpesa', 'Nusantara Net Nairobi'), ('xendit', None)]
    assert all(g['sandbox'] for g in gateways)
    assert sorted(g['base_url'] for g in gateways) == [
        'http://127.0.0.1:%d' % port
        for port in range(demo.gateway_port, demo.gateway_port + 4)]
    assert all(g['webhook_url'].startswith(url + 'isp_demo/isp_billing/')
        for g in gateways)


def _secret(demo, router, username):
    answer = requests.get('http://127.0.0.1:%d/routers/%s/menu' % (
            demo.router_control_port, router),
        params={'path': '/ppp/secret', 'name': username}, timeout=10)
    answer.raise_for_status()
    secret, = answer.json()
    return secret


def _wait(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def _pay_online(demo, client, session, code, router, provider):
    "Pay the overdue invoice of an isolated service on router `code`"
    url = demo[0]
    service, = client.call('model.isp.service.search_read',
        [('state', '=', 'isolated'), ('router.code', '=', code)],
        0, 1, [('id', 'ASC')], ['subscriber', 'username'])
    secret = _secret(demo, router, service['username'])
    if code == 'CKP':
        assert secret['profile'] == 'isolir'
    else:
        assert secret['disabled'] in {True, 'true', 'yes'}
    invoice, = client.call('model.account.invoice.search_read',
        [('party', '=', service['subscriber']), ('state', '=', 'posted')],
        0, None, None, ['isp_pay_token'])

    link = '%sisp_demo/isp_billing/pay/%s' % (url, invoice['isp_pay_token'])
    answer = session.get(link, allow_redirects=False, timeout=60)
    fake = 'http://127.0.0.1:%d' % (demo.gateway_port
        + (0 if provider == 'midtrans' else 3))
    if provider == 'midtrans':
        assert answer.status_code == 303, answer.text
        page = answer.headers['Location']
        assert page.startswith(fake + '/snap/v4/redirection/')
    else:
        # M-Pesa prompts the phone; the fake lists its prompts on /_fake/
        assert answer.status_code == 202, answer.text
        index = session.get(fake + '/_fake/', timeout=10)
        page = fake + re.search(r'href="(/phone/[^"]+)"',
            index.text).group(1)
    shown = session.get(page, timeout=10)
    assert shown.status_code == 200
    assert 'Pay</button>' in shown.text
    session.post(page, data={'action': 'pay'}, allow_redirects=False,
        timeout=10)

    def paid():
        state, = client.call('model.account.invoice.read',
            [invoice['id']], ['state'])
        return state['state'] == 'paid'
    assert _wait(paid), provider

    def reconnected():
        state, = client.call('model.isp.service.read', [service['id']],
            ['state', 'router_state', 'isolated_by_billing'])
        return (state['state'] == 'active'
            and state['router_state'] == 'synced'
            and not state['isolated_by_billing'])
    assert _wait(reconnected), provider
    secret = _secret(demo, router, service['username'])
    assert secret['profile'] != 'isolir'
    assert secret['disabled'] in {False, 'false', 'no'}
    callbacks = session.get(fake + '/_fake/callbacks', timeout=10).json()
    assert [c['status'] for c in callbacks if not c['dropped']] == [200]
    transactions = client.call(
        'model.isp.payment.transaction.search_read',
        [('document', '=', 'account.invoice,%d' % invoice['id'])],
        0, None, None, ['state'])
    assert [t['state'] for t in transactions] == ['paid']


def test_demo_finance_year(demo):
    """Bandung's finance user reads the branch's year in the finance
    reports: income, each expense category's account and the depreciation
    in profit and loss with the net profit of them; the expenses and assets
    paid and the customers' payments in the cash flow; the assets running
    and depreciated; Nairobi's year in its own currency (the head office)"""
    from tools.demo_data import ASSETS, EXPENSES, OPENING_CAPITAL
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login('bdg_finance', password)
    bandung = client.context['company']
    rows = client.call('model.isp.report.finance.pnl.search_read', [], 0,
        None, None, ['company', 'kind', 'account.code', 'amount'])
    assert {r['company'] for r in rows} == {bandung}
    amounts = {(r['kind'], (r['account.'] or {}).get('code')):
        _amount(r['amount']) for r in rows}
    income = sum(a for (k, _), a in amounts.items() if k == 'income')
    expenses = sum(a for (k, _), a in amounts.items() if k == 'expense')
    assert income > 0
    # a year of each category (the quarterly ones: three quarters at least)
    for _, name, code, _, _, _, monthly in EXPENSES:
        assert amounts[('expense', code)] >= 9 * monthly, name
    assert amounts[('expense', '5.1.4')] > 0  # depreciation
    assert amounts[('profit', None)] == pytest.approx(income - expenses)
    assert amounts[('profit', None)] != 0

    flows = client.call('model.isp.report.finance.cash_flow.search_read',
        [], 0, None, None, ['section', 'inflow', 'outflow', 'net'])
    by_section = {}
    for row in flows:
        section = by_section.setdefault(row['section'], [0, 0])
        section[0] += _amount(row['inflow'])
        section[1] += _amount(row['outflow'])
    assert by_section['customers'][0] > 0
    assert by_section['suppliers'][1] >= sum(
        9 * e[-1] for e in EXPENSES) + sum(a[-1] for a in ASSETS)
    total = by_section.pop('total')
    assert total[0] - total[1] == pytest.approx(
        sum(inflow - outflow for inflow, outflow in by_section.values()))

    # the balance sheet at today: assets = liabilities + equity, the
    # year's profit in equity
    lines = client.call(
        'model.isp.report.finance.balance_sheet.search_read', [], 0, None,
        None, ['company', 'section', 'kind', 'amount'])
    assert {r['company'] for r in lines} == {bandung}
    totals = {r['section']: _amount(r['amount'])
        for r in lines if r['kind'] == 'total'}
    # the owners' opening capital funds the year: the assets are positive
    # and the capital is in equity
    assert totals['assets'] > 0, totals
    assert totals['assets'] == pytest.approx(totals['total']), totals
    capital = client.call('model.isp.report.finance.balance_sheet.search_read',
        [('account.code', '=', '3.1.1')], 0, None, None, ['section', 'amount'])
    assert [(r['section'], _amount(r['amount'])) for r in capital] == [
        ('equity', float(OPENING_CAPITAL))]
    earnings, = [_amount(r['amount'])
        for r in lines if r['kind'] == 'earnings']
    assert earnings != 0

    assets = client.call('model.account.asset.search_read', [], 0, None,
        None, ['state', 'value', 'company'])
    assert len(assets) == len(ASSETS)
    assert {a['state'] for a in assets} == {'running'}
    assert {a['company'] for a in assets} == {bandung}

    head = RPCClient(url, 'isp_demo')
    head.login(login, password)
    nairobi, = head.call('model.company.company.search',
        [('party.name', '=', 'Nusantara Net Nairobi')])
    rows = head.call('model.isp.report.finance.pnl.search_read', [], 0,
        None, None, ['kind', 'amount', 'currency.code'],
        context={'company': nairobi, 'companies': [nairobi]})
    assert {r['currency.']['code'] for r in rows} == {'KES'}
    assert {r['kind'] for r in rows} == {'income', 'expense', 'profit'}


def test_demo_budget(demo):
    """Bandung's budget of the year as its finance user: a line per income
    statement account spread over the months; actual against budget month
    by month, the upstream bandwidth over its budget (BUDGET_FACTOR), the
    service revenue planned"""
    from tools.demo_data import BUDGET_FACTOR, EXPENSES
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login('bdg_finance', password)
    bandung = client.context['company']
    budgets = client.call('model.account.budget.search_read', [], 0, None,
        None, ['company', 'name'])
    assert [b['company'] for b in budgets] == [bandung]
    budget = budgets[0]['id']
    lines = client.call('model.account.budget.line.search_read', [
            ('budget', '=', budget), ('account', '!=', None)], 0, None, None,
        ['account.code', 'total_amount', 'actual_amount', 'variance'])
    by_code = {r['account.']['code']: r for r in lines}
    (_, name, code, _, _, _, monthly), *_ = EXPENSES
    assert _amount(by_code[code]['total_amount']) == pytest.approx(
        -float(monthly * 12 * BUDGET_FACTOR['BW']))
    revenue = [r for r in lines if _amount(r['total_amount']) > 0]
    assert revenue and all(_amount(r['actual_amount']) > 0 for r in revenue)

    months = client.call('model.account.budget.line.period.search_read', [
            ('budget_line.budget', '=', budget),
            ('budget_line.account.code', '=', code)], 0, None, None,
        ['period.start_date', 'total_amount', 'actual_amount', 'variance'])
    assert len(months) == 12
    booked = [m for m in months if _amount(m['actual_amount'])]
    for month in booked:
        # a month's bandwidth invoice against a month's budget of it
        assert _amount(month['actual_amount']) == -float(monthly)
        assert _amount(month['variance']) == pytest.approx(
            _amount(month['actual_amount']) - _amount(month['total_amount']))
        assert _amount(month['variance']) < 0


def test_demo_finance_investment(demo):
    """Bandung's investment as its finance user: the core router (and the
    invoice that bought it, counted once) and an equipment expense against
    the revenue of the first router's services since they were activated,
    with its ROI and payback"""
    from tools.demo_data import ASSETS, EXPENSES
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login('bdg_finance', password)
    bandung = client.context['company']
    investment, = client.call('model.isp.investment.search_read', [], 0,
        None, None, ['company', 'name', 'router.code', 'start_date', 'cost',
            'revenue', 'months', 'monthly_revenue', 'roi', 'payback_months',
            'paid_back', 'assets', 'invoices'])
    assert investment['company'] == bandung
    assert investment['name'] == "Tower expansion CKP"
    router_price, = [p for k, _, _, p in ASSETS if k == 'router']
    equipment, = [(m, a) for c, _, _, _, _, m, a in EXPENSES if c == 'EQ']
    cost = _amount(investment['cost'])
    assert cost == float(router_price + equipment[0] * equipment[1])
    assert len(investment['invoices']) == 2
    lines = client.call('model.account.invoice.line.search_read', [
            ('isp_service.router.code', '=', 'CKP'),
            ('invoice.type', '=', 'out'),
            ('invoice.state', 'in', ['posted', 'paid']),
            ('invoice.invoice_date', '>=', investment['start_date']),
            ], 0, None, None, ['amount'])
    revenue = _amount(investment['revenue'])
    assert revenue > 0
    assert revenue == pytest.approx(sum(_amount(r['amount']) for r in lines))
    monthly = _amount(investment['monthly_revenue'])
    assert monthly == pytest.approx(revenue / max(investment['months'], 1))
    assert _amount(investment['roi']) == pytest.approx(
        (revenue - cost) / cost * 100, abs=0.01)
    assert _amount(investment['payback_months']) == pytest.approx(
        cost / monthly, abs=0.1)
    assert investment['paid_back'] is (revenue >= cost)


def test_demo_pays_online_and_reconnects(demo):
    """An isolated subscriber's overdue invoice is paid through its payment
    link: the demo server opens the payment at the fake Midtrans (303 to its
    page), the buyer presses Pay, the fake's notification reaches the
    webhook; the invoice is paid and the service back on the router.  The
    Nairobi link pushes an M-Pesa prompt, answered on the fake phone."""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    session = requests.Session()
    session.trust_env = False
    _pay_online(demo, client, session, 'CKP', 'sim1', 'midtrans')
    _pay_online(demo, client, session, 'WSTL', 'sim3', 'mpesa')


def _fault(demo, router, mode=None):
    base = 'http://127.0.0.1:%d/routers/%s/fault' % (
        demo.router_control_port, router)
    if mode:
        answer = requests.post(base, json={'mode': mode}, timeout=10)
    else:
        answer = requests.delete(base, timeout=10)
    answer.raise_for_status()


def test_demo_runs_the_cron(demo):
    """The demo runs trytond-cron: a change made while a router was down
    reaches it when it is back, with nobody pressing Sync"""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    service, = client.call('model.isp.service.search_read',
        [('state', '=', 'active'), ('router.code', '=', 'CKP')],
        0, 1, [('id', 'ASC')], ['username'])
    _fault(demo, 'sim1', 'down')
    try:
        client.call('model.isp.service.isolate', [service['id']])
        state, = client.call('model.isp.service.read', [service['id']],
            ['router_state'])
        assert state['router_state'] in {'pending', 'error'}
    finally:
        _fault(demo, 'sim1')

    def synced():
        state, = client.call('model.isp.service.read', [service['id']],
            ['router_state'])
        return state['router_state'] == 'synced'
    try:
        assert _wait(synced, timeout=240)
        assert _secret(demo, 'sim1', service['username'])['profile'] == (
            'isolir')
    finally:
        client.call('model.isp.service.reactivate', [service['id']])
        assert _wait(synced)


def test_demo_prints_no_gateway_key(demo, demo_dir):
    "The fakes' keys are generated per machine and printed nowhere"
    with open(demo_dir / 'gateway-credentials.json') as fp:
        credentials = json.load(fp)
    secrets = [value for keys in credentials.values()
        for name, value in keys.items()
        if name not in {'shortcode', 'merchant_code'}]
    assert len(secrets) == 7
    logs = demo.output + (demo_dir / 'gateways.log').read_text()
    assert not [s for s in secrets if s in logs]
    assert 'SB-Mid-server-fake' not in logs
    assert oct(os.stat(demo_dir / 'gateway-credentials.json').st_mode
        & 0o777) == '0o600'




def _sao_login(page, url, login, password, isp_menu=True):
    """Log `login` into the sao back office at `url` in `page` (and wait
    for the ISP menu)"""
    page.goto(url)
    page.get_by_text('User name').wait_for(timeout=30000)
    # sao fills the database field once its list of databases comes back:
    # a login submitted before that is refused in the page (no database)
    # and never asks for the password
    page.wait_for_function("""() => Array.from(
        document.querySelectorAll('#database')).some(e => e.value)""",
        timeout=30000)
    page.fill('#login', login)
    page.press('#login', 'Enter')
    page.fill('input[type=password]', password, timeout=30000)
    page.press('input[type=password]', 'Enter')
    if isp_menu:
        _wait_isp_menu(page)


def _staff_text(login, module, text):
    """`text` of `module` as the sao of the demo's `login` shows it: Bandung's
    staff (bdg_*) work in Indonesian, the msgstr of the module's id.po
    (tools/demo_data.py STAFF_LANGUAGES), the others in English"""
    if not login.startswith('bdg_'):
        return text
    import polib
    catalog = polib.pofile(os.path.join(
            ROOT, 'addons', module, 'locale', 'id.po'))
    for entry in catalog:
        if (entry.msgid == text and entry.msgstr
                and 'fuzzy' not in entry.flags):
            return entry.msgstr
    return text


def _wait_isp_menu(page):
    "Wait for the ISP menu; else fail with what the page shows instead"
    try:
        page.get_by_text('ISP', exact=True).first.wait_for(timeout=30000)
    except Exception as exception:
        page.screenshot(path=str(pathlib.Path(ROOT, 'var', 'sao-login.png')))
        raise AssertionError('no ISP menu after login; the page shows: %r'
            % page.inner_text('body')[:1500]) from exception


def test_back_office_in_browser(demo, tmp_path):
    """Bandung's customer service logs into the sao back office in Chromium
    and works in Indonesian (the user's language, docs/localisation.md):
    the ISP menu, the subscribers (the branch's only) and a service's form
    read Indonesian, not English"""
    sync_api = pytest.importorskip('playwright.sync_api')
    url, login, password = demo
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 900})
            _sao_login(page, url, 'bdg_cs', password)
            menu = page.get_by_text('Pelanggan', exact=True).first
            if not menu.is_visible():
                page.get_by_text('ISP', exact=True).first.click()
            for english in ['Subscribers', 'Services', 'Plans']:
                assert page.get_by_text(english, exact=True).count() == 0
            menu.click(timeout=30000)
            page.get_by_text('ID pelanggan').first.wait_for(timeout=30000)
            page.get_by_text('/40').wait_for(timeout=30000)
            page.get_by_text('KCB - Kecubung').first.wait_for(timeout=30000)
            page.screenshot(path=str(tmp_path / 'subscribers.png'))
            assert page.get_by_text('WSTL - Westlands').count() == 0
            assert page.get_by_text('Subscriber Code').count() == 0
            # a service's form
            page.get_by_text('Layanan', exact=True).first.click(
                timeout=30000)
            cell = page.locator('.treeview tbody tr:visible td',
                has_text='-CKP').first
            cell.wait_for(timeout=30000)
            cell.dblclick(timeout=30000)
            # the form's notebook tabs, labels and buttons (the subscribers'
            # tab stays open behind, hidden)
            for label, exact in [('Langsung', True), ('PPPoE', True),
                    ('Nama pengguna', False), ('Tanggal aktivasi', False),
                    ('Tanggal putus langganan', False), ('Isolir', True)]:
                page.get_by_text(label, exact=exact).locator(
                    'visible=true').first.wait_for(timeout=30000)
            page.screenshot(path=str(pathlib.Path(
                        ROOT, 'docs', 'img', 'service-form-id.png')))
            for english in ['User Name', 'Customer ID', 'Activation Date',
                    'Termination Date']:
                assert page.get_by_text(english).count() == 0, english
        finally:
            browser.close()


def test_demo_notices_in_branch_language(demo):
    """The demo's notices speak the subscriber's branch's language and
    formats: Bandung's in Indonesian (13/11/2026, Rp250.000), Nairobi's in
    English with its currency (11/13/2026, KSh2,500.00)"""
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    messages = client.call('model.isp.message.search_read', [
            ('event', '=', 'invoice_issued')], 0, None, None,
        ['company.rec_name', 'body'])
    bodies = {}
    for message in messages:
        bodies.setdefault(message['company.']['rec_name'], []).append(
            message['body'])
    bandung = bodies['Nusantara Net Bandung']
    nairobi = bodies['Nusantara Net Nairobi']
    days = {'bandung': set(), 'nairobi': set()}
    for body in bandung:
        assert 'tagihan' in body, body
        assert re.search(r'Rp\d{1,3}(\.\d{3})+(?![\d,])', body), body
        day, month = re.search(
            r'jatuh tempo (\d\d)/(\d\d)/\d{4}', body).groups()
        assert int(month) <= 12
        days['bandung'].add(int(day))
    for body in nairobi:
        assert 'invoice' in body, body
        assert re.search(r'KSh\d{1,3}(,\d{3})*\.\d\d', body), body
        month, day = re.search(
            r'due on (\d\d)/(\d\d)/\d{4}', body).groups()
        assert int(month) <= 12
        days['nairobi'].add(int(day))
    # day first in Indonesian, month first in English
    assert max(days['bandung']) > 12 and max(days['nairobi']) > 12


def test_pay_online_in_browser(demo, tmp_path):
    """The administrator opens an overdue invoice in the back office, clicks
    Pay Online, opens the payment at Midtrans: the fake's page comes up in a
    new tab, Pay, and the invoice is paid"""
    sync_api = pytest.importorskip('playwright.sync_api')
    url, login, password = demo
    client = RPCClient(url, 'isp_demo')
    client.login(login, password)
    invoice = client.call('model.account.invoice.search_read', [
            ('state', '=', 'posted'), ('currency.code', '=', 'IDR')],
        0, 1, [('id', 'DESC')], ['number'])[0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={'width': 1400, 'height': 900})
            page = context.new_page()
            _sao_login(page, url, login, password, isp_menu=False)
            page.get_by_text('Financial', exact=True).first.wait_for(
                timeout=30000)
            # the form of an overdue invoice, by its address in sao
            page.goto('%s#isp_demo/model/account.invoice/%d' % (
                    url, invoice['id']))
            pay_online = page.locator('button', has_text='Pay Online').first
            button = page.locator('.modal-footer button', has_text='Open')
            for _ in range(3):
                # the form's buttons wait for the record to load
                sync_api.expect(pay_online).to_be_enabled(timeout=30000)
                pay_online.click()
                try:
                    button.wait_for(timeout=15000)
                    break
                except sync_api.TimeoutError:
                    page.screenshot(path=str(tmp_path / 'pay-online.png'))
            button.wait_for(timeout=15000)
            with context.expect_page(timeout=30000) as popup:
                button.click()
            gateway = popup.value
            gateway.wait_for_load_state()
            assert gateway.url.startswith('http://127.0.0.1:%d/snap/' % (
                    demo.gateway_port))
            gateway.get_by_role('button', name='Pay').click()
            # back to the demo (the account's return URL)
            gateway.wait_for_url(re.compile(re.escape(url) + r'\?'),
                timeout=30000)
            page.screenshot(path=str(tmp_path / 'invoice.png'))
        finally:
            browser.close()

    def paid():
        state, = client.call('model.account.invoice.read', [invoice['id']],
            ['state'])
        return state['state'] == 'paid'
    assert _wait(paid)


def _dashboard_in_browser(demo, login, branches, screenshot):
    """Open ISP > Dashboard in sao as `login`: return the text of each
    branch's row of figures and the charts' series ({title: {series:
    values}}) read from billboard's instances"""
    sync_api = pytest.importorskip('playwright.sync_api')
    url, _, password = demo
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            _sao_login(page, url, login, password)
            menu = page.get_by_text(_staff_text(login, 'isp_billing',
                    'Dashboard'), exact=True).first
            if not menu.is_visible():
                page.get_by_text('ISP', exact=True).first.click()
            menu.click(timeout=30000)
            page.get_by_text(_staff_text(login, 'isp_billing',
                    'Figures per Branch')).wait_for(timeout=30000)
            # the five charts drawn (sao draws again on each reload: the
            # last one of each panel), each with its twelve months
            read = """() => {
                const charts = {};
                for (const c of bb.instance) {
                    const node = c.$.chart.node();
                    if (!node.isConnected || !c.data().length) {
                        continue;
                    }
                    const title = node.closest('.board-action')
                        .querySelector('.panel-heading').textContent;
                    charts[title] = Object.fromEntries(c.data().map(
                        d => [c.data.names()[d.id],
                            d.values.map(v => v.value)]));
                }
                const series = Object.values(charts);
                return (series.length == 5 && series.every(
                    s => Object.values(s).every(v => v.length == 12))
                    ? charts : null);
                }"""
            charts = page.wait_for_function(
                read, timeout=30000).json_value()
            figures = page.locator('.board-action').first
            for name in branches:
                figures.locator('tbody tr', has_text=name).wait_for(
                    timeout=30000)
            rows = {}
            for row in figures.locator('tbody tr').all():
                cells = [c.strip()
                    for c in row.locator('td').all_inner_texts()]
                cells = [c for c in cells if c]
                if cells:
                    rows[cells[0]] = ' '.join(cells)
            page.screenshot(path=str(screenshot))
            page.locator('.board-action').nth(3).scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot.with_name(
                        screenshot.stem + '-charts.png')))
            return rows, charts
        finally:
            browser.close()


def test_dashboard_in_browser(demo):
    """ISP > Dashboard in Chromium: the head office sees the figures of
    every branch and one series per branch in each chart of the last 12
    months, a branch admin only the branch's; the numbers are the demo's
    (as JSON-RPC returns them)"""
    url, login, password = demo
    img = pathlib.Path(ROOT, 'docs', 'img')
    client = RPCClient(url, 'isp_demo')
    client.login('head', password)
    figures = client.call('model.isp.report.dashboard.search_read', [],
        0, None, None, ['company.rec_name', 'active_services', 'online',
            'isolated', 'mrr', 'arpu', 'revenue_year', 'overdue',
            'currency.digits'])
    months = client.call('model.isp.report.dashboard.month.search_read',
        [], 0, None, [('month', 'ASC')], ['company.rec_name', 'mrr',
            'subscribers', 'new'])
    assert len(figures) == 3  # the head office and its two branches

    for login_, branches, screenshot in [
            ('head', {'Nusantara Net Bandung', 'Nusantara Net Nairobi'},
                'dashboard.png'),
            ('bdg_admin', {'Nusantara Net Bandung'},
                'dashboard-branch.png')]:
        rows, charts = _dashboard_in_browser(
            demo, login_, branches, img / screenshot)
        assert set(rows) - {'Nusantara Net Head Office'} == branches
        titles = {_staff_text(login_, 'isp_billing', t): t for t in [
                'MRR', 'Revenue', 'Subscribers', 'New vs Terminated',
                'Churn Rate (%)']}
        assert set(charts) == set(titles)
        charts = {titles[k]: v for k, v in charts.items()}
        assert {k.split(' - ')[0] for k in charts['MRR']} == branches
        for figure in figures:
            name = figure['company.']['rec_name']
            if name not in branches:
                continue
            _check_dashboard_branch(figure, rows[name], charts, [
                    m for m in months if m['company.']['rec_name'] == name],
                login_)


def _number(value):
    "A number of JSON-RPC (Decimals come as objects)"
    if isinstance(value, dict):
        return float(value['decimal'])
    return float(value or 0)


def _check_dashboard_branch(figure, row, charts, months, login):
    """The figures in `row` and the charts' series of a branch are the
    RPC's, in the language of `login` (Indonesian: 1.234,00)"""
    def text(value):
        return _staff_text(login, 'isp_billing', value)

    def number(value, digits):
        shown = f'{value:,.{digits}f}'
        if login.startswith('bdg_'):
            shown = shown.translate(str.maketrans(',.', '.,'))
        return shown
    name = figure['company.']['rec_name']
    digits = figure['currency.']['digits']
    assert figure['active_services'] > 0
    cells = ' %s ' % row
    for value in [figure['active_services'], figure['online'],
            figure['isolated']]:
        assert ' %d ' % value in cells
    for value in [figure['mrr'], figure['arpu'], figure['revenue_year'],
            figure['overdue']]:
        assert number(_number(value), digits) in cells
    assert len(months) == 12
    currency = 'IDR' if 'Bandung' in name else 'KES'
    assert charts['MRR']['%s - %s (%s)' % (name, text('MRR'), currency)] == [
        _number(m['mrr']) for m in months]
    assert charts['Subscribers']['%s - %s' % (
            name, text('Subscribers'))] == [
        m['subscribers'] for m in months]
    assert charts['New vs Terminated']['%s - %s' % (name, text('New'))] == [
        m['new'] for m in months]
    assert _number(months[-1]['mrr']) == _number(figure['mrr'])


def test_demo_runs_again_reusing_what_exists(demo_dir):
    port = _free_port()
    start = time.monotonic()
    process, (url, login, password), output = _start_demo(demo_dir, port)
    try:
        assert 'activating' not in output
        assert 'Nusantara Net Bandung: 0 subscribers created' in output
        assert '0 services registered' in output
        assert 'Nusantara Net Bandung: 40 invoices in IDR' in output
        client = RPCClient(url, 'isp_demo')
        client.login(login, password)
        count = client.call('model.party.party.search_count',
            [('is_subscriber', '=', True)])
        assert count == 65
    finally:
        _stop(process)
    assert time.monotonic() - start < 600


def test_network_map_in_browser(demo):
    """ISP > Network Map in Chromium as a branch administrator: the map
    page opens in a new tab with the token minted for that user, shows the
    branch's subscribers clustered (no tiles: the tests run offline) and a
    marker's popup links to the back office; the URL can not be opened
    again (docs/map.md)"""
    sync_api = pytest.importorskip('playwright.sync_api')
    url, login, password = demo
    # offline, as the page must work without a tile server (Leaflet then
    # has no zoom range of its own)
    admin = RPCClient(url, 'isp_demo')
    assert admin.login(login, password)
    admin.call('model.isp.configuration.write', [1], {'map_tiles_url': None})
    client = RPCClient(url, 'isp_demo')
    client.login('bdg_admin', password)
    services = client.call('model.isp.service.search_read', [
            ('state', 'in', ['active', 'isolated']),
            ('subscriber.latitude', '!=', None)], 0, None, None,
        ['company.rec_name'])
    assert services
    assert {s['company.']['rec_name'] for s in services} == {
        'Nusantara Net Bandung'}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={'width': 1400, 'height': 1000})
            # the demo's map asks OpenStreetMap for tiles: not from a test
            context.route('**/*', loopback_only)
            page = context.new_page()
            _sao_login(page, url, 'bdg_admin', password)
            menu = page.get_by_text(_staff_text('bdg_admin', 'isp_network',
                    'Network Map'), exact=True).first
            if not menu.is_visible():
                page.get_by_text('ISP', exact=True).first.click()
            with context.expect_page(timeout=30000) as opened:
                menu.click(timeout=30000)
            map_page = opened.value
            failed = []
            map_page.on('requestfailed', lambda r: failed.append(r.url))
            map_page.wait_for_selector('body[data-map-ready]',
                timeout=30000)
            shown = map_page.get_attribute('body', 'data-map-ready')
            assert shown == str(len(services))
            assert map_page.locator('.marker-cluster').count() > 0
            # Bandung's two routers (tools/demo_data.py gives them a place)
            assert map_page.locator(
                '.leaflet-marker-icon.isp-router').count() == 2
            # a cluster opens on click, down to single markers
            for _ in range(8):
                markers = map_page.locator(
                    '.leaflet-marker-icon.isp-marker:not(.isp-router)')
                if markers.count():
                    break
                map_page.locator('.marker-cluster').first.click()
                map_page.wait_for_timeout(400)
            # a DOM click (Leaflet's handler): markers may overlap
            markers.first.dispatch_event('click')
            popup = map_page.locator('.map-popup')
            popup.wait_for(timeout=10000)
            link = popup.locator('a[href*="/model/isp.service/"]')
            assert link.get_attribute('href').startswith('/#isp_demo/')
            map_page.screenshot(path=str(pathlib.Path(
                        ROOT, 'docs', 'img', 'network-map.png')))
            # only the tile server (offline) may fail, nothing of ours
            assert [u for u in failed if '/isp_demo/' in u] == []
            # a forged launch URL: refused, no map
            again = context.new_page()
            response = again.goto(map_page.url.replace(
                    '/isp_network/map', '/isp_network/map/open?token=x'))
            assert response.status == 403
        finally:
            browser.close()
