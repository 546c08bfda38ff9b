# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""isp_base's public pages: start page, log in, log out, language,
password reset and change."""
import trytond.config as config
from trytond.exceptions import RateLimitException, UserError

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

    def again(status, error, login_=''):
        return page.render('isp_base/login.html', status=status, next=next_,
            login=login_, done=None, error=page.gettext(error))
    if page.request.method != 'POST':
        if page.logged_in:
            return _go(page, next_)
        return page.render('isp_base/login.html', next=next_, login='',
            done=page.request.args.get('done'))
    WebUser = page.pool.get('web.user')
    login_ = (page.form.get('login') or '').strip()
    password = page.form.get('password') or ''
    if not login_ or not password:
        return again(400, N_("Enter your e-mail or customer ID and your "
                "password."), login_)
    try:
        user = WebUser.authenticate(login_, password, company=page.company)
    except RateLimitException:
        return again(429, N_("Too many attempts. Please wait a few minutes "
                "and try again."), login_)
    if user is None:
        return again(401, N_("Wrong e-mail, customer ID or password."),
            login_)
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


CHANNELS = ('email', 'whatsapp')


@portal_page('/isp_base/portal/reset', methods=('GET', 'POST'), login=False)
def reset(page):
    """Ask for a link to choose a new password, by e-mail or WhatsApp: the
    same answer whether an account matches or not"""
    from ..web_user import reset_seconds
    if page.request.method != 'POST':
        return page.render('isp_base/reset.html', sent=False, login='',
            channel='email')
    login_ = (page.form.get('login') or '').strip()
    channel = page.form.get('channel') or 'email'
    if channel not in CHANNELS:
        return page.render('isp_base/reset.html', status=400, sent=False,
            login=login_, channel='email', error=page.gettext(
                N_("Choose the channel: e-mail or WhatsApp.")))
    if not login_:
        return page.render('isp_base/reset.html', status=400, sent=False,
            login='', channel=channel, error=page.gettext(
                N_("Enter your e-mail or customer ID and your password.")))
    WebUser = page.pool.get('web.user')
    WebUser.isp_request_reset(login_, page.company, _base_url(page),
        channel)
    return page.render('isp_base/reset.html', sent=True, login=login_,
        channel=channel, notice=page.gettext(
            N_("If an account matches, a link to choose a new password has "
                "been sent. It is valid for %(hours)s hours."),
            hours=reset_seconds() // 3600))


def _base_url(page):
    """The site's URL for links: the request's when its host is one of the
    branch's portal domains, else the configured one (a Host header is the
    client's word: a link must never point elsewhere)"""
    from ..company import normalize_host
    from ..web_user import portal_base_url
    request = page.request
    if normalize_host(request.host) in page.company.isp_web_hosts():
        return request.host_url.rstrip('/')
    return portal_base_url(page.company)


def _password_form(page, status=200, user=None, token='', error=None):
    from ..web_user import MIN_PASSWORD
    return page.render('isp_base/password.html', status=status,
        link_user=user, token=token, min_length=MIN_PASSWORD,
        invitation=bool(user and not user.password_hash), error=error)


@portal_page('/isp_base/portal/password', methods=('GET', 'POST'),
    login=False)
def password(page):
    """Choose a password from a reset or invitation link: the other
    sessions of the user end"""
    WebUser = page.pool.get('web.user')
    source = page.form if page.request.method == 'POST' \
        else page.request.args
    token = source.get('token') or ''
    user = WebUser.isp_from_token(token, page.company)
    if user is None:
        return _password_form(page, status=404, error=page.gettext(
                N_("This link is not valid or has expired. Ask for a new "
                    "one.")))
    if page.request.method != 'POST':
        return _password_form(page, user=user, token=token)
    new = page.form.get('password') or ''
    if new != (page.form.get('password2') or ''):
        return _password_form(page, status=400, user=user, token=token,
            error=page.gettext(N_("The two passwords are not the same.")))
    try:
        WebUser.isp_set_password(user, new)
    except UserError as exception:
        return _password_form(page, status=400, user=user, token=token,
            error=page.gettext(N_("The password is not accepted: "
                    "%(reason)s"), reason=exception.message))
    if page.session_key:
        page.end_session()
    return page.redirect(LOGIN, done='password')


@portal_page('/isp_base/portal/password/change', methods=('GET', 'POST'))
def change_password(page):
    """Change the password knowing the current one: the subscriber's other
    sessions end, this one stays"""
    from ..web_user import MIN_PASSWORD
    WebUser = page.pool.get('web.user')

    def form(status=200, error=None, notice=None):
        return page.render('isp_base/change_password.html', status=status,
            min_length=MIN_PASSWORD, error=error, notice=notice)
    if page.request.method != 'POST':
        return form()
    Attempt = page.pool.get('web.user.authenticate.attempt')
    user = page.user
    current = page.form.get('current') or ''
    new = page.form.get('password') or ''
    key = 'isp-change:%d' % user.id
    if Attempt.count(key) > config.getint(
            'session', 'max_attempt', default=5):
        return form(429, page.gettext(N_("Too many attempts. Please wait a "
                    "few minutes and try again.")))
    valid, _ = WebUser.check_password(current, user.password_hash) \
        if user.password_hash else (False, None)
    if not valid:
        Attempt.add(key)
        return form(400, page.gettext(N_("The current password is wrong.")))
    Attempt.remove(key)
    if new != (page.form.get('password2') or ''):
        return form(400, page.gettext(
                N_("The two passwords are not the same.")))
    try:
        WebUser.isp_set_password(user, new, keep_session=page.session_key)
    except UserError as exception:
        return form(400, page.gettext(N_("The password is not accepted: "
                    "%(reason)s"), reason=exception.message))
    return form(notice=page.gettext(N_("Your password is changed; your other "
                "sessions are ended.")))
