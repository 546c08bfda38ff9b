# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Helpers of the billing scenarios: a frozen clock for `ir.date` and a
branch with its accounting set up (proteus)."""
import datetime as dt
import types
from decimal import Decimal

from proteus import Model
from trytond.ir import date as ir_date
from trytond.modules.account.tests.tools import (
    create_chart,
    create_fiscalyear,
    create_tax,
    get_accounts,
)
from trytond.modules.account_invoice.tests.tools import (
    set_fiscalyear_invoice_sequences,
)

_real_datetime = dt.datetime
_frozen = {'now': None}


class _FrozenDatetime(_real_datetime):

    @classmethod
    def now(cls, tz=None):
        now = _frozen['now']
        if now is None:
            return _real_datetime.now(tz)
        now = now.replace(tzinfo=dt.UTC)
        if tz is None:
            return now.replace(tzinfo=None)
        return now.astimezone(tz)


ir_date.datetime = types.SimpleNamespace(datetime=_FrozenDatetime)


def freeze(utc):
    "Make `ir.date.today` answer as if the time were `utc` (naive, UTC)"
    _frozen['now'] = utc


def unfreeze():
    _frozen['now'] = None


def setup_accounting(company, years, tax_rate=Decimal('0.11'), config=None):
    """Give `company` (the context company) a chart of accounts, a fiscal
    year with invoice sequences and periods per year of `years`, a sales tax
    of `tax_rate`, the four payment methods on the cash journal and its
    billing configuration; return the accounts"""
    Journal = Model.get('account.journal', config=config)
    PaymentMethod = Model.get('account.invoice.payment.method', config=config)
    Configuration = Model.get('isp.billing.configuration', config=config)
    create_chart(company, config=config)
    for year in years:
        fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(
                company, (dt.date(year, 1, 1), dt.date(year, 12, 31)),
                config=config), config=config)
        fiscalyear.click('create_period')
    accounts = get_accounts(company, config=config)
    tax = create_tax(tax_rate, company, config=config)
    tax.save()
    cash_journal, = Journal.find([('type', '=', 'cash')])
    configuration = Configuration(1)
    configuration.revenue_account = accounts['revenue']
    configuration.tax = tax
    configuration.pay_url = 'https://pay.example.net/{number}'
    for name in ['cash', 'bank_transfer', 'qris', 'gateway']:
        method = PaymentMethod(
            name=name, company=company, journal=cash_journal,
            credit_account=accounts['cash'], debit_account=accounts['cash'])
        method.save()
        setattr(configuration, 'payment_method_%s' % name, method)
    configuration.save()
    return accounts
