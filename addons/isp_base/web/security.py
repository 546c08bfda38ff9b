# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Cookies, CSRF tokens, form parsing and security headers of the public
pages."""
import hashlib
import hmac
import secrets
import urllib.parse

from trytond import config
from werkzeug.datastructures import MultiDict

from .i18n import N_

#: The cookie holding the web_user session key of a logged-in subscriber.
SESSION_COOKIE = 'isp_session'
#: The cookie of a visitor not logged in: binds the CSRF token of the
#: login and reset forms.
PRE_COOKIE = 'isp_pre'
#: The language chosen by a visitor not logged in.
LANG_COOKIE = 'isp_lang'
#: The name of the CSRF field of every form.
CSRF_FIELD = 'csrf_token'
#: The largest form body accepted (bytes), the most fields and the longest
#: value (characters).
MAX_FORM = 16 * 1024
MAX_FIELDS = 64
MAX_VALUE = 2000
FORM_TYPE = 'application/x-www-form-urlencoded'
#: The form of a page taking files (`portal_page(upload=...)`)
UPLOAD_TYPE = 'multipart/form-data'

#: Sent with every page (and static file).
SECURITY_HEADERS = {
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    'Content-Security-Policy': (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"),
    }


class Refusal(Exception):
    "A request refused: `status` and a short `reason` (an English msgid)"

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def new_key():
    "A random value for a pre-session cookie"
    return secrets.token_urlsafe(32)


def csrf_token(key):
    "The CSRF token bound to a session or pre-session key"
    return hmac.new(key.encode('utf-8'), b'isp-portal-csrf',
        hashlib.sha256).hexdigest()


def check_csrf(key, token):
    "Raise Refusal unless `token` is the one of `key`"
    if not key:
        raise Refusal(403, N_("Your session has expired: reload the page "
                "and try again."))
    if not token:
        raise Refusal(403, N_("The form has no security token: reload the "
                "page and try again."))
    if not hmac.compare_digest(csrf_token(key), token):
        raise Refusal(403, N_("The form's security token is wrong: reload "
                "the page and try again."))


def session_timeout():
    "Seconds a web_user session lives (the [session] web_timeout)"
    return config.getint('session', 'web_timeout', default=30 * 24 * 3600)


def set_cookie(response, request, database, name, value, max_age=None):
    "An HttpOnly, SameSite=Lax cookie of the database's pages"
    response.set_cookie(name, value, max_age=max_age,
        path='/%s/' % database, secure=request.is_secure, httponly=True,
        samesite='Lax')


def delete_cookie(response, request, database, name):
    response.delete_cookie(name, path='/%s/' % database,
        secure=request.is_secure, httponly=True, samesite='Lax')


def parse_form(request):
    """The fields of a form post (MultiDict), or Refusal: too large (413),
    not a form, not UTF-8, NUL characters, too many or too long fields
    (400)"""
    length = request.content_length
    if length is not None and length > MAX_FORM:
        raise Refusal(413, N_("The form is too large."))
    body = request.stream.read(MAX_FORM + 1)
    if not body:
        return MultiDict()
    if request.mimetype != FORM_TYPE:
        raise Refusal(400, N_("The request is not a form."))
    if len(body) > MAX_FORM:
        raise Refusal(413, N_("The form is too large."))
    try:
        text = body.decode('utf-8')
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True,
            strict_parsing=bool(text), errors='strict',
            max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, N_("The form is malformed.")) from None
    _check_fields(pairs)
    return MultiDict(pairs)


def _check_fields(pairs):
    "Refusal for NUL characters, too long names or values"
    for name, value in pairs:
        if '\x00' in name or '\x00' in value:
            raise Refusal(400, N_("The form is malformed."))
        if len(name) > 64 or len(value) > MAX_VALUE:
            raise Refusal(400, N_("A field of the form is too long."))


def parse_upload(request, max_file):
    """The fields (MultiDict) and files ({field: (file name, bytes)}) of a
    multipart form post of a page taking files of at most `max_file` bytes,
    or Refusal: too large (413), malformed, more than one file per field,
    fields as for `parse_form` (400).  An empty file field is no file."""
    from werkzeug.exceptions import RequestEntityTooLarge
    length = request.content_length
    if length is not None and length > MAX_FORM + max_file:
        raise Refusal(413, N_("The file is too large."))
    request.max_content_length = MAX_FORM + max_file
    request.max_form_memory_size = MAX_VALUE * 4
    request.max_form_parts = MAX_FIELDS
    try:
        form, uploaded = request.form, request.files
    except RequestEntityTooLarge:
        raise Refusal(413, N_("The file is too large.")) from None
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, N_("The form is malformed.")) from None
    pairs = list(form.items(multi=True))
    if len(pairs) > MAX_FIELDS:
        raise Refusal(400, N_("The form is malformed."))
    _check_fields(pairs)
    files = {}
    for name in uploaded:
        storages = [f for f in uploaded.getlist(name) if f.filename]
        if len(storages) > 1 or name in files:
            raise Refusal(400, N_("The form is malformed."))
        if not storages:
            continue
        data = storages[0].stream.read(max_file + 1)
        if len(data) > max_file:
            raise Refusal(413, N_("The file is too large."))
        filename = storages[0].filename
        if '\x00' in filename or len(filename) > 200:
            raise Refusal(400, N_("The form is malformed."))
        if data:
            files[name] = (filename, data)
    return MultiDict(pairs), files


def secure(response, cache=False):
    "`response` with the security headers (and no-store unless `cache`)"
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not cache:
        response.headers['Cache-Control'] = 'no-store'
    return response


def safe_next(database, value):
    """A path of the database's pages to go back to, or None (no other
    site, no scheme, no protocol-relative URL)"""
    if not value or not isinstance(value, str) or len(value) > 500:
        return None
    prefix = '/%s/' % database
    if (not value.startswith(prefix) or '//' in value or '\\' in value
            or any(ord(c) < 32 for c in value)):
        return None
    return value
