# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError


class BillingError(UserError):
    "The billing of a branch is not configured well enough to invoice"


class PaymentError(UserError):
    "A payment cannot be recorded"


class PaymentGatewayError(UserError):
    "A payment gateway refused a request or could not be reached"


class PaymentOnlineError(UserError):
    "A document cannot be paid online as asked"


class PlanChangeRequestError(UserError):
    "A plan change request cannot be made or approved"
