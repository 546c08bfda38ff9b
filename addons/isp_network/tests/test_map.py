# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The network map: the token minted by *ISP > Network Map* for the staff
user, the page and its GeoJSON read with that user's rights and companies
(another branch's staff sees none of branch A's subscribers), forged, used
and expired tokens refused."""
import datetime as dt
import json
import pathlib
import re
import urllib.parse
from decimal import Decimal

from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import create_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.isp_base import accesslog
from trytond.modules.isp_base.tests.portal_tools import untranslated
from trytond.modules.isp_network.map import tiles_origin

OPEN, PAGE, DATA = ('/isp_network/map/open', '/isp_network/map',
    '/isp_network/map/data')
COOKIE = 'isp_staff_map'
WEB = pathlib.Path(__file__).resolve().parents[1] / 'web'
LEAKS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b')


def _staff(login, group, companies, **values):
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    user, = User.create([{
                'name': login, 'login': login,
                'groups': [('add', [ModelData.get_id('isp_base', group)])],
                'companies': [('add', [c.id for c in companies])],
                'company': companies[0].id, **values,
                }])
    return user.id


def _branch(name, code, lat, lng, subscribers):
    """A branch with a location, a plan, a router at (lat, lng) and its
    services: (name, state, live status, with coordinates)"""
    pool = Pool()
    Location = pool.get('isp.location')
    Template = pool.get('product.template')
    Uom = pool.get('product.uom')
    Router = pool.get('isp.router')
    Party = pool.get('party.party')
    Service = pool.get('isp.service')
    company = create_company(name)
    now = dt.datetime(2026, 12, 1, 8, 0)
    with Transaction().set_context(company=company.id):
        location, = Location.create([{'code': code, 'name': name}])
        unit, = Uom.search([('name', '=', 'Unit')])
        plan, = Template.create([{
                    'name': "Home 20 %s" % code, 'type': 'service',
                    'isp_company': company.id, 'default_uom': unit.id,
                    'isp_plan': True, 'download_rate': 20000,
                    'upload_rate': 5000, 'list_price': Decimal(100)}])
        router, = Router.create([{
                    'name': "Router %s" % code, 'code': code,
                    'host': '192.0.2.1', 'api_password': 'x',
                    'latitude': lat, 'longitude': lng, 'reachable': True,
                    'last_sync': now}])
        parties = Party.create([{
                    'name': s[0], 'is_subscriber': True,
                    'isp_company': company.id, 'location': location.id,
                    'latitude': round(lat + i / 100, 6) if s[3] else None,
                    'longitude': round(lng + i / 100, 6) if s[3] else None,
                    } for i, s in enumerate(subscribers, 1)])
        services = Service.create([{
                    'company': company.id, 'subscriber': p.id,
                    'location': location.id, 'plan': plan.id,
                    'router': router.id, 'username': '%s%03d' % (code, i),
                    'customer_id': '%s-%03d' % (code, i),
                    'state': s[1], 'live_status': s[2],
                    'live_since': now, 'last_online': now,
                    } for i, (p, s) in enumerate(
                    zip(parties, subscribers, strict=True), 1)])
        Transaction().tasks.clear()
    return company, router, location, services


class NetworkMapTestCase(RouteTestCase):
    "The network map page and its GeoJSON"
    module = 'isp_network'

    @classmethod
    def setUpDatabase(cls):
        a, router_a, location_a, services_a = _branch(
            "NetKita Bandung", 'BD', -6.9, 107.6, [
                ("Siti Online", 'active', 'online', True),
                ("Budi Offline", 'active', 'offline', True),
                ("Rina Isolated", 'isolated', 'disabled', True),
                ("Eko Unknown", 'active', 'unknown', True),
                ("Tono Nowhere", 'active', 'online', False),
                ("Wati Terminated", 'terminated', 'offline', True),
                ])
        b, router_b, location_b, services_b = _branch(
            "NetKita Nairobi", 'NB', -1.28, 36.8, [
                ("John Online", 'active', 'online', True),
                ])
        cls.ids = {
            'a': a.id, 'b': b.id, 'router_a': router_a.id,
            'router_b': router_b.id, 'location_a': location_a.id,
            'a_services': [s.id for s in services_a],
            'b_services': [s.id for s in services_b],
            'users': {
                'tech_a': _staff('bdg_tech', 'group_isp_technician', [a]),
                'cs_a': _staff('bdg_cs', 'group_isp_customer_service',
                    [a]),
                'admin_b': _staff('nbo_admin', 'group_isp_branch_admin',
                    [b]),
                'head': _staff('head', 'group_isp_head_admin', [a, b],
                    company_filter='all'),
                'head_one': _staff('head_one', 'group_isp_head_admin',
                    [a, b]),
                },
            }

    def mint(self, user):
        """The URL the menu's wizard returns for `user` (committed)"""
        with Transaction().start(DB_NAME, self.ids['users'][user],
                context={'_check_access': True}) as transaction:
            Wizard = Pool().get('isp.network.map.open', type='wizard')
            session_id, _, _ = Wizard.create()
            result = Wizard.execute(session_id, {}, 'open_')
            Wizard.delete(session_id)
            transaction.commit()
        (action, _), = result['actions']
        self.assertEqual(action['type'], 'ir.action.url')
        url = urllib.parse.urlsplit(action['url'])
        self.assertEqual(urllib.parse.unquote(url.path),
            '/%s%s' % (DB_NAME, OPEN))
        return '%s?%s' % (url.path, url.query)

    def login(self, user):
        "A client with the map's session of `user`"
        client = self.client()
        response = client.get(self.mint(user))
        self.assertEqual(response.status_code, 303, response.text)
        self.assertEqual(response.headers['Location'],
            '/%s%s' % (DB_NAME, PAGE))
        cookie = response.headers['Set-Cookie']
        self.assertIn('HttpOnly', cookie)
        self.assertIn('SameSite=Strict', cookie)
        return client

    def features(self, client, **query):
        response = client.get('/%s%s' % (DB_NAME, DATA),
            query_string=query)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.mimetype, 'application/geo+json')
        data = json.loads(response.text)
        self.assertEqual(data['type'], 'FeatureCollection')
        services = {f['properties']['customer_id']: f
            for f in data['features'] if f['properties']['kind'] == 'service'}
        routers = {f['properties']['name']: f
            for f in data['features'] if f['properties']['kind'] == 'router'}
        return services, routers

    def test_geojson_of_the_users_branch(self):
        "A branch's staff see their branch's subscribers, head office both"
        services, routers = self.features(self.login('tech_a'))
        # terminated services and subscribers without coordinates: not shown
        self.assertEqual(sorted(services),
            ['BD-001', 'BD-002', 'BD-003', 'BD-004'])
        self.assertEqual(
            {k: f['properties']['status'] for k, f in services.items()},
            {'BD-001': 'online', 'BD-002': 'offline', 'BD-003': 'isolated',
                'BD-004': 'offline'})
        online = services['BD-001']
        self.assertEqual(online['geometry'],
            {'type': 'Point', 'coordinates': [107.61, -6.89]})
        props = online['properties']
        self.assertEqual(props['name'], "Siti Online")
        self.assertEqual(props['plan'], "Home 20 BD")
        self.assertEqual(props['id'], self.ids['a_services'][0])
        self.assertEqual(props['since'], '2026-12-01T08:00:00Z')
        # online: last seen at the router's last sync
        self.assertEqual(props['last_seen'], '2026-12-01T08:00:00Z')
        self.assertEqual(list(routers), ['BD - Router BD'])

        # the other branch's administrator: none of branch A's
        services, routers = self.features(self.login('admin_b'))
        self.assertEqual(list(services), ['NB-001'])
        self.assertEqual(list(routers), ['NB - Router NB'])
        # even asking for branch A's router or location
        services, routers = self.features(self.login('admin_b'),
            router=self.ids['router_a'])
        self.assertEqual((services, routers), ({}, {}))
        services, _ = self.features(self.login('admin_b'),
            location=self.ids['location_a'])
        self.assertEqual(services, {})

        # head office: the companies of the back office's company filter
        services, _ = self.features(self.login('head_one'))
        self.assertEqual(len(services), 4)
        services, routers = self.features(self.login('head'))
        self.assertEqual(len(services), 5)
        self.assertEqual(sorted(routers), ['BD - Router BD', 'NB - Router NB'])

    def test_filters(self):
        "Filters by status, router and location; bad values 400"
        client = self.login('cs_a')
        for status, expected in [('online', ['BD-001']),
                ('offline', ['BD-002', 'BD-004']),
                ('isolated', ['BD-003'])]:
            services, _ = self.features(client, status=status)
            self.assertEqual(sorted(services), expected, status)
        services, routers = self.features(client,
            router=self.ids['router_a'], location=self.ids['location_a'])
        self.assertEqual(len(services), 4)
        self.assertEqual(list(routers), ['BD - Router BD'])
        for query in [{'status': 'gone'}, {'router': 'x'},
                {'router': '-1'}, {'location': str(2 ** 40)},
                {'router': '1 OR 1=1'}]:
            response = client.get('/%s%s' % (DB_NAME, DATA),
                query_string=query)
            self.assertEqual(response.status_code, 400, query)
            self.assertNotRegex(response.text, LEAKS)

    def test_token_refused(self):
        "Forged, used and expired tokens and sessions: 403, nothing shown"
        client = self.client()
        url = self.mint('tech_a')
        # the token never reaches the access log
        self.assertNotIn(url.split('token=')[1], accesslog.redact(
                '"GET %s HTTP/1.1" 303' % url))
        # forged, or none
        for path in ['/%s%s?token=forged' % (DB_NAME, OPEN),
                '/%s%s' % (DB_NAME, OPEN),
                '/%s%s?token=%s' % (DB_NAME, OPEN, 'x' * 500)]:
            response = client.get(path)
            self.assertEqual(response.status_code, 403, path)
            self.assertNotIn('Set-Cookie', response.headers)
        # no session: page and data refused
        for path in [PAGE, DATA]:
            response = self.client().get('/%s%s' % (DB_NAME, path))
            self.assertEqual(response.status_code, 403)
            self.assertNotIn('BD-001', response.text)
        # used once, never again
        self.assertEqual(client.get(url).status_code, 303)
        again = self.client()
        self.assertEqual(again.get(url).status_code, 403)
        self.assertEqual(again.get('/%s%s' % (DB_NAME, DATA)).status_code,
            403)
        # a forged session cookie
        forged = self.client()
        forged.set_cookie(COOKIE, 'forged', path='/%s/' % DB_NAME)
        self.assertEqual(
            forged.get('/%s%s' % (DB_NAME, DATA)).status_code, 403)

        # expired: the launch token after 2 minutes, the session after 30
        url = self.mint('tech_a')
        self._expire()
        self.assertEqual(self.client().get(url).status_code, 403)
        client = self.login('tech_a')
        self.assertEqual(
            client.get('/%s%s' % (DB_NAME, DATA)).status_code, 200)
        self._expire()
        response = client.get('/%s%s' % (DB_NAME, DATA))
        self.assertEqual(response.status_code, 403)
        self.assertNotIn('BD-001', response.text)

        # a deactivated user's session ends
        client = self.login('cs_a')
        with Transaction().start(DB_NAME, 0) as transaction:
            User = Pool().get('res.user')
            user = User(self.ids['users']['cs_a'])
            User.write([user], {'active': False})
            transaction.commit()
        try:
            self.assertEqual(
                client.get('/%s%s' % (DB_NAME, DATA)).status_code, 403)
        finally:
            with Transaction().start(DB_NAME, 0, context={
                        'active_test': False}) as transaction:
                User = Pool().get('res.user')
                User.write([User(self.ids['users']['cs_a'])],
                    {'active': True})
                transaction.commit()

    def _expire(self):
        "Every map token expired (as if their time had passed)"
        with Transaction().start(DB_NAME, 0) as transaction:
            Token = Pool().get('isp.network.map.token')
            table = Token.__table__()
            cursor = transaction.connection.cursor()
            cursor.execute(*table.update([table.expires],
                    [dt.datetime.now() - dt.timedelta(seconds=1)]))
            transaction.commit()

    def test_page(self):
        "The page: filters of the user's records, vendored scripts, CSP"
        client = self.login('tech_a')
        response = client.get('/%s%s' % (DB_NAME, PAGE))
        self.assertEqual(response.status_code, 200)
        page = response.text
        self.assertIn('Router BD', page)
        self.assertNotIn('Router NB', page)
        for path in ['leaflet/leaflet.js', 'map.js',
                'leaflet.markercluster/leaflet.markercluster.js']:
            self.assertIn('/isp_base/static/isp_network/%s?v=' % path, page)
        self.assertIn('data-backoffice="/#%s/model/"' % DB_NAME, page)
        csp = response.headers['Content-Security-Policy']
        self.assertIn("script-src 'self';", csp)
        self.assertIn('img-src \'self\' data: https://tile.openstreetmap.org',
            csp)
        self.assertEqual(response.headers['X-Frame-Options'], 'DENY')
        self.assertEqual(response.headers['Cache-Control'], 'no-store')
        for path in ['leaflet/leaflet.js', 'leaflet/LICENSE',
                'leaflet.markercluster/MIT-LICENCE.txt', 'map.css']:
            response = client.get(
                '/%s/isp_base/static/isp_network/%s' % (DB_NAME, path))
            self.assertEqual(response.status_code, 200, path)

        # no tiles configured: no tile layer, nothing else in the CSP
        with Transaction().start(DB_NAME, 0,
                _lock_tables=['isp_configuration']) as transaction:
            Configuration = Pool().get('isp.configuration')
            Configuration.write([Configuration(1)], {'map_tiles_url': ''})
            transaction.commit()
        response = client.get('/%s%s' % (DB_NAME, PAGE))
        self.assertIn('data-tiles=""', response.text)
        self.assertIn("img-src 'self' data:;",
            response.headers['Content-Security-Policy'])

    def test_tiles_url_validated(self):
        "The tiles URL: http(s) with {z}, {x} and {y}"
        self.assertEqual(
            tiles_origin('https://{s}.tile.example.org/{z}/{x}/{y}.png'),
            'https://*.tile.example.org')
        for url in ['javascript:alert(1)//{z}{x}{y}',
                'https://tiles.example.org/a.png', 'ftp://x/{z}/{x}/{y}',
                "https://x';script-src *;/{z}/{x}/{y}"]:
            self.assertIsNone(tiles_origin(url), url)
        with Transaction().start(DB_NAME, 0,
                _lock_tables=['isp_configuration']):
            Configuration = Pool().get('isp.configuration')
            with self.assertRaises(ValidationError):
                Configuration.write([Configuration(1)],
                    {'map_tiles_url': 'https://tiles.example.org/a.png'})
            Router = Pool().get('isp.router')
            with self.assertRaises(ValidationError):
                Router.write([Router(self.ids['router_a'])],
                    {'latitude': 91})

    def test_catalog_complete(self):
        "Every message of the map page is translated to Indonesian"
        self.assertEqual(untranslated(WEB), [])
