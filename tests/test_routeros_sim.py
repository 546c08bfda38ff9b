# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tests of tools/routeros_sim.py through the real client library."""

import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import librouteros
import pytest
from librouteros import protocol as lr_protocol
from librouteros.connections import SocketTransport
from librouteros.exceptions import ConnectionClosed, FatalError, TrapError
from librouteros.login import plain, token
from librouteros.query import Key, Or

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import routeros_sim as sim  # noqa: E402

PASSWORD = 'Sim-Pa55'


# -- helpers -----------------------------------------------------------------

def connect(router, **kwargs):
    kwargs.setdefault('timeout', 5)
    kwargs.setdefault('port', router.port)
    return librouteros.connect(router.host, 'admin', PASSWORD, **kwargs)


class RawClient:
    """Sentence level client (librouteros' protocol layer, no parsing of the
    attribute words, so ``.tag=`` words survive)."""

    def __init__(self, router, login=True, timeout=5):
        self.sock = socket.create_connection(router.address, timeout=timeout)
        self.protocol = lr_protocol.ApiProtocol(
            SocketTransport(self.sock), 'utf-8')
        if login:
            assert self.talk('/login', '=name=admin',
                f'=password={PASSWORD}') == [['!done']]

    def send(self, *words):
        self.protocol.writeSentence(*words)

    def read(self):
        reply, words = self.protocol.readSentence()
        return [reply, *words]

    def talk(self, *words):
        "Send an untagged command, return its sentences up to ``!done``."
        self.send(*words)
        sentences = []
        while not sentences or sentences[-1][0] != '!done':
            sentences.append(self.read())
        return sentences

    def close(self):
        self.sock.close()


def attrs(sentence):
    "``{'name': 'x'}`` from ``['!re', '=name=x', '.tag=1']``."
    result = {}
    for word in sentence[1:]:
        if word.startswith('='):
            key, _, value = word[1:].partition('=')
            result[key] = value
    return result


def tag_of(sentence):
    tags = [w[5:] for w in sentence if w.startswith('.tag=')]
    return tags[0] if tags else None


@pytest.fixture
def router():
    router = sim.Router(name='r1', password=PASSWORD)
    router.start()
    yield router
    router.stop()


@pytest.fixture
def api(router):
    api = connect(router)
    yield api
    api.close()


# -- word encoding -----------------------------------------------------------

LENGTHS = [
    (0, 1), (0x7F, 1), (0x80, 2), (0x3FFF, 2), (0x4000, 3), (0x1FFFFF, 3),
    (0x200000, 4), (0xFFFFFFF, 4), (0x10000000, 5), (0xFFFFFFFF, 5)]


@pytest.mark.parametrize(('length', 'size'), LENGTHS)
def test_length_round_trip(length, size):
    encoded = sim.encode_length(length)
    assert len(encoded) == size
    assert sim.decode_length(encoded) == (length, size)
    assert sim.decode_length(b'\x01\x02' + encoded, 2) == (length, size)
    if size > 1:
        assert sim.decode_length(encoded[:-1]) is None
    if length < 0x10000000:
        # same bytes as the client library
        assert encoded == lr_protocol.encode_length(length)
        assert lr_protocol.decode_length(encoded) == length
    else:
        assert encoded[0] == 0xF0


def test_length_errors():
    with pytest.raises(sim.ProtocolError):
        sim.decode_length(b'\xf8\x00\x00\x00\x00')
    with pytest.raises(ValueError):
        sim.encode_length(0x100000000)
    assert sim.decode_length(b'') is None


def test_sentence_round_trip():
    words = ['/ppp/secret/add', '=name=' + 'a' * 0x79, '=c=' + 'b' * 0x7D,
        'x' * 0x3FFF, 'y' * 0x4000, '=comment=Ñandú ✓']
    encoded = sim.encode_sentence(words)
    assert encoded == lr_protocol.encode_sentence(*words, encoding='utf-8')
    assert sim.decode_sentence(encoded) == (words, len(encoded))
    for cut in (0, 1, 5, 0x80, len(encoded) - 1):
        assert sim.decode_sentence(encoded[:cut]) is None
    double = encoded + sim.encode_sentence(['!done'])
    _, offset = sim.decode_sentence(double)
    assert sim.decode_sentence(double, offset) == (['!done'], len(double))
    assert sim.decode_sentence(b'\x00') == ([], 1)


def test_value_formats():
    assert sim.format_uptime(0) == '0s'
    assert sim.format_uptime(694805) == '1w1d1h5s'
    assert sim.format_uptime(3 * 3600 + 4 * 60) == '3h4m'
    assert sim.parse_duration('1w2d3h4m5s') == 788645
    assert sim.parse_duration('1d 01:00:00') == 90000
    assert sim.parse_duration('300') == 300
    with pytest.raises(ValueError):
        sim.parse_duration('soon')
    assert sim.format_date(1735812672, iso=True) == '2025-01-02 10:11:12'
    assert sim.format_date(1735812672, iso=False) == 'jan/02/2025 10:11:12'
    assert sim.parse_version('7.16.2 (stable)') == (7, 16, 2)
    assert sim.normalize_version('6.49.10') == '6.49.10 (long-term)'


# -- login -------------------------------------------------------------------

def test_plain_login(router):
    api = connect(router, login_method=plain)
    assert list(api.path('system', 'identity')) == [{'name': 'r1'}]
    api.close()


def test_token_login_on_modern_router(router):
    api = connect(router, login_method=token)
    assert list(api.path('system', 'identity')) == [{'name': 'r1'}]
    api.close()


def test_legacy_router_accepts_only_challenge():
    with sim.Router(password=PASSWORD, version='6.42.12',
            legacy_login=True) as router:
        api = connect(router, login_method=token)
        assert list(api.path('system', 'identity'))
        api.close()
        # pre-6.43 routers answer a plain login with a challenge: the
        # client believes it is logged in, the next command is fatal
        api = connect(router, login_method=plain)
        with pytest.raises(FatalError, match='not logged in'):
            list(api.path('system', 'identity'))
        with pytest.raises(TrapError, match='cannot log in'):
            librouteros.connect(router.host, 'admin', 'bad', port=router.port,
                timeout=5, login_method=token)


def test_plain_only_router_refuses_challenge():
    with sim.Router(password=PASSWORD, plain_only=True) as router:
        with pytest.raises(TrapError, match=r'invalid user name or password'):
            connect(router, login_method=token)
        connect(router, login_method=plain).close()


@pytest.mark.parametrize('method', [plain, token])
def test_wrong_password(router, method):
    with pytest.raises(TrapError) as info:
        librouteros.connect(router.host, 'admin', 'wrong', port=router.port,
            timeout=5, login_method=method)
    assert info.value.message == 'invalid user name or password (6)'
    with pytest.raises(TrapError):
        librouteros.connect(router.host, 'nobody', PASSWORD,
            port=router.port, timeout=5, login_method=method)


def test_wrong_password_then_retry_on_same_session(router):
    client = RawClient(router, login=False)
    assert client.talk('/login', '=name=admin', '=password=x') == [
        ['!trap', '=message=invalid user name or password (6)'], ['!done']]
    assert client.talk('/login', '=name=admin', f'=password={PASSWORD}') == [
        ['!done']]
    client.close()


def test_command_before_login_is_fatal(router):
    client = RawClient(router, login=False)
    client.send('/system/resource/print')
    with pytest.raises(FatalError, match='not logged in'):
        client.read()


def test_quit(router):
    client = RawClient(router)
    client.send('/quit')
    with pytest.raises(FatalError, match='session terminated on request'):
        client.read()


# -- commands ----------------------------------------------------------------

def test_unknown_commands(api):
    with pytest.raises(TrapError, match='^no such command prefix$'):
        list(api('/foo/bar/print'))
    with pytest.raises(TrapError, match='^no such command$'):
        list(api('/ppp/secret/frobnicate'))
    with pytest.raises(TrapError, match='^no such command$'):
        list(api('/system/resource/add'))
    with pytest.raises(TrapError, match='^no such command$'):
        list(api('/ppp/active/add', name='x'))
    # the trap is followed by !done: the session goes on
    assert list(api.path('system', 'identity')) == [{'name': 'r1'}]


def test_secret_crud(router, api):
    secrets = api.path('ppp', 'secret')
    ret = secrets.add(name='CKP1', password='p1', service='pppoe',
        profile='default', comment='first')
    assert ret == '*1'
    rows = list(secrets)
    assert len(rows) == 1
    assert rows[0]['.id'] == '*1'
    assert rows[0]['name'] == 'CKP1'
    assert rows[0]['service'] == 'pppoe'
    assert rows[0]['disabled'] is False
    assert rows[0]['last-logged-out'] == '1970-01-01 00:00:00'

    with pytest.raises(TrapError) as info:
        secrets.add(name='CKP1', password='other')
    assert info.value.message == (
        'failure: secret with the same name already exists')
    with pytest.raises(TrapError, match='^unknown parameter$'):
        secrets.add(name='CKP2', colour='blue')
    with pytest.raises(TrapError,
            match='^input does not match any value of profile$'):
        secrets.add(name='CKP2', profile='missing')
    with pytest.raises(TrapError, match='service'):
        secrets.add(name='CKP2', service='telepathy')

    long_comment = 'c' * 0x4100  # 3-byte word length over the socket
    secrets.update(**{'.id': '*1', 'password': 'p2', 'disabled': True,
        'comment': long_comment})
    row = router.menu('/ppp/secret').find(name='CKP1')
    assert row['password'] == 'p2'
    assert row['disabled'] == 'true'
    assert row['comment'] == long_comment
    assert list(secrets.select(Key('comment')))[0]['comment'] == long_comment

    with pytest.raises(TrapError, match='^no such item$'):
        secrets.update(**{'.id': '*99', 'password': 'x'})
    secrets.remove('*1')
    assert list(secrets) == []
    with pytest.raises(TrapError, match='^no such item$'):
        secrets.remove('*1')
    # ids are never reused
    assert secrets.add(name='CKP1') == '*2'


def test_booleans_are_true_false_on_the_wire(router):
    router.menu('/ppp/secret').add(name='b', disabled='yes')
    client = RawClient(router)
    (row, done) = client.talk('/ppp/secret/print', '=.proplist=disabled')
    assert row == ['!re', '=disabled=true']
    assert client.talk('/ppp/secret/print', '?disabled=yes',
        '=count-only=') == [['!done', '=ret=1']]
    assert client.talk('/ppp/secret/print', '?disabled=false',
        '=count-only=') == [['!done', '=ret=0']]
    client.close()


def test_ids_are_hex_and_numbers_accept_names(router, api):
    router.seed(secrets=31, prefix='s')
    rows = list(api.path('ppp', 'secret'))
    assert [r['.id'] for r in rows[8:11]] == ['*9', '*A', '*B']
    assert rows[-1]['.id'] == '*1F'
    secrets = api.path('ppp', 'secret')
    tuple(secrets('set', numbers='s3', comment='by name'))
    assert router.menu('/ppp/secret').get('*3')['comment'] == 'by name'
    tuple(secrets('remove', numbers='*1,*2,s4'))
    assert len(router.menu('/ppp/secret')) == 28
    with pytest.raises(TrapError, match='no such item'):
        tuple(secrets('remove', numbers='*5,*999'))
    assert router.menu('/ppp/secret').get('*5') is not None  # atomic
    tuple(secrets('disable', numbers='s5'))
    assert router.menu('/ppp/secret').get('s5')['disabled'] == 'true'
    tuple(secrets('enable', numbers='*5'))
    tuple(secrets('unset', numbers='s3', **{'value-name': 'comment'}))
    row = router.state.menu('/ppp/secret').find(name='s3')
    assert 'comment' not in row
    assert router.state.menu('/ppp/secret').get('s5')['disabled'] == 'false'
    # getall is an alias of print
    assert len(list(api('/ppp/secret/getall'))) == 28


def test_proplist(router, api):
    router.seed(secrets=3)
    rows = list(api.path('ppp', 'secret').select(Key('name'), Key('.id')))
    assert rows == [{'name': f'user{n}', '.id': f'*{n}'} for n in (1, 2, 3)]
    rows = list(api('/ppp/secret/print', **{'.proplist': 'password'}))
    assert rows == [{'password': f'pw{n}'} for n in (1, 2, 3)]
    assert list(api('/system/resource/print',
        **{'.proplist': 'version,board-name'})) == [
        {'version': '7.16.2 (stable)', 'board-name': 'CCR2004-1G-12S+2XS'}]


def test_queries(router, api):
    menu = router.menu('/ppp/secret')
    menu.add(name='a', limit_bytes_in=10, comment='x')
    menu.add(name='b', limit_bytes_in=20)
    menu.add(name='c', limit_bytes_in=30, disabled=True)
    client = RawClient(router)

    def names(*query):
        rows = client.talk('/ppp/secret/print', '=.proplist=name', *query)
        return [attrs(s)['name'] for s in rows if s[0] == '!re']

    assert names('?name=b') == ['b']
    assert names('?=name=b') == ['b']
    assert names('?=.id=*1') == ['a']
    assert names('?.id=*3') == ['c']
    assert names('?comment') == ['a']
    assert names('?-comment') == ['b', 'c']
    assert names('?<limit-bytes-in=20') == ['a']
    assert names('?>limit-bytes-in=15') == ['b', 'c']
    assert names('?name=a', '?name=c', '?#|') == ['a', 'c']
    assert names('?name=a', '?name=c', '?#|!') == ['b']
    assert names('?>limit-bytes-in=5', '?disabled=no', '?#&') == ['a', 'b']
    assert names('?name=a', '?name=b', '?#.') == ['a']
    assert names('?name=a', '?name=b', '?name=c', '?#||') == ['a', 'b', 'c']
    assert names('?name=a', '?name=b', '?#1') == ['a']  # keep index 1 only
    assert names('?name=zz') == []
    assert client.talk('/ppp/secret/print', '?#|') == [
        ['!trap', '=message=invalid query'], ['!done']]
    client.close()
    # the same through librouteros' query builder
    secrets = api.path('ppp', 'secret')
    rows = secrets.select(Key('name')).where(
        Or(Key('name') == 'a', Key('name') == 'c'))
    assert [r['name'] for r in rows] == ['a', 'c']
    rows = secrets.select(Key('name')).where(Key('name').In('b', 'c'))
    assert sorted(r['name'] for r in rows) == ['b', 'c']
    rows = secrets.select(Key('name')).where(Key('disabled') == False)  # noqa: E712
    assert [r['name'] for r in rows] == ['a', 'b']


def test_tags_listen_and_cancel(router):
    client = RawClient(router)
    client.send('/ppp/secret/listen', '.tag=L')
    client.send('/ppp/secret/add', '=name=t1', '.tag=A')
    client.send('/system/identity/print', '.tag=I')
    got = [client.read() for _ in range(4)]
    by_tag = {}
    for sentence in got:
        by_tag.setdefault(tag_of(sentence), []).append(sentence)
    assert by_tag['A'] == [['!done', '=ret=*1', '.tag=A']]
    [notification] = by_tag['L']
    assert notification[0] == '!re'
    assert attrs(notification)['name'] == 't1'
    assert by_tag['I'] == [['!re', '=name=r1', '.tag=I'], ['!done', '.tag=I']]
    # a change from the Python side (another "user") is seen by the listener
    router.menu('/ppp/secret').remove('t1')
    assert client.read() == ['!re', '=.id=*1', '=.dead=true', '.tag=L']
    # errors carry the tag as well
    client.send('/ppp/secret/remove', '=.id=*9', '.tag=E')
    assert client.read() == ['!trap', '=message=no such item', '.tag=E']
    assert client.read() == ['!done', '.tag=E']
    client.send('/cancel', '=tag=L', '.tag=C')
    assert client.read() == [
        '!trap', '=category=2', '=message=interrupted', '.tag=L']
    assert client.read() == ['!done', '.tag=C']
    assert client.read() == ['!done', '.tag=L']
    # no longer listening
    router.menu('/ppp/secret').add(name='t2')
    assert client.talk('/system/identity/print') == [
        ['!re', '=name=r1'], ['!done']]
    client.close()


def test_address_list_unique(router, api):
    lists = api.path('ip', 'firewall', 'address-list')
    first = lists.add(list='suspended', address='10.0.0.1', comment='CKP1')
    lists.add(list='other', address='10.0.0.1')
    with pytest.raises(TrapError, match='^failure: already have such entry$'):
        lists.add(list='suspended', address='10.0.0.1')
    lists.add(list='suspended', address='10.0.0.2', timeout='1h')
    rows = list(lists.select(Key('address'), Key('dynamic'), Key('timeout'))
        .where(Key('list') == 'suspended'))
    assert rows[0] == {'address': '10.0.0.1', 'dynamic': False}
    assert rows[1]['dynamic'] is True
    assert rows[1]['timeout'] in ('1h', '59m59s')
    lists.remove(first)
    assert router.menu('/ip/firewall/address-list').find(
        list='suspended', address='10.0.0.1') is None
    lists.add(list='suspended', address='10.0.0.1')
    with pytest.raises(TrapError, match='already have such entry'):
        lists.update(**{'.id': '*2', 'list': 'suspended'})


def test_ppp_profiles(router, api):
    profiles = api.path('ppp', 'profile')
    rows = list(profiles.select(Key('.id'), Key('name'), Key('default')))
    assert rows == [
        {'.id': '*0', 'name': 'default', 'default': True},
        {'.id': '*FFFFFFFE', 'name': 'default-encryption', 'default': True}]
    assert profiles.add(**{'name': '10M', 'rate-limit': '10M/10M'}) == '*1'
    # a keyword with an underscore is not the RouterOS name
    with pytest.raises(TrapError, match='unknown parameter'):
        profiles.add(name='5M', rate_limit='5M/5M')
    assert profiles.add(**{'name': '5M', 'rate-limit': '5M/5M',
        'only-one': 'yes', 'address-list': 'plan-5M'}) == '*2'
    with pytest.raises(TrapError,
            match='profile with the same name already exists'):
        profiles.add(name='5M')
    with pytest.raises(TrapError, match='default profile'):
        profiles.remove('*0')
    api.path('ppp', 'secret').add(name='u', profile='5M')
    assert router.menu('/ppp/profile').find(name='5M')['only-one'] == 'yes'


def test_active_sessions(router, api):
    menu = router.menu('/ppp/secret')
    menu.add(name='CKP9', password='x', remote_address='10.9.9.9')
    session = router.ppp_login('CKP9', caller_id='AA:BB:CC:DD:EE:FF')
    assert session['address'] == '10.9.9.9'
    active = api.path('ppp', 'active')
    rows = list(active)
    assert rows[0]['name'] == 'CKP9'
    assert rows[0]['caller-id'] == 'AA:BB:CC:DD:EE:FF'
    assert rows[0]['service'] == 'pppoe'
    assert set(rows[0]) >= {'.id', 'uptime', 'encoding', 'session-id',
        'radius'}
    # disabling or removing the secret does not drop the session
    api.path('ppp', 'secret').update(**{'.id': '*1', 'disabled': True})
    assert len(list(active)) == 1
    api.path('ppp', 'secret').remove('*1')
    assert len(list(active)) == 1
    with pytest.raises(sim.SimulatorError):
        router.ppp_login('CKP9')
    menu.add(name='CKP9')
    # removing the active entry does
    active.remove(rows[0]['.id'])
    assert list(active) == []
    secret = menu.find(name='CKP9')
    assert secret['last-logged-out'] != '1970-01-01 00:00:00'
    assert secret['last-disconnect-reason'] == 'admin-request'
    assert secret['last-caller-id'] == 'AA:BB:CC:DD:EE:FF'
    # log in / out from the Python side
    router.ppp_login('CKP9', uptime=3661)
    uptime = list(active)[0]['uptime']
    assert uptime.startswith('1h1m')
    assert router.ppp_logout('CKP9') == 1
    assert menu.find(name='CKP9')['last-disconnect-reason'] == 'peer-request'


def test_profile_address_list_filled_at_connect(router, api):
    "As RouterOS: the PPP profile's address-list gets a dynamic entry"
    router.menu('/ppp/profile').add(name='iso', address_list='isolir')
    router.menu('/ppp/secret').add(name='u1', profile='iso')
    router.menu('/ppp/secret').add(name='u2')
    entries = api.path('ip', 'firewall', 'address-list')
    session = router.ppp_login('u1')
    router.ppp_login('u2')
    rows = list(entries)
    assert [(r['list'], r['address'], r['dynamic']) for r in rows] == [
        ('isolir', session['address'], True)]
    router.ppp_logout('u1')
    assert list(entries) == []


def test_user_policies(router):
    "Passwords print only to `sensitive` users, writes need `write`"
    router.menu('/ppp/secret').add(name='u1', password='pw')
    router.add_group('ops', 'read,api,test')
    router.add_user('ops', 'x', group='ops')
    api = librouteros.connect(
        router.host, 'ops', 'x', port=router.port, timeout=5)
    rows = list(api.path('ppp', 'secret'))
    assert rows[0]['name'] == 'u1' and 'password' not in rows[0]
    with pytest.raises(TrapError, match='not enough permissions'):
        api.path('ppp', 'secret').add(name='u2')
    groups = {r['name']: r['policy'] for r in api.path('user', 'group')}
    assert groups['ops'] == 'read,api,test'
    assert 'sensitive' in groups['full'].split(',')
    users = {r['name']: r['group'] for r in api.path('user')}
    assert users == {'admin': 'full', 'ops': 'ops'}
    api.close()
    admin = connect(router)
    assert list(admin.path('ppp', 'secret'))[0]['password'] == 'pw'
    admin.close()


def test_fault_refuse(router, api):
    router.set_fault('refuse', match='/system/resource')
    with pytest.raises(TrapError, match='not enough permissions'):
        list(api.path('system', 'resource'))
    assert list(api.path('ppp', 'secret')) == []
    router.clear_fault('refuse')
    assert list(api.path('system', 'resource'))


def test_hotspot_menus(router, api):
    profiles = api.path('ip', 'hotspot', 'user', 'profile')
    assert [r['name'] for r in profiles] == ['default']
    profiles.add(**{'name': '1h', 'rate-limit': '2M/2M', 'shared-users': 2})
    users = api.path('ip', 'hotspot', 'user')
    users.add(**{'name': 'V123', 'password': 'p', 'profile': '1h',
        'limit-uptime': '1h', 'limit-bytes-total': 1000000})
    with pytest.raises(TrapError, match='already have user with this name'):
        users.add(name='V123')
    with pytest.raises(TrapError, match='value of profile'):
        users.add(name='V124', profile='nope')
    row = list(users)[0]
    assert row['limit-uptime'] == '1h'
    assert row['uptime'] == '0s'
    assert row['bytes-in'] == 0
    router.hotspot_login('V123', address='10.5.0.7',
        mac_address='AA:AA:AA:AA:AA:AA')
    active = api.path('ip', 'hotspot', 'active')
    rows = list(active)
    assert rows[0]['user'] == 'V123'
    assert rows[0]['mac-address'] == 'AA:AA:AA:AA:AA:AA'
    active.remove(rows[0]['.id'])
    assert list(active) == []


def test_hotspot_user_attributes(router, api):
    "Time syntax, limits, read-only counters and unknown attributes"
    users = api.path('ip', 'hotspot', 'user')
    users.add(**{'name': 'V1', 'password': 'p', 'limit-uptime': '1d2h3m',
        'limit-bytes-total': '5000000'})
    menu = router.menu('/ip/hotspot/user')
    assert menu.find(name='V1')['limit-uptime'] == '1d2h3m'
    menu.set('V1', limit_uptime='00:30:00')
    assert menu.find(name='V1')['limit-uptime'] == '30m'
    menu.set('V1', limit_uptime='1d 01:00:00')
    assert menu.find(name='V1')['limit-uptime'] == '1d1h'
    for values, message in [
            ({'limit-uptime': 'abc'}, 'invalid value for argument '
                'limit-uptime'),
            ({'limit-uptime': '-5m'}, 'invalid value'),
            ({'limit-bytes-total': '1G'}, 'invalid value for argument '
                'limit-bytes-total'),
            ({'limit-bytes-total': '-1'}, 'invalid value'),
            # the counters are the router's
            ({'uptime': '5m'}, 'unknown parameter'),
            ({'bytes-in': '0'}, 'unknown parameter'),
            ({'bytes-out': '0'}, 'unknown parameter'),
            ({'no-such-thing': 'x'}, 'unknown parameter'),
            ({'profile': 'missing'}, 'input does not match any value of '
                'profile'),
            ]:
        with pytest.raises(TrapError, match=message):
            tuple(api('/ip/hotspot/user/set', **{'.id': '*1'}, **values))
        with pytest.raises(TrapError, match=message):
            users.add(name='V2', **values)
    assert menu.find(name='V2') is None
    # 0 is no limit, as RouterOS prints it
    menu.set('V1', limit_uptime='0s')
    assert menu.find(name='V1')['limit-uptime'] == '0s'


def test_hotspot_limits_and_counters(router):
    "Logins refused over the limits; a session's use counted at its end"
    profiles = router.menu('/ip/hotspot/user/profile')
    profiles.add(name='one', shared_users=1)
    users = router.menu('/ip/hotspot/user')
    users.add(name='V1', password='secret', profile='one',
        limit_uptime='1h', limit_bytes_total=1_000_000)
    with pytest.raises(sim.SimulatorError, match='invalid username'):
        router.hotspot_login('V1', password='wrong')
    session = router.hotspot_login('V1', password='secret', uptime=600)
    # what is left of the user's limits
    assert session['session-time-left'] == '50m'
    assert session['limit-bytes-total'] == '1000000'
    with pytest.raises(sim.SimulatorError, match='no more sessions'):
        router.hotspot_login('V1')
    row = router.hotspot_traffic('V1', bytes_in=100_000, bytes_out=300_000)
    assert (row['bytes-in'], row['bytes-out']) == ('100000', '300000')
    # the user's counters move when the session ends
    assert users.find(name='V1')['bytes-in'] == '0'
    assert router.hotspot_logout('V1') == 1
    user = users.find(name='V1')
    assert (user['bytes-in'], user['bytes-out']) == ('100000', '300000')
    assert user['uptime'].startswith('10m')
    session = router.hotspot_login('V1')
    assert session['limit-bytes-total'] == '600000'
    assert session['session-time-left'] in {'50m', '49m59s'}
    # over the traffic limit: the session ends and no login is allowed
    assert router.hotspot_traffic('V1', bytes_out=600_000) is None
    assert router.menu('/ip/hotspot/active').filter(user='V1') == []
    with pytest.raises(sim.SimulatorError, match='traffic limit'):
        router.hotspot_login('V1')
    # over the uptime limit
    users.add(name='V2', limit_uptime='1m')
    router.hotspot_login('V2')
    assert router.hotspot_traffic('V2', seconds=61) is None
    with pytest.raises(sim.SimulatorError, match='uptime limit'):
        router.hotspot_login('V2')
    # disabled users cannot log in
    users.add(name='V3', disabled=True)
    with pytest.raises(sim.SimulatorError, match='disabled'):
        router.hotspot_login('V3')


def test_system_menus(router, api):
    resource = list(api.path('system', 'resource'))[0]
    for key in ('version', 'uptime', 'cpu-load', 'free-memory',
            'total-memory', 'board-name', 'architecture-name', 'cpu-count'):
        assert key in resource
    tuple(api('/system/identity/set', name='core-1'))
    assert list(api.path('system', 'identity')) == [{'name': 'core-1'}]
    assert router.state.identity == 'core-1'
    interfaces = list(api.path('interface'))
    assert [i['name'] for i in interfaces][:2] == ['ether1', 'ether2']
    assert interfaces[0]['running'] is True
    with pytest.raises(TrapError, match='no such command'):
        list(api('/interface/add', name='x'))


@pytest.mark.parametrize(('version', 'shown', 'date'), [
    ('6.49.10', '6.49.10 (long-term)', r'[a-z]{3}/\d\d/\d{4} \d\d:\d\d:\d\d'),
    ('7.16.2', '7.16.2 (stable)', r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'),
])
def test_v6_and_v7_flavours(version, shown, date):
    with sim.Router(password=PASSWORD, version=version, uptime=788645) as r:
        api = connect(r)
        resource = list(api.path('system', 'resource'))[0]
        assert resource['version'] == shown
        assert resource['uptime'].startswith('1w2d3h4m')
        r.menu('/ppp/secret').add(name='u1')
        r.ppp_login('u1')
        r.ppp_logout('u1')
        secret = list(api.path('ppp', 'secret'))[0]
        assert re.fullmatch(date, secret['last-logged-out'])
        assert ('last-caller-id' in secret) == version.startswith('7')
        api.close()


# -- faults ------------------------------------------------------------------

def test_fault_down(router):
    api = connect(router)
    router.set_fault('down')
    with pytest.raises((ConnectionClosed, OSError)):
        list(api.path('system', 'identity'))
    with pytest.raises(OSError):
        connect(router, timeout=2)
    router.clear_fault('down')
    api = connect(router)  # same port again
    assert list(api.path('system', 'identity'))
    api.close()


def test_fault_slow(router, api):
    router.set_fault('slow', delay_ms=200)
    start = time.monotonic()
    list(api.path('system', 'identity'))
    assert time.monotonic() - start >= 0.18
    router.clear_fault()
    start = time.monotonic()
    list(api.path('system', 'identity'))
    assert time.monotonic() - start < 0.15


def test_fault_drop(router):
    router.set_fault('drop')
    api = connect(router)  # /login is not dropped
    with pytest.raises((ConnectionClosed, OSError)):
        api.path('ppp', 'secret').add(name='lost')
    assert router.menu('/ppp/secret').find(name='lost') is None

    router.set_fault('drop', apply=True, count=1, match='/ppp/secret/add')
    api = connect(router)
    assert list(api.path('system', 'identity'))  # does not match
    with pytest.raises((ConnectionClosed, OSError)):
        api.path('ppp', 'secret').add(name='applied')
    assert router.menu('/ppp/secret').find(name='applied') is not None
    assert 'drop' not in router.faults  # count exhausted
    api = connect(router)
    assert api.path('ppp', 'secret').add(name='fine') == '*2'
    api.close()


def test_fault_ghost_write(router, api):
    router.set_fault('ghost_write')
    secrets = api.path('ppp', 'secret')
    ret = secrets.add(name='ghost')
    assert ret.startswith('*')
    assert list(secrets) == []
    router.clear_fault('ghost_write')
    secrets.add(name='real')
    router.set_fault('ghost-write')
    secrets.remove('*2')
    secrets.update(**{'.id': '*2', 'comment': 'x'})
    assert [r['name'] for r in secrets] == ['real']
    assert 'comment' not in list(secrets)[0]


def test_fault_validation(router):
    with pytest.raises(ValueError):
        router.set_fault('melt')
    with pytest.raises(ValueError):
        router.set_fault('slow', delay=3)


def test_control_channel(router):
    control = sim.ControlServer([router])
    control.start()

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(control.url + path, data=data,
            method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    try:
        assert call('GET', '/routers')[0]['port'] == router.port
        assert call('POST', '/routers/r1/fault',
            {'mode': 'slow', 'delay_ms': 50}) == {'slow': {'delay_ms': 50.0}}
        call('POST', '/routers/r1/fault', {'mode': 'ghost_write'})
        assert set(router.faults) == {'slow', 'ghost_write'}
        call('DELETE', '/routers/r1/fault/slow')
        assert set(router.faults) == {'ghost_write'}
        call('POST', '/routers/r1/fault', {'mode': 'none'})
        assert router.faults == {}
        assert call('POST', '/routers/r1/seed',
            {'secrets': 4, 'active': 2}) == {'secrets': 4, 'active': 2}
        call('POST', '/routers/r1/ppp/logout', {'name': 'user1'})
        rows = call('GET', '/routers/r1/menu?path=/ppp/active')
        assert [r['name'] for r in rows] == ['user2']
        call('POST', '/routers/r1/fault', {'mode': 'down'})
        with pytest.raises(OSError):
            connect(router, timeout=2)
        call('DELETE', '/routers/r1/fault')
        connect(router).close()
        with pytest.raises(urllib.error.HTTPError) as info:
            call('POST', '/routers/r1/fault', {'mode': 'melt'})
        assert info.value.code == 400
        with pytest.raises(urllib.error.HTTPError) as info:
            call('GET', '/routers/nope')
        assert info.value.code == 404
    finally:
        control.stop()


# -- API-SSL -----------------------------------------------------------------

def test_api_ssl():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with sim.Router(password=PASSWORD, ssl=True) as router:
        assert router.ssl_port not in (None, 0, router.port)
        api = connect(router, port=router.ssl_port,
            ssl_wrapper=context.wrap_socket)
        assert list(api.path('system', 'identity')) == [{'name': 'router'}]
        api.close()
        # what scripts written for a certificate-less router use
        anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        anonymous.check_hostname = False
        anonymous.verify_mode = ssl.CERT_NONE
        anonymous.maximum_version = ssl.TLSVersion.TLSv1_2
        anonymous.set_ciphers('ADH:@SECLEVEL=0')
        api = connect(router, port=router.ssl_port,
            ssl_wrapper=anonymous.wrap_socket)
        assert list(api.path('system', 'identity'))
        assert 'ADH' in api.protocol.transport.sock.cipher()[0]
        api.close()
        # the plain port still works
        connect(router).close()


def test_api_ssl_without_certificate():
    "api-ssl with certificate=none: only the anonymous suites"
    with sim.Router(password=PASSWORD, ssl=True,
            ssl_certificate=False) as router:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises(ssl.SSLError):
            connect(router, port=router.ssl_port,
                ssl_wrapper=context.wrap_socket)
        anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        anonymous.check_hostname = False
        anonymous.verify_mode = ssl.CERT_NONE
        anonymous.set_ciphers('ADH:@SECLEVEL=0')
        api = connect(router, port=router.ssl_port,
            ssl_wrapper=anonymous.wrap_socket)
        assert api.protocol.transport.sock.getpeercert(True) is None
        api.close()


# -- scale -------------------------------------------------------------------

def test_bulk_seed_and_print(router, api):
    start = time.monotonic()
    assert router.seed(secrets=5000, active=3000, prefix='CKP') == {
        'secrets': 5000, 'active': 3000}
    assert time.monotonic() - start < 1
    # server side cost of a full print
    start = time.monotonic()
    sentences = router.execute(sim.Command.parse(['/ppp/secret/print']))
    encoded = b''.join(sim.encode_sentence(s) for s in sentences)
    assert time.monotonic() - start < 0.5
    assert len(sentences) == 5001 and encoded
    secrets = list(api.path('ppp', 'secret'))
    active = list(api.path('ppp', 'active'))
    assert len(secrets) == 5000
    assert len(active) == 3000
    assert router.menu('/ppp/secret').find(name='CKP123')['.id'] == '*7B'
    # indexed lookups
    client = RawClient(router)
    assert client.talk('/ppp/secret/print', '?name=CKP4999',
        '=.proplist=.id') == [['!re', '=.id=*1387'], ['!done']]
    client.close()


def test_many_concurrent_connections(router):
    router.seed(secrets=50)
    errors = []

    def worker():
        try:
            api = connect(router)
            for _ in range(3):
                assert len(list(api.path('ppp', 'secret'))) == 50
            api.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []


def test_start_routers_and_state(tmp_path):
    with sim.start_routers(3, password=PASSWORD,
            version='6.48.6') as routers:
        assert len({r.port for r in routers}) == 3
        assert [r.name for r in routers] == ['router1', 'router2', 'router3']
        routers[0].seed(secrets=2, active=1)
        data = routers[0].to_dict()
    clone = sim.Router(name='router1')
    clone.load_dict(json.loads(json.dumps(data)))
    assert [r['name'] for r in clone.menu('/ppp/secret')] == [
        'user1', 'user2']
    assert clone.menu('/ppp/secret').add(name='user3') == '*3'
    assert len(clone.menu('/ppp/active')) == 1


# -- command line ------------------------------------------------------------

@pytest.mark.parametrize('password', [PASSWORD, '-Sim-Pa55'])
def test_cli(tmp_path, password):
    "A password may start with '-' when it is read from a file (the demo's)"
    state = tmp_path / 'state.json'
    if password.startswith('-'):
        (tmp_path / 'password').write_text(password + '\n')
        credentials = ['--password-file', str(tmp_path / 'password')]
    else:
        credentials = ['--password', password]
    command = [sys.executable, '-m', 'tools.routeros_sim', '--count', '2',
        '--base-port', '0', '--ssl-base-port', '0', '--version',
        '6.49.10,7.16.2', *credentials, '--seed-secrets', '3',
        '--seed-active', '1', '--state-file', str(state),
        '--control-port', '0']
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, 'PYTHONPATH': str(ROOT)})
    try:
        lines = [process.stdout.readline().strip() for _ in range(3)]
        assert lines[0].startswith('name=router1 host=127.0.0.1 port=')
        assert lines[0].endswith('version=6.49.10 (long-term)')
        assert lines[1].endswith('version=7.16.2 (stable)')
        assert lines[2].startswith('control url=http://127.0.0.1:')
        fields = dict(part.split('=', 1) for part in lines[1].split()[:4])
        api = librouteros.connect(fields['host'], 'admin', password,
            port=int(fields['port']), timeout=5)
        assert len(list(api.path('ppp', 'secret'))) == 3
        api.path('ppp', 'secret').add(name='kept')
        api.close()
        assert fields['ssl_port'] not in ('-', '0')
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    saved = json.loads(state.read_text())['routers']
    names = [i['name'] for i in saved['router2']['menus']['/ppp/secret'][
        'items']]
    assert names == ['user1', 'user2', 'user3', 'kept']


def test_cli_password_per_router(tmp_path):
    """A JSON password file gives each router its own password, which wins
    over the one of a saved state (the demo's routers.json)"""
    passwords = {'router1': '-First-Pa55', 'router2': 'Second-Pa55'}
    (tmp_path / 'passwords.json').write_text(json.dumps(passwords))
    state = tmp_path / 'state.json'
    state.write_text(json.dumps({'routers': {
                    'router1': {'users': {'admin': 'old-shared'}}}}))
    command = [sys.executable, '-m', 'tools.routeros_sim', '--count', '2',
        '--base-port', '0', '--password-file',
        str(tmp_path / 'passwords.json'), '--state-file', str(state)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, 'PYTHONPATH': str(ROOT)})
    try:
        lines = [process.stdout.readline().strip() for _ in range(2)]
        for line in lines:
            fields = dict(part.split('=', 1) for part in line.split()[:4])
            own = passwords[fields['name']]
            other, = set(passwords.values()) - {own}
            for wrong in [other, 'old-shared']:
                with pytest.raises(TrapError):
                    librouteros.connect(fields['host'], 'admin', wrong,
                        port=int(fields['port']), timeout=5)
            api = librouteros.connect(fields['host'], 'admin', own,
                port=int(fields['port']), timeout=5)
            api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
