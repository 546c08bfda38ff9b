# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_base's public pages: start page, log in, log out, language."""
from trytond.exceptions import RateLimitException

from . import security
from .i18n import LANGUAGES, N_
from .page import HOME, LOGIN, NAVIGATION, portal_page


def _next(page):
    return security.safe_next(page.database_name,
        page.form.get('next') or page.request.args.get('next'))


@portal_page(HOME)
def home(page):
    "The start page: the dashboard when a module gives one"
    target = NAVIGATION.get('dashboard')
    if target and target[0] in page.modules:
        return page.redirect(target[1])
    return page.render('isp_base/home.html')


@portal_page(LOGIN, methods=('GET', 'POST'), login=False)
def login(page):
    "Log in with an e-mail or a customer ID and a password"
    next_ = _next(page)
    if page.request.method != 'POST':
        if page.logged_in:
            return _go(page, next_)
        return page.render('isp_base/login.html', next=next_, login='')
    WebUser = page.pool.get('web.user')
    login_ = (page.form.get('login') or '').strip()
    password = page.form.get('password') or ''
    if not login_ or not password:
        return page.render('isp_base/login.html', status=400, next=next_,
            login=login_, error=page.gettext(
                N_("Enter your e-mail or customer ID and your password.")))
    try:
        user = WebUser.authenticate(login_, password, company=page.company)
    except RateLimitException:
        return page.render('isp_base/login.html', status=429, next=next_,
            login=login_, error=page.gettext(
                N_("Too many attempts. Please wait a few minutes and try "
                    "again.")))
    if user is None:
        return page.render('isp_base/login.html', status=401, next=next_,
            login=login_, error=page.gettext(
                N_("Wrong e-mail, customer ID or password.")))
    page.start_session(user)
    return _go(page, next_)


def _go(page, next_):
    if next_:
        from trytond.protocols.wrappers import HTTPStatus, Response
        return Response(status=HTTPStatus.SEE_OTHER,
            headers={'Location': next_})
    return page.redirect(HOME)


@portal_page('/isp_base/portal/logout', methods=('POST',), login=False)
def logout(page):
    "Log out: the session is deleted"
    page.end_session()
    return page.redirect(LOGIN)


@portal_page('/isp_base/portal/lang', methods=('POST',), login=False)
def language(page):
    """Choose the language of the pages: the subscriber's language when
    logged in, else a cookie"""
    code = page.form.get('lang')
    if code not in LANGUAGES:
        raise page.refuse(400, N_("This language is not available."))
    if page.logged_in:
        pool = page.pool
        Party = pool.get('party.party')
        Lang = pool.get('ir.lang')
        Party.write([page.party], {'lang': Lang.get(code).id})
    page.set_cookie(security.LANG_COOKIE, code, max_age=365 * 24 * 3600)
    return _go(page, _next(page))
