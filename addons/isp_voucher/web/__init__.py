# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_voucher's public pages: the e-voucher shop (see docs/shop.md); the
routes are registered at import."""
from . import shop  # noqa: F401
