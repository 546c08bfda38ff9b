# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Notifications through the real ir.queue and concurrent trytond-worker
processes on PostgreSQL: the capacities of the providers hold when several
workers choose providers at the same time.

Needs ISP_TEST_PG_URI and a PostgreSQL TRYTOND_DATABASE_URI (scripts/test
sets both); the harness is the one of
bench/bench_notify.py.  The engine's time is fixed through the context of
the queued tasks, so "the next minute" needs no waiting.
"""
import datetime as dt
import os
import pathlib
import sys
from collections import Counter

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_notify import Stack, wait_until  # noqa: E402
from tools.fake_messaging import FakeMeta  # noqa: E402

URI = os.environ.get('ISP_TEST_PG_URI')
T0 = dt.datetime(2030, 3, 2, 8, 0, 0)

pytestmark = pytest.mark.skipif(
    not (URI and (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
            'postgresql')),
    reason="needs ISP_TEST_PG_URI and TRYTOND_DATABASE_URI on PostgreSQL "
    "(as scripts/test sets them)")


@pytest.fixture(scope='module')
def stack():
    stack = Stack(URI, name='isp_notify_worker_test', workers=3)
    stack.create_database()
    stack.init_pool()
    try:
        yield stack
    finally:
        stack.stop_workers()
        stack.drop_database()


@pytest.fixture
def metas():
    fakes = [FakeMeta(token='w%d' % i, phone_number_id='20%d' % i).start()
        for i in range(3)]
    yield fakes
    for fake in fakes:
        fake.stop()


def _attempts(stack, provider_ids):
    from trytond.pool import Pool
    Attempt = Pool().get('isp.message.attempt')
    return {p: sorted(a.at for a in Attempt.search([('provider', '=', p)]))
        for p in provider_ids}


def test_capacities_hold_with_concurrent_workers(stack, metas):
    "3 workers, providers of 10, 20 and 30 per minute, 100 messages"
    from trytond.pool import Pool
    with stack.transaction():
        company = stack.create_branch("Worker Branch")
    with stack.transaction(company=company):
        providers = [stack.create_meta_provider(fake, company, capacity=c)
            for fake, c in zip(metas, [10, 20, 30], strict=True)]
        parties = stack.create_subscribers(company, 20)
    with stack.transaction(company=company, _isp_notify_now=T0):
        ids = stack.queue_invoices(parties, per_party=5)
    assert len(ids) == 100
    stack.start_workers()

    def settled(expected_sent):
        def check():
            with stack.transaction():
                return (stack.states(ids).get('sent', 0) >= expected_sent
                    and not stack.pending_tasks())
        return check
    assert wait_until(settled(60), timeout=120), stack.worker_log()[-3000:]
    with stack.transaction():
        assert stack.states(ids) == {'sent': 60, 'queued': 40}
        attempts = _attempts(stack, providers)
        Message = Pool().get('isp.message')
        waiting = Message.search([
                ('id', 'in', ids), ('state', '=', 'queued')])
        assert {m.next_attempt for m in waiting} == {
            T0 + dt.timedelta(minutes=1, milliseconds=1)}
    assert [len(f.messages) for f in metas] == [10, 20, 30]
    assert [len(attempts[p]) for p in providers] == [10, 20, 30]

    # a minute later the workers send the rest, within the capacities
    later = T0 + dt.timedelta(seconds=61)
    with stack.transaction(company=company, _isp_notify_now=later):
        Message = Pool().get('isp.message')
        Message.enqueue(Message.browse([m.id for m in waiting]))
    assert wait_until(settled(100), timeout=120), stack.worker_log()[-3000:]
    with stack.transaction():
        assert stack.states(ids) == {'sent': 100}
        attempts = _attempts(stack, providers)
    assert sum(len(f.messages) for f in metas) == 100
    for provider, capacity in zip(providers, [10, 20, 30], strict=True):
        counts = Counter(attempts[provider])
        assert set(counts) <= {T0, later}
        assert max(counts.values()) <= capacity
    stack.stop_workers()
