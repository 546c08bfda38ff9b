# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Other income: installation fees and equipment sales, invoiced to
customers as products that are not plans, on the branch's other income
account (counted as income in profit and loss)."""
from decimal import Decimal

from trytond.pool import PoolMeta

from .asset import (
    accounting_categories,
    branch_products,
    other_income_account,
)

#: (key, product name, type, default list price)
INCOME_KINDS = [
    ('installation', "Installation", 'service', Decimal(0)),
    ('equipment', "Equipment Sale", 'goods', Decimal(0)),
    ]


class Template(metaclass=PoolMeta):
    __name__ = 'product.template'

    @classmethod
    def setup_other_income_products(cls, company):
        """The other income products of `company` ({'installation',
        'equipment': product.product}): not plans, of the shared accounting
        category "Other Income" whose revenue account for `company` is the
        other income account (6.1.1, typed as revenue).  Found or created:
        run it again at will (the onboarding and the demo do)."""
        account = other_income_account(company)
        category = accounting_categories(["Other Income"], company, {
                'account_revenue': account})["Other Income"]
        return branch_products(company, [
                (key, {'name': name, 'type': type_, 'list_price': price,
                        'account_category': category.id})
                for key, name, type_, price in INCOME_KINDS])
