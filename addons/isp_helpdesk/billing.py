# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The helpdesk's figures on isp_billing's dashboard (docs/dashboard.md):
registered only when isp_billing is activated too."""
from sql.aggregate import Count
from trytond.model import fields
from trytond.pool import Pool, PoolMeta

from .ticket import OPEN_STATES


class Dashboard(metaclass=PoolMeta):
    __name__ = 'isp.report.dashboard'

    open_tickets = fields.Integer("Open Tickets", readonly=True,
        help="Helpdesk tickets not resolved yet (new, assigned, in "
        "progress or waiting on the customer).")
    breached_tickets = fields.Integer("Breached Tickets", readonly=True,
        help="Open tickets past their first response or resolution "
        "deadline.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._isp_export_fields = cls._isp_export_fields + [
            'open_tickets', 'breached_tickets']

    @classmethod
    def _dashboard_figures(cls, company, today):
        figures = super()._dashboard_figures(company, today)
        Ticket = Pool().get('isp.helpdesk.ticket')
        ticket = Ticket.__table__()
        open_ = (ticket.company == company) & ticket.state.in_(
            list(OPEN_STATES))
        figures['open_tickets'] = ticket.select(
            Count(ticket.id), where=open_)
        figures['breached_tickets'] = ticket.select(
            Count(ticket.id), where=open_ & (
                (ticket.response_escalation == 'breached')
                | (ticket.resolution_escalation == 'breached')))
        return figures
