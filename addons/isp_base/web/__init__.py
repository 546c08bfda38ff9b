# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The one public web layer of the product (customer portal, e-voucher
shop...): see docs/portal.md.

A module adds a page with::

    from trytond.modules.isp_base.web import N_, portal_page

    @portal_page('/isp_billing/portal/invoices', nav='invoices')
    def invoices(page):
        Invoice = page.pool.get('account.invoice')
        invoices = page.search_own(Invoice, [('type', '=', 'out')])
        return page.render('isp_billing/invoices.html', invoices=invoices)

and its template ``isp_billing/web/templates/invoices.html`` extending
``isp_base/base.html``."""
from . import profile, routes, static  # noqa: F401 (registers the routes)
from .i18n import LANGUAGES, N_, Formatter, pick_language
from .page import (
    HOME,
    LOGIN,
    MAX_ID,
    NAV_SLOTS,
    NAVIGATION,
    Page,
    form_id,
    local_time,
    portal_page,
)
from .security import (
    CSRF_FIELD,
    LANG_COOKIE,
    PRE_COOKIE,
    SESSION_COOKIE,
    Refusal,
    csrf_token,
)
from .static import static_url

__all__ = [
    'CSRF_FIELD', 'Formatter', 'HOME', 'LANGUAGES', 'LANG_COOKIE', 'LOGIN',
    'MAX_ID', 'NAVIGATION', 'NAV_SLOTS', 'N_', 'PRE_COOKIE', 'Page',
    'Refusal', 'SESSION_COOKIE', 'csrf_token', 'form_id', 'local_time',
    'pick_language', 'portal_page', 'static_url',
    ]
