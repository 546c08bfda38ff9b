# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Prometheus metrics of the ISP suite (prometheus_client).

Two kinds, both served by ``GET /metrics`` (isp_base/health.py):

- events counted where they happen (webhooks in the server processes,
  queue tasks, router syncs, billing runs and notifications in the worker
  and cron processes): counters and histograms of this module.  trytond's
  server, cron and workers are separate processes: with a metrics
  directory (``[isp] metrics_dir`` in the configuration, or the
  ``PROMETHEUS_MULTIPROC_DIR`` environment variable) every process writes
  its values there (prometheus_client's multiprocess mode, one file per
  host and process id) and a scrape of any server process adds them all
  up.  Without one, each process counts for itself and ``/metrics`` shows
  only the serving process's events.
- states read from the database at scrape time (queue depth and lag,
  routers up and down, last cron run): `DatabaseCollector`, truthful
  whatever process answers.
"""
import os
import socket
import time
from contextlib import contextmanager
from functools import wraps

import trytond.config as config
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import HTTPException

__all__ = ['REGISTRY', 'observe_webhook', 'refused', 'WEBHOOK_REQUESTS',
    'WEBHOOK_REFUSALS', 'WEBHOOK_DURATION', 'QUEUE_TASK_DURATION',
    'ROUTER_SYNC_DURATION', 'ROUTER_SYNC_TOTAL', 'BILLING_RUNS',
    'BILLING_DURATION', 'NOTIFICATIONS', 'render']


def metrics_dir():
    "The multiprocess directory, or None"
    return (config.get('isp', 'metrics_dir', default='')
        or os.environ.get('PROMETHEUS_MULTIPROC_DIR') or None)


_DIR = metrics_dir()
if _DIR:
    os.makedirs(_DIR, exist_ok=True)
    # Containers sharing the directory may have the same process ids: the
    # host name keeps their files apart.
    _HOST = socket.gethostname()
    values.ValueClass = values.MultiProcessValue(
        process_identifier=lambda: '%s-%d' % (_HOST, os.getpid()))
    os.environ.setdefault('PROMETHEUS_MULTIPROC_DIR', _DIR)

#: The registry of this process's metrics (not prometheus_client's global
#: one: no process or platform collectors, which multiprocess mode cannot
#: add up).
REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOK_REQUESTS = Counter('isp_webhook_requests',
    "Webhook requests answered, by route, provider and HTTP status",
    ['route', 'provider', 'status'], registry=REGISTRY)
WEBHOOK_REFUSALS = Counter('isp_webhook_refusals',
    "Webhook requests refused (4xx/5xx), by route, provider and reason",
    ['route', 'provider', 'reason'], registry=REGISTRY)
WEBHOOK_DURATION = Histogram('isp_webhook_duration_seconds',
    "Time to answer a webhook", ['route', 'provider'], registry=REGISTRY,
    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
QUEUE_TASK_DURATION = Histogram('isp_queue_task_duration_seconds',
    "Run time of ir.queue tasks, by model and method", ['task', 'outcome'],
    registry=REGISTRY,
    buckets=(.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 300))
ROUTER_SYNC_DURATION = Histogram('isp_router_sync_duration_seconds',
    "Time a router took to read back and converge", ['kind'],
    registry=REGISTRY, buckets=(.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120))
ROUTER_SYNC_TOTAL = Counter('isp_router_sync',
    "Router syncs and provisionings, by kind and reachability",
    ['kind', 'reachable'], registry=REGISTRY)
BILLING_RUNS = Counter('isp_billing_runs',
    "Billing runs (isp.service.isp_bill_due), by outcome", ['outcome'],
    registry=REGISTRY)
BILLING_DURATION = Histogram('isp_billing_run_duration_seconds',
    "Time of a billing run", registry=REGISTRY,
    buckets=(.1, .5, 1, 5, 10, 30, 60, 300, 900, 3600))
NOTIFICATIONS = Counter('isp_notifications',
    "Notifications done with, by outcome (sent or failed)",
    ['outcome'], registry=REGISTRY)


def refused(response, reason):
    """Mark `response` as a refusal for `reason` (a short constant text)
    for the webhook metrics; return it"""
    response.isp_metric_reason = reason
    return response


def observe_webhook(route, provider='', providers=None):
    """Decorate a webhook endpoint: count its answers by status, its
    refusals by reason (`refused`, else the HTTP status) and time it.
    `provider` is the provider's label, or when `providers` is given the
    name of the view argument holding it (counted only when it is one of
    `providers`: the label set stays small)."""
    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            label = provider
            if providers is not None:
                label = kwargs.get(provider)
                if label not in providers:
                    label = 'unknown'
            started = time.monotonic()
            status, reason = 500, 'error'
            try:
                response = func(request, *args, **kwargs)
                status = getattr(response, 'status_code', 200)
                reason = getattr(response, 'isp_metric_reason', None)
                return response
            except HTTPException as exception:
                status = exception.code or 500
                response = exception.response
                reason = getattr(response, 'isp_metric_reason', None)
                raise
            finally:
                WEBHOOK_DURATION.labels(route, label).observe(
                    time.monotonic() - started)
                WEBHOOK_REQUESTS.labels(route, label, str(status)).inc()
                if status >= 400:
                    WEBHOOK_REFUSALS.labels(route, label,
                        reason or _status_reason(status)).inc()
        return wrapper
    return decorator


@contextmanager
def observe_run(counter, histogram=None):
    """Count a run of something in `counter` by outcome (ok, error) and
    time it in `histogram`"""
    started, outcome = time.monotonic(), 'error'
    try:
        yield
        outcome = 'ok'
    finally:
        counter.labels(outcome).inc()
        if histogram is not None:
            histogram.observe(time.monotonic() - started)


def _status_reason(status):
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return str(status)


class DatabaseCollector:
    "Gauges read from a database at scrape time (see health.snapshot)"

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def collect(self):
        snap = self.snapshot
        up = GaugeMetricFamily('isp_database_up',
            "1 when the database answered the scrape")
        up.add_metric([], 1 if snap.get('database') else 0)
        yield up
        if not snap.get('database'):
            return
        pending = GaugeMetricFamily('isp_queue_pending',
            "ir.queue tasks due and not started, by task", labels=['task'])
        for task, count in sorted(snap['queue_by_task'].items()):
            pending.add_metric([task], count)
        yield pending
        yield GaugeMetricFamily('isp_queue_lag_seconds',
            "Age of the oldest due ir.queue task not started",
            value=snap['queue']['lag_s'])
        yield GaugeMetricFamily('isp_queue_recent_task_seconds',
            "Longest ir.queue task run in the last 5 minutes (from the "
            "database)", value=snap['queue']['recent_max_s'])
        if snap['cron']['last_run_s'] is not None:
            yield GaugeMetricFamily('isp_cron_last_run_age_seconds',
                "Seconds since a cron task last ended",
                value=snap['cron']['last_run_s'])
        yield GaugeMetricFamily('isp_cron_overdue_seconds',
            "How late the most overdue active cron task is",
            value=snap['cron']['overdue_s'])
        routers = snap.get('routers')
        if routers is not None:
            gauge = GaugeMetricFamily('isp_routers',
                "Active routers by reachability", labels=['state'])
            gauge.add_metric(['up'], routers['up'])
            gauge.add_metric(['down'], routers['down'])
            yield gauge
            yield GaugeMetricFamily('isp_router_last_sync_max_seconds',
                "Longest last sync of an active router",
                value=routers['last_sync_max_s'])
        if snap.get('backup') is not None:
            yield GaugeMetricFamily('isp_backup_last_good_age_seconds',
                "Age of the last backup whose restore check passed",
                value=snap['backup'])
        yield GaugeMetricFamily('isp_ready',
            "1 when /ready would answer 200", value=1 if snap['ready'] else 0)


def render(snapshot=None):
    "The text exposition of every metric (all processes when shared)"
    if _DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=_DIR)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if snapshot is not None:
        registry.register(DatabaseCollector(snapshot))
    return generate_latest(registry)


class _Forward:
    "This process's registry as a collector of another registry"

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()
