# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class IspBillingTestCase(CompanyTestMixin, ModuleTestCase):
    "Test isp_billing module"
    module = 'isp_billing'


del ModuleTestCase
