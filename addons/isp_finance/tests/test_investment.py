# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Investments: the cost of a project (assets, supplier invoices) against
the revenue of the services of the router or location it serves, with ROI
and payback, as the finance user of a branch (Bandung) against another
branch (Nairobi), and as the head office."""
import contextlib
import datetime as dt
import types
import unittest
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.exceptions import BranchAccessError
from trytond.modules.isp_base.tests.class_setup import ClassSetupMixin
from trytond.modules.isp_billing.branch_setup import create_fiscal_year
from trytond.modules.isp_billing.tests.payment_setup import create_branch
from trytond.modules.isp_billing.tests.reporting_tools import (
    create_location,
    create_plan,
    create_router,
    create_service_invoices,
    create_services,
)
from trytond.modules.isp_finance.exceptions import InvestmentError
from trytond.modules.isp_finance.expense import create_expense_invoices
from trytond.modules.isp_finance.investment import whole_months
from trytond.modules.isp_multicompany.tests.test_records_security import (
    as_user,
    create_user,
    refused_call,
)
from trytond.modules.isp_multicompany.tests.test_tenancy_wizards import rpc

from .test_assets import create_asset, setup_finance
from .test_finance import create_expense_setup

TODAY = dt.date.today()
#: the investments' start: four whole months ago (last year's fiscal year
#: is created for what falls before this year)
START = TODAY - relativedelta(months=4)
LAST_YEAR = TODAY.replace(year=TODAY.year - 1, month=1, day=1)
FIGURES = ['cost', 'revenue', 'months', 'monthly_revenue', 'roi',
    'payback_months', 'paid_back']


def expense(branch, amount, description, date=START):
    "A posted supplier invoice of `amount` (untaxed) of the branch"
    invoice, = create_expense_invoices([types.SimpleNamespace(
                category=branch['categories'][0],
                supplier=branch['supplier'], date=date,
                amount=Decimal(amount), description=description,
                payment_method=None)])
    return invoice


def setup_branch(company, code, revenue=True):
    """The finance setup of a branch, two locations and two routers, a
    service on each pair (a/b on the first router, a/c in the first
    location, d on neither) and with `revenue` their invoices"""
    with Transaction().set_context(company=company.id):
        create_fiscal_year(company, LAST_YEAR,
            LAST_YEAR.replace(month=12, day=31))
    branch = setup_finance(company)
    locations = [create_location(company, c, "Kampung %s" % c)
        for c in [code + 'K', code + 'D']]
    routers = [create_router(company, code[0] + c, "Router %s%s" % (code, c))
        for c in 'XY']
    plan = create_plan(company, "Home %s" % code, 100000, 'home')
    services = dict(zip('abcd', create_services(company, [
                    ("Subscriber %s %s" % (code, n), location, router, plan,
                        START - relativedelta(months=6), None, 'active')
                    for n, location, router in [
                        ('a', locations[0], routers[0]),
                        ('b', locations[1], routers[0]),
                        ('c', locations[0], routers[1]),
                        ('d', locations[1], routers[1]),
                        ]]), strict=True))
    branch.update(locations=locations, routers=routers, services=services)
    if revenue:
        service_invoices(company, services)
    # after the service invoices (dated before today, in the same sequence)
    branch.update(create_expense_setup(company, code))
    return branch


def service_invoices(company, services):
    """Posted invoices of the services around START (by date); a draft and
    a cancelled copy of c's"""
    pool = Pool()
    Invoice = pool.get('account.invoice')
    month = START + relativedelta(months=1)
    a, b, c, d = (services[k] for k in 'abcd')
    create_service_invoices(company, [
            # before the start: not counted
            (a, START - dt.timedelta(days=1), 100000, START),
            (a, START, 100000, START),
            (a, month, 100000, month),
            (b, month, 50000, month),
            (c, month, 70000, month),
            (d, month, 40000, month),
            # a credit note counts negative
            (b, month + dt.timedelta(days=1), -20000, month),
            ])
    with Transaction().set_context(company=company.id):
        c_invoice, = Invoice.search([
                ('lines.isp_service', '=', c.id)], limit=1)
        # draft and cancelled invoices of the served services: not counted
        draft, cancelled = Invoice.copy([c_invoice, c_invoice],
            default={'invoice_date': month})
        Invoice.cancel([cancelled])


def link_purchase(asset, invoice):
    """Make `invoice`'s line the purchase of `asset`, as the supplier
    invoice of an asset product links it (the expense line has no
    product: written in SQL)"""
    Asset = Pool().get('account.asset')
    table = Asset.__table__()
    line, = invoice.lines
    Transaction().connection.cursor().execute(*table.update(
            [table.supplier_invoice_line], [line.id],
            where=table.id == asset.id))


@contextlib.contextmanager
def refused():
    """`refused_call`, and the records it read forgotten as its RPC's
    rollback does (the ids are given again to the next records)"""
    with refused_call():
        try:
            yield
        finally:
            for cache in Transaction().cache.values():
                cache.clear()


class InvestmentTestCase(ClassSetupMixin, unittest.TestCase):
    "Investments of a branch: cost, revenue, ROI and payback"
    setup_modules = ['isp_finance']

    @classmethod
    def setup_class_data(cls):
        bandung = create_branch("Bandung", 'IDR')
        nairobi = create_branch("Nairobi", 'KES')
        bdg = setup_branch(bandung, 'BD')
        nbo = setup_branch(nairobi, 'NB', revenue=False)
        # Bandung's router project: a running router asset bought by a
        # supplier invoice (both linked: counted once), a draft asset, an
        # installation expense and a draft copy of it
        router = bdg['assets']['router']
        bdg['asset'] = create_asset(bandung, router, 12000000, 0, run=False)
        bdg['purchase'] = expense(bdg, 12000000, "Core router")
        link_purchase(bdg['asset'], bdg['purchase'])
        Pool().get('account.asset').run([bdg['asset']])
        bdg['draft_asset'] = create_asset(
            bandung, bdg['assets']['ont'], 5000000, 0, run=False)
        bdg['expense'] = expense(bdg, 3000000, "Tower installation")
        bdg['draft_expense'], = Pool().get('account.invoice').copy(
            [bdg['expense']])
        bdg['cable'] = expense(bdg, 200000, "Drop cables")
        nbo['asset'] = create_asset(nairobi, nbo['assets']['tower'], 2400, 0)
        nbo['expense'] = expense(nbo, 1000, "Nairobi works")
        with Transaction().set_context(company=nairobi.id):
            nbo['investment'], = Pool().get('isp.investment').create([{
                        'name': "Nairobi tower", 'company': nairobi.id,
                        'start_date': START, 'scope': 'router',
                        'router': nbo['routers'][0].id,
                        'assets': [('add', [nbo['asset'].id])]}])
        data = {
            'bdg': bdg, 'nbo': nbo,
            'finance': create_user(
                'finance', 'group_isp_finance', [bandung]),
            'head': create_user('head', 'group_isp_head_admin',
                [bandung, nairobi], 'all'),
            }
        Transaction().tasks.clear()
        return data

    def create(self, user, branch, **values):
        """Create an investment of `branch` (the context's company) as
        `user` (the client's RPC)"""
        Investment = Pool().get('isp.investment')
        values = {'name': "Project", 'company': branch.id,
            'start_date': START, 'scope': 'router', **values}
        investment_id, = rpc(user, Investment, 'create', [values],
            context={'company': branch.id})
        return Investment(investment_id)

    def figures(self, user, company, ids):
        "{id: {figure: value}} read as `user`"
        Investment = Pool().get('isp.investment')
        return {r['id']: {k: r[k] for k in FIGURES}
            for r in rpc(user, Investment, 'read', ids, FIGURES,
                context={'company': company.id})}

    @with_transaction()
    def test_router_and_location_figures(self):
        """The finance user's router and location investments: the cost
        counts the running asset and the posted supplier invoices once, the
        revenue the posted invoices of the served services since the start
        (credit notes negative); the ROI, payback and paid back follow"""
        data = self.class_data()
        bdg, user = data['bdg'], data['finance']
        company = bdg['company']
        router = self.create(user, company, name="Tower BDX",
            router=bdg['routers'][0].id,
            assets=[('add', [bdg['asset'].id, bdg['draft_asset'].id])],
            invoices=[('add', [bdg['purchase'].id, bdg['expense'].id,
                        bdg['draft_expense'].id])])
        location = self.create(user, company, name="Kampung BDK",
            scope='location', location=bdg['locations'][0].id,
            invoices=[('add', [bdg['cable'].id])])
        empty = self.create(user, company, name="Planned",
            router=bdg['routers'][1].id, start_date=TODAY)
        figures = self.figures(user, company,
            [router.id, location.id, empty.id])
        self.assertEqual(figures[router.id], {
                # 12,000,000 asset (its purchase not again) + 3,000,000
                'cost': Decimal(15000000),
                # a: 100,000 x 2 from the start, b: 50,000 - 20,000
                'revenue': Decimal(230000),
                'months': 4,
                'monthly_revenue': Decimal(57500),
                'roi': Decimal('-98.47'),
                'payback_months': Decimal('260.9'),
                'paid_back': False,
                })
        self.assertEqual(figures[location.id], {
                'cost': Decimal(200000),
                # a: 200,000, c: 70,000 (its draft and cancelled copies not)
                'revenue': Decimal(270000),
                'months': 4,
                'monthly_revenue': Decimal(67500),
                'roi': Decimal('35.00'),
                'payback_months': Decimal('3.0'),
                'paid_back': True,
                })
        self.assertEqual(figures[empty.id], {
                'cost': Decimal(0), 'revenue': Decimal(0), 'months': 0,
                'monthly_revenue': Decimal(0), 'roi': None,
                'payback_months': None, 'paid_back': False,
                })

        # the scope changed to the location: its revenue, the same cost
        Investment = Pool().get('isp.investment')
        rpc(user, Investment, 'write', [router.id], {
                'scope': 'location', 'router': None,
                'location': bdg['locations'][1].id},
            context={'company': company.id})
        # b: 30,000 and d: 40,000
        self.assertEqual(
            self.figures(user, company, [router.id])[router.id]['revenue'],
            Decimal(70000))
        # the latest start first
        self.assertEqual(rpc(user, Investment, 'search', [],
                context={'company': company.id}),
            [empty.id, location.id, router.id])

    @with_transaction()
    def test_whole_months(self):
        "Whole months elapsed: none before a month is complete"
        self.assertEqual(whole_months(dt.date(2026, 1, 31),
                dt.date(2026, 2, 27)), 0)
        # a month from the 31st ends on the month's last day
        self.assertEqual(whole_months(dt.date(2026, 1, 31),
                dt.date(2026, 2, 28)), 1)
        self.assertEqual(whole_months(dt.date(2026, 1, 15),
                dt.date(2027, 3, 15)), 14)
        self.assertEqual(whole_months(dt.date(2026, 3, 1),
                dt.date(2026, 2, 1)), 0)

    @with_transaction()
    def test_refusals(self):
        """A router, location, asset or invoice of another branch, a
        customer invoice, a missing router or location, a start in the
        future: refused with the module's message, nothing created; the
        branch user neither sees nor uses Nairobi's records"""
        pool = Pool()
        Investment = pool.get('isp.investment')
        data = self.class_data()
        bdg, nbo = data['bdg'], data['nbo']
        company = bdg['company']
        count = Investment.search([], count=True)
        own = {'router': bdg['routers'][0].id}
        customer_invoice = pool.get('account.invoice').search([
                ('company', '=', company.id), ('type', '=', 'out')],
            limit=1)[0]
        name = 'isp_finance.msg_investment_%s'
        other = {'investment': "Project", 'company': company.rec_name}
        # the head office (both branches) gets the module's messages
        for values, message, args in [
                ({'router': nbo['routers'][0].id},
                    'router_other_branch', other),
                ({'scope': 'location',
                        'location': nbo['locations'][0].id},
                    'location_other_branch', other),
                ({**own, 'assets': [('add', [nbo['asset'].id])]},
                    'asset_other_branch', other),
                ({**own, 'invoices': [('add', [nbo['expense'].id])]},
                    'invoice_invalid', other),
                ({**own, 'invoices': [('add', [customer_invoice.id])]},
                    'invoice_invalid', other),
                ({}, 'router_required', {'investment': "Project"}),
                ({'scope': 'location', **own}, 'location_required',
                    {'investment': "Project"}),
                ({**own, 'start_date': TODAY + dt.timedelta(days=1)},
                    'start_future', {'investment': "Project",
                        'date': TODAY + dt.timedelta(days=1)}),
                ]:
            with self.subTest(message=message), refused(), \
                    self.assertRaises(InvestmentError) as cm:
                self.create(data['head'], company, **values)
            self.assertEqual(cm.exception.message,
                gettext(name % message, **args))
        self.assertEqual(Investment.search([], count=True), count)
        # as the finance user of Bandung: another branch's records refused
        # naming none of them
        user = data['finance']
        for values in [
                {'router': nbo['routers'][0].id},
                {'scope': 'location', 'location': nbo['locations'][0].id},
                {**own, 'assets': [('add', [nbo['asset'].id])]},
                {**own, 'invoices': [('add', [nbo['expense'].id])]},
                {**own, 'company': nbo['company'].id},
                ]:
            with self.subTest(values=values), refused(), \
                    self.assertRaises(BranchAccessError) as cm:
                self.create(user, company, **values)
            self.assertNotIn("Nairobi", str(cm.exception))
        self.assertEqual(Investment.search([], count=True), count)
        # the form's on_change with Nairobi's router, or on Nairobi's
        # investment: refused (it would read them without the rules)
        for values in [
                {'company': company.id, 'scope': 'location',
                    'router': nbo['routers'][0].id, 'location': None},
                {'id': nbo['investment'].id, 'scope': 'location'}]:
            with self.subTest(on_change=values), \
                    self.assertRaises(BranchAccessError):
                rpc(user, Investment, 'on_change', values, ['scope'],
                    context={'company': company.id})
        result = rpc(user, Investment, 'on_change', {
                'company': company.id, 'scope': 'location',
                'router': bdg['routers'][0].id, 'location': None},
            ['scope'], context={'company': company.id})
        self.assertEqual(result['router'], None)
        # a Bandung investment given Nairobi's asset afterwards: refused
        investment = self.create(user, company, **own)
        with refused(), self.assertRaises(BranchAccessError):
            rpc(user, Investment, 'write', [investment.id],
                {'assets': [('add', [nbo['asset'].id])]},
                context={'company': company.id})
        self.assertEqual(Investment(investment.id).assets, ())
        # Nairobi's investment: not found, not read, written nor deleted
        theirs = nbo['investment'].id
        context = {'company': company.id}
        self.assertEqual(rpc(user, Investment, 'search',
                [('id', '=', theirs)], context=context), [])
        for method, args in [
                ('read', ([theirs], ['name', 'cost'])),
                ('write', ([theirs], {'name': "Mine"})),
                ('delete', ([theirs],)),
                ]:
            with self.subTest(method=method), refused(), \
                    self.assertRaises(AccessError):
                rpc(user, Investment, method, *args, context=context)
        self.assertEqual(Investment(theirs).name, "Nairobi tower")
        # the head office reads both branches' figures
        with as_user(data['head'], company):
            self.assertEqual(Investment(theirs).cost, Decimal(2400))
