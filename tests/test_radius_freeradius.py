# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_network in RADIUS mode with the real FreeRADIUS 3.2 on loopback,
reading the product's views in a PostgreSQL database where isp_network is
activated, and CoaPeer standing in for the routers' CoA ports.

Two branches share the FreeRADIUS; each has a router in RADIUS mode with
the same code, so both have a subscriber with the same user name:
- pyrad and radclient get Access-Accept with the plan's Mikrotik-Rate-Limit
  (and the static Framed-IP-Address); Access-Reject for a wrong password, a
  terminated service, the other branch's NAS;
- isolating an online subscriber sends CoA; NAKed, a Disconnect follows;
  unanswered, the service waits in error with backoff;
- accounting Start / Interim-Update / Stop becomes daily usage, counted
  once; over the quota, the throttling CoA goes out, and the full rate
  comes back at the next cycle.

Needs ISP_TEST_PG_URI and a PostgreSQL TRYTOND_DATABASE_URI (scripts/test
sets both).  The harness is bench/bench_radius.py's RadiusStack.
"""
import datetime as dt
import os
import pathlib
import subprocess
import sys

import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_radius import RadiusStack  # noqa: E402
from tools import freeradius  # noqa: E402
from tools.freeradius import FreeRadius  # noqa: E402
from tools.radius_peer import ACK, CoaPeer, load_dictionary  # noqa: E402

URI = os.environ.get('ISP_TEST_PG_URI')
pytestmark = pytest.mark.skipif(
    not (URI and (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
            'postgresql')) or not os.path.exists('/usr/sbin/freeradius'),
    reason="needs FreeRADIUS, ISP_TEST_PG_URI and TRYTOND_DATABASE_URI on "
    "PostgreSQL (as scripts/test sets them)")

NAS_A, NAS_B = '127.0.0.2', '127.0.0.3'
SECRET_A, SECRET_B = 'secret-branch-a', 'secret-branch-b'


@pytest.fixture(scope='module')
def world():
    "Two branches, their RADIUS routers (CoA peers) and subscribers"
    stack = RadiusStack(URI, name='isp_radius_test')
    stack.create_database()
    stack.init_pool()
    peers = {
        'a': CoaPeer(SECRET_A, host=NAS_A).start(),
        'b': CoaPeer(SECRET_B, host=NAS_B).start(),
        }
    ids = {}
    try:
        with stack.transaction():
            ids['company_a'] = stack.create_branch("Branch A")
            ids['company_b'] = stack.create_branch("Branch B")
        for key, nas, secret in [('a', NAS_A, SECRET_A),
                ('b', NAS_B, SECRET_B)]:
            with stack.transaction(company=ids['company_' + key]):
                location = stack.create_location()
                plan = stack.create_plan(
                    "Home %s" % key, quota=1,
                    throttled_download_rate=1000, throttled_upload_rate=512)
                router = stack.create_router('CKP', nas, secret=secret,
                    coa_port=peers[key].port)
                ids['plan_' + key] = plan
                ids['router_' + key] = router
                ids['service_' + key] = stack.register(
                    location, plan, router, username='CKP001',
                    password='pw-%s' % key)
                ids['static_' + key] = stack.register(
                    location, plan, router, name="Static",
                    remote_address='10.20.0.%d' % (2 + (key == 'b')))
                ids['gone_' + key] = stack.register(
                    location, plan, router, name="Gone")
                ids['location_' + key] = location
        yield stack, peers, ids
    finally:
        for peer in peers.values():
            peer.stop()
        stack.drop_database()


@pytest.fixture(scope='module')
def radius(world):
    stack = world[0]
    with FreeRadius.create(stack.db_params(), product=True,
            client_secret='harness-secret') as radius:
        yield radius


def service(stack, key):
    from trytond.pool import Pool
    with stack.transaction():
        record = Pool().get('isp.service')(key)
        return {name: getattr(record, name) for name in [
                'username', 'password', 'state', 'router_state',
                'router_error', 'radius_throttled', 'remote_address']}


def call(stack, company, method, *ids, model='isp.service', **kwargs):
    "Model.method(records, **kwargs) as a user of the branch would"
    from trytond.pool import Pool

    def run():
        Model = Pool().get(model)
        if ids:
            return getattr(Model, method)(Model.browse(ids), **kwargs)
        return getattr(Model, method)(**kwargs)
    return stack.call(run, context={'company': company})


def nas_client(radius, nas, secret):
    client = Client(server='127.0.0.1', authport=radius.auth_port,
        acctport=radius.acct_port, secret=secret.encode(),
        dict=load_dictionary(), retries=1, timeout=3)
    client.bind((nas, 0))
    return client


def authenticate(radius, user, password, nas=NAS_A, secret=SECRET_A):
    client = nas_client(radius, nas, secret)
    pkt = client.CreateAuthPacket(User_Name=user,
        NAS_IP_Address='192.168.88.1', Service_Type='Framed-User')
    pkt['User-Password'] = pkt.PwCrypt(password)
    reply = client.SendPacket(pkt)
    return reply.code, {name: reply[name] for name in reply.keys()}


def account(radius, status, user, session, nas=NAS_A, secret=SECRET_A,
        **attributes):
    client = nas_client(radius, nas, secret)
    pkt = client.CreateAcctPacket(User_Name=user,
        NAS_IP_Address='192.168.88.1', Acct_Status_Type=status,
        Acct_Session_Id=session, Framed_IP_Address='10.1.0.9')
    for name, value in attributes.items():
        pkt[name.replace('_', '-')] = value
    assert client.SendPacket(pkt).code == radius_packet.AccountingResponse


def test_accept_with_plan_rate(world, radius):
    "pyrad: Access-Accept with the plan's rate and the static address"
    stack, _, ids = world
    code, attributes = authenticate(radius, 'CKP001', 'pw-a')
    assert code == radius_packet.AccessAccept
    assert attributes['Mikrotik-Rate-Limit'] == ['5M/20M']
    assert 'Cleartext-Password' not in attributes
    assert 'Framed-IP-Address' not in attributes
    static = service(stack, ids['static_a'])
    code, attributes = authenticate(
        radius, static['username'], static['password'])
    assert code == radius_packet.AccessAccept
    assert attributes['Framed-IP-Address'] == ['10.20.0.2']
    assert attributes['Mikrotik-Rate-Limit'] == ['5M/20M']


def test_radclient(world, radius):
    "FreeRADIUS's own radclient, from branch A's router"
    def radclient(password):
        request = ('User-Name = "CKP001"\nUser-Password = "%s"\n'
            'Packet-Src-IP-Address = %s\n' % (password, NAS_A))
        return subprocess.run(['radclient', '-x', '-d', radius.dest, '-t',
                '3', '-r', '1', '127.0.0.1:%d' % radius.auth_port, 'auth',
                SECRET_A], input=request, capture_output=True, text=True,
            timeout=20)
    result = radclient('pw-a')
    assert 'Received Access-Accept' in result.stdout, result.stdout
    assert 'Mikrotik-Rate-Limit = "5M/20M"' in result.stdout
    result = radclient('wrong')
    assert 'Received Access-Reject' in result.stdout


def test_reject(world, radius):
    "Wrong password, terminated service, the other branch's NAS: rejected"
    stack, _, ids = world
    assert authenticate(radius, 'CKP001', 'nope')[0] == (
        radius_packet.AccessReject)
    # same user name in branch B, its own password only from its NAS
    assert authenticate(radius, 'CKP001', 'pw-b')[0] == (
        radius_packet.AccessReject)
    assert authenticate(radius, 'CKP001', 'pw-b', nas=NAS_B,
        secret=SECRET_B)[0] == radius_packet.AccessAccept
    assert authenticate(radius, 'CKP001', 'pw-a', nas=NAS_B,
        secret=SECRET_B)[0] == radius_packet.AccessReject
    static_a = service(stack, ids['static_a'])
    assert authenticate(radius, static_a['username'], static_a['password'],
        nas=NAS_B, secret=SECRET_B)[0] == radius_packet.AccessReject
    # terminated: rejected at once (no lag: the views read the service)
    gone = service(stack, ids['gone_a'])
    assert authenticate(radius, gone['username'], gone['password'])[0] == (
        radius_packet.AccessAccept)
    call(stack, ids['company_a'], 'terminate', ids['gone_a'])
    assert authenticate(radius, gone['username'], gone['password'])[0] == (
        radius_packet.AccessReject)
    assert 'pw-b' not in radius.log and 'nope' not in radius.log
    rows = stack.sql("SELECT count(*) FROM radpostauth WHERE pass <> ''")
    assert rows == [(0,)]


def test_isolation_coa_then_disconnect(world, radius):
    "Isolating an online subscriber: CoA, NAKed, then Disconnect"
    stack, peers, ids = world
    peer = peers['a']
    account(radius, 'Start', 'CKP001', 'iso-1')
    peer.clear()
    peer.set_policy(coa='nak', disconnect='ack')
    call(stack, ids['company_a'], 'isolate', ids['service_a'])
    requests = peer.wait_for(2)
    assert [(r.kind, r.answer) for r in requests] == [
        ('coa', 'nak'), ('disconnect', ACK)]
    assert requests[0].get('Mikrotik-Address-List') == 'isolir'
    assert requests[0].get('Acct-Session-Id') == 'iso-1'
    assert requests[1].get('User-Name') == 'CKP001'
    assert service(stack, ids['service_a'])['router_state'] == 'synced'
    logs = stack.sql("SELECT action, outcome, message FROM isp_router_log "
        "WHERE action IN ('coa', 'disconnect') ORDER BY id")
    assert [r[:2] for r in logs[-2:]] == [
        ('coa', 'failure'), ('disconnect', 'success')]
    assert SECRET_A not in str(logs)
    # the next login is isolated
    account(radius, 'Stop', 'CKP001', 'iso-1', Acct_Session_Time=10)
    code, attributes = authenticate(radius, 'CKP001', 'pw-a')
    assert attributes['Mikrotik-Address-List'] == ['isolir']

    # reactivation of an online isolated session: unanswered, then retried
    account(radius, 'Start', 'CKP001', 'iso-2')
    peer.clear()
    peer.set_policy(coa='ignore', disconnect='ignore')
    call(stack, ids['company_a'], 'reactivate', ids['service_a'])
    state = service(stack, ids['service_a'])
    assert state['router_state'] == 'error'
    assert 'unanswered' in state['router_error']
    assert [r.kind for r in peer.requests] == ['disconnect'] * 2
    peer.set_policy(coa='ack', disconnect='ack')
    call(stack, ids['company_a'], 'sync', ids['router_a'],
        model='isp.router')
    assert service(stack, ids['service_a'])['router_state'] == 'synced'
    account(radius, 'Stop', 'CKP001', 'iso-2', Acct_Session_Time=10)
    code, attributes = authenticate(radius, 'CKP001', 'pw-a')
    assert 'Mikrotik-Address-List' not in attributes


def test_accounting_usage_and_fair_usage(world, radius):
    "Start/Interim/Stop become usage once; over quota: throttling CoA"
    stack, peers, ids = world
    peer = peers['a']
    peer.clear()
    peer.set_policy(coa='ack', disconnect='ack')
    static = service(stack, ids['static_a'])
    user = static['username']
    account(radius, 'Start', user, 'use-1')
    account(radius, 'Interim-Update', user, 'use-1',
        Acct_Input_Octets=1000, Acct_Output_Octets=5000,
        Acct_Session_Time=60)
    call(stack, ids['company_a'], 'aggregate', model='isp.service.usage')
    rows = stack.sql("SELECT bytes_in, bytes_out, session_time "
        "FROM isp_service_usage WHERE service = %d" % ids['static_a'])
    assert rows == [(1000, 5000, 60)]
    assert not service(stack, ids['static_a'])['radius_throttled']
    # a second session is open when the first one ends over the quota
    account(radius, 'Start', user, 'use-2')
    account(radius, 'Stop', user, 'use-1', Acct_Input_Octets=3000,
        Acct_Output_Octets=9000, Acct_Output_Gigawords=1,
        Acct_Session_Time=120, Acct_Terminate_Cause='User-Request')
    for _ in range(2):   # counted once
        call(stack, ids['company_a'], 'aggregate',
            model='isp.service.usage')
    rows = stack.sql("SELECT bytes_in, bytes_out, session_time "
        "FROM isp_service_usage WHERE service = %d" % ids['static_a'])
    assert rows == [(3000, (1 << 32) + 9000, 120)]
    # branch B's aggregation does not see branch A's accounting
    call(stack, ids['company_b'], 'aggregate', model='isp.service.usage')
    assert not stack.sql("SELECT 1 FROM isp_service_usage "
        "WHERE company = %d" % ids['company_b'])

    # 4.3 GB of a 1 GB quota: throttled, by CoA on the open session
    assert service(stack, ids['static_a'])['radius_throttled']
    request, = peer.wait_for(1)
    assert request.kind == 'coa' and request.answer == ACK
    assert request.get('Mikrotik-Rate-Limit') == '512k/1M'
    assert request.get('Acct-Session-Id') == 'use-2'
    account(radius, 'Stop', user, 'use-2', Acct_Session_Time=30)
    assert authenticate(radius, user, static['password'])[1][
        'Mikrotik-Rate-Limit'] == ['512k/1M']
    # the next cycle gives the full rate back (by CoA when online)
    account(radius, 'Start', user, 'use-3')
    peer.clear()
    next_month = dt.date.today().replace(day=1) + dt.timedelta(days=32)
    call(stack, ids['company_a'], 'apply_fair_usage', date=next_month)
    request, = peer.wait_for(1)
    assert request.get('Mikrotik-Rate-Limit') == '5M/20M'
    assert not service(stack, ids['static_a'])['radius_throttled']
    account(radius, 'Stop', user, 'use-3', Acct_Session_Time=30)


def test_live_status_from_accounting(world, radius):
    "The router's sync shows who is online from the open sessions"
    stack, peers, ids = world
    peers['a'].set_policy(coa='ack', disconnect='ack')
    static = service(stack, ids['static_a'])
    user = static['username']

    def live():
        from trytond.pool import Pool
        with stack.transaction():
            record = Pool().get('isp.service')(ids['static_a'])
            return (record.live_status, record.live_address,
                record.live_caller_id, bool(record.uptime),
                [(h.status, h.address) for h in record.status_history])

    account(radius, 'Start', user, 'live-1',
        Calling_Station_Id='AA:BB:CC:00:11:22')
    call(stack, ids['company_a'], 'sync_all', model='isp.router')
    status, address, caller_id, has_uptime, history = live()
    assert (status, address, caller_id) == (
        'online', '10.1.0.9', 'AA:BB:CC:00:11:22')
    assert has_uptime
    assert history[0] == ('online', '10.1.0.9')
    # nothing changed: no new history
    call(stack, ids['company_a'], 'sync_all', model='isp.router')
    assert len(live()[-1]) == len(history)
    account(radius, 'Stop', user, 'live-1', Acct_Session_Time=30)
    call(stack, ids['company_a'], 'sync', ids['router_a'],
        model='isp.router')
    status, address, _, _, history = live()
    assert (status, address) == ('offline', None)
    assert history[0] == ('offline', None)
    with stack.transaction():
        from trytond.pool import Pool
        router = Pool().get('isp.router')(ids['router_a'])
        assert router.last_sync and router.active_count == 0


def test_prune(world, radius):
    "Counted raw rows past the retention go; stale open sessions close"
    stack, _, ids = world
    stack.sql("INSERT INTO radacct (acctsessionid, acctuniqueid, username, "
        "nasipaddress, acctstarttime, acctupdatetime, acctstoptime) VALUES "
        "('old', 'old-1', 'x', '%s', now() - interval '400 days', NULL, "
        "now() - interval '399 days'), "
        "('stale', 'stale-1', 'y', '%s', now() - interval '5 days', "
        "now() - interval '5 days', NULL)" % (NAS_A, NAS_A))
    call(stack, ids['company_a'], 'prune', model='isp.service.usage')
    assert not stack.sql(
        "SELECT 1 FROM radacct WHERE acctuniqueid = 'old-1'")
    assert stack.sql("SELECT acctterminatecause FROM radacct "
        "WHERE acctuniqueid = 'stale-1'") == [('Stale-Session',)]


def test_write_config_product(tmp_path):
    "The production configuration of the product: views, no password"
    out = tmp_path / 'deploy'
    result = subprocess.run([sys.executable, '-m', 'tools.freeradius',
            'write-config', '--out', str(out), '--product'],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    queries = (out / freeradius.QUERIES).read_text()
    assert ("isp_radius_check('%{SQL-User-Name}', "
        "'%{Packet-Src-IP-Address}')") in queries
    assert "'%{Packet-Src-IP-Address}', ${....event_timestamp}" in queries
    assert "%{User-Password}" not in queries
