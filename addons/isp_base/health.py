# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Health, readiness and metrics routes for load balancers, Docker
healthchecks and Prometheus (docs/operations.md).

- ``GET /health``: the process answers (no database): 200
  ``{"status": "ok"}``.
- ``GET /ready``: the database answers and the background processes keep
  up: 200 or 503 with JSON figures (queue lag, last cron run, worker,
  routers down).  The database is the first of ``[isp] health_databases``
  (``?database=`` chooses another one of that list; any other name is
  404): a caller cannot probe the server's databases.
- ``GET /metrics``: Prometheus text (isp_base/metrics.py).  With
  ``[isp] metrics_token`` set, only a request with ``Authorization: Bearer
  <token>`` (403 otherwise); without it, only loopback clients.

No answer holds an exception's text, a database name that was not asked
for, or a secret.
"""
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os

import trytond.config as config
from sql.aggregate import Count, Max, Min
from sql.conditionals import Coalesce
from trytond import backend
from trytond.pool import Pool
from trytond.protocols.wrappers import HTTPStatus, Response
from trytond.transaction import Transaction
from trytond.wsgi import app

from . import metrics

logger = logging.getLogger(__name__)

#: Defaults of the readiness thresholds, in seconds ([isp] section).
QUEUE_LAG = 600
CRON_OVERDUE = 900
WORKER_IDLE = 600
#: How long /ready waits for a database connection ([isp] ready_connect)
CONNECT_WAIT = 3


def _json(status, data):
    return Response(json.dumps(data, sort_keys=True), status=status,
        content_type='application/json',
        headers={'Cache-Control': 'no-store'})


def databases():
    "The databases /ready and /metrics may check, the default first"
    value = config.get('isp', 'health_databases', default='') or ''
    return [n.strip() for n in value.replace(',', '\n').splitlines()
        if n.strip()]


def _database(request):
    """The database asked for, None when none is configured, False when
    the name asked for is not one of them"""
    names = databases()
    if not names:
        return None
    asked = request.args.get('database')
    if asked is None:
        return names[0]
    return asked if asked in names else False


def _seconds(delta):
    return max(0, round(delta.total_seconds(), 1))


def snapshot(database_name):
    """The figures of /ready and the database gauges of /metrics, read in
    one read-only transaction; {'database': False} when the database does
    not answer"""
    try:
        _connectable(database_name)
        loaded = database_name in Pool.database_list()
        pool = Pool(database_name)
        if not loaded:
            with Transaction().start(database_name, 0, readonly=True):
                pool.init()
        with Transaction().start(database_name, 0, readonly=True):
            data = _read(pool)
    except Exception:
        logger.warning("readiness check of a database failed", exc_info=True)
        return {'database': False, 'ready': False, 'failing': ['database']}
    data['database'] = True
    data['backup'] = backup_age()
    failing = []
    if data['queue']['lag_s'] > config.getint(
            'isp', 'ready_queue_lag', default=QUEUE_LAG):
        failing.append('queue')
    if data['cron']['overdue_s'] > config.getint(
            'isp', 'ready_cron_overdue', default=CRON_OVERDUE):
        failing.append('cron')
    if data['worker'] == 'stalled':
        failing.append('worker')
    data['failing'] = failing
    data['ready'] = not failing
    return data


def _connectable(database_name):
    """Raise when no connection to the database is had within [isp]
    ready_connect seconds: Tryton's PostgreSQL pool waits 30 s for one,
    longer than a load balancer's check"""
    database = backend.Database(database_name).connect()
    connections = getattr(database, '_connpool', None)
    if connections is None:  # SQLite: a file, no pool
        return
    connection = connections.getconn(timeout=config.getfloat(
            'isp', 'ready_connect', default=CONNECT_WAIT))
    connections.putconn(connection)


def _read(pool):
    Queue = pool.get('ir.queue')
    Cron = pool.get('ir.cron')
    CronLog = pool.get('ir.cron.log')
    cursor = Transaction().connection.cursor()
    now = dt.datetime.now()
    queue = Queue.__table__()
    due = ((queue.dequeued_at == None)  # noqa: E711
        & ((queue.scheduled_at == None)  # noqa: E711
            | (queue.scheduled_at <= now)))
    cursor.execute(*queue.select(queue.name, Count(queue.id),
            Min(Coalesce(queue.scheduled_at, queue.enqueued_at)),
            where=due, group_by=[queue.name]))
    by_task, oldest = {}, None
    for name, count, first in cursor:
        by_task[name] = count
        oldest = first if oldest is None else min(oldest, first)
    cursor.execute(*queue.select(Max(queue.finished_at)))
    last_done, = cursor.fetchone()
    recent = now - dt.timedelta(minutes=5)
    cursor.execute(*queue.select(queue.dequeued_at, queue.finished_at,
            where=(queue.finished_at >= recent)
            & (queue.dequeued_at != None)))  # noqa: E711
    recent_max = max((_seconds(f - d) for d, f in cursor), default=0)
    pending = sum(by_task.values())

    cron = Cron.__table__()
    cursor.execute(*cron.select(Min(cron.next_call),
            where=(cron.active == True)  # noqa: E712
            & (cron.next_call != None)))  # noqa: E711
    next_call, = cursor.fetchone()
    log = CronLog.__table__()
    cursor.execute(*log.select(Max(log.ended)))
    last_run, = cursor.fetchone()

    if not config.getboolean('queue', 'worker', default=False):
        worker = 'in-process'
    elif not pending:
        worker = 'ok'
    elif last_done and _seconds(now - _datetime(last_done)) <= (
            config.getint('isp', 'ready_worker_idle', default=WORKER_IDLE)):
        worker = 'ok'
    else:
        worker = 'stalled'
    data = {
        'queue': {
            'pending': pending,
            'lag_s': _seconds(now - _datetime(oldest)) if oldest else 0,
            'recent_max_s': recent_max,
            },
        'queue_by_task': by_task,
        'cron': {
            'last_run_s': (_seconds(now - _datetime(last_run))
                if last_run else None),
            'overdue_s': (_seconds(now - _datetime(next_call))
                if next_call else 0),
            },
        'worker': worker,
        'routers': _routers(pool, cursor, now),
        }
    return data


def backup_age():
    """Seconds since the last good (restore-checked) backup was taken, from
    ``last-good.json`` of ``[isp] backup_dir`` (tools/backup.py); None
    without a directory or a good backup"""
    directory = config.get('isp', 'backup_dir', default='')
    if not directory:
        return None
    try:
        with open(os.path.join(directory, 'last-good.json')) as file:
            dumped = dt.datetime.fromisoformat(json.load(file)['dumped_at'])
        return _seconds(dt.datetime.now(dt.UTC) - dumped)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _datetime(value):
    "A timestamp as SQLite gives it (text) or PostgreSQL (datetime)"
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _routers(pool, cursor, now):
    "Active routers up and down (None without isp_network)"
    try:
        Router = pool.get('isp.router')
    except KeyError:
        return None
    router = Router.__table__()
    cursor.execute(*router.select(router.reachable, router.failures,
            router.last_sync_duration,
            where=router.active == True))  # noqa: E712
    up = down = 0
    longest = 0
    for reachable, failures, duration in cursor:
        if failures and not reachable:
            down += 1
        else:
            up += 1
        longest = max(longest, float(duration or 0))
    return {'up': up, 'down': down, 'last_sync_max_s': longest}


def _public(data):
    "What /ready shows: figures only"
    answer = {
        'status': 'ok' if data['ready'] else 'unavailable',
        'database': 'ok' if data['database'] else 'unreachable',
        'failing': data['failing'],
        }
    if data['database']:
        answer.update(queue=data['queue'], cron=data['cron'],
            worker=data['worker'])
        if data['routers'] is not None:
            answer['routers_down'] = data['routers']['down']
        if config.get('isp', 'backup_dir', default=''):
            answer['backup_age_s'] = data['backup']
    return answer


@app.route('/health', methods={'GET', 'HEAD'})
def health(request):
    "The process answers (no database is touched)"
    return _json(HTTPStatus.OK, {'status': 'ok'})


@app.route('/ready', methods={'GET', 'HEAD'})
def ready(request):
    "The database answers and the queue, cron and workers keep up"
    name = _database(request)
    if name is None:
        return _json(HTTPStatus.SERVICE_UNAVAILABLE,
            {'status': 'unavailable', 'failing': ['configuration']})
    if name is False:
        return _json(HTTPStatus.NOT_FOUND, {'status': 'unknown database'})
    data = snapshot(name)
    return _json(HTTPStatus.OK if data['ready']
        else HTTPStatus.SERVICE_UNAVAILABLE, _public(data))


def _allowed(request):
    token = config.get('isp', 'metrics_token', default='')
    if token:
        header = request.headers.get('Authorization', '')
        scheme, _, given = header.partition(' ')
        return scheme.lower() == 'bearer' and hmac.compare_digest(
            given.strip().encode('utf-8'), token.encode('utf-8'))
    try:
        return ipaddress.ip_address(request.remote_addr or '').is_loopback
    except ValueError:
        return False


@app.route('/metrics', methods={'GET'})
def metrics_(request):
    "Prometheus metrics: events of every process and database gauges"
    if not _allowed(request):
        return Response('forbidden', status=HTTPStatus.FORBIDDEN,
            content_type='text/plain')
    name = _database(request)
    if name is False:
        return Response('unknown database', status=HTTPStatus.NOT_FOUND,
            content_type='text/plain')
    data = snapshot(name) if name else None
    return Response(metrics.render(data), status=HTTPStatus.OK,
        content_type='text/plain; version=0.0.4; charset=utf-8',
        headers={'Cache-Control': 'no-store'})


# A size of their own keeps trytond from reading the request's user (a
# login attempt with any Authorization header sent, e.g. the metrics'
# bearer token).
for _route in [health, ready, metrics_]:
    _route.max_request_size = 0
