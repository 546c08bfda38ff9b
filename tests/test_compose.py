# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""docker-compose.yml describes the production stack and is valid for the
Compose specification (checked offline: no Docker engine runs here)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPOSE = os.path.join(ROOT, 'docker-compose.yml')
ENV = dict(os.environ, POSTGRES_PASSWORD='not-a-secret-only-for-validation')


def test_compose_schema():
    "The file validates against the vendored compose-spec JSON schema"
    checker = os.path.join(
        os.path.dirname(sys.executable), 'check-jsonschema')
    if not os.path.exists(checker):
        checker = shutil.which('check-jsonschema')
    result = subprocess.run(
        [checker, '--builtin-schema', 'vendor.compose-spec', COMPOSE],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which('docker-compose'),
    reason="Debian's docker-compose is installed by scripts/test")
def test_compose_config():
    "docker-compose resolves the file, its anchors and variables"
    result = subprocess.run(
        ['docker-compose', '-f', COMPOSE, 'config', '-q'],
        capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_compose_stack():
    "The stack has the services the design asks for, with no secret in it"
    with open(COMPOSE) as fp:
        text = fp.read()
    stack = yaml.safe_load(text)
    services = stack['services']
    assert {'postgres', 'trytond', 'trytond-cron', 'trytond-worker',
        'freeradius'} <= set(services)
    assert services['postgres']['image'].startswith('postgres:15')
    assert 'trytond-worker' in json.dumps(services['trytond-worker'])
    assert services['trytond-worker']['deploy']['replicas'] >= 1
    env = services['trytond']['environment']
    assert env['TRYTOND_WEB__ROOT'] == '/opt/sao'
    assert '${POSTGRES_PASSWORD' in env['TRYTOND_DATABASE__URI']


def test_compose_operations():
    """Health checks on /health, the metrics directory shared by the
    server, cron and workers, and a backup service with its own check
    (docs/operations.md)"""
    with open(COMPOSE) as fp:
        stack = yaml.safe_load(fp)
    services = stack['services']
    check = ' '.join(services['trytond']['healthcheck']['test'])
    assert '127.0.0.1:8000/health' in check
    for name in ['trytond', 'trytond-cron', 'trytond-worker']:
        service = services[name]
        assert 'metrics:/var/lib/isp-metrics' in service['volumes'], name
        env = service['environment']
        assert env['TRYTOND_ISP__METRICS_DIR'] == '/var/lib/isp-metrics'
        assert env['TRYTOND_ISP__HEALTH_DATABASES']
        # the token comes from the environment, never the file
        assert env['TRYTOND_ISP__METRICS_TOKEN'].startswith('${')
    backup = services['backup']
    assert 'tools.backup run' in ' '.join(backup['command'])
    assert 'check-age' in backup['healthcheck']['test']
    assert 'backups:/var/backups/isp' in backup['volumes']
    assert backup['environment']['PGPASSWORD'].startswith(
        '${POSTGRES_PASSWORD')
    assert {'metrics', 'backups'} <= set(stack['volumes'])
    with open(os.path.join(ROOT, 'Dockerfile')) as fp:
        dockerfile = fp.read()
    assert 'postgresql-client-15' in dockerfile
    assert 'tools/backup.py' in dockerfile
