# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase

from trytond.modules.isp_base.tests.views import ListViewTestMixin


class IspHelpdeskTestCase(
        ListViewTestMixin, CompanyTestMixin, ModuleTestCase):
    "Test isp_helpdesk module"
    module = 'isp_helpdesk'

    @property
    def _skip_company_rule(self):
        # isp_base shares inbound messages without a branch (its rule is
        # ['OR', ('company', '=', None), ...], tested there); isp_helpdesk
        # only adds their ticket
        return super()._skip_company_rule | {
            ('isp.message.inbound', 'company'),
            }


del ModuleTestCase
