# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The helpdesk's open and breached tickets on isp_billing's dashboard
(isp_helpdesk registers them only with isp_billing), per branch, as each
branch's administrator, and in the export."""
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
                    self.assertEqual(header[-2:],
                        ["Open Tickets", "Breached Tickets"])
                    self.assertEqual(tuple(rows[0][-2:]), expected)
