# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""VPN access to routers: the RouterOS v6/v7 ovpn-client scripts and their
quoting, the central server or the branch's own, bad input refused, and the
credentials readable by the administrators of the router's branch only."""
import re
import unittest

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import RouteTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.isp_base.exceptions import InputValidationError
from trytond.modules.isp_network.exceptions import VpnValidationError
from trytond.modules.isp_network.vpn import ovpn_script, ros_quote

CA = (
    '-----BEGIN CERTIFICATE-----\n'
    'MIIDCzCCAfOgAwIBAgIUc8md595/fpx6htQH2EvVZdVQyxgwDQYJKoZIhvcNAQEL\n'
    'BQAwFTETMBEGA1UEAwwKSVNQIFZQTiBDQTAeFw0yNjEyMDQyMjA5MzNaFw0zNjEy\n'
    'MDEyMjA5MzNaMBUxEzARBgNVBAMMCklTUCBWUE4gQ0EwggEiMA0GCSqGSIb3DQEB\n'
    'AQUAA4IBDwAwggEKAoIBAQCC3FM1aF5VZWNj3Oj7YppSv0JhNix29hono1QAEP8r\n'
    'LVfXlmtXJCFd9pdL4wlG81nDqOEUO45QpsnR6IvO5tkTcoP8hnP2mPZyez1BIRhj\n'
    'i7oN32uOeQ3ZH4q8Gtkkm4D9Pq4TXxSAqch2SVX+DmmI25OHlspFlL5/RrDFfN82\n'
    's0AR36VCBNj1RBEgHdufcoI70M/jbTNQMrrzLlKlklhpFwUV3d+9RCIuk/4kPYFY\n'
    'NNRZ5KXHHUT8Gdq8m7exf7yq/nTPZgJccNoCU6nEpLikNqsTE9i8oTYJ7gxbhKqf\n'
    '8N23mpD5adz1G7/m0dtwp9XfC2l3ZEV6pHORKDLwuVLLAgMBAAGjUzBRMB0GA1Ud\n'
    'DgQWBBQSGxPJ/5t5EJ07xgfQjrnYz0g//TAfBgNVHSMEGDAWgBQSGxPJ/5t5EJ07\n'
    'xgfQjrnYz0g//TAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQA4\n'
    'Y0TK5atr0chRFYRaJZfimA0/deLPEBjfurE6CZAk4jXBYfO0M9GKM5ZOfhyMEt/c\n'
    'sbHQGaR7v0QAhHEEmsP7yE1yxcLtvp06iKJIJO5Rs3sBapv/xvx6esnw8cTOA5B0\n'
    'GHQQHGtaTWcdJxcF7RUgdOLZ6q2mAefYjUZ9IvhqoiAtY+uOe6I9N3NCGwXCGDLN\n'
    'Bf/Buit2oyR7Z9ZJjgB8uWumlS3PZ9smGW2Fq1IatNep5jEnFKriyza7+CctR5w2\n'
    'jMZShYS7YiACUxeX7M7O+VMhXnaC0ZZ3MZs9FoElpMFsf+UENCwNip6M8235vbjl\n'
    'hmv+2PoAOWuzgNup/cKV\n'
    '-----END CERTIFICATE-----\n')

SERVER = {'host': 'vpn.example.net', 'port': 1194, 'protocol': 'tcp',
    'cipher': 'aes256-cbc', 'auth': 'sha256', 'ca': CA,
    'verify_certificate': True}

#: RouterOS' documented escapes in a double-quoted string
_UNESCAPE = {'"': '"', '\\': '\\', '$': '$', '?': '?', 'n': '\n',
    'r': '\r', 't': '\t', '_': ' ', 'a': '\a', 'b': '\b', 'f': '\f',
    'v': '\v'}


def ros_unquote(text):
    """Read a quoted RouterOS string as the script language does; raise
    ValueError at an unescaped quote or $ inside it (the end of the string
    or a variable's substitution)"""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(text)
    body, out, i = text[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == '\\':
            pair = body[i + 1:i + 3]
            if re.fullmatch('[0-9A-F]{2}', pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += _UNESCAPE[body[i + 1]].encode()
            i += 2
            continue
        if char in '"$':
            raise ValueError(text)
        out += char.encode()
        i += 1
    return out.decode('utf-8')


def interface_line(script):
    "{parameter: value} of the script's /interface ovpn-client add line"
    line, = [x for x in script.splitlines()
        if x.startswith('/interface ovpn-client add ')]
    words = re.findall(r'([a-z-]+)=("(?:[^"\\]|\\.)*"|\S+)', line)
    return {k: ros_unquote(v) if v.startswith('"') else v for k, v in words}


class VpnScriptTestCase(unittest.TestCase):
    "Test the RouterOS scripts and their quoting (no database)"

    def test_v6_syntax(self):
        "v6: CBC cipher without its mode, no protocol nor verification"
        script = ovpn_script(6, SERVER, 'ckp-1a2b3c4d5e', 'pw', "VPN CKP")
        lines = script.splitlines()
        self.assertEqual(lines[2:5], [
                '/file print file=isp-vpn-ca', ':delay 2s',
                lines[4]])
        self.assertTrue(lines[4].startswith(
                '/file set [find name="isp-vpn-ca.txt"] contents="'
                '-----BEGIN CERTIFICATE-----\\n'))
        self.assertIn('/certificate import file-name=isp-vpn-ca.txt '
            'passphrase=""', lines)
        self.assertEqual(interface_line(script), {
                'name': 'isp-vpn', 'connect-to': 'vpn.example.net',
                'port': '1194', 'mode': 'ip', 'user': 'ckp-1a2b3c4d5e',
                'password': 'pw', 'cipher': 'aes256', 'auth': 'sha256',
                'add-default-route': 'no', 'comment': "VPN CKP"})
        contents = re.search(r'contents=(".*")$', lines[4]).group(1)
        self.assertEqual(ros_unquote(contents), CA)

    def test_v7_syntax(self):
        "v7: protocol, cipher with its mode, GCM without HMAC, verification"
        server = {**SERVER, 'protocol': 'udp', 'cipher': 'aes256-gcm'}
        script = ovpn_script(7, server, 'u', 'p', "VPN CKP")
        self.assertEqual(interface_line(script), {
                'name': 'isp-vpn', 'connect-to': 'vpn.example.net',
                'port': '1194', 'protocol': 'udp', 'mode': 'ip',
                'user': 'u', 'password': 'p', 'cipher': 'aes256-gcm',
                'auth': 'null', 'verify-server-certificate': 'yes',
                'add-default-route': 'no', 'comment': "VPN CKP"})
        self.assertEqual(
            interface_line(ovpn_script(7, SERVER, 'u', 'p', 'x'))['cipher'],
            'aes256-cbc')
        for v6_server in [server, {**SERVER, 'protocol': 'udp'},
                {**SERVER, 'cipher': 'aes128-gcm'}]:
            with self.assertRaises(ValueError):
                ovpn_script(6, v6_server, 'u', 'p', 'x')

    def test_quoting(self):
        "A value never ends its string, substitutes a variable or a command"
        values = ['pa"ss', 'a$b', '$(x)', 'x\\"; /system reset', 'a?b',
            '[/system reboot]', 'line\nbreak\ttab\r', 'é€ü', '{x}', ';',
            '\\', '\x00\x07', 'a b']
        for value in values:
            with self.subTest(value=value):
                quoted = ros_quote(value)
                self.assertEqual(ros_unquote(quoted), value)
                self.assertNotIn('\n', quoted)
                self.assertIsNone(re.search(r'[\[\]{}\x00-\x1f\x7f-\uffff]',
                        quoted))
                script = ovpn_script(7, SERVER, value, value, value)
                params = interface_line(script)
                self.assertEqual(params['user'], value)
                self.assertEqual(params['password'], value)
                # one command a line: the value added none
                self.assertEqual(len(script.splitlines()), 10)


class VpnTestCase(RouteTestCase):
    "Test the VPN servers and the routers' VPN settings"
    module = 'isp_network'

    def server(self, company=None, **values):
        Server = Pool().get('isp.vpn.server')
        server, = Server.create([{'name': values.pop('name', 'VPN'),
                    'company': company.id if company else None,
                    'host': 'vpn.example.net', 'ca_certificate': CA,
                    **values}])
        return server

    def router(self, code, **values):
        Router = Pool().get('isp.router')
        router, = Router.create([{'name': code, 'code': code,
                    'host': '192.0.2.1', 'port': 8728,
                    'api_username': 'admin', 'api_password': 'x',
                    **values}])
        return router

    def user(self, group, company):
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user, = User.create([{'name': group, 'login': '%s-%s' % (
                        group, company.id),
                    'groups': [('add', [
                                ModelData.get_id('isp_base', group)])],
                    'companies': [('add', [company.id])],
                    'company': company.id}])
        return user

    @with_transaction()
    def test_central_or_own(self):
        "The branch's own active server, else the central one, else none"
        pool = Pool()
        Server = pool.get('isp.vpn.server')
        branch_a, branch_b = create_company('A'), create_company('B')
        with set_company(branch_a):
            router = self.router('CKP')
            self.assertIsNone(Server.for_company(branch_a))
            self.assertIn('No VPN server', router.vpn_script)
            central = self.server(name="Central")
            self.assertIn('Generate VPN Credentials', router.vpn_script)
            own = self.server(branch_b, name="Own B", protocol='udp')
            self.assertEqual(Server.for_company(branch_a), central)
            self.assertEqual(Server.for_company(branch_b), own)
            Server.write([own], {'active': False})
            self.assertEqual(Server.for_company(branch_b), central)

            router.routeros_version = '6.49.10'
            router.save()
            pool.get('isp.router').generate_vpn_credentials([router])
            self.assertEqual(router.vpn_syntax, '6')
            self.assertTrue(re.fullmatch(r'ckp-[0-9a-f]{10}',
                    router.vpn_username))
            self.assertGreaterEqual(len(router.vpn_password), 32)
            self.assertEqual(router.vpn_script, router.vpn_script_v6)
            self.assertEqual(interface_line(router.vpn_script)['password'],
                router.vpn_password)
            self.assertIn('protocol=tcp', router.vpn_script_v7)
            username, password = router.vpn_username, router.vpn_password
            pool.get('isp.router').generate_vpn_credentials([router])
            self.assertEqual(router.vpn_username, username)
            self.assertNotEqual(router.vpn_password, password)
            # audited as changed, never their value
            AuditLog = pool.get('isp.audit.log')
            changes = '\n'.join(log.changes or '' for log in AuditLog.search([
                        ('model', '=', 'isp.router'),
                        ('record_id', '=', router.id)]))
            self.assertIn('VPN Password: changed', changes)
            for value in [username, password, router.vpn_password]:
                self.assertNotIn(value, changes)

            # the VPN address is where the product reaches the router
            self.assertEqual(router.get_settings().host, '192.0.2.1')
            router.vpn_address = '10.8.0.6'
            router.save()
            self.assertEqual(router.get_settings().host, '10.8.0.6')
            copy, = pool.get('isp.router').copy([router],
                default={'code': 'CPY'})
            self.assertEqual(
                (copy.vpn_username, copy.vpn_password, copy.vpn_address),
                (None, None, None))

        with set_company(branch_b):
            router_b = self.router('BDG', vpn_username='b', vpn_password='p')
            Server.write([own], {'active': True})
            self.assertIn('protocol=udp', router_b.vpn_script)
            # RouterOS v6 cannot use the branch's UDP server
            self.assertIn('RouterOS v6', router_b.vpn_script_v6)
            self.assertNotIn('/interface', router_b.vpn_script_v6)
            # a router may name a central server over its branch's own
            router_b.vpn_server = central
            router_b.save()
            self.assertIn('protocol=tcp', router_b.vpn_script)
            self.assertIn('/interface', router_b.vpn_script_v6)

    @with_transaction()
    def test_bad_input(self):
        "Bad host, port, CA, address, another branch's server: refused"
        pool = Pool()
        Server = pool.get('isp.vpn.server')
        Router = pool.get('isp.router')
        branch_a, branch_b = create_company('A'), create_company('B')
        with set_company(branch_a):
            server = self.server(branch_a)
            router = self.router('CKP', vpn_server=server.id)
        host = 'must be an IP address or a host name'
        pem = 'must be one PEM certificate'
        cases = [
            ({'host': 'bad host!'}, host),
            ({'host': '-x.example'}, host),
            ({'host': 'vpn.example.net;/x'}, host),
            ({'port': 0}, None),
            ({'port': 65536}, None),
            ({'ca_certificate': 'not a certificate'}, pem),
            ({'ca_certificate': CA.replace('-----END', 'x-----END')}, pem),
            ({'ca_certificate': CA + CA}, pem),
            ({'ca_certificate': CA.replace('CERTIFICATE', 'PRIVATE KEY')},
                pem),
            ({'ca_certificate': 'x' * 5000}, None),
            ]
        for values, text in cases:
            with self.subTest(values=str(values)[:40]), \
                    Transaction().set_context(language='en'):
                with self.assertRaises(
                        VpnValidationError if text
                        else InputValidationError) as cm:
                    Server.create([{'name': "VPN", 'host': 'vpn.example.net',
                                'ca_certificate': CA, **values}])
                self.assertIn(text or Server.__names__(
                        list(values)[0])['field'], cm.exception.message)
        # a CA pasted with Windows line ends is kept with Unix ones
        Server.write([server], {'ca_certificate': CA.replace('\n', '\r\n')})
        self.assertEqual(server.ca_certificate, CA)
        with set_company(branch_b):
            other = self.server(branch_b)
        with self.assertRaises(UserError) as cm:
            Router.write([router], {'vpn_server': other.id})
        self.assertIn(other.rec_name, cm.exception.message)
        with self.assertRaises(UserError):
            Router.write([router], {'vpn_address': 'a b'})
        with self.assertRaises(UserError):
            Router.write([router], {'vpn_username': 'u' * 28})

    @with_transaction()
    def test_credentials_access(self):
        "Only the administrators of the router's branch read its credentials"
        pool = Pool()
        Server = pool.get('isp.vpn.server')
        Router = pool.get('isp.router')
        branch_a, branch_b = create_company('A'), create_company('B')
        with set_company(branch_a):
            central = self.server(name="Central")
            own_a = self.server(branch_a, name="Own A")
            router = self.router('CKP', vpn_username='ckp-u',
                vpn_password='secret-pw')
        with set_company(branch_b):
            own_b = self.server(branch_b, name="Own B")
        secret_fields = ['vpn_username', 'vpn_password', 'vpn_script',
            'vpn_script_v6', 'vpn_script_v7']
        transaction = Transaction()
        for group in ['group_isp_customer_service', 'group_isp_technician',
                'group_isp_finance']:
            user = self.user(group, branch_a)
            with self.subTest(group=group), transaction.set_user(user.id), \
                    transaction.set_context(
                        _check_access=True, company=branch_a.id):
                for name in secret_fields:
                    with self.assertRaises(AccessError):
                        Router.read([router.id], [name])
                with self.assertRaises(AccessError):
                    Router.write([Router(router.id)], {'vpn_password': 'x'})
                with self.assertRaises(AccessButtonError):
                    Router.generate_vpn_credentials([Router(router.id)])
                # the servers (no credential) of the branch and central
                self.assertEqual(
                    {s.id for s in Server.search([])},
                    {central.id, own_a.id})
                with self.assertRaises(AccessError):
                    Server.write([Server(own_a.id)], {'port': 1195})
        admin_a = self.user('group_isp_branch_admin', branch_a)
        with transaction.set_user(admin_a.id), transaction.set_context(
                _check_access=True, company=branch_a.id):
            values, = Router.read([router.id], secret_fields)
            self.assertEqual(values['vpn_password'], 'secret-pw')
            self.assertIn('password="secret-pw"', values['vpn_script'])
            Router.generate_vpn_credentials([Router(router.id)])
            Server.write([Server(own_a.id)], {'port': 1195})
            # branch B's server: not found, not read, not changed, not used
            self.assertEqual(Server.search([('id', '=', own_b.id)]), [])
            with self.assertRaises(AccessError):
                Server.read([own_b.id], ['host'])
            with self.assertRaises(AccessError):
                Server.write([Server(own_b.id)], {'port': 1195})
            with self.assertRaises(AccessError):
                Server.write([Server(central.id)], {'port': 1195})
            with self.assertRaises(AccessError):
                Server.create([{'name': "B's", 'company': branch_b.id,
                            'host': 'vpn.b.example', 'ca_certificate': CA}])
            with self.assertRaises(UserError):
                Router.write([Router(router.id)], {'vpn_server': own_b.id})
        head = self.user('group_isp_head_admin', branch_a)
        with transaction.set_user(head.id), transaction.set_context(
                _check_access=True, company=branch_a.id,
                companies=[branch_a.id, branch_b.id]):
            Server.write([Server(central.id)], {'port': 443})
        self.assertNotEqual(Router(router.id).vpn_password, 'secret-pw')
