# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_network's staff pages of the public web layer (docs/map.md): the
routes are registered at import."""
from . import map  # noqa: F401
