# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_helpdesk's pages of the customer portal (see docs/portal.md): the
routes are registered at import."""
from . import pages  # noqa: F401
