# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Reports and dashboard figures on known data: two branches, services with
plans, locations and routers activated, isolated and terminated across
months, posted invoices, a credit note and payments.

Jakarta (IDR), as of 30 April 2027:

=========  ========  ======  =======  ==========  ==========  ===========
service    location  router  plan     activated   terminated  state
=========  ========  ======  =======  ==========  ==========  ===========
1 Budi     KCB       CKP     Home 20  10 January              active
2 Siti     KCB       BDG     Home 50  20 January              isolated
3 Agus     BDG       BDG     Home 20  15 February 20 March    terminated
4 Dewi     BDG       CKP     Home 50  5 March                 active
=========  ========  ======  =======  ==========  ==========  ===========

Invoices (date, amount, due): 1: 10/1 300,000 20/1 paid 15/1; 1/2 300,000
11/2 paid 5/2; 1/3 300,000 11/3 paid 100,000 on 15/3; 25/4 300,000 5/5.
2: 20/1 450,000 25/1; 1/2 450,000 11/2; 1/3 450,000 11/3.  3: 15/2 300,000
25/2; credit note 20/3 -100,000 20/3.  4: 5/3 450,000 15/3; 1/4 450,000
11/4.  Nairobi (KES): one service activated 1 February, invoiced 3,000.
"""
import csv
import datetime as dt
import io
import os
import unittest
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from lxml import etree
from trytond.model import ModelSingleton
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin

from .payment_setup import SETUP_TABLES, create_branch
from .reporting_tools import (
    create_location,
    create_plan,
    create_router,
    create_service_invoices,
    create_services,
    date,
    pay,
)

AS_OF = date(4, 30)
CONTEXT = {
    'from_date': date(1, 1), 'to_date': AS_OF, 'date': AS_OF}


def setup_data():
    "The two branches, their services and invoices, and three users"
    pool = Pool()
    User = pool.get('res.user')
    Group = pool.get('res.group')
    ModelData = pool.get('ir.model.data')
    jakarta = create_branch("Jakarta", 'IDR', today=date(6, 1))
    nairobi = create_branch("Nairobi", 'KES', today=date(6, 1))

    with Transaction().set_context(company=jakarta.id):
        home20 = create_plan(jakarta, "Home 20", 300000, 'home-20')
        home50 = create_plan(jakarta, "Home 50", 450000, 'home-50')
        kcb = create_location(jakarta, 'KCB', "Kecubung")
        bdg = create_location(jakarta, 'BDG', "Bandung")
        ckp = create_router(jakarta, 'CKP', "Cikopo")
        bdr = create_router(jakarta, 'BDG', "Bandung Tower")
        budi, siti, agus, dewi = create_services(jakarta, [
                ("Budi", kcb, ckp, home20, date(1, 10), None, 'active'),
                ("Siti", kcb, bdr, home50, date(1, 20), None, 'isolated'),
                ("Agus", bdg, bdr, home20, date(2, 15), date(3, 20),
                    'terminated'),
                ("Dewi", bdg, ckp, home50, date(3, 5), None, 'active'),
                ])
        (budi_jan, siti_jan, budi_feb, siti_feb, agus_feb, budi_mar,
            siti_mar, dewi_mar, agus_credit, dewi_apr, budi_apr) = (
            create_service_invoices(jakarta, [
                    (budi, date(1, 10), 300000, date(1, 20)),
                    (siti, date(1, 20), 450000, date(1, 25)),
                    (budi, date(2, 1), 300000, date(2, 11)),
                    (siti, date(2, 1), 450000, date(2, 11)),
                    (agus, date(2, 15), 300000, date(2, 25)),
                    (budi, date(3, 1), 300000, date(3, 11)),
                    (siti, date(3, 1), 450000, date(3, 11)),
                    (dewi, date(3, 5), 450000, date(3, 15)),
                    (agus, date(3, 20), -100000, date(3, 20)),
                    (dewi, date(4, 1), 450000, date(4, 11)),
                    (budi, date(4, 25), 300000, date(5, 5)),
                    ]))
        pay(budi_jan, 300000, date(1, 15))
        pay(budi_feb, 300000, date(2, 5))
        pay(budi_mar, 100000, date(3, 15))

    with Transaction().set_context(company=nairobi.id):
        home_ke = create_plan(nairobi, "Home KE", 3000, 'home-ke')
        nbo = create_location(nairobi, 'NBO', "Nairobi")
        wst = create_router(nairobi, 'WST', "Westlands")
        kamau, = create_services(nairobi, [
                ("Kamau", nbo, wst, home_ke, date(2, 1), None, 'active')])
        create_service_invoices(nairobi, [
                (kamau, date(2, 1), 3000, date(2, 11))])

    def user(login, group, companies, filter_='one'):
        group = Group(ModelData.get_id('isp_base', group))
        user, = User.create([{
                    'name': login, 'login': login,
                    'groups': [('add', [group.id])],
                    'companies': [('add', [c.id for c in companies])],
                    'company': companies[0].id,
                    'company_filter': filter_,
                    }])
        return user
    return {
        'jakarta': jakarta, 'nairobi': nairobi,
        'plans': (home20, home50, home_ke),
        'locations': (kcb, bdg, nbo), 'routers': (ckp, bdr, wst),
        'services': (budi, siti, agus, dewi, kamau),
        'finance': user(
            'finance', 'group_isp_finance', [jakarta]),
        'branch_admin': user(
            'nairobi_admin', 'group_isp_branch_admin', [nairobi]),
        'head_admin': user(
            'head', 'group_isp_head_admin', [jakarta, nairobi], 'all'),
        'customer_service': user(
            'cs', 'group_isp_customer_service', [jakarta]),
        }


def as_user(user, company=None, **context):
    "Act as `user` with access checks (rules apply)"
    context.setdefault('company', company.id if company else None)
    transaction = Transaction()
    return transaction.set_user(user.id), transaction.set_context(
        _check_access=True, **context)


class ReportingTestCase(ClassSetupMixin, unittest.TestCase):
    "Test the reports and the dashboard"
    setup_modules = ['isp_billing']
    setup_lock_tables = SETUP_TABLES

    @classmethod
    def setup_class_data(cls):
        return setup_data()

    def search(self, model, **context):
        Model = Pool().get(model)
        with Transaction().set_context(**{**CONTEXT, **context}):
            return Model.search([])

    @with_transaction()
    def test_aged_receivables(self):
        "Aged receivables per subscriber as of a date"
        data = self.class_data()
        jakarta = data['jakarta']
        rows = self.search(
            'isp.report.aged_receivable', company=jakarta.id)
        figures = {r.customer_id: (r.party.name, r.not_due, r.days_1_30,
                r.days_31_60, r.days_61_90, r.days_over_90, r.overdue,
                r.total) for r in rows}
        self.assertEqual(figures, {
                # 31-60: 300,000 due 11/3 less 100,000 paid 15/3
                'KCB-CKP010127-001': (
                    "Budi", 300000, 0, 200000, 0, 0, 200000, 500000),
                'KCB-BDG010127-002': (
                    "Siti", 0, 0, 450000, 450000, 450000, 1350000,
                    1350000),
                # the credit note (20/3) is 41 days old
                'BDG-BDG010127-003': (
                    "Agus", 0, 0, -100000, 300000, 0, 200000, 200000),
                'BDG-CKP010127-004': (
                    "Dewi", 0, 450000, 450000, 0, 0, 900000, 900000),
                })
        self.assertEqual(rows[0].currency, jakarta.currency)

        # on 20 February: March is not there yet, paid lines are gone
        rows = self.search('isp.report.aged_receivable',
            company=jakarta.id, date=date(2, 20))
        figures = {r.party.name: (r.not_due, r.days_1_30, r.days_31_60,
                r.total) for r in rows}
        self.assertEqual(figures, {
                "Siti": (0, 900000, 0, 900000),
                "Agus": (300000, 0, 0, 300000),
                })

    @with_transaction()
    def test_revenue(self):
        "Revenue per month by plan, location and router"
        data = self.class_data()
        jakarta = data['jakarta']
        home20, home50, _ = data['plans']
        kcb, bdg, _ = data['locations']
        ckp, bdr, _ = data['routers']

        def figures(model, name):
            return {(r.month.month, getattr(r, name)): (r.revenue, r.services)
                for r in self.search(model, company=jakarta.id)}
        self.assertEqual(figures('isp.report.revenue.plan', 'plan'), {
                (1, home20): (300000, 1), (1, home50): (450000, 1),
                (2, home20): (600000, 2), (2, home50): (450000, 1),
                # the credit note counts negative
                (3, home20): (200000, 2), (3, home50): (900000, 2),
                (4, home20): (300000, 1), (4, home50): (450000, 1),
                })
        self.assertEqual(
            figures('isp.report.revenue.location', 'location'), {
                (1, kcb): (750000, 2),
                (2, kcb): (750000, 2), (2, bdg): (300000, 1),
                (3, kcb): (750000, 2), (3, bdg): (350000, 2),
                (4, kcb): (300000, 1), (4, bdg): (450000, 1),
                })
        self.assertEqual(figures('isp.report.revenue.router', 'router'), {
                (1, ckp): (300000, 1), (1, bdr): (450000, 1),
                (2, ckp): (300000, 1), (2, bdr): (750000, 2),
                (3, ckp): (750000, 2), (3, bdr): (350000, 2),
                (4, ckp): (750000, 2),
                })
        rows = self.search('isp.report.revenue.plan', company=jakarta.id,
            from_date=date(2, 1), to_date=date(2, 28))
        self.assertEqual(sorted(r.revenue for r in rows), [450000, 600000])

    @with_transaction()
    def test_monthly(self):
        "MRR, ARPU, growth, churn, overdue and isolated per month"
        data = self.class_data()
        jakarta = data['jakarta']
        rows = self.search('isp.report.monthly', company=jakarta.id)
        figures = [(r.month, r.mrr, r.revenue, r.subscribers, r.arpu,
                r.services_start, r.new, r.terminated, r.churn_rate,
                r.services_end, r.overdue, r.isolated) for r in rows]
        self.assertEqual(figures, [
                (date(4, 1), 1200000, 750000, 3, 400000,
                    3, 0, 0, Decimal('0'), 3, 2650000, 1),
                (date(3, 1), 1200000, 1100000, 3, 400000,
                    3, 1, 1, Decimal('0.3333'), 3, 2200000, None),
                (date(2, 1), 1050000, 1050000, 3, 350000,
                    2, 1, 0, Decimal('0'), 3, 1200000, None),
                (date(1, 1), 750000, 750000, 2, 375000,
                    0, 2, 0, None, 2, 450000, None),
                ])
        # the overdue amount of the month of the date is the aged one
        aged = self.search('isp.report.aged_receivable', company=jakarta.id)
        self.assertEqual(sum(r.overdue for r in aged), rows[0].overdue)

    @with_transaction()
    def test_dashboard(self):
        "The dashboard's current figures per branch"
        data = self.class_data()
        jakarta, nairobi = data['jakarta'], data['nairobi']
        budi, siti, agus, dewi, kamau = data['services']
        ckp, bdr, wst = data['routers']
        pool = Pool()
        Service = pool.get('isp.service')
        Router = pool.get('isp.router')
        service, router = Service.__table__(), Router.__table__()
        cursor = Transaction().connection.cursor()
        # as a sync leaves them: the terminated one's last status is ignored
        cursor.execute(*service.update([service.live_status], ['online'],
                where=service.id.in_([budi.id, siti.id, agus.id])))
        now = dt.datetime(2027, 4, 30, 8, 0)
        cursor.execute(*router.update(
                [router.reachable, router.last_contact], [False, now],
                where=router.id == bdr.id))
        cursor.execute(*router.update(
                [router.reachable, router.last_contact], [True, now],
                where=router.id == ckp.id))
        rows = self.search('isp.report.dashboard')
        self.assertEqual({r.company: (r.online, r.routers_down,
                    r.revenue_year) for r in rows}, {
                jakarta: (2, 1, 3650000), nairobi: (0, 0, 3000)})
        figures = {r.company: (r.date, r.mrr, r.arpu, r.revenue,
                r.revenue_today, r.overdue, r.active_services, r.isolated,
                r.new, r.terminated, r.subscribers) for r in rows}
        self.assertEqual(figures[jakarta], (AS_OF, 1200000, 400000,
                750000, 0, 2650000, 2, 1, 0, 0, 3))
        self.assertEqual(figures[nairobi], (AS_OF, 3000, 3000, 0, 0,
                3000, 1, 0, 0, 0, 1))
        rows = self.search('isp.report.dashboard', date=date(4, 25))
        figures = {r.company: (r.revenue_today, r.overdue) for r in rows}
        self.assertEqual(figures[jakarta], (300000, 2650000))

    @with_transaction()
    def test_arpu(self):
        "ARPU = MRR / paying subscribers: a free plan's subscriber counts"
        data = self.class_data()
        nairobi = data['nairobi']
        with Transaction().set_context(company=nairobi.id):
            free = create_plan(nairobi, "Staff", 0, 'staff')
            krn = create_location(nairobi, 'KRN', "Karen")
            tower = create_router(nairobi, 'KRN', "Karen Tower")
            create_services(nairobi, [
                    ("Wanjiru", krn, tower, free, date(3, 1), None,
                        'active')])
        for model in ['isp.report.dashboard', 'isp.report.monthly']:
            row, = [r for r in self.search(model, company=nairobi.id)
                if r.company == nairobi
                and getattr(r, 'month', date(4, 1)) == date(4, 1)]
            self.assertEqual(
                (row.mrr, row.subscribers, row.paying_subscribers, row.arpu),
                (3000, 2, 1, 3000))

    @with_transaction()
    def test_dashboard_charts(self):
        """The charts' months: twelve per branch of the user whatever the
        context company, ordered by month; the board picks a branch"""
        pool = Pool()
        Month = pool.get('isp.report.dashboard.month')
        data = self.class_data()
        jakarta, nairobi = data['jakarta'], data['nairobi']
        user_cm, context_cm = as_user(
            data['head_admin'], nairobi, date=AS_OF)
        with user_cm, context_cm:
            rows = Month.search([('company', '=', jakarta.id)])
            self.assertEqual([r.month for r in rows],
                [date(5, 1, 2026) + relativedelta(months=i)
                    for i in range(12)])
            march = [r for r in rows if r.month == date(3, 1)][0]
            self.assertEqual(
                (march.mrr, march.revenue, march.new, march.terminated,
                    march.churn_percent, march.subscribers),
                (1200000, 1100000, 1, 1, Decimal('33.33'), 3))
            self.assertEqual(len(Month.search([])), 24)
        user_cm, context_cm = as_user(
            data['branch_admin'], nairobi, date=AS_OF)
        with user_cm, context_cm:
            self.assertEqual({r.company for r in Month.search([])},
                {nairobi})
            self.assertEqual(Month.search([('company', '=', jakarta.id)]),
                [])

    @with_transaction()
    def test_dashboard_board(self):
        """ISP > Dashboard opens a board: the figures of each branch and
        the charts of the branch selected there, else the current one"""
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        Action = pool.get('ir.action.act_window')
        Menu = pool.get('ir.ui.menu')
        menu = Menu(ModelData.get_id('isp_billing', 'menu_dashboard'))
        board, = Action.search([('action', '=', menu.action.id)])
        self.assertFalse(board.res_model)
        (view_id, view_type), = board.views
        self.assertEqual(view_type, 'board')
        arch = etree.fromstring(pool.get('ir.ui.view')(view_id).arch)
        names = [a.get('name') for a in arch.iter('action')]
        self.assertEqual(names[0], 'isp_billing.act_dashboard')
        self.assertEqual(len(names), 6)
        figures = Action.get('isp_billing.act_dashboard')
        self.assertEqual(figures['views'][0][1], 'tree')
        for name in names[1:]:
            chart = Action.get(name)
            self.assertEqual(chart['res_model'],
                'isp.report.dashboard.month')
            self.assertEqual([v[1] for v in chart['views']], ['graph'])

    @with_transaction()
    def test_dashboard_chart_series(self):
        """Each chart draws one series per branch of the user (amounts in
        different currencies never added up), selected by company"""
        pool = Pool()
        Month = pool.get('isp.report.dashboard.month')
        ModelData = pool.get('ir.model.data')
        data = self.class_data()
        jakarta, nairobi = data['jakarta'], data['nairobi']

        def series(user, company):
            user_cm, context_cm = as_user(user, company)
            with user_cm, context_cm:
                view = Month.fields_view_get(ModelData.get_id(
                        'isp_billing', 'dashboard_month_view_graph_mrr'),
                    view_type='graph')
            self.assertIn('company', view['fields'])
            return [(f.get('key'), f.get('string'),
                    PYSONDecoder({'company': jakarta.id}).decode(
                        f.get('domain')))
                for f in etree.fromstring(view['arch']).iter('field')
                if f.get('name') == 'mrr']
        self.assertEqual(series(data['head_admin'], jakarta), [
                ('mrr_%d' % jakarta.id, "Jakarta - MRR (IDR)", True),
                ('mrr_%d' % nairobi.id, "Nairobi - MRR (KES)", False)])
        self.assertEqual(series(data['branch_admin'], nairobi), [
                ('mrr_%d' % nairobi.id, "Nairobi - MRR (KES)", False)])

        # the series are named in the user's language
        Lang = pool.get('ir.lang')
        Translation = pool.get('ir.translation')
        lang, = Lang.search([('code', '=', 'id')])
        lang.translatable = True
        lang.save()
        Translation.translation_import('id', 'isp_billing', os.path.join(
                os.path.dirname(os.path.dirname(__file__)), 'locale',
                'id.po'))
        user_cm, context_cm = as_user(data['branch_admin'], nairobi)
        with user_cm, context_cm, Transaction().set_context(language='id'):
            view = Month.fields_view_get(ModelData.get_id('isp_billing',
                    'dashboard_month_view_graph_subscribers'),
                view_type='graph')
        self.assertEqual([f.get('string')
                for f in etree.fromstring(view['arch']).iter('field')
                if f.get('key')], [
                "Nairobi - Pelanggan", "Nairobi - Pelanggan berbayar"])

    @with_transaction()
    def test_windows_open_on_records(self):
        """No window of the product opens a form first on a model that is
        not a singleton: the web client would show a new, empty record"""
        pool = Pool()
        Action = pool.get('ir.action.act_window')
        ModelData = pool.get('ir.model.data')
        ids = [d.db_id for d in ModelData.search([
                    ('model', '=', 'ir.action.act_window'),
                    ('module', 'like', 'isp_%'),
                    ])]
        self.assertTrue(ids)
        form_first = []
        for action in Action.browse(ids):
            if not action.res_model or not action.views:
                continue
            Model = pool.get(action.res_model)
            if (action.views[0][1] == 'form'
                    and not issubclass(Model, ModelSingleton)):
                form_first.append(action.name)
        self.assertEqual(form_first, [])

    @with_transaction()
    def test_tenants(self):
        "A branch user sees only their branch; a head admin sees each"
        pool = Pool()
        Monthly = pool.get('isp.report.monthly')
        Dashboard = pool.get('isp.report.dashboard')
        Revenue = pool.get('isp.report.revenue.plan')
        Aged = pool.get('isp.report.aged_receivable')
        data = self.class_data()
        jakarta, nairobi = data['jakarta'], data['nairobi']

        def companies(Model, user, company=None, **context):
            user_cm, context_cm = as_user(
                user, company, **{**CONTEXT, **context})
            with user_cm, context_cm:
                return sorted({r.company.party.name
                        for r in Model.search([])})
        finance = data['finance']
        for Model in [Monthly, Dashboard, Revenue, Aged]:
            self.assertEqual(
                companies(Model, finance, jakarta), ["Jakarta"])
        for Model in [Monthly, Revenue, Aged]:
            # asking for another branch's figures gives nothing
            self.assertEqual(companies(Model, finance, nairobi), [])
        # the dashboard shows every branch of the user
        self.assertEqual(
            companies(Dashboard, finance, nairobi), ["Jakarta"])
        self.assertEqual(companies(Dashboard, data['branch_admin'],
                nairobi), ["Nairobi"])
        head = data['head_admin']
        for Model in [Monthly, Dashboard, Revenue, Aged]:
            self.assertEqual(
                companies(Model, head), ["Jakarta", "Nairobi"])
        self.assertEqual(
            companies(Revenue, head, nairobi), ["Nairobi"])

        # per branch, never added up
        user_cm, context_cm = as_user(head, **CONTEXT)
        with user_cm, context_cm:
            rows = Monthly.search([('month', '=', date(2, 1))])
            self.assertEqual(
                sorted((r.company.party.name, r.revenue) for r in rows),
                [("Jakarta", 1050000), ("Nairobi", 3000)])

        user_cm, context_cm = as_user(
            data['customer_service'], jakarta, **CONTEXT)
        with user_cm, context_cm:
            with self.assertRaises(AccessError):
                Dashboard.search([])

    @with_transaction()
    def test_export(self):
        "Export a report to CSV and XLSX with the wizard"
        from openpyxl import load_workbook
        pool = Pool()
        Export = pool.get('isp.report.export', type='wizard')
        data = self.class_data()
        jakarta = data['jakarta']

        def export(format_, model='isp.report.monthly', ids=None,
                company=jakarta):
            # as the branch's finance user, from the report's window
            user_cm, context_cm = as_user(data['finance'], company,
                active_model=model, active_ids=ids or [],
                active_id=(ids or [None])[0], **CONTEXT)
            with user_cm, context_cm:
                session_id, _, _ = Export.create()
                result = Export.execute(
                    session_id, {'start': {'format': format_}}, 'export')
                Export.delete(session_id)
            values = result['view']['defaults']
            return values['filename'], values['file']

        filename, content = export('csv')
        self.assertEqual(filename, 'monthly.csv')
        rows = list(csv.reader(io.StringIO(content.decode('utf-8'))))
        self.assertEqual(rows[0], [
                "Branch", "Month", "MRR", "Revenue", "Subscribers",
                "Paying Subscribers", "ARPU",
                "Services at Start", "New", "Terminated", "Churn Rate",
                "Services at End", "Overdue", "Isolated"])
        self.assertEqual(len(rows), 5)
        self.assertEqual(rows[2], [
                "Jakarta", '2027-03-01', '1200000', '1100000', '3', '3',
                '400000', '3', '1', '1', '0.3333', '3', '2200000', ''])

        # every branch asked: the user's only
        filename, content = export('csv', company=None)
        rows = list(csv.reader(io.StringIO(content.decode('utf-8'))))
        self.assertEqual([r[:2] for r in rows[1:]], [
                ["Jakarta", '2027-04-01'], ["Jakarta", '2027-03-01'],
                ["Jakarta", '2027-02-01'], ["Jakarta", '2027-01-01']])

        filename, content = export('xlsx', 'isp.report.aged_receivable')
        self.assertEqual(filename, 'aged_receivable.xlsx')
        sheet = load_workbook(io.BytesIO(content)).active
        values = list(sheet.values)
        self.assertEqual(values[0], (
                "Branch", "Customer ID", "Subscriber", "Not Yet Due",
                "1-30 Days", "31-60 Days", "61-90 Days", "Over 90 Days",
                "Total"))
        self.assertEqual(values[1], (
                "Jakarta", 'KCB-BDG010127-002', "Siti", 0, 0, 450000,
                450000, 450000, 1350000))
        self.assertEqual(len(values), 5)

        # the selected lines only
        Plan = pool.get('isp.report.revenue.plan')
        with Transaction().set_context(company=jakarta.id, **CONTEXT):
            april = Plan.search([('month', '=', date(4, 1))])
        filename, content = export(
            'xlsx', 'isp.report.revenue.plan', [r.id for r in april])
        values = list(load_workbook(io.BytesIO(content)).active.values)
        self.assertEqual(values[1:], [
                ("Jakarta", dt.datetime(2027, 4, 1), "Home 50", 450000, 1),
                ("Jakarta", dt.datetime(2027, 4, 1), "Home 20", 300000, 1),
                ])
