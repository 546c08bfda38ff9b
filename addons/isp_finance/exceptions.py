# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError


class ExpenseError(UserError):
    "An expense is refused (nothing is written)"


class AssetValueError(UserError):
    "An asset's value is refused"


class FinanceSetupError(UserError):
    "A branch's chart lacks an account the finance setup needs"


class BudgetClosedError(UserError):
    "A budget of a closed period or fiscal year is refused"


class InvestmentError(UserError):
    "An investment's scope, dates or cost items are refused"
