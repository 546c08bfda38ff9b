# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""VPN access to routers (docs/network.md, *VPN access*).

- `isp.vpn.server`: an OpenVPN server the routers dial in to; empty
  company = the head office's central server, which every branch uses
  unless it has an active server of its own (the pattern of the payment
  gateways and message providers, docs/tenants.md).
- Each router: its ovpn-client user name and password (administrators
  only), the address the product reaches it at through the tunnel, and the
  RouterOS script (v6 and v7 syntax) that imports the server's CA and adds
  the ovpn-client interface.
"""
import base64
import binascii
import ipaddress
import re
import secrets

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, Index, ModelSQL, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from trytond.modules.isp_base.common import InputGuardMixin
from trytond.modules.isp_base.company import HOST_NAME

from .exceptions import VpnValidationError

#: What `/file set ... contents=` holds at most (RouterOS: 4095 bytes).
CA_MAX = 4000
#: RouterOS' OpenVPN user names hold 27 characters, passwords 233.
USERNAME_MAX = 27
PASSWORD_MAX = 233
CA_FILE = 'isp-vpn-ca'
INTERFACE = 'isp-vpn'
PEM_CERTIFICATE = re.compile(
    r'-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)\n'
    r'-----END CERTIFICATE-----\n?')

CIPHERS = [
    ('aes128-cbc', "AES-128-CBC"),
    ('aes192-cbc', "AES-192-CBC"),
    ('aes256-cbc', "AES-256-CBC"),
    ('aes128-gcm', "AES-128-GCM"),
    ('aes192-gcm', "AES-192-GCM"),
    ('aes256-gcm', "AES-256-GCM"),
    ]
#: RouterOS v6 names its (CBC only) ciphers without the mode.
V6_CIPHERS = {
    'aes128-cbc': 'aes128', 'aes192-cbc': 'aes192', 'aes256-cbc': 'aes256'}
AUTHS = [
    ('sha1', "SHA1"),
    ('sha256', "SHA256"),
    ('sha512', "SHA512"),
    ]

#: Characters written as they are in a quoted RouterOS string.
_PLAIN = frozenset(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    ' -_.,:/=+@%&*()!~\'<>|#^')
_ESCAPES = {'"': '\\"', '\\': '\\\\', '$': '\\$', '?': '\\?',
    '\n': '\\n', '\r': '\\r', '\t': '\\t'}


def ros_quote(value):
    """`value` as a double-quoted RouterOS script string: the documented
    escapes for \\ " $ ? and line breaks, every other character that is not
    plain as \\XX (its UTF-8 bytes in capital hex), so that no value ends the
    string, substitutes a variable or runs a command"""
    out = []
    for char in str(value):
        if char in _PLAIN:
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        else:
            out.extend('\\%02X' % b for b in char.encode('utf-8'))
    return '"%s"' % ''.join(out)


def valid_host(value):
    "Whether `value` is an IP address or a host name"
    value = (value or '').strip()
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(HOST_NAME.fullmatch(value.lower()))


def normalize_pem(value):
    """The PEM certificate of `value` with Unix line ends, or None when it
    is not exactly one well-formed certificate"""
    text = (value or '').replace('\r\n', '\n').strip() + '\n'
    match = PEM_CERTIFICATE.fullmatch(text)
    if not match:
        return None
    try:
        der = base64.b64decode(match.group(1).replace('\n', ''),
            validate=True)
    except (binascii.Error, ValueError):
        return None
    # an X.509 certificate is a DER SEQUENCE
    if len(der) < 64 or der[0] != 0x30:
        return None
    return text


def new_vpn_username(code):
    "A VPN user name for the router of `code`: unique, at most 27 characters"
    return '%s-%s' % ((code or 'router').lower()[:6], secrets.token_hex(5))


def new_vpn_password():
    "A random VPN password (192 bits)"
    return secrets.token_urlsafe(24)


def ovpn_script(syntax, server, username, password, title):
    """The RouterOS script (`syntax` 6 or 7) that imports the CA of
    `server` (a dict: host, port, protocol, cipher, auth, ca,
    verify_certificate) and adds the ovpn-client interface; raise
    ValueError when RouterOS v6 cannot reach the server (UDP, GCM)."""
    cipher = server['cipher']
    gcm = cipher.endswith('-gcm')
    if syntax == 6:
        if server['protocol'] != 'tcp' or cipher not in V6_CIPHERS:
            raise ValueError('v6')
        cipher = V6_CIPHERS[cipher]
    ca_file = CA_FILE + '.txt'
    lines = [
        '# %s' % ''.join(c if c.isprintable() else ' ' for c in title),
        '# RouterOS v%d: paste in a terminal or /import this file.' % syntax,
        '/file print file=%s' % CA_FILE,
        ':delay 2s',
        '/file set [find name=%s] contents=%s' % (
            ros_quote(ca_file), ros_quote(server['ca'])),
        '/certificate remove [find name=%s]' % ros_quote(ca_file + '_0'),
        '/certificate import file-name=%s passphrase=""' % ca_file,
        '/file remove [find name=%s]' % ros_quote(ca_file),
        '/interface ovpn-client remove [find name=%s]' % INTERFACE,
        ]
    add = ['/interface ovpn-client add name=%s' % INTERFACE,
        'connect-to=%s' % ros_quote(server['host']),
        'port=%d' % server['port']]
    if syntax == 7:
        add.append('protocol=%s' % server['protocol'])
    add += ['mode=ip',
        'user=%s' % ros_quote(username),
        'password=%s' % ros_quote(password),
        'cipher=%s' % cipher,
        # a GCM cipher authenticates the packets itself
        'auth=%s' % ('null' if gcm else server['auth'])]
    if syntax == 7:
        add.append('verify-server-certificate=%s' % (
                'yes' if server['verify_certificate'] else 'no'))
    add += ['add-default-route=no',
        'comment=%s' % ros_quote(title[:60])]
    lines.append(' '.join(add))
    return '\n'.join(lines) + '\n'


def routeros_syntax(version):
    "The script syntax (6 or 7) of a RouterOS version; 7 when unknown"
    major = (version or '').strip().split('.', 1)[0]
    return 6 if major == '6' else 7


class VpnServer(InputGuardMixin, DeactivableMixin, ModelSQL, ModelView):
    "VPN Server"
    __name__ = 'isp.vpn.server'

    name = fields.Char("Name", required=True)
    company = fields.Many2One(
        'company.company', "Company", ondelete='RESTRICT',
        help="The branch that owns the server.\n"
        "Leave empty for the head office's central server: branches "
        "without an active server of their own use it.")
    host = fields.Char(
        "Host", required=True, strip=True,
        help="The public address or host name the routers connect to.")
    port = fields.Integer("Port", required=True)
    protocol = fields.Selection([
            ('tcp', "TCP"),
            ('udp', "UDP"),
            ], "Protocol", required=True,
        help="RouterOS v6 connects over TCP only; UDP needs RouterOS v7.")
    cipher = fields.Selection(CIPHERS, "Cipher", required=True,
        help="RouterOS v6 knows the CBC ciphers only.")
    auth = fields.Selection(AUTHS, "Authentication", required=True,
        states={'invisible': Eval('cipher', '').in_(
                    [c for c, _ in CIPHERS if c.endswith('-gcm')])},
        help="The HMAC of the packets (a GCM cipher authenticates them "
        "itself).")
    verify_certificate = fields.Boolean(
        "Verify Server Certificate",
        help="RouterOS v7 checks the server's certificate against the CA.")
    ca_certificate = fields.Text(
        "CA Certificate", required=True,
        help="The PEM certificate (-----BEGIN CERTIFICATE-----) of the CA "
        "that signed the server's certificate; the routers import it.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.company, Index.Range())))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_port(cls):
        return 1194

    @classmethod
    def default_protocol(cls):
        return 'tcp'

    @classmethod
    def default_cipher(cls):
        return 'aes256-cbc'

    @classmethod
    def default_auth(cls):
        return 'sha256'

    @classmethod
    def default_verify_certificate(cls):
        return True

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(), 'port': (1, 65535),
            'ca_certificate': (None, CA_MAX)}

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('ca_certificate'):
            values['ca_certificate'] = normalize_pem(
                values['ca_certificate']) or values['ca_certificate']
        return values

    @classmethod
    def validate_fields(cls, servers, field_names):
        super().validate_fields(servers, field_names)
        for server in servers:
            if not valid_host(server.host):
                raise VpnValidationError(gettext(
                        'isp_network.msg_vpn_host_invalid',
                        host=server.host, server=server.rec_name))
            if not normalize_pem(server.ca_certificate):
                raise VpnValidationError(gettext(
                        'isp_network.msg_vpn_ca_invalid',
                        server=server.rec_name))

    @classmethod
    def for_company(cls, company):
        """The active server of a branch: its own (the first), else the
        central one; None when there is none"""
        with without_check_access():
            servers = cls.search([
                    ('company', 'in', [int(company), None]),
                    ], order=[('company', 'ASC NULLS LAST'), ('id', 'ASC')])
        own = [s for s in servers if s.company]
        return (own or servers or [None])[0]

    def script_values(self):
        "The server as `ovpn_script` takes it"
        return {'host': self.host, 'port': self.port,
            'protocol': self.protocol, 'cipher': self.cipher,
            'auth': self.auth, 'ca': self.ca_certificate,
            'verify_certificate': bool(self.verify_certificate)}


class Router(metaclass=PoolMeta):
    __name__ = 'isp.router'

    vpn_server = fields.Many2One(
        'isp.vpn.server', "VPN Server", ondelete='RESTRICT',
        help="The OpenVPN server the router dials in to.\n"
        "Leave empty for the branch's own server, else the central one.")
    vpn_address = fields.Char(
        "VPN Address", strip=True,
        help="The router's address in the tunnel: when set, the product "
        "reaches the router's API (and CoA port) there instead of at the "
        "host.")
    vpn_username = fields.Char(
        "VPN User", strip=True,
        help="The ovpn-client user name (a PPP secret of the server); "
        "readable only by the administrators.")
    vpn_password = fields.Char(
        "VPN Password",
        help="Readable only by the administrators.")
    vpn_syntax = fields.Function(fields.Selection([
                ('6', "RouterOS v6"),
                ('7', "RouterOS v7"),
                ], "Script Syntax",
            help="Read from the router's RouterOS version (v7 when not "
            "known yet)."),
        'get_vpn_syntax')
    vpn_script = fields.Function(fields.Text(
            "VPN Script",
            help="Paste in the router's terminal: imports the server's CA "
            "and adds the ovpn-client interface (the syntax of the "
            "router's RouterOS version)."),
        'get_vpn_scripts')
    vpn_script_v6 = fields.Function(
        fields.Text("VPN Script (v6)"), 'get_vpn_scripts')
    vpn_script_v7 = fields.Function(
        fields.Text("VPN Script (v7)"), 'get_vpn_scripts')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'generate_vpn_credentials': {},
                })
        # the credentials are recorded as "changed", never their value
        cls._audit_fields += ('vpn_server', 'vpn_address')
        cls._audit_secret_fields += ('vpn_username', 'vpn_password')

    @classmethod
    def _input_bounds(cls):
        return {**super()._input_bounds(),
            'vpn_username': (None, USERNAME_MAX),
            'vpn_password': (None, PASSWORD_MAX)}

    @classmethod
    def validate_fields(cls, routers, field_names):
        super().validate_fields(routers, field_names)
        if field_names and not field_names & {
                'vpn_server', 'vpn_address', 'company'}:
            return
        for router in routers:
            if router.vpn_address and not valid_host(router.vpn_address):
                raise VpnValidationError(gettext(
                        'isp_network.msg_vpn_address_invalid',
                        address=router.vpn_address, router=router.rec_name))
            with without_check_access():
                server = router.vpn_server
                if server and server.company not in {None, router.company}:
                    raise VpnValidationError(gettext(
                            'isp_network.msg_vpn_server_other_branch',
                            router=router.rec_name, server=server.rec_name))

    @classmethod
    def copy(cls, routers, default=None):
        default = default.copy() if default is not None else {}
        for name in ['vpn_address', 'vpn_username', 'vpn_password']:
            default.setdefault(name, None)
        return super().copy(routers, default=default)

    def api_host(self):
        "Where the product reaches the router: its VPN address, else host"
        return self.vpn_address or self.host

    def get_settings(self, foreign_names=frozenset()):
        settings = super().get_settings(foreign_names)
        with without_check_access():
            settings.host = self.__class__(self.id).api_host()
        return settings

    def vpn_server_used(self):
        "The router's server, else its branch's own, else the central one"
        return self.vpn_servers_used([self])[self.id]

    @classmethod
    def vpn_servers_used(cls, routers):
        """{router id: the server each router dials in to (its own choice,
        else its branch's, else the central one) or None}"""
        pool = Pool()
        Server = pool.get('isp.vpn.server')
        result, branches = {}, {}
        with without_check_access():
            for router in cls.browse([r.id for r in routers]):
                if router.vpn_server and router.vpn_server.active:
                    result[router.id] = router.vpn_server
                    continue
                company = router.company.id
                if company not in branches:
                    branches[company] = Server.for_company(company)
                result[router.id] = branches[company]
        return result

    def get_vpn_syntax(self, name):
        return str(routeros_syntax(self.routeros_version))

    def vpn_script_text(self, syntax, server=None):
        """The router's VPN script in RouterOS `syntax` (6 or 7), or the
        message saying what is missing"""
        if server is None:
            server = self.vpn_server_used()
        with without_check_access():
            router = self.__class__(self.id)
            username, password = router.vpn_username, router.vpn_password
        if not server:
            return gettext('isp_network.msg_vpn_no_server',
                router=self.rec_name)
        if not username or not password:
            return gettext('isp_network.msg_vpn_no_credentials',
                router=self.rec_name)
        title = gettext('isp_network.msg_vpn_script_title',
            router=self.rec_name, server=server.rec_name)
        try:
            return ovpn_script(syntax, server.script_values(), username,
                password, title)
        except ValueError:
            return gettext('isp_network.msg_vpn_v6_unsupported',
                server=server.rec_name)

    @classmethod
    def get_vpn_scripts(cls, routers, names):
        result = {name: {} for name in names}
        servers = cls.vpn_servers_used(routers)
        for router in routers:
            for name in names:
                syntax = {'vpn_script_v6': 6, 'vpn_script_v7': 7}.get(
                    name) or routeros_syntax(router.routeros_version)
                result[name][router.id] = router.vpn_script_text(
                    syntax, servers[router.id])
        return result

    @classmethod
    @ModelView.button
    def generate_vpn_credentials(cls, routers):
        """Give each router a VPN password drawn from `secrets` (and a user
        name when it has none): enter them in the server's PPP secrets and
        run the router's script again"""
        for router in routers:
            router.vpn_username = (router.vpn_username
                or new_vpn_username(router.code))
            router.vpn_password = new_vpn_password()
        cls.save(routers)

