# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Database backups that are proven to restore (docs/operations.md).

    scripts/backup run    --database isp --target /var/backups/isp
    scripts/backup dump   ...   # pg_dump only (custom format) + retention
    scripts/backup verify ...   # restore the newest dump into a scratch
                                # database and compare it with its manifest
    scripts/backup check-age --max-age 86400   # exit 1: no recent good one

The connection comes from libpq's environment (PGHOST, PGPORT, PGUSER,
PGPASSWORD) or ``--dsn`` (a libpq URI without the database).

`dump` opens a REPEATABLE READ transaction, exports its snapshot and runs
``pg_dump --snapshot`` on it: the manifest written next to the dump (row
count of every table, and a checksum of account_move_line's id, debit,
credit, account and party) is read from exactly the data dumped, even while
billing and webhooks write.  `verify` restores the dump into a scratch
database, computes the same figures there and compares them; on success it
records the dump as the last good backup (``last-good.json`` in the target
directory), which `check-age`, /ready and /metrics read.
"""
import argparse
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import psycopg
from psycopg import sql

PREFIX = 'isp-'
SUFFIX = '.dump'
LAST_GOOD = 'last-good.json'
CHECKSUM = (
    "SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0), "
    "md5(coalesce(string_agg(concat_ws(':', id, debit, credit, account, "
    "party), ',' ORDER BY id), '')) FROM account_move_line")


class BackupError(Exception):
    "A failure explained in one line (exit status 2)"


def _connect(dsn, database, **kwargs):
    return psycopg.connect(dsn or '', dbname=database, **kwargs)


def _env(dsn):
    "The environment of pg_dump and pg_restore for `dsn`"
    env = dict(os.environ)
    if dsn:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        for key, var in [('host', 'PGHOST'), ('port', 'PGPORT'),
                ('user', 'PGUSER'), ('password', 'PGPASSWORD')]:
            if info.get(key):
                env[var] = str(info[key])
    return env


def manifest(cursor):
    "Row counts of every table and the accounting checksum"
    cursor.execute(
        "SELECT c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1")
    tables = [r[0] for r in cursor.fetchall()]
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    checksum = None
    if 'account_move_line' in counts:
        cursor.execute(CHECKSUM)
        lines, debit, credit, digest = cursor.fetchone()
        checksum = {'lines': lines, 'debit': str(debit),
            'credit': str(credit), 'md5': digest}
    return {'tables': counts, 'account_move_line': checksum}


def check_target(target):
    "The target directory, created when missing; refused when not writable"
    path = pathlib.Path(target)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix='.write-test-'):
            pass
    except OSError as exception:
        raise BackupError("backup target %s is not writable: %s" % (
                target, exception.strerror or exception)) from None
    return path


def dumps(target):
    "The dumps of the target directory, newest first"
    return sorted(pathlib.Path(target).glob(PREFIX + '*' + SUFFIX),
        reverse=True)


def dump(database, target, dsn=None, keep=7, days=0):
    "Dump `database` into `target` with its manifest; return the dump path"
    path = check_target(target)
    stamp = dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')
    name = '%s%s-%s%s' % (PREFIX, database, stamp, SUFFIX)
    final = path / name
    partial = path / ('.' + name + '.partial')
    with _connect(dsn, database) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot, = cursor.fetchone()
            started = time.monotonic()
            result = subprocess.run(['pg_dump', '--format=custom',
                    '--snapshot=' + snapshot, '--no-password',
                    '--file', str(partial), database],
                env=_env(dsn), capture_output=True, text=True)
            if result.returncode:
                partial.unlink(missing_ok=True)
                raise BackupError("pg_dump failed: %s" % (
                        result.stderr.strip().splitlines() or ['?'])[-1])
            data = manifest(cursor)
        conn.rollback()
    data.update(database=database, file=name,
        dumped_at=dt.datetime.now(dt.UTC).isoformat(),
        dump_seconds=round(time.monotonic() - started, 3),
        size=partial.stat().st_size)
    _write_json(path / (name + '.json'), data)
    os.replace(partial, final)
    prune(path, keep=keep, days=days)
    return final


def _write_json(path, data):
    partial = path.with_name('.' + path.name + '.partial')
    partial.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(partial, path)


def prune(target, keep=7, days=0):
    """Keep the `keep` newest dumps, and (days > 0) none older than `days`
    days but the newest; return the paths removed"""
    found = dumps(target)
    limit = time.time() - days * 86400 if days else None
    removed = []
    for index, path in enumerate(found):
        if index == 0:
            continue
        if index >= keep or (limit and path.stat().st_mtime < limit):
            for file in [path, path.with_name(path.name + '.json')]:
                file.unlink(missing_ok=True)
            removed.append(path)
    return removed


def verify(target, dsn=None, file=None, scratch=None):
    """Restore a dump (the newest by default) into a scratch database and
    compare it with its manifest; record it as the last good one"""
    path = pathlib.Path(file) if file else next(iter(dumps(target)), None)
    if path is None or not path.exists():
        raise BackupError("no dump to verify in %s" % target)
    expected = json.loads(
        path.with_name(path.name + '.json').read_text())
    scratch = scratch or '%s_restore_check' % expected['database']
    started = time.monotonic()
    with _connect(dsn, 'postgres', autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                sql.Identifier(scratch)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(
                sql.Identifier(scratch)))
    try:
        result = subprocess.run(['pg_restore', '--no-owner', '--no-acl',
                '--exit-on-error', '--no-password', '--dbname', scratch,
                str(path)], env=_env(dsn), capture_output=True, text=True)
        if result.returncode:
            raise BackupError("pg_restore failed: %s" % (
                    result.stderr.strip().splitlines() or ['?'])[-1])
        with _connect(dsn, scratch) as conn, conn.cursor() as cursor:
            found = manifest(cursor)
    finally:
        with _connect(dsn, 'postgres', autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                    sql.Identifier(scratch)))
    problems = [
        '%s: %s rows, %s restored' % (t, n, found['tables'].get(t))
        for t, n in sorted(expected['tables'].items())
        if found['tables'].get(t) != n]
    lines = found['account_move_line']
    if lines != expected['account_move_line']:
        problems.append('account_move_line checksum differs')
    elif lines and lines['debit'] != lines['credit']:
        problems.append('account_move_line debit and credit differ')
    if problems:
        raise BackupError("restore check of %s failed: %s" % (
                path.name, '; '.join(problems[:10])))
    seconds = round(time.monotonic() - started, 3)
    _write_json(pathlib.Path(target) / LAST_GOOD, {
            'file': path.name, 'dumped_at': expected['dumped_at'],
            'verified_at': dt.datetime.now(dt.UTC).isoformat(),
            'restore_seconds': seconds,
            'tables': len(expected['tables']),
            'rows': sum(expected['tables'].values()),
            })
    return seconds


def last_good_age(target):
    """Seconds since the last good (verified) backup was taken, or None"""
    try:
        data = json.loads((pathlib.Path(target) / LAST_GOOD).read_text())
        dumped = dt.datetime.fromisoformat(data['dumped_at'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - dumped
            ).total_seconds())


def main(argv=None):
    parser = argparse.ArgumentParser(prog='scripts/backup',
        description=__doc__.split('\n\n')[0])
    parser.add_argument('command',
        choices=['dump', 'verify', 'run', 'check-age', 'prune'])
    parser.add_argument('--database', '-d',
        default=os.environ.get('ISP_DATABASE') or os.environ.get('PGDATABASE'))
    parser.add_argument('--target', '-t',
        default=os.environ.get('BACKUP_DIR', '/var/backups/isp'))
    parser.add_argument('--dsn', default=os.environ.get('BACKUP_DSN'),
        help="libpq URI or conninfo without the database")
    parser.add_argument('--keep', type=int,
        default=int(os.environ.get('BACKUP_KEEP', 7)))
    parser.add_argument('--days', type=int,
        default=int(os.environ.get('BACKUP_DAYS', 0)))
    parser.add_argument('--file', help="the dump to verify")
    parser.add_argument('--max-age', type=int, default=86400)
    args = parser.parse_args(argv)
    try:
        if args.command in {'dump', 'run'}:
            if not args.database:
                raise BackupError("no database: --database or ISP_DATABASE")
            path = dump(args.database, args.target, dsn=args.dsn,
                keep=max(args.keep, 1), days=args.days)
            print("dumped %s" % path)
        if args.command in {'verify', 'run'}:
            seconds = verify(args.target, dsn=args.dsn,
                file=None if args.command == 'run' else args.file)
            print("restore check passed in %.1f s" % seconds)
        if args.command == 'prune':
            for path in prune(args.target, args.keep, args.days):
                print("removed %s" % path)
        if args.command == 'check-age':
            age = last_good_age(args.target)
            if age is None or age > args.max_age:
                print("ALERT: no good backup in the last %d s (last: %s)" % (
                        args.max_age, 'never' if age is None
                        else '%d s ago' % age), file=sys.stderr)
                return 1
            print("last good backup %d s ago" % age)
    except BackupError as exception:
        print("backup: %s" % exception, file=sys.stderr)
        return 2
    except psycopg.Error as exception:
        print("backup: database error: %s" % (
                str(exception).strip().splitlines() or ['?'])[0],
            file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
