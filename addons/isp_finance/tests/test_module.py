# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase

from trytond.modules.isp_base.tests.views import ListViewTestMixin


class IspFinanceTestCase(ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test isp_finance module"
    module = 'isp_finance'


del ModuleTestCase
