# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""What isp_helpdesk adds to isp_billing when both are activated: the open
and breached tickets on the dashboard, per branch, as each branch's
administrator, in the dashboard's export; the export of the SLA compliance
report."""
import datetime as dt
import unittest

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_helpdesk.tests.helpdesk_setup import (
    as_user,
    local,
    two_branches,
)

ADMIN = 'group_isp_branch_admin'
CS = 'group_isp_customer_service'


class HelpdeskDashboardTestCase(unittest.TestCase):
    "Test the helpdesk figures of the dashboard"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_multicompany')

    @with_transaction()
    def test_open_and_breached_tickets(self):
        pool = Pool()
        Ticket = pool.get('isp.helpdesk.ticket')
        Dashboard = pool.get('isp.report.dashboard')
        data = two_branches()
        monday = local('Asia/Jakarta', 2026, 12, 7, 9, 0)
        for code, count in [('bdg', 3), ('nbo', 1)]:
            branch = data[code]
            with as_user(branch['users'][CS], branch['company'], monday):
                Ticket.create([{
                            'company': branch['company'].id,
                            'subscriber': branch['subscriber'].id,
                            'category': branch['internet'].id,
                            'channel': 'phone', 'subject': "No internet %d"
                            % i} for i in range(count)])
        bdg = data['bdg']
        first, second, third = Ticket.search(
            [('company', '=', bdg['company'].id)], order=[('id', 'ASC')])
        with Transaction().set_context(_isp_helpdesk_now=monday):
            Ticket.resolve([third])
        # the first response deadline (10:00) of the open ones is past
        with Transaction().set_context(
                _isp_helpdesk_now=monday + dt.timedelta(hours=2)):
            Ticket.escalate()
        self.assertEqual(Ticket(first).response_escalation, 'breached')

        for code, expected in [('bdg', (2, 2)), ('nbo', (1, 0))]:
            with self.subTest(branch=code):
                branch = data[code]
                with as_user(branch['users'][ADMIN], branch['company']):
                    row, = Dashboard.search([])
                    self.assertEqual(row.company, branch['company'])
                    self.assertEqual(
                        (row.open_tickets, row.breached_tickets), expected)
                    header, rows = Dashboard.isp_export_rows([row])
                    exported = dict(zip(header, rows[0], strict=True))
                    self.assertEqual((exported["Open Tickets"],
                            exported["Breached Tickets"]), expected)

        # the SLA compliance report through isp_billing's export wizard
        Compliance = pool.get('isp.helpdesk.sla.compliance')
        Export = pool.get('isp.report.export', type='wizard')
        Ticket.rate(Ticket(third), 5)
        with as_user(bdg['users'][ADMIN], bdg['company']), \
                Transaction().set_context(active_model=Compliance.__name__,
                    active_ids=[], active_id=None):
            session_id, _, _ = Export.create()
            result = Export.execute(
                session_id, {'start': {'format': 'csv'}}, 'export')
            Export.delete(session_id)
        values = result['view']['defaults']
        self.assertEqual(values['filename'],
            'isp_helpdesk_sla_compliance.csv')
        lines = bytes(values['file']).decode().splitlines()
        self.assertTrue(lines[0].startswith(
                'Company,Category,Priority,Technician,Tickets,Backlog,'))
        self.assertTrue(lines[0].endswith('Rated,Average Rating'))
        self.assertEqual(len(lines), 1 + len({
                    t.assignee for t in Ticket.search([
                            ('company', '=', bdg['company'].id)])}))
        self.assertIn(',1,5.0', ''.join(lines[1:]))
