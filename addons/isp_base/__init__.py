# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.

from . import health, routes, web

__all__ = ['health', 'routes', 'web']
