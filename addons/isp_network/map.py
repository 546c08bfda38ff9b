# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The network map (docs/map.md): router coordinates, the base map's tiles
URL, the short-lived staff tokens that open the map page, and the GeoJSON
of the subscribers and routers a staff user may read."""
import datetime as dt
import hashlib
import secrets
import urllib.parse

from sql import Null
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import StateAction, Wizard

from trytond.modules.isp_base.common import InputGuardMixin
from trytond.modules.isp_base.exceptions import CoordinateValidationError
from trytond.modules.isp_base.tenancy import BranchWizardMixin
from trytond.modules.isp_base.validation import coordinate_problem

from .exceptions import MapTilesURLError

#: The launch token of the menu's URL lives this long (unused: refused).
LAUNCH_TTL = dt.timedelta(minutes=2)
#: The map's session (cookie) lives this long after the launch.
SESSION_TTL = dt.timedelta(minutes=30)
PURPOSE = 'isp_network.map'
DEFAULT_TILES = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png'
DEFAULT_ATTRIBUTION = '\u00a9 OpenStreetMap contributors'
#: The map's statuses: a service's state wins over its live status.
STATUSES = ('online', 'offline', 'isolated')


def digest(key):
    return hashlib.sha256(key.encode('utf-8')).hexdigest()


def map_status(state, live_status):
    "online, offline or isolated (isolated and disabled services)"
    if state == 'isolated' or live_status == 'disabled':
        return 'isolated'
    if live_status == 'online':
        return 'online'
    return 'offline'


class Router(metaclass=PoolMeta):
    __name__ = 'isp.router'

    latitude = fields.Float(
        "Latitude", digits=(3, 7), help="In decimal degrees (WGS 84): "
        "where the router shows on the network map.")
    longitude = fields.Float(
        "Longitude", digits=(3, 7), help="In decimal degrees (WGS 84).")

    @classmethod
    def validate_fields(cls, routers, field_names):
        super().validate_fields(routers, field_names)
        if field_names and not (field_names & {'latitude', 'longitude'}):
            return
        for router in routers:
            problem = coordinate_problem(router.latitude, router.longitude)
            if problem:
                raise CoordinateValidationError(gettext(
                        'isp_network.msg_router_coordinate_invalid',
                        field=cls.fields_get([problem])[problem]['string'],
                        value=getattr(router, problem),
                        limit=90 if problem == 'latitude' else 180,
                        router=router.rec_name))


class Configuration(InputGuardMixin, metaclass=PoolMeta):
    __name__ = 'isp.configuration'

    map_tiles_url = fields.Char(
        "Map Tiles URL",
        help="The base map's tile server: https://.../{z}/{x}/{y}.png "
        "({s} for sub-domains).  Empty: the map shows the markers on a "
        "plain background (offline).")
    map_tiles_attribution = fields.Char(
        "Map Tiles Attribution",
        help="The credit the tile server asks for, shown on the map.")

    @classmethod
    def default_map_tiles_url(cls):
        return DEFAULT_TILES

    @classmethod
    def default_map_tiles_attribution(cls):
        return DEFAULT_ATTRIBUTION

    @classmethod
    def validate_fields(cls, configurations, field_names):
        super().validate_fields(configurations, field_names)
        if field_names and 'map_tiles_url' not in field_names:
            return
        for configuration in configurations:
            url = configuration.map_tiles_url
            if url and tiles_origin(url) is None:
                raise MapTilesURLError(gettext(
                        'isp_network.msg_map_tiles_url_invalid', url=url))


def tiles_origin(url):
    """The origin of a tiles URL for the page's Content-Security-Policy
    (`{s}.` sub-domains as `*.`), or None when it is not an http(s) URL
    with {z}, {x} and {y}"""
    if not url or len(url) > 500 or any(
            p not in url for p in ('{z}', '{x}', '{y}')):
        return None
    parsed = urllib.parse.urlsplit(url)
    host = parsed.netloc.replace('{s}.', '*.', 1)
    if parsed.scheme not in {'http', 'https'} or not host or any(
            c in host for c in ' {}\'";,\\'):
        return None
    return '%s://%s' % (parsed.scheme, host)


class MapToken(ModelSQL):
    "Network Map Token"
    __name__ = 'isp.network.map.token'

    # written by the system only (mint, launch)
    user = fields.Many2One(
        'res.user', "User", required=True, readonly=True,
        ondelete='CASCADE')
    purpose = fields.Char("Purpose", required=True, readonly=True)
    launch_hash = fields.Char("Launch Hash", required=True, readonly=True)
    session_hash = fields.Char("Session Hash", readonly=True)
    expires = fields.DateTime("Expires", required=True, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.launch_hash, Index.Equality())),
                Index(t, (t.session_hash, Index.Equality())),
                })

    @classmethod
    def mint(cls, user_id, purpose=PURPOSE):
        """A new launch key for `user_id` (stored as its hash, valid
        LAUNCH_TTL, one use); expired tokens are deleted"""
        key = secrets.token_urlsafe(32)
        now = dt.datetime.now()
        with without_check_access():
            cls.delete(cls.search([('expires', '<', now)]))
            cls.create([{
                        'user': user_id,
                        'purpose': purpose,
                        'launch_hash': digest(key),
                        'expires': now + LAUNCH_TTL,
                        }])
        return key

    @classmethod
    def _valid_user(cls, token):
        user = token.user
        return user.id if user.active else None

    @classmethod
    def launch(cls, key, purpose=PURPOSE):
        """Exchange a launch key for a session key (the launch key can not
        be used again): (user id, session key) or None"""
        if not key or len(key) > 128 or not key.isascii():
            return None
        now = dt.datetime.now()
        with without_check_access():
            tokens = cls.search([
                    ('launch_hash', '=', digest(key)),
                    ('purpose', '=', purpose),
                    ('session_hash', '=', None),
                    ('expires', '>', now),
                    ], limit=1)
            if not tokens or not cls._valid_user(tokens[0]):
                return None
            token, = tokens
            session = secrets.token_urlsafe(32)
            # a one-use exchange: a concurrent launch of the same key
            # updates nothing
            table = cls.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.update(
                    [table.session_hash, table.expires],
                    [digest(session), now + SESSION_TTL],
                    where=(table.id == token.id)
                    & (table.session_hash == Null)))
            if cursor.rowcount != 1:
                return None
            return token.user.id, session

    @classmethod
    def session_user(cls, key, purpose=PURPOSE):
        "The user id of an unexpired session key, else None"
        if not key or len(key) > 128 or not key.isascii():
            return None
        with without_check_access():
            tokens = cls.search([
                    ('session_hash', '=', digest(key)),
                    ('purpose', '=', purpose),
                    ('expires', '>', dt.datetime.now()),
                    ], limit=1)
            return cls._valid_user(tokens[0]) if tokens else None


class OpenMap(BranchWizardMixin, Wizard):
    """Open the Network Map: the page shows what the user may read; started
    on records (a client may send any), they must be the user's branches'"""
    __name__ = 'isp.network.map.open'
    start_state = 'open_'
    open_ = StateAction('isp_network.url_network_map')

    def do_open_(self, action):
        pool = Pool()
        Token = pool.get('isp.network.map.token')
        transaction = Transaction()
        key = Token.mint(transaction.user)
        path = '/%s/isp_network/map/open?%s' % (
            urllib.parse.quote(transaction.database.name),
            urllib.parse.urlencode({'token': key}))
        request = transaction.context.get('_request') or {}
        host = request.get('http_host')
        if host:
            path = '%s://%s%s' % (
                'https' if request.get('is_secure') else 'http',
                host.split('://')[-1], path)
        action['url'] = path
        return action, {}


def geojson(filters):
    """The GeoJSON FeatureCollection of the services (active and isolated)
    and routers the transaction's user may read (record rules and access
    rights apply: call it as the staff user with _check_access), filtered
    by `filters` (router, location: ids; status: one of STATUSES)"""
    pool = Pool()
    Service = pool.get('isp.service')
    Party = pool.get('party.party')
    Router = pool.get('isp.router')
    domain = [('state', 'in', ['active', 'isolated'])]
    if filters.get('router'):
        domain.append(('router', '=', filters['router']))
    if filters.get('location'):
        domain.append(('location', '=', filters['location']))
    status = filters.get('status')
    if status == 'online':
        domain += [('state', '=', 'active'), ('live_status', '=', 'online')]
    elif status == 'offline':
        domain += [('state', '=', 'active'),
            ('live_status', 'in', ['offline', 'unknown'])]
    elif status == 'isolated':
        domain.append(['OR', ('state', '=', 'isolated'),
                ('live_status', '=', 'disabled')])
    routers = Router.search([])
    # read once: an attribute of a record per row costs more than the query
    last_syncs = {r.id: r.last_sync for r in routers}
    services = Service.search(domain, query=True)
    parties = Party.search([('is_subscriber', '=', True)], query=True)
    service, party = Service.__table__(), Party.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*service.join(party,
            condition=service.subscriber == party.id).select(
            service.id, service.customer_id, service.state,
            service.live_status, service.live_since, service.last_online,
            service.router, service.location, service.plan, party.id,
            party.name, party.latitude, party.longitude,
            where=service.id.in_(services) & party.id.in_(parties)
            & (party.latitude != Null)
            & (party.longitude != Null)))
    rows = cursor.fetchall()
    plan_names = _names('product.template', {r[8] for r in rows})
    features = []
    for (service_id, customer_id, state, live_status, since, last_online,
            router_id, location_id, plan_id, party_id, name, lat,
            lng) in rows:
        last_seen = last_online
        if live_status == 'online':
            last_seen = last_syncs.get(router_id) or last_online
        features.append({
                'type': 'Feature',
                'geometry': {'type': 'Point', 'coordinates': [lng, lat]},
                'properties': {
                    'kind': 'service',
                    'id': service_id,
                    'customer_id': customer_id,
                    'party': party_id,
                    'name': name,
                    'plan': plan_names.get(plan_id),
                    'router': router_id,
                    'location': location_id,
                    'status': map_status(state, live_status),
                    'since': _iso(since),
                    'last_seen': _iso(last_seen),
                    },
                })
    for router in routers:
        if router.latitude is None or router.longitude is None or (
                filters.get('router')
                and router.id != filters['router']):
            continue
        features.append({
                'type': 'Feature',
                'geometry': {'type': 'Point',
                    'coordinates': [router.longitude, router.latitude]},
                'properties': {
                    'kind': 'router',
                    'id': router.id,
                    'name': router.rec_name,
                    'status': 'online' if router.reachable else 'offline',
                    'last_seen': _iso(router.last_contact),
                    },
                })
    return {'type': 'FeatureCollection', 'features': features}


def _names(model, ids):
    "{id: rec_name} of the records of `model` the user may read"
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    Model = Pool().get(model)
    return {r.id: r.rec_name for r in Model.search([('id', 'in', ids)])}


def _iso(value):
    return value.isoformat(timespec='seconds') + 'Z' if value else None
