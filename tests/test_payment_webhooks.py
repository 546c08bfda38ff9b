# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Payment webhooks on PostgreSQL, end to end: the fake gateways post their
callbacks over HTTP to a real `trytond` server, one `trytond-worker` runs
the queued tasks.

- the same valid notification 5 times in a row, and 10 times at once,
  records exactly one payment, on each of the four gateways (each change
  confirmed by the gateway's status API);
- NUL bytes and lone surrogates in unsigned fields of a genuine payment
  (PostgreSQL refuses NUL in text): recorded, paid;
- a forged notification, a wrong amount and an unknown reference change
  nothing (the wrong amount is recorded, answered 200, then refused and
  flagged for staff by the queue task);
- with the callback lost, the reconciliation cron (through the worker)
  marks the invoice paid.

Needs ISP_TEST_PG_URI (scripts/test sets it, or the `pg_uri` fixture
starts a private cluster); the harness is the one of bench/bench_webhook.py.
"""
import datetime as dt
import json
import os
import pathlib
import sys
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_webhook import (  # noqa: E402
    SEQUENCES,
    Stack,
    create_branch,
    create_customers,
    create_gateway,
    create_open_invoices,
    open_payments,
    payment_moves,
    payment_states,
    wait_until,
)
from tools.fake_gateways import (  # noqa: E402
    FakeDuitku,
    FakeMidtrans,
    FakeMpesa,
    FakeXendit,
)

PROVIDERS = ['midtrans', 'xendit', 'duitku', 'mpesa']

pytestmark = pytest.mark.skipif(
    not (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
        'postgresql'),
    reason="needs TRYTOND_DATABASE_URI on PostgreSQL (as scripts/test "
    "sets it)")


@pytest.fixture(scope='module')
def fakes():
    fakes = {'midtrans': FakeMidtrans().start(),
        'xendit': FakeXendit().start(), 'duitku': FakeDuitku().start(),
        'mpesa': FakeMpesa().start()}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture(scope='module')
def stack(pg_uri, fakes):
    stack = Stack(pg_uri, name='isp_payment_webhook_test', workers=1)
    stack.create_database()
    stack.init_pool()
    company = stack.run_locked(create_branch, tables=SEQUENCES)
    kenya = stack.run_locked(_create_kenya, tables=SEQUENCES)
    with stack.transaction(company=company):
        for provider, fake in fakes.items():
            create_gateway(provider, fake,
                kenya if provider == 'mpesa' else company, stack.url)
    fakes['xendit'].callback_url = stack.url + stack.webhook_path('xendit')
    stack.company, stack.kenya = company, kenya
    stack.start_workers()
    stack.start_server()
    try:
        yield stack
    finally:
        stack.stop_server()
        stack.stop_workers()
        stack.drop_database()


def _create_kenya():
    "An M-Pesa branch (KES): its id"
    from trytond.modules.isp_billing.tests.payment_setup import (
        create_branch as create,
    )
    return create("NetKita Kenya", 'KES').id


def _open(stack, provider, count=1, prefix='Customer'):
    "[(invoice id, reference)] of new invoices paid online at `provider`"
    company = stack.kenya if provider == 'mpesa' else stack.company

    def open_():
        from trytond.modules.isp_billing.tests.payment_setup import (
            create_customer,
        )
        if provider == 'mpesa':
            parties = [create_customer('%s %d' % (prefix, i),
                    phone='+254712345678') for i in range(count)]
        else:
            parties = create_customers(count, prefix=prefix)
        invoices = create_open_invoices(company, parties, payments=False)
        return list(zip(invoices, open_payments(invoices, provider),
                strict=True))
    return stack.run_locked(open_, tables=SEQUENCES, company=company)


def _post(stack, provider, delivery, body):
    "Post `delivery` with another body: the answer's status"
    url = delivery.url
    if provider == 'xendit':
        url = stack.url + stack.webhook_path('xendit')
    request = urllib.request.Request(url, data=body,
        headers=delivery.headers, method='POST')
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _settled(stack, references, expected):
    "Wait until the worker processed the invoices; return the states"
    def check():
        with stack.transaction():
            return payment_states(references) == expected
    wait_until(check, timeout=60)
    with stack.transaction():
        return payment_states(references)


@pytest.mark.parametrize('provider', PROVIDERS)
def test_repeated_and_concurrent(stack, fakes, provider):
    "5 times in a row, then 10 at once: one payment each, every gateway"
    fake = fakes[provider]
    (first, ref1), (second, ref2) = _open(stack, provider, 2,
        'Repeat %s' % provider)
    deliveries = fake.pay(ref1) + fake.notify(ref1, repeat=4)
    assert [d.status for d in deliveries] == [200] * 5, [
        (d.status, d.answer, d.error) for d in deliveries]
    fake.drop_callbacks(1)
    fake.pay(ref2)
    deliveries = fake.notify(ref2, repeat=10, concurrent=True)
    assert [d.status for d in deliveries] == [200] * 10, [
        (d.status, d.answer, d.error) for d in deliveries]
    assert _settled(stack, [ref1, ref2], {
            ref1: ('paid', 'paid', None), ref2: ('paid', 'paid', None)}) == {
        ref1: ('paid', 'paid', None), ref2: ('paid', 'paid', None)}
    with stack.transaction():
        from trytond.pool import Pool
        Notification = Pool().get('isp.payment.notification')
        for reference, count in [(ref1, 5), (ref2, 10)]:
            verdicts = sorted(n.verdict for n in Notification.search(
                    [('transaction.reference', '=', reference)]))
            assert verdicts == ['applied'] + ['duplicate'] * (count - 1)
        assert payment_moves(first) == 1
        assert payment_moves(second) == 1


@pytest.mark.parametrize('provider', PROVIDERS)
def test_nul_in_unsigned_fields(stack, fakes, provider):
    """NUL and a lone surrogate in unsigned fields of a genuine payment
    (raw in Duitku's form body, escaped in JSON): 200, paid once"""
    fake = fakes[provider]
    (invoice, reference), = _open(stack, provider, 1, 'Nul %s' % provider)
    fake.drop_callbacks(1)
    delivery, = fake.pay(reference)
    assert delivery.dropped
    if provider == 'duitku':
        body = delivery.body + b'&productDetail=a\x00b&paymentCode=\x00'
    else:
        payload = json.loads(delivery.body)
        bad = 'IDR\x00\ud800'
        if provider == 'mpesa':
            payload['Body']['stkCallback']['ResultDesc'] = bad
            items = payload['Body']['stkCallback']['CallbackMetadata'][
                'Item']
            for item in items:
                if item['Name'] == 'MpesaReceiptNumber':
                    item['Value'] += '\x00\ud800'
        else:
            payload.update(currency=bad, description=bad, payment_type=bad)
        body = json.dumps(payload).encode()
    assert _post(stack, provider, delivery, body) == 200
    assert _settled(stack, [reference], {
            reference: ('paid', 'paid', None)})[reference] == (
        'paid', 'paid', None)
    with stack.transaction():
        assert payment_moves(invoice) == 1


def test_refused_change_nothing(stack, fakes):
    "Forged, wrong amount, unknown reference: nothing paid"
    fake = fakes['midtrans']
    (forged_id, forged), (wrong_id, wrong) = _open(
        stack, 'midtrans', 2, 'Refused')
    fake.drop_callbacks(1)
    fake.pay(forged)
    delivery, = fake.notify(forged, bad_signature=True)
    assert delivery.status == 403
    delivery, = fake.pay(wrong, amount=1000)
    assert delivery.status == 200
    assert _settled(stack, [wrong], {
            wrong: ('pending', 'posted', 'wrong_amount')})[wrong] == (
        'pending', 'posted', 'wrong_amount'), stack.worker_log()[-3000:]
    import urllib.request
    request = urllib.request.Request(
        stack.url + stack.webhook_path('midtrans'),
        data=delivery.body.replace(wrong.encode(), b'IVUNKNOWN000'),
        headers=delivery.headers, method='POST')
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404
    else:
        raise AssertionError("unknown reference accepted")
    with stack.transaction():
        from trytond.pool import Pool
        Notification = Pool().get('isp.payment.notification')
        assert payment_states([forged, wrong]) == {
            forged: ('pending', 'posted', None),
            wrong: ('pending', 'posted', 'wrong_amount')}
        assert [n.verdict for n in Notification.search(
                [('transaction.reference', 'in', [forged, wrong])])] == [
            'wrong_amount']
        assert payment_moves(forged_id) == 0
        assert payment_moves(wrong_id) == 0


def test_dropped_callback_reconciled(stack, fakes):
    "The callback is lost: the cron, through the worker, pays"
    fake = fakes['midtrans']
    (invoice, reference), = _open(stack, 'midtrans', 1, 'Dropped')
    fake.drop_callbacks(1)
    delivery, = fake.pay(reference)
    assert delivery.dropped
    later = dt.datetime.now() + dt.timedelta(minutes=30)
    with stack.transaction(company=stack.company, _isp_payment_now=later):
        from trytond.pool import Pool
        PaymentTransaction = Pool().get('isp.payment.transaction')
        due = PaymentTransaction.reconcile_pending()
        assert reference in {t.reference for t in due}
    assert _settled(stack, [reference], {
            reference: ('paid', 'paid', None)})[reference] == (
        'paid', 'paid', None), stack.worker_log()[-3000:]
    with stack.transaction():
        assert payment_moves(invoice) == 1


def test_status_api_down_recorded(stack, fakes):
    """M-Pesa (which does not retry) pays while its status API is down:
    answered 200 once recorded 'queued', nothing paid; the reconciliation
    cron queues the task again and the worker pays once"""
    fake = fakes['mpesa']
    (invoice, reference), = _open(stack, 'mpesa', 1, 'Down')
    fake.fail_api(1, status=503)
    delivery, = fake.pay(reference)
    assert delivery.status == 200, (delivery.answer, delivery.error)
    assert wait_until(lambda: not fake._api_faults, timeout=60)

    def queued():
        with stack.transaction():
            from trytond.pool import Pool
            Notification = Pool().get('isp.payment.notification')
            return [n.verdict for n in Notification.search(
                    [('transaction.reference', '=', reference)])]
    assert wait_until(lambda: queued() == ['queued'], timeout=60)
    with stack.transaction():
        assert payment_states([reference])[reference] == (
            'pending', 'posted', None)
        assert payment_moves(invoice) == 0
    later = dt.datetime.now() + dt.timedelta(minutes=30)
    with stack.transaction(company=stack.kenya, _isp_payment_now=later):
        from trytond.pool import Pool
        Pool().get('isp.payment.transaction').reconcile_pending()
    assert _settled(stack, [reference], {
            reference: ('paid', 'paid', None)})[reference] == (
        'paid', 'paid', None), stack.worker_log()[-3000:]
    assert wait_until(lambda: 'queued' not in queued(), timeout=60)
    with stack.transaction():
        assert payment_moves(invoice) == 1
