# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""/health, /ready and /metrics through trytond's WSGI application
(docs/operations.md)."""
import contextlib
import datetime as dt
import json
import os
import re
import tempfile

import trytond.config as config
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base import metrics

LEAKS = re.compile(r'Traceback|File "|\b[A-Z]\w*(Error|Exception)\b'
    r'|psycopg|sqlite3|Internal Server Error')


@contextlib.contextmanager
def settings(section='isp', **values):
    "Set configuration values for the block, restore them after"
    if not config.has_section(section):
        config.add_section(section)
    old = {k: config.get(section, k, default=None) for k in values}
    for key, value in values.items():
        config.set(section, key, str(value))
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                config._config.remove_option(section, key)
                config._cache_clear()
            else:
                config.set(section, key, value)


def sample(name, **labels):
    "The value of a metric of this process (0 when never observed)"
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


class OperationsRouteTestCase(RouteTestCase):
    "Health, readiness and metrics routes"
    module = 'isp_base'

    @classmethod
    def setUpDatabase(cls):
        Provider = Pool().get('isp.message.provider')
        provider, = Provider.create([{
                    'name': 'Fonnte', 'type': 'whatsapp_token',
                    'base_url': 'http://127.0.0.1:9', 'capacity': 60,
                    'timeout': 2, 'token': 'fonnte-token'}])
        cls.provider_id = provider.id
        cls.secret = provider.callback_secret
        cls._set_crons(dt.timedelta(hours=1))

    @classmethod
    def _set_crons(cls, delta):
        "Every active cron's next call `delta` from now (committed)"
        Cron = Pool().get('ir.cron')
        crons = Cron.search([])
        Cron.write(crons, {'next_call': dt.datetime.now() + delta})

    def _commit(self, func):
        with Transaction().start(DB_NAME, 0) as transaction:
            func()
            transaction.commit()

    def _get(self, path, remote='127.0.0.1', **kwargs):
        response = self.client().get(path,
            environ_base={'REMOTE_ADDR': remote}, **kwargs)
        self.assertNotRegex(response.get_data(as_text=True), LEAKS)
        return response

    def test_health(self):
        "/health answers without a database"
        with settings(health_databases='no_such_database'):
            response = self._get('/health')
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json, {'status': 'ok'})

    def test_ready(self):
        "/ready: 200 with the figures, 503 when a check fails"
        response = self._get('/ready')
        self.assertEqual(response.status_code, 503)  # nothing configured
        self.assertEqual(response.json['failing'], ['configuration'])
        with settings(health_databases=DB_NAME):
            response = self._get('/ready')
            self.assertEqual(response.status_code, 200, response.data)
            data = response.json
            self.assertEqual(data['status'], 'ok')
            self.assertEqual(data['database'], 'ok')
            self.assertEqual(data['queue']['pending'], 0)
            self.assertEqual(data['queue']['lag_s'], 0)
            self.assertEqual(data['worker'], 'in-process')
            self.assertEqual(data['failing'], [])

            # a database not in the list: 404, its name not echoed
            response = self._get('/ready?database=other_db')
            self.assertEqual(response.status_code, 404)
            self.assertNotIn('other_db', response.get_data(as_text=True))

            # the cron process stopped: its tasks are overdue
            self._commit(lambda: self._set_crons(-dt.timedelta(hours=2)))
            try:
                response = self._get('/ready')
                self.assertEqual(response.status_code, 503)
                self.assertEqual(response.json['failing'], ['cron'])
                self.assertGreater(response.json['cron']['overdue_s'], 7000)
            finally:
                self._commit(lambda: self._set_crons(dt.timedelta(hours=1)))

            # a task waiting for an hour, nobody running it
            def queue_task():
                Queue = Pool().get('ir.queue')
                Queue.create([{'name': 'test', 'data': {},
                            'enqueued_at': dt.datetime.now()
                            - dt.timedelta(hours=1)}])

            def clear():
                Queue = Pool().get('ir.queue')
                Queue.delete(Queue.search([('name', '=', 'test')]))
            self._commit(queue_task)
            try:
                response = self._get('/ready')
                self.assertEqual(response.status_code, 503)
                self.assertEqual(response.json['failing'], ['queue'])
                self.assertEqual(response.json['queue']['pending'], 1)
                self.assertGreater(response.json['queue']['lag_s'], 3500)
                with settings('queue', worker='True'):
                    response = self._get('/ready')
                self.assertEqual(response.json['worker'], 'stalled')
                self.assertEqual(response.json['failing'],
                    ['queue', 'worker'])
            finally:
                self._commit(clear)

    def test_ready_database_down(self):
        """A database that does not answer: 503 without the error's text,
        after [isp] ready_connect seconds (not the pool's 30 s)"""
        with settings(health_databases='isp_no_such_database',
                ready_connect='0.5'):
            response = self._get('/ready')
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json, {'status': 'unavailable',
                'database': 'unreachable', 'failing': ['database']})

    def test_metrics_access(self):
        "/metrics: loopback only without a token, the token with one"
        with settings(health_databases=DB_NAME):
            response = self._get('/metrics')
            self.assertEqual(response.status_code, 200)
            text = response.get_data(as_text=True)
            self.assertIn('isp_database_up 1.0', text)
            self.assertIn('isp_queue_lag_seconds', text)
            self.assertIn('isp_ready 1.0', text)
            for remote in ['10.1.2.3', '::ffff:10.1.2.3', 'x', '']:
                response = self._get('/metrics', remote=remote)
                self.assertEqual(response.status_code, 403, remote)
            self.assertEqual(self._get('/metrics', remote='::1').status_code,
                200)
            with settings(metrics_token='s3cret-scrape-token'):
                for headers in [{}, {'Authorization': 'Bearer wrong'},
                        {'Authorization': 'Basic czNjcmV0'},
                        {'Authorization': 'Bearer s3cret-scrape-tokenx'}]:
                    response = self._get('/metrics', headers=headers)
                    self.assertEqual(response.status_code, 403, headers)
                response = self._get('/metrics', headers={
                        'Authorization': 'Bearer s3cret-scrape-token'},
                    remote='10.1.2.3')
                self.assertEqual(response.status_code, 200)
                self.assertNotIn('s3cret', response.get_data(as_text=True))

    def test_webhook_counters(self):
        "A refused and an accepted webhook move their counters"
        url = '/%s/isp_base/notify/callback/%d/%s' % (
            DB_NAME, self.provider_id, self.secret)
        labels = {'route': 'message', 'provider': 'callback'}
        before = {
            'ok': sample('isp_webhook_requests_total', status='200',
                **labels),
            'forbidden': sample('isp_webhook_refusals_total',
                reason='forbidden', **labels),
            'malformed': sample('isp_webhook_refusals_total',
                reason='malformed body', **labels),
            'count': sample('isp_webhook_duration_seconds_count', **labels),
            }
        client = self.client()
        self.assertEqual(client.post(url + 'x', json={'id': '1'}).status_code,
            403)
        self.assertEqual(client.post(url, data=b'[1]',
                content_type='text/json').status_code, 400)
        response = client.post(url, json={'id': 'nothing', 'status': 'read'})
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(sample('isp_webhook_requests_total', status='200',
                **labels), before['ok'] + 1)
        self.assertEqual(sample('isp_webhook_refusals_total',
                reason='forbidden', **labels), before['forbidden'] + 1)
        self.assertEqual(sample('isp_webhook_refusals_total',
                reason='malformed body', **labels), before['malformed'] + 1)
        self.assertEqual(sample('isp_webhook_duration_seconds_count',
                **labels), before['count'] + 3)
        with settings(health_databases=DB_NAME):
            text = self._get('/metrics').get_data(as_text=True)
        self.assertIn('isp_webhook_refusals_total{provider="callback",'
            'reason="forbidden",route="message"}', text)

    def test_backup_age(self):
        "The last good backup's age in /ready and /metrics"
        with tempfile.TemporaryDirectory() as directory, \
                settings(health_databases=DB_NAME, backup_dir=directory):
            response = self._get('/ready')
            self.assertIsNone(response.json['backup_age_s'])  # none yet
            dumped = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
            with open(os.path.join(directory, 'last-good.json'), 'w') as file:
                json.dump({'dumped_at': dumped.isoformat()}, file)
            response = self._get('/ready')
            self.assertEqual(response.status_code, 200)
            self.assertAlmostEqual(response.json['backup_age_s'], 30 * 3600,
                delta=60)
            text = self._get('/metrics').get_data(as_text=True)
            # the value as prometheus_client writes it (108000.0, or 1.08e+05
            # in other versions): read it back
            value, = [float(line.split()[-1]) for line in text.splitlines()
                if line.startswith('isp_backup_last_good_age_seconds ')]
            self.assertAlmostEqual(value, 30 * 3600, delta=60)
