# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Payment webhooks of one branch applied by one run at a time, in batches
(issue 12), on PostgreSQL with two real `trytond-worker` processes:

- while a run of `apply_queued` holds the branch, the webhooks of the branch
  queue no task, and the tasks queued anyway (by the cron, or a webhook
  racing the run's start) return at once on the other worker: the payments
  are asked to their provider once each, never two at a time, and every
  notification gets applied by the holder's next batch; nothing stays
  queued;
- N payments arriving together make a bounded number of tasks: one
  `apply_queued`, one invoice processing per batch, not one of each per
  payment.

The fake Midtrans' status API is held closed to keep the first run inside
its first batch while the others arrive.
"""
import datetime as dt
import json
import os
import pathlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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
from tools.fake_gateways import FakeMidtrans  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (os.environ.get('TRYTOND_DATABASE_URI') or '').startswith(
        'postgresql'),
    reason="needs TRYTOND_DATABASE_URI on PostgreSQL (as scripts/test "
    "sets it)")


class GatedMidtrans(FakeMidtrans):
    """The fake Midtrans whose status API waits while `gate` is clear and
    counts the queries (per order) and how many are in flight at once"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.counter = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.queried = {}

    def _status(self, record, order_id):
        with self.counter:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.queried[order_id] = self.queried.get(order_id, 0) + 1
        try:
            self.gate.wait(120)
            return super()._status(record, order_id)
        finally:
            with self.counter:
                self.in_flight -= 1


@pytest.fixture(scope='module')
def fake():
    fake = GatedMidtrans().start()
    yield fake
    fake.gate.set()
    fake.stop()


@pytest.fixture(scope='module')
def stack(pg_uri, fake):
    stack = Stack(pg_uri, name='isp_webhook_batching_test', workers=2)
    stack.create_database()
    stack.init_pool()
    company = stack.run_locked(create_branch, tables=SEQUENCES)
    with stack.transaction(company=company):
        create_gateway('midtrans', fake, company, stack.url)
    stack.company = company
    stack.start_workers()
    stack.start_server()
    try:
        yield stack
    finally:
        fake.gate.set()
        stack.stop_server()
        stack.stop_workers()
        stack.drop_database()


def _open(stack, count, prefix):
    "[(invoice id, reference)] of `count` new invoices paid at Midtrans"
    def open_():
        parties = create_customers(count, prefix=prefix)
        invoices = create_open_invoices(stack.company, parties,
            payments=False)
        return list(zip(invoices, open_payments(invoices, 'midtrans'),
                strict=True))
    return stack.run_locked(open_, tables=SEQUENCES, company=stack.company)


def _tasks(stack, since):
    """{'model.method': [(dequeued_at, finished_at)]} of the queue tasks
    enqueued since `since`"""
    from trytond.pool import Pool
    with stack.transaction():
        Queue = Pool().get('ir.queue')
        result = {}
        for task in Queue.search([('enqueued_at', '>=', since)],
                order=[('id', 'ASC')]):
            name = '%s.%s' % (task.data['model'], task.data['method'])
            result.setdefault(name, []).append(
                (task.dequeued_at, task.finished_at))
        return result


def _rescheduled(stack, since):
    "The tasks enqueued since `since` to run later (a failed task's retry)"
    from trytond.pool import Pool
    with stack.transaction():
        Queue = Pool().get('ir.queue')
        return Queue.search_count([
                ('enqueued_at', '>=', since),
                ('scheduled_at', '!=', None),
                ])


def _queued(stack, references):
    from trytond.pool import Pool
    with stack.transaction():
        Notification = Pool().get('isp.payment.notification')
        return Notification.search_count([
                ('transaction.reference', 'in', list(references)),
                ('verdict', '=', 'queued'),
                ])


def _queue_apply(stack, reference):
    "Queue an `apply_queued` task of the branch (as the cron would)"
    def queue():
        from trytond.pool import Pool
        PaymentTransaction = Pool().get('isp.payment.transaction')
        payment, = PaymentTransaction.search(
            [('reference', '=', reference)])
        PaymentTransaction.__queue__.apply_queued([payment])
    stack.run_locked(queue)


def test_one_run_per_branch(stack, fake):
    """The first payment's run is held in its status query; 15 more
    payments of the branch arrive together, and 3 `apply_queued` tasks are
    queued besides: the other worker finishes them at once without asking
    the provider, the webhooks queue nothing; once the provider answers,
    every payment is asked once, never two at a time, and paid once"""
    count = 16
    opened = _open(stack, count, 'Batch')
    references = [r for _, r in opened]
    since = dt.datetime.now()
    started = time.time()
    fake.gate.clear()
    try:
        delivery, = fake.pay(references[0])
        assert delivery.status == 200, (delivery.answer, delivery.error)
        # the run holds the branch, waiting for the provider
        assert wait_until(lambda: fake.in_flight == 1, timeout=60), (
            stack.worker_log()[-3000:])
        with ThreadPoolExecutor(8) as executor:
            deliveries = [d for ds in executor.map(fake.pay, references[1:])
                for d in ds]
        assert [d.status for d in deliveries] == [200] * (count - 1), [
            (d.status, d.answer, d.error) for d in deliveries]
        for _ in range(3):
            _queue_apply(stack, references[0])

        def extra_done():
            tasks = _tasks(stack, since)[
                'isp.payment.transaction.apply_queued']
            return sum(1 for _, finished in tasks if finished) >= 3
        # the other worker runs them while the first run still waits
        assert wait_until(extra_done, timeout=60), (
            _tasks(stack, since), stack.worker_log()[-3000:])
        assert fake.in_flight == 1
        assert sum(fake.queried.get(r, 0) for r in references) == 1
        # the first run's batch is not committed yet
        assert _queued(stack, references) == count
    finally:
        fake.gate.set()

    def settled():
        with stack.transaction():
            return set(payment_states(references).values()) == {
                ('paid', 'paid', None)}
    assert wait_until(settled, timeout=120), stack.worker_log()[-3000:]
    assert wait_until(lambda: _queued(stack, references) == 0, timeout=60)
    assert fake.most_in_flight == 1
    assert {r: fake.queried.get(r) for r in references} == {
        r: 1 for r in references}, ([(round(r.at - started, 3), r.path)
            for r in fake.requests if '/status' in r.path],
        stack.worker_log()[-5000:])
    with stack.transaction():
        from trytond.pool import Pool
        Notification = Pool().get('isp.payment.notification')
        assert sorted(n.verdict for n in Notification.search(
                [('transaction.reference', 'in', references)])) == [
            'applied'] * count
        for invoice, _ in opened:
            assert payment_moves(invoice) == 1

    # the tasks: the first webhook's, the 3 queued above and at most one
    # handing over after APPLY_SLICE seconds; the invoices' processing
    # once per batch (one or two: the run restarted for its locks may see
    # the 15 others already, a hand-over may split them)
    assert wait_until(lambda: all(finished for tasks in _tasks(
                    stack, since).values() for _, finished in tasks),
        timeout=60)
    tasks = _tasks(stack, since)
    counts = {name: len(runs) for name, runs in tasks.items()}
    assert 4 <= counts['isp.payment.transaction.apply_queued'] <= 5, counts
    assert 1 <= counts['account.invoice.process'] <= 3, counts
    assert sum(counts.values()) <= 12, counts
    # none failed and was rescheduled (Tryton pushes it again for later)
    assert not _rescheduled(stack, since), stack.worker_log()[-3000:]


def test_notifications_during_the_run_all_applied(stack, fake):
    """Payments keep arriving, 4 senders at once, while runs apply the
    earlier ones: every notification applied, nothing left queued, each
    payment asked once, never two at a time, far fewer tasks than
    payments"""
    count = 40
    opened = _open(stack, count, 'Stream')
    references = [r for _, r in opened]
    since = dt.datetime.now()
    fake.most_in_flight = 0
    started = time.monotonic()
    with ThreadPoolExecutor(4) as executor:
        deliveries = [d for ds in executor.map(fake.pay, references)
            for d in ds]
    sent = time.monotonic() - started
    assert [d.status for d in deliveries] == [200] * count

    def settled():
        with stack.transaction():
            return set(payment_states(references).values()) == {
                ('paid', 'paid', None)}
    assert wait_until(settled, timeout=120), stack.worker_log()[-3000:]
    assert wait_until(lambda: _queued(stack, references) == 0, timeout=60)
    assert fake.most_in_flight == 1
    assert {r: fake.queried.get(r) for r in references} == {
        r: 1 for r in references}
    with stack.transaction():
        for invoice, _ in opened:
            assert payment_moves(invoice) == 1
    assert wait_until(lambda: all(finished for tasks in _tasks(
                    stack, since).values() for _, finished in tasks),
        timeout=60)
    counts = {name: len(runs) for name, runs in _tasks(stack, since).items()}
    # one task per payment of each kind before (apply, processing, notice)
    assert sum(counts.values()) < count, (counts, sent)
    assert counts['account.invoice.process'] < count // 2, counts
    assert not _rescheduled(stack, since), stack.worker_log()[-3000:]


def test_backup_restores_while_billing_and_webhooks_run(stack, fake,
        pg_uri, tmp_path):
    """scripts/backup (tools/backup.py) dumps the database while invoices
    are posted and payment webhooks applied by the workers: the dump is the
    snapshot of its manifest (row counts of every table, the accounting
    checksum), restores into a scratch database with the same figures and
    balanced accounts, and becomes the last good backup; a target that is
    not writable is refused with a clear error, nothing written"""
    from tools import backup
    opened = _open(stack, 12, 'Backup')
    references = [r for _, r in opened]

    def lines():
        with stack.transaction():
            from trytond.pool import Pool
            return Pool().get('account.move.line').search_count([])
    before = lines()
    stop = threading.Event()
    errors = []

    def billing():
        batch = 0
        while not stop.is_set():
            batch += 1
            try:
                _open(stack, 2, 'Billed%d-' % batch)
            except Exception as exception:  # reported below
                errors.append(exception)
                return

    with ThreadPoolExecutor(4) as executor:
        biller = executor.submit(billing)
        paid = [executor.submit(fake.pay, r) for r in references]
        time.sleep(0.5)
        started = time.monotonic()
        path = backup.dump(stack.name, tmp_path, dsn=pg_uri, keep=2)
        dump_seconds = time.monotonic() - started
        stop.set()
        biller.result()
        deliveries = [d for f in paid for d in f.result()]
    assert not errors, errors
    assert [d.status for d in deliveries] == [200] * len(references)
    after = lines()
    manifest = json.loads(path.with_name(path.name + '.json').read_text())
    dumped = manifest['account_move_line']['lines']
    # written while the dump ran: the manifest is the dump's snapshot
    assert before <= dumped <= after and before < after, (
        before, dumped, after)
    restore_seconds = backup.verify(tmp_path, dsn=pg_uri)
    good = json.loads((tmp_path / backup.LAST_GOOD).read_text())
    assert good['file'] == path.name
    assert backup.last_good_age(tmp_path) < 600
    assert backup.main(['check-age', '--target', str(tmp_path)]) == 0
    print('dump %.1f s, restore check %.1f s' % (
            dump_seconds, restore_seconds))

    # a dump that does not match its manifest is not good
    other = backup.dump(stack.name, tmp_path, dsn=pg_uri, keep=2)
    data = json.loads(other.with_name(other.name + '.json').read_text())
    data['tables']['account_move_line'] += 1
    other.with_name(other.name + '.json').write_text(json.dumps(data))
    with pytest.raises(backup.BackupError, match='account_move_line'):
        backup.verify(tmp_path, dsn=pg_uri)
    assert json.loads((tmp_path / backup.LAST_GOOD).read_text()) == good

    # retention: the 2 newest dumps are kept
    backup.dump(stack.name, tmp_path, dsn=pg_uri, keep=2)
    assert len(backup.dumps(tmp_path)) == 2
    assert path not in backup.dumps(tmp_path)

    # a target that is not writable: a clear error, nothing written
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anyway
            locked = pathlib.Path('/proc/isp-backup')
        with pytest.raises(backup.BackupError, match='not writable'):
            backup.dump(stack.name, locked, dsn=pg_uri)
        assert backup.main(['dump', '--database', stack.name, '--target',
                str(locked), '--dsn', pg_uri]) == 2
    finally:
        (tmp_path / 'locked').chmod(0o700)
    assert not list((tmp_path / 'locked').iterdir())
