# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""What isp_helpdesk adds to isp_billing when both are activated: the open
and breached tickets on the dashboard (docs/dashboard.md) and the CSV/XLSX
export of the SLA compliance report with isp_billing's report export."""
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


class SlaCompliance(metaclass=PoolMeta):
    __name__ = 'isp.helpdesk.sla.compliance'

    #: the exported columns, in order (isp_billing's report export)
    _isp_export_fields = [
        'company', 'category', 'priority', 'user', 'tickets', 'backlog',
        'responded', 'response_met', 'response_rate', 'response_minutes',
        'resolved', 'resolution_met', 'resolution_rate',
        'resolution_minutes', 'breached', 'rated', 'rating']

    @classmethod
    def isp_export_rows(cls, records):
        from trytond.modules.isp_billing.reporting import ReportMixin
        return ReportMixin.isp_export_rows.__func__(cls, records)

    @classmethod
    def isp_export(cls, records, format_='csv'):
        from trytond.modules.isp_billing.reporting import ReportMixin
        return ReportMixin.isp_export.__func__(cls, records, format_)
