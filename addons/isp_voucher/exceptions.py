# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class ProfileValidationError(ValidationError):
    "A voucher profile's rate limit or limits are not coherent"


class BatchValidationError(ValidationError):
    "A batch's prefix, code length or quantity cannot make its codes"


class BatchGeneratedError(UserError):
    "A generated batch's codes cannot be changed or deleted"


class CodeSpaceError(UserError):
    "No free code is left for a batch"


class VoucherDeleteError(UserError):
    "Sold or used vouchers cannot be deleted"


class CardError(UserError):
    "The cards of a profile's vouchers cannot be printed"


class ResellerError(UserError):
    "A reseller's settings or a sale to it are refused"


class ShopError(UserError):
    "An e-voucher order is refused"
