# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError


class OnboardingError(UserError):
    "The onboarding wizard's input is refused (nothing is created)"
