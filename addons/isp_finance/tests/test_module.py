# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from unittest.mock import patch

from trytond.modules.company.tests import CompanyTestMixin
from trytond.modules.company.tests import test_module as company_tests
from trytond.tests.test_tryton import ModuleTestCase

from trytond.modules.isp_base.tests.views import ListViewTestMixin


class IspFinanceTestCase(ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test isp_finance module"
    module = 'isp_finance'

    @property
    def _skip_company_rule(self):
        # the other income products (income.py) extend product.template,
        # whose branch is isp_company, shared when empty (isp_base's rule)
        return super()._skip_company_rule | {
            ('product.template', 'isp_company'),
            }

    def test_company_multivalue_context(self):
        # as in isp_billing: a product's account category takes the company
        # of the user's context, as in stock Tryton
        registered = company_tests.isregisteredby

        def isregisteredby(model, module, *args, **kwargs):
            return (model.__name__ != 'product.template'
                and registered(model, module, *args, **kwargs))
        with patch.object(company_tests, 'isregisteredby', isregisteredby):
            super().test_company_multivalue_context()


del ModuleTestCase
