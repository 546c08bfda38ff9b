# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The real FreeRADIUS 3.2 (Debian packages) from a private configuration
written by tools/freeradius.py, on loopback ports, reading the stock schema
in a database of the test PostgreSQL: authentication with pyrad and with
FreeRADIUS's own radclient, unknown clients, accounting into radacct,
Simultaneous-Use, overridden queries, the production configuration, and
CoA/Disconnect between the product's helpers and a router's CoA port."""

import os
import pathlib
import re
import stat
import subprocess
import sys
import uuid

import psycopg
import pytest
import yaml
from pyrad import packet as radius_packet
from pyrad.client import Client, Timeout

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import freeradius  # noqa: E402
from tools.freeradius import (  # noqa: E402
    FreeRadius,
    FreeRadiusError,
    parse_db_uri,
    patch_queries,
    write_config,
)
from tools.radius_peer import (  # noqa: E402
    ACK,
    NAK,
    TIMEOUT,
    CoaPeer,
    load_dictionary,
    send_coa,
    send_disconnect,
)

STOCK = pathlib.Path(freeradius.STOCK_DIR)
SCHEMA = STOCK / freeradius.SCHEMA
pytestmark = pytest.mark.skipif(
    not SCHEMA.exists() or not os.path.exists('/usr/sbin/freeradius'),
    reason="FreeRADIUS is installed by scripts/test (apt: freeradius "
    "freeradius-postgresql freeradius-utils)")

# PostgreSQL trusts loopback here: this password is never checked, it only
# proves that it is written nowhere but the private passfile.
DB_PASSWORD = 'pg-Pa55-never-logged'
CLIENT_SECRET = 'harness-secret'
ROUTER = '127.0.0.2'
ROUTER_SECRET = 'router-1-secret'
UNKNOWN = '127.0.0.9'
RATE = '5M/20M'

USERS = [
    # username, password, Framed-IP-Address, Simultaneous-Use
    ('alice', 'wonderland', '10.10.0.5', 1),
    ('bob', 'builder', '10.10.0.6', None),
    ('carol', 'singer', None, 1),
    ]


def _sql(conn, query, *params):
    with conn.cursor() as cursor:
        cursor.execute(query, params or None)
        return cursor.fetchall() if cursor.description else None


@pytest.fixture(scope='module')
def db(pg_uri):
    "A database of its own with FreeRADIUS's stock schema and a few users."
    name = f'test_freeradius_{uuid.uuid4().hex[:8]}'
    with psycopg.connect(pg_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = dict(parse_db_uri(pg_uri), dbname=name, password=DB_PASSWORD)
    conninfo = psycopg.conninfo.make_conninfo(
        pg_uri.rstrip('/') + '/' + name)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(SCHEMA.read_text())
            _sql(conn, "INSERT INTO nas (nasname, shortname, type, secret) "
                "VALUES (%s, 'router-1', 'other', %s)", ROUTER, ROUTER_SECRET)
            for user, password, address, simultaneous in USERS:
                _sql(conn, "INSERT INTO radcheck (username, attribute, op, "
                    "value) VALUES (%s, 'Cleartext-Password', ':=', %s)",
                    user, password)
                if simultaneous:
                    _sql(conn, "INSERT INTO radcheck (username, attribute, "
                        "op, value) VALUES (%s, 'Simultaneous-Use', ':=', "
                        "%s)", user, str(simultaneous))
                if address:
                    _sql(conn, "INSERT INTO radreply (username, attribute, "
                        "op, value) VALUES (%s, 'Framed-IP-Address', ':=', "
                        "%s)", user, address)
                _sql(conn, "INSERT INTO radusergroup (username, groupname, "
                    "priority) VALUES (%s, 'plan-5m', 1)", user)
            _sql(conn, "INSERT INTO radgroupreply (groupname, attribute, op, "
                "value) VALUES ('plan-5m', 'Mikrotik-Rate-Limit', ':=', %s)",
                RATE)
        yield dict(params, conninfo=conninfo)
    finally:
        with psycopg.connect(pg_uri, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope='module')
def conn(db):
    with psycopg.connect(db['conninfo'], autocommit=True) as conn:
        yield conn


def _db(db):
    return {k: v for k, v in db.items() if k != 'conninfo'}


@pytest.fixture(scope='module')
def radius(db):
    "FreeRADIUS on free loopback ports (CoA port included)."
    radius = FreeRadius.create(_db(db), client_secret=CLIENT_SECRET,
        coa_port=True)
    with radius:
        yield radius


def client(radius, source=ROUTER, secret=ROUTER_SECRET, timeout=2):
    client = Client(server='127.0.0.1', authport=radius.auth_port,
        acctport=radius.acct_port, secret=secret.encode(),
        dict=load_dictionary(), retries=1, timeout=timeout)
    client.bind((source, 0))
    return client


def authenticate(radius, user, password, **kwargs):
    nas = client(radius, **kwargs)
    pkt = nas.CreateAuthPacket(User_Name=user, NAS_IP_Address=ROUTER,
        NAS_Port_Type='Virtual', Service_Type='Framed-User')
    pkt['User-Password'] = pkt.PwCrypt(password)
    return nas.SendPacket(pkt)


def account(radius, status, user, session, **attributes):
    nas = client(radius)
    pkt = nas.CreateAcctPacket(User_Name=user, NAS_IP_Address=ROUTER,
        Acct_Status_Type=status, Acct_Session_Id=session)
    for name, value in attributes.items():
        pkt[name.replace('_', '-')] = value
    return nas.SendPacket(pkt)


def reply_attributes(reply):
    return {name: reply[name] for name in reply.keys()}


def radclient(radius, user, password):
    request = (f'User-Name = "{user}"\nUser-Password = "{password}"\n'
        f'NAS-IP-Address = {ROUTER}\nPacket-Src-IP-Address = {ROUTER}\n')
    return subprocess.run(
        ['radclient', '-x', '-d', radius.dest, '-t', '2', '-r', '1',
            f'127.0.0.1:{radius.auth_port}', 'auth', ROUTER_SECRET],
        input=request, capture_output=True, text=True, timeout=20)


# configuration #

def test_config(radius, db):
    "The private directory runs only our site, and hides the password"
    dest = pathlib.Path(radius.dest)
    assert sorted(os.listdir(dest / 'sites-enabled')) == ['isp']
    assert not (dest / 'mods-enabled' / 'eap').exists()
    assert (dest / 'mods-enabled' / 'sql').resolve() == (
        dest / 'mods-available' / 'sql')
    conf = (dest / 'radiusd.conf').read_text()
    assert f'raddbdir = {dest}' in conf
    assert 'proxy_requests = no' in conf
    assert '\treject_delay = 0' in conf
    assert '# user = freerad' in conf
    sql = (dest / 'mods-available' / 'sql').read_text()
    assert 'driver = "rlm_sql_postgresql"' in sql
    assert '\tread_clients = yes' in sql
    assert 'testing123' not in (dest / 'clients.conf').read_text()

    passfile = dest / '.pgpass'
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert DB_PASSWORD in passfile.read_text()
    for path in dest.rglob('*'):
        if path.is_file() and path != passfile:
            assert DB_PASSWORD not in path.read_text(errors='replace'), path
    assert DB_PASSWORD not in radius.log
    # not in the debug output either (rlm_sql_postgresql prints its
    # connection parameters there)
    check = subprocess.run(['freeradius', '-XC', '-d', str(dest)],
        capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout[-3000:]
    assert 'Connecting using parameters' in check.stdout
    assert DB_PASSWORD not in check.stdout + check.stderr


def test_status_server(radius):
    "It is up: the harness client gets an answer to Status-Server"
    assert radius.running
    assert radius.status_server()
    assert not radius.status_server(timeout=0.3, secret='wrong-secret')


# authentication #

def test_accept_with_rate_limit(radius):
    "An active subscriber gets Access-Accept with the plan's rate limit"
    reply = authenticate(radius, 'alice', 'wonderland')
    assert reply.code == radius_packet.AccessAccept
    attributes = reply_attributes(reply)
    assert attributes['Mikrotik-Rate-Limit'] == [RATE]
    assert attributes['Framed-IP-Address'] == ['10.10.0.5']
    # check items are not replied
    assert 'Simultaneous-Use' not in attributes
    assert 'Cleartext-Password' not in attributes


def test_reject(radius, conn):
    "A wrong password or an unknown user gets Access-Reject, logged"
    reply = authenticate(radius, 'alice', 'not-her-password')
    assert reply.code == radius_packet.AccessReject
    assert 'Mikrotik-Rate-Limit' not in reply
    reply = authenticate(radius, 'mallory', 'wonderland')
    assert reply.code == radius_packet.AccessReject
    rows = _sql(conn, "SELECT username, reply FROM radpostauth "
        "WHERE username IN ('alice', 'mallory') ORDER BY id")
    assert ('alice', 'Access-Reject') in rows
    assert ('mallory', 'Access-Reject') in rows
    assert radius.log_has('Login incorrect')
    # the password tried is never logged
    assert 'not-her-password' not in radius.log


def test_radclient(radius):
    "FreeRADIUS's own radclient gets the same answers"
    result = radclient(radius, 'alice', 'wonderland')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Received Access-Accept' in result.stdout
    assert f'Mikrotik-Rate-Limit = "{RATE}"' in result.stdout
    assert 'Framed-IP-Address = 10.10.0.5' in result.stdout
    result = radclient(radius, 'alice', 'wrong')
    assert 'Received Access-Reject' in result.stdout
    assert result.returncode != 0


def test_unknown_nas(radius):
    "A client that is not in the nas table gets no answer at all"
    with pytest.raises(Timeout):
        authenticate(radius, 'alice', 'wonderland', source=UNKNOWN,
            secret=ROUTER_SECRET, timeout=0.5)
    assert radius.log_has(f'unknown client {UNKNOWN}')


# accounting #

def test_accounting(radius, conn):
    "Start, Interim-Update and Stop land in radacct with their octets"
    session = 'b0b00001'
    common = dict(Framed_IP_Address='10.10.0.6',
        Calling_Station_Id='AA:BB:CC:00:00:06', NAS_Port_Type='Virtual')
    query = ("SELECT acctstarttime IS NOT NULL, acctstoptime IS NOT NULL, "
        "acctinputoctets, acctoutputoctets, acctsessiontime, "
        "host(framedipaddress), callingstationid, acctterminatecause, "
        "host(nasipaddress) FROM radacct WHERE username = 'bob' "
        "AND acctsessionid = %s")

    reply = account(radius, 'Start', 'bob', session, **common)
    assert reply.code == radius_packet.AccountingResponse
    [row] = _sql(conn, query, session)
    assert row[:5] == (True, False, 0, 0, 0)
    assert row[5:7] == ('10.10.0.6', 'AA:BB:CC:00:00:06')
    assert row[8] == ROUTER

    reply = account(radius, 'Interim-Update', 'bob', session,
        Acct_Input_Octets=1000, Acct_Output_Octets=50000,
        Acct_Session_Time=60, **common)
    assert reply.code == radius_packet.AccountingResponse
    [row] = _sql(conn, query, session)
    assert row[:5] == (True, False, 1000, 50000, 60)

    reply = account(radius, 'Stop', 'bob', session,
        Acct_Input_Octets=3000, Acct_Input_Gigawords=1,
        Acct_Output_Octets=90000, Acct_Output_Gigawords=2,
        Acct_Session_Time=120, Acct_Terminate_Cause='User-Request', **common)
    assert reply.code == radius_packet.AccountingResponse
    [row] = _sql(conn, query, session)
    assert row[:5] == (True, True, (1 << 32) + 3000, (2 << 32) + 90000, 120)
    assert row[7] == 'User-Request'


def test_simultaneous_use(radius):
    "Simultaneous-Use 1: a second login is refused while a session is open"
    assert authenticate(radius, 'carol', 'singer').code == (
        radius_packet.AccessAccept)
    account(radius, 'Start', 'carol', 'ca401')
    assert authenticate(radius, 'carol', 'singer').code == (
        radius_packet.AccessReject)
    assert radius.log_has('Multiple logins (max 1)')
    account(radius, 'Stop', 'carol', 'ca401', Acct_Session_Time=5)
    assert authenticate(radius, 'carol', 'singer').code == (
        radius_packet.AccessAccept)


# overridden queries #

def test_sql_queries_override(db, conn):
    """The product points FreeRADIUS at its own tables or views: module
    settings (table names) and queries can be replaced"""
    _sql(conn, "CREATE OR REPLACE VIEW isp_reply AS "
        "SELECT id, username, attribute, value, op FROM radreply "
        "UNION ALL SELECT 1000000, 'alice', 'Mikrotik-Address-List', "
        "'isolir', ':='")
    queries = {
        'authreply_table': 'isp_reply',
        'authorize_group_reply_query': """
            SELECT id, groupname, attribute, value, op
            FROM ${groupreply_table}
            WHERE groupname = '%{${group_attribute}}'
              AND attribute <> 'Mikrotik-Rate-Limit'
            ORDER BY id""",
        }
    with FreeRadius.create(_db(db), sql_queries=queries) as other:
        reply = authenticate(other, 'alice', 'wonderland')
        assert reply.code == radius_packet.AccessAccept
        attributes = reply_attributes(reply)
        assert attributes['Mikrotik-Address-List'] == ['isolir']
        assert attributes['Framed-IP-Address'] == ['10.10.0.5']
        assert 'Mikrotik-Rate-Limit' not in attributes
        text = pathlib.Path(other.dest, freeradius.QUERIES).read_text()
        assert len(re.findall(
            r'^authorize_group_reply_query =', text, re.M)) == 1


def test_patch_queries_and_path(tmp_path, db):
    "Sections can be replaced; a whole queries.conf can be given"
    stock = (STOCK / freeradius.QUERIES).read_text()
    text = patch_queries(stock, {
        'post-auth': 'query = "SELECT 1"',
        'client_query': 'SELECT id, nasname, shortname, type, secret, '
            "server FROM isp_nas",
        'my_extra_query': 'SELECT "quoted" FROM x',
        })
    assert 'post-auth {\n\tquery = "SELECT 1"\n}' in text
    assert 'INSERT INTO ${..postauth_table}' not in text
    assert len(re.findall(r'^client_query =', text, re.M)) == 1
    assert 'FROM isp_nas"' in text
    assert 'my_extra_query = "\\\n\tSELECT \\"quoted\\" FROM x"' in text
    # the accounting section is untouched
    assert text.count('ON CONFLICT (AcctUniqueId)') == stock.count(
        'ON CONFLICT (AcctUniqueId)')

    mine = tmp_path / 'queries.conf'
    mine.write_text(stock + '\n# mine\n')
    dest = tmp_path / 'raddb'
    write_config(dest, _db(db), 1, 2, sql_queries=str(mine))
    assert (dest / freeradius.QUERIES).read_text().endswith('# mine\n')
    assert (dest / '.pgpass').exists()
    # written again over the first one: stock queries, no passfile left
    (dest / 'sites-enabled' / 'stale').symlink_to('../sites-available/isp')
    write_config(dest, dict(_db(db), password=None), 1, 2)
    assert (dest / freeradius.QUERIES).read_text() == stock
    assert not (dest / '.pgpass').exists()
    assert os.listdir(dest / 'sites-enabled') == ['isp']


def test_start_failure(tmp_path, db):
    "A configuration FreeRADIUS refuses is reported with its log"
    radius = FreeRadius.create(_db(db), directory=str(tmp_path / 'bad'))
    with open(os.path.join(radius.dest, 'sites-available', 'isp'),
            'a') as fp:
        fp.write('\nthis is not { valid\n')
    with pytest.raises(FreeRadiusError, match='exited'):
        radius.start()
    assert not radius.running


# production #

def test_write_config_command(tmp_path, db, pg_uri):
    "The production configuration: container paths, no secret, valid"
    out = tmp_path / 'deploy'
    result = subprocess.run(
        [sys.executable, '-m', 'tools.freeradius', 'write-config',
            '--out', str(out), '--db-host', 'postgres', '--db-name', 'isp',
            '--db-user', 'tryton'],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    conf = (out / 'radiusd.conf').read_text()
    assert 'raddbdir = /etc/freeradius\n' in conf
    assert 'logdir = /var/log/freeradius\n' in conf
    sql = (out / 'mods-available' / 'sql').read_text()
    assert ("radius_db = \"host='postgres' port='5432' dbname='isp' "
        "user='tryton'\"") in sql
    assert not (out / '.pgpass').exists()
    assert 'client localhost' not in (out / 'clients.conf').read_text()
    site = (out / 'sites-available' / 'isp').read_text()
    assert 'ipaddr = *' in site and 'port = 1812' in site
    assert 'port = 1813' in site
    assert os.readlink(out / 'sites-enabled' / 'isp') == (
        '../sites-available/isp')

    # the same configuration, checked by FreeRADIUS against the test
    # database (from its own directory instead of /etc/freeradius)
    params = parse_db_uri(pg_uri)
    check = tmp_path / 'check'
    result = subprocess.run(
        [sys.executable, '-m', 'tools.freeradius', 'write-config',
            '--out', str(check), '--db-host', params['host'],
            '--db-port', str(params['port']), '--db-name', db['dbname'],
            '--db-user', params['user'], '--raddbdir', str(check),
            '--logdir', str(tmp_path), '--run-dir', str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    env = dict(os.environ, PGPASSWORD=DB_PASSWORD)
    result = subprocess.run(['freeradius', '-XC', '-d', str(check)],
        capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stdout[-3000:]
    assert DB_PASSWORD not in result.stdout

    # another variable would be expanded into the logged connection string
    command = [sys.executable, '-m', 'tools.freeradius', 'write-config',
        '--out', str(tmp_path / 'other')]
    result = subprocess.run(command + ['--db-password-env', 'DB_PASSWORD'],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1
    assert 'only PGPASSWORD' in result.stderr
    result = subprocess.run(
        command + ['--db-passfile', '/run/secrets/pgpass'],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "passfile='/run/secrets/pgpass'" in (
        tmp_path / 'other' / 'mods-available' / 'sql').read_text()


def test_compose_service():
    "docker-compose's freeradius uses the generated directory"
    with open(ROOT / 'docker-compose.yml') as fp:
        service = yaml.safe_load(fp)['services']['freeradius']
    assert './deploy/freeradius:/etc/freeradius:ro' in service['volumes']
    assert '${POSTGRES_PASSWORD' in service['environment']['PGPASSWORD']
    assert '/etc/freeradius' in service['command']


# CoA / Disconnect #

def test_coa_against_freeradius(radius):
    """send_coa / send_disconnect speak RFC 5176 as FreeRADIUS understands
    it (not only as pyrad's own peer does); a wrong secret is dropped"""
    attributes = {'User-Name': 'alice', 'Acct-Session-Id': 'a1',
        'Mikrotik-Rate-Limit': '1M/1M'}
    result = send_coa('127.0.0.1', CLIENT_SECRET, attributes,
        port=radius.coa_port, timeout=2, retries=1)
    assert result.outcome == ACK
    result = send_disconnect('127.0.0.1', CLIENT_SECRET, attributes,
        port=radius.coa_port, timeout=2, retries=1)
    assert result.outcome == ACK
    result = send_coa('127.0.0.1', 'wrong-secret', attributes,
        port=radius.coa_port, timeout=0.3, retries=1)
    assert result.outcome == TIMEOUT
    assert radius.log_has('invalid Request Authenticator')


def test_coa_peer_scenarios(radius):
    """A session authenticated by FreeRADIUS is changed through a router's
    CoA port: ACK; NAK then Disconnect; no answer"""
    reply = authenticate(radius, 'alice', 'wonderland')
    assert reply.code == radius_packet.AccessAccept
    session = {'User-Name': 'alice', 'Acct-Session-Id': 'a2',
        'Framed-IP-Address': reply['Framed-IP-Address'][0]}
    with CoaPeer(ROUTER_SECRET, host=ROUTER) as router:
        host, port = router.address
        throttle = dict(session, **{'Mikrotik-Rate-Limit': '1M/2M'})
        assert send_coa(host, ROUTER_SECRET, throttle, port=port,
            timeout=2).outcome == ACK

        router.set_policy(coa='nak', disconnect='ack')
        isolate = dict(session, **{'Mikrotik-Address-List': 'isolir'})
        result = send_coa(host, ROUTER_SECRET, isolate, port=port, timeout=2)
        assert result.outcome == NAK
        assert send_disconnect(host, ROUTER_SECRET, session, port=port,
            timeout=2).outcome == ACK

        router.set_policy(coa='ignore', disconnect='ignore')
        result = send_disconnect(host, ROUTER_SECRET, session, port=port,
            timeout=0.3, retries=2)
        assert result.outcome == TIMEOUT
        requests = router.wait_for(5)
    assert [(r.kind, r.answer) for r in requests] == [
        ('coa', ACK), ('coa', NAK), ('disconnect', ACK),
        ('disconnect', None), ('disconnect', None)]
    assert requests[0].attributes['Mikrotik-Rate-Limit'] == ['1M/2M']
    assert requests[1].attributes['Mikrotik-Address-List'] == ['isolir']
    assert all(r.get('Framed-IP-Address') == '10.10.0.5' for r in requests)
