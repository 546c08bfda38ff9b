# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The head office's consolidated figures on the dashboard: each branch's
amounts also in the currency of the user's current company (the head
office's for its administrators), with the rate used; the list sums them
over the branches shown."""
from decimal import Decimal

from trytond.model import fields
from trytond.modules.currency.exceptions import RateError
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction


def _consolidated(string):
    return fields.Function(Monetary(
            "%s (Consolidated)" % string,
            currency='consolidation_currency',
            digits='consolidation_currency',
            help="In the consolidation currency, at the rate shown."),
        'get_consolidated')


class Dashboard(metaclass=PoolMeta):
    __name__ = 'isp.report.dashboard'

    consolidation_currency = fields.Function(fields.Many2One(
            'currency.currency', "Consolidation Currency",
            help="The currency of your current company (the head "
            "office's for its administrators)."),
        'get_consolidated')
    consolidation_rate = fields.Function(fields.Numeric(
            "Rate", digits=(16, 6),
            help="One unit of the branch's currency in the consolidation "
            "currency, on the dashboard's date (empty: no rate)."),
        'get_consolidated')
    mrr_consolidated = _consolidated("MRR")
    revenue_consolidated = _consolidated("Revenue This Month")
    revenue_year_consolidated = _consolidated("Revenue This Year")
    overdue_consolidated = _consolidated("Overdue")

    @classmethod
    def consolidation_currency_of_user(cls):
        "The currency of the user's current company"
        pool = Pool()
        Company = pool.get('company.company')
        User = pool.get('res.user')
        company = Transaction().context.get('company')
        if not company and Transaction().user:
            company = User(Transaction().user).company
            company = company.id if company else None
        return Company(company).currency if company else None

    @classmethod
    def get_consolidated(cls, rows, names):
        pool = Pool()
        Currency = pool.get('currency.currency')
        target = cls.consolidation_currency_of_user()
        result = {name: {} for name in names}
        rates = {}
        for row in rows:
            key = (row.currency.id, row.date)
            if key not in rates:
                rates[key] = None
                if target:
                    with Transaction().set_context(date=row.date):
                        try:
                            rates[key] = Currency.compute(row.currency,
                                Decimal(1), target, round=False)
                        except RateError:
                            pass
            rate = rates[key]
            for name in names:
                if name == 'consolidation_currency':
                    value = target.id if target else None
                elif name == 'consolidation_rate':
                    value = rate
                else:
                    amount = getattr(row, name[:-len('_consolidated')])
                    value = (target.round(amount * rate)
                        if rate is not None and amount is not None else None)
                result[name][row.id] = value
        return result
