# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class CalendarValidationError(ValidationError):
    "A calendar's hours are inverted or overlap, or it is never open"


class SlaValidationError(ValidationError):
    "An SLA target or a category's setting is out of range"


class TicketReplyError(UserError):
    "A reply is refused on a resolved or closed ticket"


class TicketReopenError(UserError):
    "A ticket resolved too long ago cannot be reopened"


class TicketRatingError(UserError):
    "A rating out of 1-5, of an open ticket, or given twice"
