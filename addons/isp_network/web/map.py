# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The network map, a staff page of the public web layer (docs/map.md).

- ``GET /<db>/isp_network/map/open?token=...``: the URL the back office's
  *ISP > Network Map* opens (`isp.network.map.open` mints the token for
  the logged-in user, valid 2 minutes, one use); exchanged for a session
  cookie bound to that user (30 minutes), then 303 to the map.
- ``GET /<db>/isp_network/map``: the page (Leaflet, vendored).
- ``GET /<db>/isp_network/map/data?router=&status=&location=``: the
  GeoJSON, read AS THE STAFF USER (``Transaction().set_user`` with their
  preferences' context and ``_check_access``): their access rights,
  record rules and companies apply, never root's.

A missing, forged, used or expired token or session: 403."""
import json

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.protocols.wrappers import (
    HTTPStatus,
    Response,
    with_pool,
    with_transaction,
)
from trytond.transaction import Transaction
from trytond.wsgi import app

from trytond.modules.isp_base.web import LANGUAGES, N_, Formatter, security
from trytond.modules.isp_base.web.render import render
from trytond.modules.isp_base.web.static import static_url

from ..map import (
    DEFAULT_ATTRIBUTION,
    SESSION_TTL,
    STATUSES,
    geojson,
    tiles_origin,
)

#: The cookie of a staff user's map session.
COOKIE = 'isp_staff_map'
MODULE = 'isp_network'
BASE = '/isp_network/map'
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:%s; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _error(status, reason, language='en', modules=()):
    fmt = Formatter(modules or (MODULE,), language)
    body = render(modules or ('isp_base', MODULE), 'isp_network/error.html',
        {'status': status, 'reason': fmt.gettext(reason), 'lang': language})
    return security.secure(Response(body, status=status,
            content_type='text/html; charset=utf-8'))


def _answer(endpoint):
    "The module check and the security headers of a map route"
    def wrapper(request, pool, *args, **kwargs):
        if MODULE not in pool._modules:
            return security.secure(Response('not found',
                    status=HTTPStatus.NOT_FOUND, content_type='text/plain'))
        try:
            response = endpoint(request, pool, *args, **kwargs)
        except security.Refusal as refusal:
            Transaction().rollback()
            response = _error(refusal.status, refusal.reason,
                modules=tuple(pool._modules))
        return security.secure(response)
    wrapper.__name__ = endpoint.__name__
    return wrapper


def _route(path, readonly=True):
    def decorator(func):
        endpoint = with_pool(with_transaction(readonly=readonly)(
                _answer(func)))
        endpoint.max_request_size = 1024
        app.route('/<database_name>' + BASE + path,
            methods={'GET'})(endpoint)
        return func
    return decorator


def _staff_user(request, pool):
    "The user of the session cookie, else Refusal 403"
    Token = pool.get('isp.network.map.token')
    user_id = Token.session_user(request.cookies.get(COOKIE))
    if user_id is None:
        raise security.Refusal(403, N_("This map link has expired: open "
                "the Network Map again from the back office."))
    return user_id


def _as_staff(user_id, pool):
    """The context manager running as `user_id` with their preferences
    (company, companies, language) and access checks"""
    User = pool.get('res.user')
    transaction = Transaction()
    with transaction.set_user(user_id):
        context = User.get_preferences(context_only=True)
    context['_check_access'] = True
    return _StaffContext(transaction, user_id, context)


class _StaffContext:
    def __init__(self, transaction, user_id, context):
        self.managers = [transaction.set_user(user_id),
            transaction.set_context(context)]
        self.context = context

    def __enter__(self):
        for manager in self.managers:
            manager.__enter__()
        return self.context

    def __exit__(self, *exc):
        for manager in reversed(self.managers):
            manager.__exit__(*exc)


@_route('/open', readonly=False)
def open_map(request, pool):
    "Exchange the launch token for a session cookie, then the map"
    Token = pool.get('isp.network.map.token')
    found = Token.launch(request.args.get('token'))
    if found is None:
        raise security.Refusal(403, N_("This map link is not valid any "
                "more: open the Network Map again from the back office."))
    _, session = found
    database = pool.database_name
    response = Response(status=HTTPStatus.SEE_OTHER,
        headers={'Location': '/%s%s' % (database, BASE)})
    response.set_cookie(COOKIE, session,
        max_age=int(SESSION_TTL.total_seconds()),
        path='/%s%s' % (database, BASE), secure=request.is_secure,
        httponly=True, samesite='Strict')
    return response


@_route('')
def map_page(request, pool):
    "The map page, in the staff user's language"
    user_id = _staff_user(request, pool)
    Configuration = pool.get('isp.configuration')
    configuration = Configuration(1)
    tiles = configuration.map_tiles_url or ''
    attribution = configuration.map_tiles_attribution or DEFAULT_ATTRIBUTION
    origin = tiles_origin(tiles)
    with _as_staff(user_id, pool) as context:
        Router = pool.get('isp.router')
        Location = pool.get('isp.location')
        try:
            routers = Router.search([], order=[('name', 'ASC')])
            locations = Location.search([])
        except AccessError:
            raise security.Refusal(403, N_("You may not read the routers "
                    "of the network.")) from None
        language = (context.get('language') or 'en')[:2]
        if language not in LANGUAGES:
            language = 'en'
        database = pool.database_name
        modules = tuple(pool._modules)
        fmt = Formatter(modules, language)
        body = render(modules, 'isp_network/map.html', {
                '_': fmt.gettext,
                'lang': language,
                'routers': routers,
                'locations': locations,
                'statuses': [(s, fmt.gettext(label)) for s, label in (
                            ('online', N_("Online")),
                            ('offline', N_("Offline")),
                            ('isolated', N_("Isolated or disabled")))],
                'data_url': '/%s%s/data' % (database, BASE),
                'backoffice': '/#%s/model/' % database,
                'tiles': tiles if origin else '',
                'attribution': attribution if origin else '',
                'static': lambda path: static_url(database, MODULE, path),
                })
    response = Response(body, content_type='text/html; charset=utf-8')
    response.headers['Content-Security-Policy'] = CSP % (
        ' ' + origin if origin else '')
    return response


def _filters(args):
    "The filters of the query (bad values: Refusal 400)"
    filters = {}
    for name in ('router', 'location'):
        value = args.get(name)
        if value:
            if not value.isdigit() or not 0 < int(value) < 2 ** 31:
                raise security.Refusal(400, N_("The filter is not valid."))
            filters[name] = int(value)
    status = args.get('status')
    if status:
        if status not in STATUSES:
            raise security.Refusal(400, N_("The filter is not valid."))
        filters['status'] = status
    return filters


@_route('/data')
def map_data(request, pool):
    "The GeoJSON of the staff user's subscribers and routers"
    user_id = _staff_user(request, pool)
    filters = _filters(request.args)
    with _as_staff(user_id, pool):
        try:
            data = geojson(filters)
        except (AccessError, UserError):
            raise security.Refusal(403, N_("You may not read the "
                    "subscribers of the network.")) from None
    return Response(json.dumps(data, separators=(',', ':')),
        content_type='application/geo+json')
