# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The pages of the public web layer: `portal_page` registers a route,
`Page` is what its function receives.

Every page, whichever module defines it:

- runs as root (user 0) in a transaction of its own (read-only for GET,
  read-write for POST; retried on a lock, 503 when the database stays
  busy): record rules do not apply, so every query filters on the tenant
  and the subscriber explicitly (`Page.search_tenant`, `Page.search_own`,
  `Page.get_own`);
- belongs to the tenant of the request's host (`company.company`
  `isp_web_tenant`): an unknown host is answered 404 when there are several
  companies;
- reads the web_user session of the cookie, kept only when the web user and
  their party are the tenant's;
- on POST parses the form (size, encoding, NULs: 413/400) and checks its
  CSRF token (403) before the page's function runs;
- answers with the security headers, `Cache-Control: no-store`, and an
  error page (in the visitor's language) with a short reason for a refusal;
  an unexpected error is logged and answered 500 with no detail.
"""
import datetime as dt
import functools
import logging
import re
import urllib.parse

from trytond import backend
from trytond.exceptions import UserError, UserWarning
from trytond.protocols.wrappers import (
    HTTPStatus,
    Response,
    with_pool,
    with_transaction,
)
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app
from werkzeug.exceptions import HTTPException

from .. import accesslog
from . import security
from .i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    Formatter,
    pick_language,
)
from .render import render

logger = logging.getLogger(__name__)
accesslog.install()

#: The largest database id (PostgreSQL's integer): bigger ids are 404.
MAX_ID = 2 ** 31 - 1


def form_id(value):
    "A database id of a form or path value (positive, below MAX_ID), else None"
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None


def local_time(company, value):
    """The naive UTC datetime `value` in the branch's time zone (aware;
    UTC for a branch without one), None for None"""
    if value is None:
        return None
    value = value.replace(tzinfo=dt.UTC)
    if company.timezone:
        from zoneinfo import ZoneInfo
        value = value.astimezone(ZoneInfo(company.timezone))
    return value

#: The navigation slots of the layout, in order: (key, label).  A module
#: fills a slot by registering a page with ``nav='<key>'``; empty slots
#: are not shown, except the placeholders.
NAV_SLOTS = [
    ('dashboard', N_("Dashboard")),
    ('invoices', N_("Invoices")),
    ('profile', N_("Profile")),
    ('plan', N_("Plan")),
    ('helpdesk', N_("Helpdesk")),
    ]
#: Slots shown (greyed, not a link) while no module fills them.
NAV_PLACEHOLDERS = {'helpdesk'}
#: key: (module, path) of the page filling each navigation slot
NAVIGATION = {}
#: The path of the page a subscriber lands on after logging in (under the
#: database): the 'dashboard' slot's page when one is registered.
HOME = '/isp_base/portal/'
LOGIN = '/isp_base/portal/login'


class Page:
    """What a page's function receives: the request and its tenant,
    session, language and form, and the helpers that keep queries to the
    tenant and the subscriber"""

    def __init__(self, request, pool, module):
        self.request = request
        self.pool = pool
        self.module = module
        self.database_name = pool.database_name
        self.modules = tuple(pool._modules)
        #: the tenant: a company.company (always set in a page function)
        self.company = None
        #: the logged-in web.user and its party.party, or None
        self.user = None
        self.party = None
        self.session_key = None
        self.form = {}
        #: a page taking files (`upload`): {field: (file name, bytes)}
        self.files = {}
        self.cookies = []
        self._formatter = None
        self._language = None
        self._pre = None

    # -- tenant and session ---------------------------------------------------

    def load_tenant(self):
        "Find the tenant (Refusal 404 on an unknown host)"
        Company = self.pool.get('company.company')
        self.company = Company.isp_web_tenant(self.request.host or '')
        if self.company is None:
            raise security.Refusal(404, N_("This site is not known here."))

    def load_session(self):
        """Find the logged-in subscriber: the cookie's session, kept when
        the web user and their party are the tenant's"""
        key = self.request.cookies.get(security.SESSION_COOKIE)
        if key and len(key) <= 128 and key.isascii():
            WebUser = self.pool.get('web.user')
            user = WebUser.get_user(key)
            if user is not None and user.isp_portal_of(self.company):
                self.user, self.party = user, user.party
                self.session_key = key

    @property
    def logged_in(self):
        return self.user is not None

    def _pre_key(self):
        "The pre-session key of a visitor not logged in (a new cookie)"
        if self._pre is None:
            key = self.request.cookies.get(security.PRE_COOKIE)
            if not key or len(key) > 128 or not key.isascii():
                key = security.new_key()
                self.set_cookie(security.PRE_COOKIE, key)
            self._pre = key
        return self._pre

    @property
    def csrf_token(self):
        "The CSRF token of the forms: bound to the session, else the visit"
        return security.csrf_token(self.session_key or self._pre_key())

    def check_csrf(self):
        key = self.session_key or self.request.cookies.get(
            security.PRE_COOKIE)
        security.check_csrf(key, self.form.get(security.CSRF_FIELD))

    def start_session(self, user):
        "Log `user` in: a new web_user session in the cookie"
        key = user.new_session()
        self.user, self.party, self.session_key = user, user.party, key
        self.set_cookie(security.SESSION_COOKIE, key,
            max_age=security.session_timeout())

    def end_session(self):
        "Log out: the session deleted and its cookie removed"
        if self.session_key:
            Session = self.pool.get('web.user.session')
            Session.remove(self.session_key)
        self.user = self.party = self.session_key = None
        self.cookies.append((security.SESSION_COOKIE, None, None))

    def set_cookie(self, name, value, max_age=None):
        self.cookies.append((name, value, max_age))

    # -- language -------------------------------------------------------------

    @property
    def language(self):
        """The subscriber's language, else the one chosen on the site, else
        the browser's, else the branch's (its party's, else its country's:
        isp.message branch_language, as its notices)"""
        if self._language is None:
            party_lang = self.party.lang.code if (
                self.party and self.party.lang) else None
            browser = self.request.accept_languages.best_match(LANGUAGES)
            candidates = [party_lang,
                self.request.cookies.get(security.LANG_COOKIE), browser]
            if pick_language(*candidates, '-') == pick_language('-'):
                # none served: the branch's language (read only then: its
                # party's company-dependent language is 2 queries)
                language = (self.pool.get('isp.message').branch_language(
                        self.company) if self.company else None)
                candidates.append(language.code if language else None)
            self._language = pick_language(*candidates)
        return self._language

    @property
    def fmt(self):
        "The Formatter of the page's language (gettext, currency, date...)"
        if self._formatter is None:
            self._formatter = Formatter(self.modules, self.language)
        return self._formatter

    def gettext(self, message, **values):
        return self.fmt.gettext(message, **values)

    # -- queries: explicit tenant and subscriber filters ----------------------

    def search_tenant(self, Model, domain, company_field='company', **kw):
        """`Model.search` limited to the tenant's records (pages run as
        root: record rules do not apply)"""
        return Model.search([
                (company_field, '=', self.company.id),
                domain,
                ], **kw)

    def search_own(self, Model, domain, party_field='party',
            company_field='company', **kw):
        "`Model.search` limited to the tenant's and subscriber's records"
        if not self.logged_in:
            return []
        return Model.search([
                (company_field, '=', self.company.id),
                (party_field, '=', self.party.id),
                domain,
                ], **kw)

    def get_own(self, Model, record_id, party_field='party',
            company_field='company'):
        """The subscriber's record `record_id` of `Model` in the tenant,
        else 404 (another subscriber's, another branch's, unknown or not an
        id the database holds)"""
        record_id = form_id(record_id)
        if record_id is None:
            raise self.not_found()
        found = self.search_own(Model, [('id', '=', record_id)], limit=1,
            party_field=party_field, company_field=company_field)
        if not found:
            raise self.not_found() from None
        return found[0]

    # -- answers --------------------------------------------------------------

    def url(self, path, **query):
        "The URL of `path` (a route path without the database) on this site"
        url = '/%s%s' % (self.database_name, path)
        if query:
            url += '?' + urllib.parse.urlencode(query)
        return url

    def static_url(self, path, module='isp_base'):
        from .static import static_url
        return static_url(self.database_name, module, path)

    def navigation(self):
        "The navigation entries: (key, label, url or None, current)"
        entries = []
        for key, label in NAV_SLOTS:
            target = NAVIGATION.get(key)
            if target and target[0] in self.modules:
                entries.append((key, self.gettext(label),
                        self.url(target[1]), key == self._nav))
            elif key in NAV_PLACEHOLDERS:
                entries.append((key, self.gettext(label), None, False))
        return entries

    _nav = None
    _upload = None

    def render(self, template, status=200, **values):
        "A response of `template` rendered with the page and `values`"
        fmt = self.fmt
        context = {
            'page': self,
            'company': self.company,
            'user': self.user,
            'party': self.party,
            'lang': self.language,
            'languages': [(c, LANGUAGE_NAMES[c]) for c in LANGUAGES],
            '_': fmt.gettext,
            'gettext': fmt.gettext,
            'ngettext': fmt.ngettext,
            'fmt': fmt,
            'url': self.url,
            'static': self.static_url,
            'csrf_field': security.CSRF_FIELD,
            'csrf_token': self.csrf_token,
            'nav': self.navigation(),
            'notice': None,
            'error': None,
            }
        context.update(values)
        body = render(self.modules, template, context)
        return Response(body, status=status,
            content_type='text/html; charset=utf-8')

    def redirect(self, path, **query):
        "303 to `path` of this site (a route path without the database)"
        return Response(status=HTTPStatus.SEE_OTHER,
            headers={'Location': self.url(path, **query)})

    def not_found(self):
        return security.Refusal(404, N_("This page does not exist."))

    def refuse(self, status, reason):
        "A Refusal to raise: `reason` is an English message id (N_)"
        return security.Refusal(status, reason)

    def error_page(self, status, reason):
        if self.company is None:
            return _bare_error(status, reason, self.request)
        return self.render('isp_base/error.html', status=status,
            reason=self.gettext(reason))

    def finish(self, response):
        "Set the cookies the page asked for"
        request, database = self.request, self.database_name
        for name, value, max_age in self.cookies:
            if value is None:
                security.delete_cookie(response, request, database, name)
            else:
                security.set_cookie(response, request, database, name,
                    value, max_age=max_age)
        return response


def _bare_error(status, reason, request=None):
    "An error page without tenant (unknown host), in English"
    import html
    body = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, '
        'initial-scale=1"><title>%d</title></head><body><p>%s</p>'
        '</body></html>') % (status, html.escape(reason))
    return Response(body, status=status,
        content_type='text/html; charset=utf-8')


def _run(page, func, login, kwargs):
    "The session, form and CSRF checks, then the page's function"
    request = page.request
    page.load_session()
    if request.method == 'POST':
        if page._upload and request.mimetype == security.UPLOAD_TYPE:
            page.form, page.files = security.parse_upload(
                request, page._upload)
        else:
            page.form = security.parse_form(request)
        page.check_csrf()
    if login and not page.logged_in:
        target = request.full_path.rstrip('?') \
            if request.method == 'GET' else None
        query = {'next': target} if target else {}
        return page.redirect(LOGIN, **query)
    with Transaction().set_context(language=page.language):
        return func(page, **kwargs)


def portal_page(path, methods=('GET',), login=True, nav=None, upload=None):
    """Register the function as a public page of its module.

    path: the route without the database, starting with the module's name:
    ``'/isp_billing/portal/invoices'``, ``'/isp_billing/portal/invoice/
    <int:invoice_id>'``; methods: GET and/or POST; login: the page needs a
    logged-in subscriber (others are sent to the login page, then back);
    nav: the navigation slot (NAV_SLOTS key) the page fills; upload: the
    largest file (bytes) a POST may carry as ``multipart/form-data`` (in
    ``page.files``; the fields in ``page.form``, CSRF checked the same).

    The function is called as ``func(page, **path_arguments)`` and returns a
    Response (usually ``page.render(...)`` or ``page.redirect(...)``); it
    raises ``page.not_found()`` / ``page.refuse(status, reason)`` to answer
    an error page."""
    module = path.strip('/').split('/')[0]
    methods = set(methods)
    if nav is not None:
        if nav not in dict(NAV_SLOTS):
            raise ValueError("unknown navigation slot %r" % nav)
        NAVIGATION[nav] = (module, path)

    def decorator(func):
        def handler(request, pool, **kwargs):
            if module not in pool._modules:
                return _bare_error(404, "This page does not exist.")
            page = Page(request, pool, module)
            page._nav = nav
            page._upload = upload
            transaction = Transaction()
            try:
                page.load_tenant()
                # the tenant's values of company-dependent fields (a
                # party's language, the configurations)
                with transaction.set_context(company=page.company.id):
                    response = _run(page, func, login, kwargs)
            except security.Refusal as refusal:
                transaction.rollback()
                response = page.error_page(refusal.status, refusal.reason)
            except (UserError, UserWarning) as exception:
                transaction.rollback()
                response = page.error_page(400, exception.message)
            except (TransactionError, backend.DatabaseOperationalError):
                raise
            except HTTPException:
                raise
            except Exception:
                logger.exception("portal page %s failed", path)
                transaction.rollback()
                response = _bare_error(500, "Something went wrong. Please "
                    "try again later.")
            return page.finish(response)

        wrapped = with_pool(with_transaction()(handler))

        @functools.wraps(func)
        def endpoint(request, database_name, **kwargs):
            if request.method not in methods | (
                    {'HEAD'} if 'GET' in methods else set()):
                return security.secure(_bare_error(405,
                        "Method not allowed."))
            try:
                response = wrapped(request, database_name, **kwargs)
            except HTTPException as exception:
                response = exception.get_response()
                if response.status_code >= 500:
                    response = _bare_error(503,
                        "The service is busy. Please try again in a moment.")
            return security.secure(response)

        endpoint.max_request_size = security.MAX_FORM + (upload or 0)
        app.route('/<database_name>' + path, methods=methods)(endpoint)
        if _INT_ARGUMENT.search(path):
            # a non-numeric id (`/invoice/abc`, `/invoice/-1`) would fall to
            # trytond's JSON-RPC catch-all (405): the page's 404 instead
            _not_a_number(_INT_ARGUMENT.sub(r'<\1>', path), methods,
                login, upload)
        return func
    return decorator


#: `<int:name>` arguments of a route's path
_INT_ARGUMENT = re.compile(r'<int:(\w+)>')


def _not_a_number(path, methods, login, upload):
    """Register `path` (the page's with its `<int:...>` arguments as
    strings, tried after it: werkzeug prefers the int converter) as a page
    answering 404"""
    def not_a_number(page, **kwargs):
        raise page.not_found()
    not_a_number.__name__ = not_a_number.__qualname__ = (
        'not_a_number_%s' % path)
    portal_page(path, methods=methods, login=login, upload=upload)(
        not_a_number)
