# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from unittest.mock import patch

from trytond.modules.company.tests import CompanyTestMixin
from trytond.modules.company.tests import test_module as company_tests
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONEncoder
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.tests.views import ListViewTestMixin


class IspBillingTestCase(
        ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test isp_billing module"
    module = 'isp_billing'

    @property
    def _skip_company_rule(self):
        # central gateway accounts (empty company) are shared: their rule is
        # ['OR', ('company', '=', None), ('company', 'in', companies)],
        # checked by test_payment_gateway_company_rule
        # plans are shared when their branch is empty (isp_base's rule)
        return super()._skip_company_rule | {
            ('isp.payment.gateway', 'company'),
            ('party.party', 'isp_company'),
            ('product.template', 'isp_company'),
            }

    def test_company_multivalue_context(self):
        # a plan's company field is isp_company, the branch that sells it
        # (empty: every branch): its account category takes the company of
        # the user's context, as in stock Tryton
        registered = company_tests.isregisteredby

        def isregisteredby(model, module, *args, **kwargs):
            return (model.__name__ != 'product.template'
                and registered(model, module, *args, **kwargs))
        with patch.object(company_tests, 'isregisteredby', isregisteredby):
            super().test_company_multivalue_context()

    @with_transaction()
    def test_finance_menu_invoices(self):
        "Finance staff reach the customer invoices from the ISP menu"
        pool = Pool()
        Menu = pool.get('ir.ui.menu')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        menu = Menu(ModelData.get_id('isp_billing', 'menu_invoice_out'))
        group = ModelData.get_id('isp_base', 'group_isp_finance')
        user, = User.create([{
                    'name': "Finance", 'login': 'finance',
                    'groups': [('add', [group])]}])
        with Transaction().set_user(user.id), \
                Transaction().set_context(_check_access=True):
            self.assertEqual(Menu.search([('id', '=', menu.id)]), [menu])
            self.assertEqual(Menu(menu.id).parent.name, "ISP")

    @with_transaction()
    def test_payment_gateway_company_rule(self):
        "Gateway accounts: the user's companies' and the central ones"
        Rule = Pool().get('ir.rule')
        shared = PYSONEncoder(sort_keys=True).encode(['OR',
                ('company', '=', None),
                ('company', 'in', Eval('companies', []))])
        rules = Rule.search([
                ('rule_group.model', '=', 'isp.payment.gateway'),
                ('rule_group.global_p', '=', True),
                ('rule_group.perm_read', '=', True),
                ('domain', '=', shared),
                ])
        self.assertEqual(len(rules), 1)


del ModuleTestCase
