# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The metrics of separate processes (trytond's server, cron and workers)
add up through the shared metrics directory (isp_base/metrics.py,
docs/operations.md): two processes count, a third one renders the sum."""
import os
import subprocess
import sys

COUNT = """
from trytond.modules.isp_base import metrics
metrics.NOTIFICATIONS.labels('sent').inc()
metrics.WEBHOOK_REFUSALS.labels('payment', 'midtrans', 'forbidden').inc()
"""
RENDER = """
from trytond.modules.isp_base import metrics
print(metrics.render().decode())
"""


def _python(code, directory):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    result = subprocess.run([sys.executable, '-c', code], env=env,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_processes_add_up(tmp_path):
    for _ in range(2):
        _python(COUNT, tmp_path)
    # one file per process and kind, named after the host and the pid
    assert len(list(tmp_path.glob('counter_*.db'))) == 2
    text = _python(RENDER, tmp_path)
    assert 'isp_notifications_total{outcome="sent"} 2.0' in text
    assert ('isp_webhook_refusals_total{provider="midtrans",'
        'reason="forbidden",route="payment"} 2.0') in text
