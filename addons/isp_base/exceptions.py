# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class InputValidationError(ValidationError):
    "A value is not a number, not finite, out of bounds or too long"


class NationalIDValidationError(ValidationError):
    "A subscriber's national ID (NIK) is malformed"


class PhoneValidationError(ValidationError):
    "A phone or WhatsApp number is not a valid number"


class CoordinateValidationError(ValidationError):
    "A latitude or longitude is out of range"


class LocationCodeValidationError(ValidationError):
    "A location code is not 2 to 5 capital letters"


class PlanValidationError(ValidationError):
    "A plan's rates, burst, quota or fees are inconsistent"


class SubscriberError(UserError):
    "A subscriber cannot be saved as asked"


class ProviderValidationError(ValidationError):
    "A message provider is configured wrongly"


class MessageTemplateValidationError(ValidationError):
    "A message template does not render with its event's values"


class MessageCompanyError(UserError):
    "A message has no branch to be sent from"


class BranchAccessError(UserError):
    "A record of a branch the user does not work for was given"


class PreferencesCompanyError(UserError):
    "A user chose a company they do not belong to"


class WebDomainValidationError(ValidationError):
    "A branch's portal domain is not a host name or is another branch's"


class WebUserValidationError(ValidationError):
    "A portal user is not a subscriber of its branch"


class PortalInviteError(UserError):
    "Nobody to invite to the customer portal"
