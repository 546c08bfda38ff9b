# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""tools/radius_peer.py: the CoA/Disconnect port of a router and the client
helpers the product uses (RFC 5176, FreeRADIUS's dictionaries)."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.radius_peer import (  # noqa: E402
    ACK,
    NAK,
    TIMEOUT,
    CoaPeer,
    dictionary_paths,
    load_dictionary,
    send_coa,
    send_disconnect,
)

SECRET = 'router-coa-secret'
SESSION = {
    'User-Name': 'alice',
    'Acct-Session-Id': '81a00007',
    'Framed-IP-Address': '10.10.0.5',
    }


def test_dictionary():
    "FreeRADIUS's own dictionaries, MikroTik's attributes included"
    paths = dictionary_paths()
    assert [p.rsplit('.', 1)[1] for p in paths] == [
        'rfc2865', 'rfc2866', 'rfc2869', 'rfc3576', 'rfc5176', 'mikrotik']
    dictionary = load_dictionary()
    assert dictionary is load_dictionary()
    for name in ('Mikrotik-Rate-Limit', 'Mikrotik-Address-List',
            'Error-Cause', 'Acct-Input-Gigawords', 'Event-Timestamp',
            'Message-Authenticator'):
        assert name in dictionary.attributes, name
    with pytest.raises(FileNotFoundError):
        dictionary_paths(extra=('dictionary.does-not-exist',))


def test_coa_ack():
    "A CoA is recorded with its attributes decoded and acknowledged"
    with CoaPeer(SECRET) as peer:
        host, port = peer.address
        result = send_coa(host, SECRET,
            dict(SESSION, **{'Mikrotik-Rate-Limit': '1M/2M',
                'Mikrotik-Address-List': ['isolir', 'late']}),
            port=port, timeout=2)
        assert result.outcome == ACK and result.ok and result
        assert result.error_cause is None
        [request] = peer.requests
    assert (request.kind, request.code_name) == ('coa', 'CoA-Request')
    assert request.valid and request.answer == ACK
    assert not request.duplicate
    assert request.source[0] == '127.0.0.1'
    assert request.get('User-Name') == 'alice'
    assert request.get('Acct-Session-Id') == '81a00007'
    assert request.get('Framed-IP-Address') == '10.10.0.5'
    assert request.attributes['Mikrotik-Rate-Limit'] == ['1M/2M']
    assert request.attributes['Mikrotik-Address-List'] == ['isolir', 'late']


def test_coa_nak_then_disconnect():
    "A router refusing the CoA NAKs it; the Disconnect that follows ends it"
    policy = {'coa': 'nak', 'disconnect': 'ack'}
    with CoaPeer(SECRET, policy=policy) as peer:
        host, port = peer.address
        coa = send_coa(host, SECRET,
            dict(SESSION, **{'Mikrotik-Rate-Limit': '256k/256k'}),
            port=port, timeout=2)
        assert coa.outcome == NAK and not coa
        assert coa.error_cause == 'Session-Context-Not-Found'
        disconnect = send_disconnect(host, SECRET, SESSION, port=port,
            timeout=2)
        assert disconnect.outcome == ACK
        requests = peer.wait_for(2)
    assert [(r.kind, r.answer) for r in requests] == [
        ('coa', NAK), ('disconnect', ACK)]
    assert requests[1].code_name == 'Disconnect-Request'
    assert requests[1].get('Acct-Session-Id') == '81a00007'


def test_disconnect_nak():
    "A Disconnect-NAK comes back as nak, with the Error-Cause chosen"
    with CoaPeer(SECRET, policy={'disconnect': 'nak'},
            error_cause='Unsupported-Service') as peer:
        result = send_disconnect(*peer.address[:1], SECRET, SESSION,
            port=peer.port, timeout=2)
    assert result.outcome == NAK
    assert result.error_cause == 'Unsupported-Service'


def test_timeout():
    "No answer: every attempt is recorded, the sender reports a timeout"
    with CoaPeer(SECRET, policy={'coa': None}) as peer:
        result = send_coa('127.0.0.1', SECRET, SESSION, port=peer.port,
            timeout=0.3, retries=2)
        assert result.outcome == TIMEOUT and not result
        assert 0.5 < result.elapsed < 3
        requests = peer.wait_for(2)
    assert [r.answer for r in requests] == [None, None]
    assert [r.duplicate for r in requests] == [False, True]


def test_wrong_secret():
    "A request with a wrong secret is recorded as invalid and not answered"
    with CoaPeer(SECRET) as peer:
        result = send_disconnect('127.0.0.1', 'not-the-secret', SESSION,
            port=peer.port, timeout=0.3, retries=1)
        [request] = peer.wait_for(1)
    assert result.outcome == TIMEOUT
    assert not request.valid and request.answer is None
    assert request.attributes == {}


def test_policy_callable_and_change():
    "The policy can be a callable, and can change while the peer runs"
    online = {'alice'}

    def policy(request):
        return ACK if request.get('User-Name') in online else NAK

    with CoaPeer(SECRET, policy=policy) as peer:
        host, port = peer.address
        assert send_disconnect(host, SECRET, {'User-Name': 'alice'},
            port=port, timeout=2).outcome == ACK
        assert send_disconnect(host, SECRET, {'User-Name': 'bob'},
            port=port, timeout=2).outcome == NAK
        peer.set_policy({'coa': 'ignore', 'disconnect': 'ack'})
        assert send_disconnect(host, SECRET, {'User-Name': 'bob'},
            port=port, timeout=2).outcome == ACK
        peer.set_policy(coa='nak')
        assert send_coa(host, SECRET, {'User-Name': 'bob'},
            port=port, timeout=2).outcome == NAK
        peer.clear()
        assert peer.requests == []
        with pytest.raises(ValueError):
            peer.set_policy(coa='maybe')


def test_source_address():
    "The sender can choose its source address (several RADIUS servers)"
    with CoaPeer(SECRET) as peer:
        result = send_coa('127.0.0.1', SECRET, SESSION, port=peer.port,
            timeout=2, source='127.0.0.3')
        [request] = peer.requests
    assert result.outcome == ACK
    assert request.source[0] == '127.0.0.3'


def test_error():
    "A socket error is an outcome too, not an exception"
    # UDP port 0 cannot be sent to (EINVAL), and no name lookup is needed
    result = send_coa('127.0.0.1', SECRET, SESSION, port=0, timeout=0.2,
        retries=1)
    assert result.outcome == 'error' and result.error
    assert not result
    # a source address that is not ours (TEST-NET-1)
    result = send_coa('127.0.0.1', SECRET, SESSION, port=3799, timeout=0.2,
        retries=1, source='192.0.2.1')
    assert result.outcome == 'error'
