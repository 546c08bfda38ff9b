# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""ir.queue timed for the metrics (isp_base/metrics.py)."""
import time

from trytond.pool import PoolMeta

from . import metrics


class Queue(metaclass=PoolMeta):
    __name__ = 'ir.queue'

    def run(self):
        "Run the task and time it by model and method"
        data = self.data or {}
        task = '%s.%s' % (data.get('model'), data.get('method'))
        started, outcome = time.monotonic(), 'error'
        try:
            result = super().run()
            outcome = 'ok'
            return result
        finally:
            metrics.QUEUE_TASK_DURATION.labels(task, outcome).observe(
                time.monotonic() - started)
