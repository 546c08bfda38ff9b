# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Installation work orders: a subscriber's registration opens an
installation ticket, assigned to the branch's installation team."""
from trytond.pool import Pool, PoolMeta


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    @classmethod
    def register_work_order(cls, services):
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        super().register_work_order(services)
        Ticket.open_installations(services)
