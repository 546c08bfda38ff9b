# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Vouchers of RADIUS profiles with the real FreeRADIUS 3.2 on loopback,
reading the product's views in a PostgreSQL database where isp_voucher is
activated (the harness of tests/test_radius_freeradius.py).

- a new voucher logs in with its code: Access-Accept with the profile's
  Mikrotik-Rate-Limit, Session-Timeout (what is left of the uptime limit
  or of the validity), Mikrotik-Total-Limit (and its Gigawords above
  4 GiB); a wrong password or another branch's NAS: Access-Reject;
- disabled, voided and expired vouchers are refused at once (no lag);
- accounting Start activates the voucher (its first login is the session
  start), Interim-Update counts uptime and bytes, over the quota the cron
  expires it and FreeRADIUS refuses it;
- Simultaneous-Use follows the profile's shared users.

Needs ISP_TEST_PG_URI and a PostgreSQL TRYTOND_DATABASE_URI (scripts/test
sets both).
"""
import datetime as dt
import functools
import os
import pathlib
import sys
import time

import pytest
from pyrad import packet as radius_packet

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_voucher_push import VoucherStack  # noqa: E402
from tests.test_radius_freeradius import (  # noqa: E402
    NAS_A,
    NAS_B,
    SECRET_A,
    SECRET_B,
    account,
    authenticate,
)
from tests.test_radius_freeradius import call as network_call  # noqa: E402
from tools.freeradius import FreeRadius  # noqa: E402

URI = os.environ.get('ISP_TEST_PG_URI')
pytestmark = pytest.mark.skipif(
    not (URI and (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
            'postgresql')) or not os.path.exists('/usr/sbin/freeradius'),
    reason="needs FreeRADIUS, ISP_TEST_PG_URI and TRYTOND_DATABASE_URI on "
    "PostgreSQL (as scripts/test sets them)")

ACCEPT = radius_packet.AccessAccept
REJECT = radius_packet.AccessReject
@pytest.fixture(scope='module')
def world():
    stack = VoucherStack(URI, name='isp_voucher_radius_test')
    stack.create_database()
    stack.init_pool()
    ids = {}
    try:
        with stack.transaction():
            ids['company_a'] = stack.create_branch("Branch A")
            ids['company_b'] = stack.create_branch("Branch B")
        for key, nas, secret in [('a', NAS_A, SECRET_A),
                ('b', NAS_B, SECRET_B)]:
            company = ids['company_' + key]
            with stack.transaction(company=company):
                router = stack.create_router('HS', nas, secret=secret)
                ids['profile_' + key] = stack.create_voucher_profile(
                    company, router, mode='radius')
                ids['big_' + key] = stack.create_voucher_profile(
                    company, router, mode='radius', name="Big",
                    data_quota=5000,
                    uptime_limit=None, validity=3, validity_unit='hours',
                    shared_users=2)
                ids['vouchers_' + key] = stack.create_vouchers(
                    ids['profile_' + key])
                ids['big_vouchers_' + key] = stack.create_vouchers(
                    ids['big_' + key], quantity=2)
        yield stack, ids
    finally:
        stack.drop_database()


@pytest.fixture(scope='module')
def radius(world):
    with FreeRadius.create(world[0].db_params(), product=True,
            client_secret='harness-secret') as radius:
        yield radius


# Model.method(records) in the branch's context, tasks run after
call = functools.partial(network_call, model='isp.voucher')


def voucher(stack, voucher_id):
    from trytond.pool import Pool
    with stack.transaction():
        record = Pool().get('isp.voucher')(voucher_id)
        return {name: getattr(record, name) for name in [
                'state', 'first_login', 'expiry', 'uptime_used',
                'bytes_used']}


def test_voucher_accept_with_limits(world, radius):
    "The code logs in with the profile's rate, time and data limits"
    stack, ids = world
    _, code, password = ids['vouchers_a'][0]
    result, attributes = authenticate(radius, code, password)
    assert result == ACCEPT
    assert attributes['Mikrotik-Rate-Limit'] == ['2M/5M']
    # the uptime limit (2 h) is shorter than the validity (1 day)
    assert attributes['Session-Timeout'] == [7200]
    assert attributes['Mikrotik-Total-Limit'] == [1_000_000]
    assert 'Mikrotik-Total-Limit-Gigawords' not in attributes
    assert 'Cleartext-Password' not in attributes
    # 5,000 MB: above 4 GiB, the gigawords carry the rest; 3 h validity
    _, code, password = ids['big_vouchers_a'][0]
    result, attributes = authenticate(radius, code, password)
    assert result == ACCEPT
    assert attributes['Session-Timeout'] == [3 * 3600]
    assert attributes['Mikrotik-Total-Limit'] == [5_000_000_000 % 2 ** 32]
    assert attributes['Mikrotik-Total-Limit-Gigawords'] == [1]


def test_voucher_refused(world, radius):
    "Wrong password, other branch's NAS, disabled, voided, expired"
    stack, ids = world
    (one, code, password), (two, code2, password2), (three, code3,
        password3) = ids['vouchers_a'][1:4]
    assert authenticate(radius, code, 'nope')[0] == REJECT
    assert authenticate(radius, code, password, nas=NAS_B,
        secret=SECRET_B)[0] == REJECT
    b_id, b_code, b_password = ids['vouchers_b'][0]
    assert authenticate(radius, b_code, b_password)[0] == REJECT
    assert authenticate(radius, b_code, b_password, nas=NAS_B,
        secret=SECRET_B)[0] == ACCEPT
    # disabled: refused at once, enabled: accepted again
    call(stack, ids['company_a'], 'disable', one)
    assert authenticate(radius, code, password)[0] == REJECT
    call(stack, ids['company_a'], 'enable', one)
    assert authenticate(radius, code, password)[0] == ACCEPT
    call(stack, ids['company_a'], 'void', two)
    assert authenticate(radius, code2, password2)[0] == REJECT
    # validity over: refused before the cron expires it, and after
    call(stack, ids['company_a'], 'activate', three,
        first_login=dt.datetime.now() - dt.timedelta(days=2))
    assert authenticate(radius, code3, password3)[0] == REJECT
    call(stack, ids['company_a'], 'expire_due')
    assert voucher(stack, three)['state'] == 'expired'
    assert authenticate(radius, code3, password3)[0] == REJECT
    # the passwords tried are not logged (the code is the user name)
    assert 'nope' not in radius.log


def test_accounting_activates_and_expires(world, radius):
    "Start: active from the session start; over the quota: expired"
    stack, ids = world
    voucher_id, code, password = ids['vouchers_a'][4]
    assert voucher(stack, voucher_id)['state'] == 'new'
    assert authenticate(radius, code, password)[0] == ACCEPT
    account(radius, 'Start', code, 'hs-1')
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # shared users 1: a second device is refused while the session is open
    assert authenticate(radius, code, password)[0] == REJECT
    call(stack, ids['company_a'], 'expire_due')
    state = voucher(stack, voucher_id)
    assert state['state'] == 'active'
    assert abs((state['first_login'] - started).total_seconds()) < 5
    assert state['expiry'] == state['first_login'] + dt.timedelta(days=1)
    account(radius, 'Interim-Update', code, 'hs-1', Acct_Session_Time=600,
        Acct_Input_Octets=100_000, Acct_Output_Octets=300_000)
    call(stack, ids['company_a'], 'expire_due')
    state = voucher(stack, voucher_id)
    assert (state['state'], state['uptime_used'], state['bytes_used']) == (
        'active', 600, 400_000)
    account(radius, 'Stop', code, 'hs-1', Acct_Session_Time=900,
        Acct_Input_Octets=200_000, Acct_Output_Octets=700_000)
    # what is left once the cron counted it: 1 h 45 of uptime, 100 kB
    call(stack, ids['company_a'], 'expire_due')
    result, attributes = authenticate(radius, code, password)
    assert result == ACCEPT
    assert attributes['Session-Timeout'] == [7200 - 900]
    assert attributes['Mikrotik-Total-Limit'] == [100_000]
    account(radius, 'Start', code, 'hs-2')
    account(radius, 'Stop', code, 'hs-2', Acct_Session_Time=60,
        Acct_Input_Octets=50_000, Acct_Output_Octets=60_000)
    # branch B's cron does not count branch A's accounting
    call(stack, ids['company_b'], 'expire_due')
    assert voucher(stack, voucher_id)['bytes_used'] == 900_000
    call(stack, ids['company_a'], 'expire_due')
    state = voucher(stack, voucher_id)
    assert (state['state'], state['bytes_used']) == ('expired', 1_010_000)
    assert authenticate(radius, code, password)[0] == REJECT


def test_shared_users(world, radius):
    "Simultaneous-Use is the profile's shared users (2 here)"
    stack, ids = world
    _, code, password = ids['big_vouchers_a'][1]
    for session in ('sh-1', 'sh-2'):
        assert authenticate(radius, code, password)[0] == ACCEPT
        account(radius, 'Start', code, session)
    time.sleep(0.1)
    assert authenticate(radius, code, password)[0] == REJECT
    account(radius, 'Stop', code, 'sh-1', Acct_Session_Time=5)
    assert authenticate(radius, code, password)[0] == ACCEPT
