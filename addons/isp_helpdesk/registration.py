# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Installation work orders: a subscriber's registration opens an
installation ticket, assigned to the branch's installation team; when its
category says so, the service waits for it to be done to be activated."""
from trytond.pool import Pool, PoolMeta


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    @classmethod
    def register_waits_installation(cls, services):
        "The services whose work order's category activates on completion"
        pool = Pool()
        Category = pool.get('isp.helpdesk.category')
        waiting = super().register_waits_installation(services)
        categories = Category.installation_categories(
            {s.company for s in services})
        return waiting + [s for s in services if s not in waiting
            and s.company.id in categories
            and categories[s.company.id].activate_on_completion]

    @classmethod
    def register_work_order(cls, services):
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        super().register_work_order(services)
        Ticket.open_installations(services)
