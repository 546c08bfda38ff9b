# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class RouterCodeValidationError(ValidationError):
    "A router code is not 2 to 6 capital letters"


class RouterRadiusValidationError(ValidationError):
    "A router's NAS address is not an IP address"


class RouterPoolEmpty(UserError):
    "No healthy router is left in a pool"


class RouterUnreachable(UserError):
    "A router cannot be reached"


class ServiceValidationError(ValidationError):
    "A service's address, caller ID or user name is malformed"


class ServiceDeleteError(UserError):
    "Only draft services can be deleted"


class RegistrationError(UserError):
    "A registration misses what it needs"


class ImportError_(UserError):
    "Secrets cannot be imported as asked"


class MapTilesURLError(ValidationError):
    "The map's tiles URL is not an http(s) URL with {z}, {x} and {y}"


class VpnValidationError(ValidationError):
    "A VPN server's host or CA, or a router's VPN settings, are wrong"
