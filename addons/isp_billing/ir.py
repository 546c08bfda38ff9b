# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.pool import PoolMeta


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('isp.service|isp_bill_due', "Bill Services"),
                ('account.dunning|isp_run', "Run Reminders and Isolation"),
                ])


class Message(metaclass=PoolMeta):
    __name__ = 'isp.message'

    @classmethod
    def _get_origins(cls):
        return super()._get_origins() + ['account.invoice']
