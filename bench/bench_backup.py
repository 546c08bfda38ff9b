# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of a backup with its restore check (tools/backup.py) on a
populated database, PostgreSQL.

The database is bench_billing's: one branch with N services (10,000 by
default, bench/bulk.py) billed for this month by the cron and two workers
(N posted invoices, their moves and notices), kept as bench_billing keeps
it.  Then `scripts/backup run` is timed: pg_dump (custom format) on an
exported snapshot with its manifest, restore into a scratch database,
row counts of every table and the account_move_line checksum compared.

Prints::

    BENCH backup_dump_s <s> s
    BENCH backup_restore_s <s> s      (dump + restore + verification)
    BENCH backup_size_mb <mb> MB

    .venv/bin/python bench/bench_backup.py [--size 10000]
        [--uri postgresql://postgres@127.0.0.1:5432/]

Never asserts a time.
"""
import argparse
import datetime as dt
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_billing  # noqa: E402
from bench.bench_notify import private_cluster  # noqa: E402
from tools import backup  # noqa: E402


def run(uri, size):
    from tools.fake_messaging import FakeMeta
    fake = FakeMeta(token='bench-token', phone_number_id='1055').start()
    try:
        bench_billing.run_product(uri, size, 2, dt.date.today(), False,
            True, fake)
    finally:
        fake.stop()
    database = 'isp_bill_run_%d' % size
    with tempfile.TemporaryDirectory() as target:
        started = time.monotonic()
        path = backup.dump(database, target, dsn=uri)
        dumped = time.monotonic() - started
        backup.verify(target, dsn=uri)
        total = time.monotonic() - started
        manifest = json.loads(
            path.with_name(path.name + '.json').read_text())
        size_mb = path.stat().st_size / 1e6
    lines = manifest['account_move_line']['lines']
    print('%s: %d tables, %d rows, %d move lines; dump %.1f s (%.1f MB), '
        'dump + restore + check %.1f s' % (database,
            len(manifest['tables']), sum(manifest['tables'].values()),
            lines, dumped, size_mb, total), flush=True)
    print('BENCH backup_dump_s %.1f s' % dumped)
    print('BENCH backup_restore_s %.1f s' % total)
    print('BENCH backup_size_mb %.1f MB' % size_mb)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=10000,
        help="services of the branch (default 10,000)")
    parser.add_argument('--uri', default=os.environ.get('ISP_TEST_PG_URI'))
    options = parser.parse_args(argv)
    if options.uri:
        run(options.uri, options.size)
    else:
        with private_cluster() as uri:
            run(uri, options.size)


if __name__ == '__main__':
    main()
