# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The README's demo command, run as a newcomer would: it installs, creates
the SQLite database, activates the six modules, loads the demo data and
serves the back office; the printed login lists the demo data over the
server's JSON-RPC, and a branch user sees only the branch."""
import os
import random
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

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


def _start_demo(demo_dir, port):
    router_port = _free_ports(4)
    env = dict(os.environ, ISP_DEMO_DIR=str(demo_dir), ISP_DEMO_PORT=str(port),
        ISP_DEMO_ROUTER_PORT=str(router_port),
        ISP_DEMO_ROUTER_CONTROL_PORT=str(router_port + 3))
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
    url = re.search(r'(http://127\.0\.0\.1:\d+/)', text)
    if not (match and url):
        _stop(process)
        pytest.fail('the demo did not print its login:\n' + text)
    for _ in range(300):
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    return process, url.group(1), match.group(1), match.group(2), text


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
    process, url, login, password, output = _start_demo(demo_dir, port)
    try:
        assert url == f'http://127.0.0.1:{port}/'
        yield url, login, password
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
        None, ['code', 'reachable', 'secret_count'])
    assert {r['code'] for r in routers} == {'CKP', 'MLGT', 'WSTL'}
    assert all(r['reachable'] for r in routers)
    assert sum(r['secret_count'] for r in routers) == 65


CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--no-first-run',
    '--disable-component-update', '--disable-sync']


def test_back_office_in_browser(demo, tmp_path):
    "Staff log into the sao back office in Chromium and list subscribers"
    sync_api = pytest.importorskip('playwright.sync_api')
    url, login, password = demo
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 900})
            page.goto(url)
            page.get_by_text('User name').wait_for(timeout=30000)
            page.fill('#login', 'bdg_cs')
            page.press('#login', 'Enter')
            page.fill('input[type=password]', password, timeout=30000)
            page.press('input[type=password]', 'Enter')
            page.get_by_text('ISP', exact=True).first.wait_for(timeout=30000)
            menu = page.get_by_text('Subscribers', exact=True).first
            if not menu.is_visible():
                page.get_by_text('ISP', exact=True).first.click()
            menu.click(timeout=30000)
            page.get_by_text('Subscriber Code').wait_for(timeout=30000)
            page.get_by_text('/40').wait_for(timeout=30000)
            page.get_by_text('KCB - Kecubung').first.wait_for(timeout=30000)
            page.screenshot(path=str(tmp_path / 'subscribers.png'))
            assert page.get_by_text('WSTL - Westlands').count() == 0
        finally:
            browser.close()


def test_demo_runs_again_reusing_what_exists(demo_dir):
    port = _free_port()
    start = time.monotonic()
    process, url, login, password, output = _start_demo(demo_dir, port)
    try:
        assert 'activating' not in output
        assert 'Nusantara Net Bandung: 0 subscribers created' in output
        assert '0 services registered' in output
        client = RPCClient(url, 'isp_demo')
        client.login(login, password)
        count = client.call('model.party.party.search_count',
            [('is_subscriber', '=', True)])
        assert count == 65
    finally:
        _stop(process)
    assert time.monotonic() - start < 600
