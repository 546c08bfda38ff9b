# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""FreeRADIUS 3.2 on the product's PostgreSQL database: configuration
writer, a test/development harness and a command line.

``write_config`` builds a complete, private FreeRADIUS configuration
directory from Debian's ``/etc/freeradius/3.0``: a copy, patched so that it
runs from that directory (or from the production paths), with ``rlm_sql``
on PostgreSQL (clients from the ``nas`` table, the stock queries or the
product's own) and one virtual server ``isp`` listening only on the ports
given. ``FreeRadius`` runs it in the foreground, waits until it answers and
stops it. Product-independent: the tables FreeRADIUS reads (``radcheck``,
``radreply``, ``radusergroup``, ``radgroupreply``, ``nas``, ``radacct``,
``radpostauth``, ``nasreload``) are the product's business.

Python API::

    from tools.freeradius import FreeRadius, write_config

    db = dict(host='127.0.0.1', port=5432, user='postgres', password=None,
        dbname='isp')
    with FreeRadius.create(db, client_secret='testing') as radius:
        radius.auth_port, radius.acct_port  # free loopback ports
        radius.log                          # what FreeRADIUS printed

Command line::

    # production (docker-compose.yml mounts deploy/freeradius)
    python -m tools.freeradius write-config --out deploy/freeradius \\
        --db-host postgres --db-name isp --db-user tryton \\
        --db-password-env PGPASSWORD
    # demo / development, in the foreground
    python -m tools.freeradius run \\
        --db-uri postgresql://postgres@127.0.0.1:5432/isp \\
        --auth-port 18120 --acct-port 18130 --client-secret dev-secret

``--product`` (``write_config(..., product=True)``) points the sql module
at the views and tables of the product (isp_network's radius_sql.py):
tenant-scoped queries, accounting by the packet's source address, no
password in radpostauth.

See docs/radius.md.
"""

import argparse
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import unquote, urlsplit

__all__ = [
    'STOCK_DIR', 'FreeRadius', 'FreeRadiusError', 'free_udp_port',
    'parse_db_uri', 'product_queries', 'write_config',
    ]

STOCK_DIR = '/etc/freeradius/3.0'
EXECUTABLE = 'freeradius'
SERVER_NAME = 'isp'
QUERIES = 'mods-config/sql/main/postgresql/queries.conf'
SCHEMA = 'mods-config/sql/main/postgresql/schema.sql'
PASSFILE = '.pgpass'
# Settings of the sql module itself (mods-available/sql) that sql_queries
# may override; any other key is a query of queries.conf.
SQL_MODULE_SETTINGS = {
    'acct_table1', 'acct_table2', 'postauth_table', 'authcheck_table',
    'groupcheck_table', 'authreply_table', 'groupreply_table',
    'usergroup_table', 'client_table', 'group_attribute', 'read_groups',
    'read_profiles', 'delete_stale_sessions', 'query_timeout',
    'default_user_profile',
    }
PRODUCT_SQL = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'addons', 'isp_network', 'radius_sql.py')
PRODUCTION = dict(raddbdir='/etc/freeradius', logdir='/var/log/freeradius',
    run_dir='/var/run/freeradius')


class FreeRadiusError(RuntimeError):
    "FreeRADIUS could not be configured or did not start."


# configuration #

def _sub(text, pattern, replacement, what, count=1, flags=re.M):
    "re.sub that insists on matching: the stock files must be as expected."
    result, n = re.subn(pattern, replacement, text, count=count, flags=flags)
    if not n:
        raise FreeRadiusError(
            f"unexpected stock configuration: no {pattern!r} in {what}")
    return result


def _quote(value):
    "A FreeRADIUS double-quoted string."
    value = str(value).replace('\\', '\\\\').replace('"', '\\"')
    return f'"{value}"'


def _quote_query(sql):
    """A query as a FreeRADIUS double-quoted string, one SQL line per
    config line (continued with backslashes, like the stock queries)."""
    lines = [line.rstrip() for line in str(sql).strip().splitlines()]
    body = ' \\\n\t'.join(
        line.replace('\\', '\\\\').replace('"', '\\"') for line in lines)
    return f'"\\\n\t{body}"'


def _libpq_value(value):
    value = str(value).replace('\\', '\\\\').replace("'", "\\'")
    return f"'{value}'"


def _conninfo(db, passfile=None):
    """The libpq connection string of the sql module. It never holds a
    password: FreeRADIUS logs it when it connects (and rlm_sql_postgresql
    prints it again in debug mode). The password is in a passfile, or libpq
    reads PGPASSWORD from the environment."""
    parts = []
    for key, name in (('host', 'host'), ('port', 'port'),
            ('dbname', 'dbname'), ('user', 'user')):
        if db.get(key) not in (None, ''):
            parts.append(f"{name}={_libpq_value(db[key])}")
    if passfile:
        parts.append(f"passfile={_libpq_value(passfile)}")
    for key in ('sslmode', 'connect_timeout'):
        if db.get(key) not in (None, ''):
            parts.append(f"{key}={_libpq_value(db[key])}")
    return ' '.join(parts)


def _passfile_line(password):
    escaped = str(password).replace('\\', '\\\\').replace(':', '\\:')
    return f"*:*:*:*:{escaped}\n"


def _patch_radiusd(text, raddbdir, logdir, run_dir):
    what = 'radiusd.conf'
    text = _sub(text, r'^raddbdir = .*$', f'raddbdir = {raddbdir}', what)
    text = _sub(text, r'^logdir = .*$', f'logdir = {logdir}', what)
    text = _sub(text, r'^run_dir = .*$', f'run_dir = {run_dir}', what)
    # runs as whoever starts it: root in the container, the developer here
    text = _sub(text, r'^(\s*)(user = .*)$', r'\1# \2', what)
    text = _sub(text, r'^(\s*)(group = .*)$', r'\1# \2', what)
    text = _sub(text, r'^(\s*reject_delay = ).*$', r'\g<1>0', what)
    text = _sub(text, r'^proxy_requests\s*=.*$', 'proxy_requests = no', what)
    # one line per authentication (user name and result, never a password)
    text = _sub(text, r'^(\s*auth = ).*$', r'\1yes', what)
    return text


def _patch_sql_module(text, conninfo, read_clients, settings):
    what = 'mods-available/sql'
    text = _sub(text, r'^(\s*dialect = ).*$', r'\1"postgresql"', what)
    text = _sub(text, r'^(\s*driver = )"rlm_sql_null".*$',
        r'\1"rlm_sql_postgresql"', what)
    text = _sub(text, r'^(\s*radius_db = ).*$',
        lambda m: m.group(1) + _quote(conninfo), what)
    if read_clients:
        text = _sub(text, r'^#(\s*)read_clients = .*$',
            r'\1read_clients = yes', what)
    text = _sub(text, r'^(\s*client_table = ).*$', r'\1"nas"', what)
    for key, value in settings.items():
        line = f'{key} = {_quote(value)}'
        pattern = rf'^#?(\s*){re.escape(key)} = .*$'
        if re.search(pattern, text, flags=re.M):
            text = _sub(text, pattern,
                lambda m, line=line: m.group(1) + line, what)
        else:
            text = _sub(text, r'^(\s*)(\$INCLUDE .*queries\.conf)$',
                lambda m, line=line: f'{m.group(1)}{line}\n'
                f'{m.group(1)}{m.group(2)}', what)
    return text


def _block_end(lines, start):
    "The index of the line closing the { opened on lines[start]."
    depth = 0
    for index in range(start, len(lines)):
        depth += lines[index].count('{') - lines[index].count('}')
        if depth <= 0:
            return index
    raise FreeRadiusError(f"unbalanced braces after line {start + 1}")


def _top_level_items(lines):
    """{name: (first, last)} for the items at depth 0 of queries.conf:
    assignments (with their continuation lines) and sections."""
    items = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        match = re.match(r'^([A-Za-z0-9_.-]+)\s*(=|\{)', stripped)
        if not match or stripped.startswith('#'):
            index += 1
            continue
        name = match.group(1)
        if match.group(2) == '{':
            last = _block_end(lines, index)
        else:
            last = index
            while lines[last].rstrip().endswith('\\'):
                last += 1
        items.setdefault(name, (index, last))
        index = last + 1
    return items


def patch_queries(text, queries):
    """queries.conf with some of its top-level items replaced: a query
    (``authorize_check_query``, ``client_query``, ``simul_count_query``,
    ...) by an SQL string, or a section (``accounting``, ``post-auth``) by
    its new body given as FreeRADIUS configuration text. Unknown names are
    added at the end."""
    lines = text.splitlines()
    for name, value in queries.items():
        items = _top_level_items(lines)
        if name in items and lines[items[name][0]].rstrip().endswith('{'):
            body = str(value).strip('\n').splitlines()
            new = [f'{name} {{'] + ['\t' + line for line in body] + ['}']
        else:
            new = f'{name} = {_quote_query(value)}'.splitlines()
        if name in items:
            first, last = items[name]
            lines[first:last + 1] = new
        else:
            lines += [''] + new
    return '\n'.join(lines) + '\n'


def _site(auth_port, acct_port, coa_port, listen):
    listens = [('auth', auth_port), ('acct', acct_port)]
    if coa_port:
        listens.append(('coa', coa_port))
    listen_text = ''.join(
        f"\tlisten {{\n\t\ttype = {kind}\n\t\tipaddr = {listen}\n"
        f"\t\tport = {port}\n\t}}\n" for kind, port in listens)
    coa_text = ''
    if coa_port:
        coa_text = (
            "\t# CoA/Disconnect sent to FreeRADIUS itself (checks a client's\n"
            "\t# packets against a real implementation): acknowledged\n"
            "\trecv-coa {\n\t\tok\n\t}\n\tsend-coa {\n\t\tok\n\t}\n")
    return f"""\
# Written by tools/freeradius.py: the ISP suite's virtual server.  Users,
# rate limits and clients come from the product's database through the sql
# module (clients from the nas table are read at start only).
server {SERVER_NAME} {{
{listen_text}
	authorize {{
		preprocess
		sql
		pap
		Autz-Type Status-Server {{
			ok
		}}
	}}

	authenticate {{
		Auth-Type PAP {{
			pap
		}}
	}}

	# Simultaneous-Use: open sessions counted in radacct
	session {{
		sql
	}}

	post-auth {{
		sql
		Post-Auth-Type REJECT {{
			sql
			attr_filter.access_reject
		}}
	}}

	preacct {{
		preprocess
		acct_unique
	}}

	accounting {{
		sql
	}}
{coa_text}}}
"""


def _clients(client_secret):
    text = ("# Written by tools/freeradius.py: routers are the rows of the "
        "nas table\n# (sql module, read_clients), read when FreeRADIUS "
        "starts.\n")
    if client_secret:
        text += ("\n# local client for tests and radclient\n"
            "client localhost {\n\tipaddr = 127.0.0.1\n"
            f"\tsecret = {_quote(client_secret)}\n"
            "\trequire_message_authenticator = no\n\tnas_type = other\n}\n")
    return text


def _write(path, text, mode=None):
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, 'w') as fp:
        fp.write(text)
    if mode is not None:
        os.chmod(path, mode)


def _symlink(target, path):
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def _set_queries(dest, sql_queries):
    path = os.path.join(dest, QUERIES)
    if isinstance(sql_queries, (str, os.PathLike)):
        shutil.copyfile(sql_queries, path + '.tmp')
        os.replace(path + '.tmp', path)
        return {}
    settings = {k: v for k, v in sql_queries.items()
        if k in SQL_MODULE_SETTINGS}
    queries = {k: v for k, v in sql_queries.items()
        if k not in SQL_MODULE_SETTINGS}
    if queries:
        with open(path) as fp:
            text = fp.read()
        _write(path, patch_queries(text, queries), 0o640)
    return settings


def product_queries(stock=STOCK_DIR):
    """The sql_queries of the product (isp_network's radius_sql, loaded
    from its file: no trytond needed) for the stock queries.conf of stock"""
    spec = importlib.util.spec_from_file_location(
        'isp_network_radius_sql', PRODUCT_SQL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(os.path.join(stock, QUERIES)) as fp:
        return module.freeradius_queries(fp.read())


def write_config(dest, db, auth_port, acct_port, coa_port=None,
        listen='127.0.0.1', client_secret=None, read_clients=True,
        sql_queries=None, stock=STOCK_DIR, raddbdir=None, logdir=None,
        run_dir=None, product=False):
    """Write a complete FreeRADIUS configuration directory in dest (created,
    or updated in place) and return dest.

    db: dict(host, port, user, password, dbname), optionally ``sslmode``,
    ``connect_timeout`` and ``passfile``. A ``password`` goes to a private
    libpq passfile ``.pgpass`` (mode 0600) in dest, never into a
    configuration file or a log. Without one, libpq finds the password
    itself: in the libpq passfile ``passfile`` (a path when FreeRADIUS runs,
    e.g. a Docker secret), or in the environment variable PGPASSWORD.

    listen: the address of the listen sections (``*`` for all).
    client_secret: adds a client for 127.0.0.1 with that secret (tests,
    radclient); routers come from the nas table when read_clients.
    sql_queries: the path of a queries.conf to use instead of the stock one,
    or a dict: sql module settings (``authcheck_table``, ``client_table``,
    ... see SQL_MODULE_SETTINGS) and queries.conf items
    (``authorize_check_query``, ``client_query``, ``accounting``, ... see
    patch_queries).
    raddbdir, logdir, run_dir: where the directory, logs and pid file are
    when FreeRADIUS runs (default: dest, dest/log, dest/run; PRODUCTION has
    the paths of the docker-compose freeradius container).
    product: use the product's views and queries (product_queries), with
    the items of a sql_queries dict on top.
    """
    dest = os.path.abspath(dest)
    raddbdir = raddbdir or dest
    logdir = logdir or os.path.join(dest, 'log')
    run_dir = run_dir or os.path.join(dest, 'run')
    if not os.path.isfile(os.path.join(stock, 'radiusd.conf')):
        raise FreeRadiusError(
            f"{stock}/radiusd.conf is missing: install the Debian packages "
            "freeradius freeradius-postgresql freeradius-utils")
    if os.path.realpath(dest) == os.path.realpath(stock):
        raise FreeRadiusError("the destination is the stock directory")
    os.makedirs(dest, exist_ok=True)
    # written again: what a previous run copied goes (other files stay)
    for name in os.listdir(stock):
        path = os.path.join(dest, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    try:
        shutil.copytree(stock, dest, symlinks=True, dirs_exist_ok=True)
    except (shutil.Error, PermissionError) as exception:
        raise FreeRadiusError(
            f"cannot copy {stock} (Debian makes it readable by root and the "
            "freerad group only: run as root, or `sudo adduser $USER "
            f"freerad` and log in again): {exception}") from exception
    for directory in (logdir, run_dir):
        if directory.startswith(dest + os.sep):
            os.makedirs(directory, exist_ok=True)

    path = os.path.join(dest, 'radiusd.conf')
    with open(path) as fp:
        text = fp.read()
    _write(path, _patch_radiusd(text, raddbdir, logdir, run_dir), 0o640)

    # no certificates are generated without the package's recommends
    for name in ('eap',):
        link = os.path.join(dest, 'mods-enabled', name)
        if os.path.lexists(link):
            os.unlink(link)
    # only our virtual server: only our ports open
    enabled = os.path.join(dest, 'sites-enabled')
    for name in os.listdir(enabled):
        os.unlink(os.path.join(enabled, name))
    _write(os.path.join(dest, 'sites-available', SERVER_NAME),
        _site(auth_port, acct_port, coa_port, listen), 0o640)
    _symlink(f'../sites-available/{SERVER_NAME}',
        os.path.join(enabled, SERVER_NAME))
    _write(os.path.join(dest, 'clients.conf'), _clients(client_secret),
        0o640)

    passfile = db.get('passfile')
    password_file = os.path.join(dest, PASSFILE)
    if db.get('password'):
        passfile = os.path.join(raddbdir, PASSFILE)
        # libpq ignores a passfile that others can read
        _write(password_file, '', 0o600)
        with open(password_file, 'w') as fp:
            fp.write(_passfile_line(db['password']))
    elif os.path.lexists(password_file):
        os.unlink(password_file)
    if product:
        if isinstance(sql_queries, (str, os.PathLike)):
            raise FreeRadiusError("product=True takes a dict of sql_queries")
        sql_queries = dict(product_queries(stock), **(sql_queries or {}))
    settings = _set_queries(dest, sql_queries) if sql_queries else {}
    path = os.path.join(dest, 'mods-available', 'sql')
    with open(path) as fp:
        text = fp.read()
    conninfo = _conninfo(db, passfile)
    _write(path, _patch_sql_module(text, conninfo, read_clients, settings),
        0o640)
    _symlink('../mods-available/sql',
        os.path.join(dest, 'mods-enabled', 'sql'))
    return dest


def parse_db_uri(uri):
    """dict(host, port, user, password, dbname) of a postgresql:// URI
    (the form of TRYTOND_DATABASE__URI; the path is the database)."""
    parts = urlsplit(uri)
    if parts.scheme not in ('postgresql', 'postgres'):
        raise ValueError(f"not a postgresql:// URI: {parts.scheme}://...")
    return dict(
        host=parts.hostname or '127.0.0.1', port=parts.port or 5432,
        user=unquote(parts.username) if parts.username else 'postgres',
        password=unquote(parts.password) if parts.password else None,
        dbname=unquote(parts.path.lstrip('/')) or 'postgres')


# the harness #

def free_udp_port(host='127.0.0.1'):
    "A UDP port that is free on host right now."
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _free_udp_ports(count, host='127.0.0.1', taken=()):
    "count distinct free UDP ports, none of them in taken."
    ports = []
    while len(ports) < count:
        port = free_udp_port(host)
        if port not in ports and port not in taken:
            ports.append(port)
    return ports


class FreeRadius:
    """A running FreeRADIUS (a context manager): ``freeradius -f -d dest -l
    stdout`` (``-X`` with debug), started in its own process group. The
    start waits until FreeRADIUS says it is ready and, with client_secret
    (the localhost client of write_config), until it answers a
    Status-Server on the auth port."""

    def __init__(self, dest, auth_port, acct_port, coa_port=None,
            host='127.0.0.1', client_secret=None, debug=False,
            start_timeout=30, echo=None, executable=EXECUTABLE):
        self.dest = dest
        self.auth_port = auth_port
        self.acct_port = acct_port
        self.coa_port = coa_port
        self.host = host
        self.client_secret = client_secret
        self.debug = debug
        self.start_timeout = start_timeout
        self.echo = echo
        self.executable = executable
        self.process = None
        self._lines = []
        self._lock = threading.Lock()
        self._reader = None
        self._cleanup = None

    @classmethod
    def create(cls, db, directory=None, auth_port=None, acct_port=None,
            coa_port=None, client_secret=None, debug=False,
            start_timeout=30, echo=None, **config):
        """Write a configuration (write_config's keywords) into directory
        (default: a temporary one, removed at stop) on free loopback ports
        unless given (``coa_port=True``: a free one too), and return the
        (not yet started) FreeRadius."""
        cleanup = None
        if directory is None:
            directory = tempfile.mkdtemp(prefix='isp-freeradius-')
            cleanup = directory
        ports = [auth_port, acct_port, coa_port]
        wanted = [not auth_port, not acct_port, coa_port is True]
        free = iter(_free_udp_ports(sum(wanted),
            taken={p for p in ports if p and p is not True}))
        auth_port, acct_port, coa_port = [
            next(free) if want else port
            for want, port in zip(wanted, ports, strict=True)]
        listen = config.pop('listen', '127.0.0.1')
        try:
            write_config(directory, db, auth_port, acct_port,
                coa_port=coa_port, listen=listen,
                client_secret=client_secret, **config)
        except BaseException:
            if cleanup:
                shutil.rmtree(cleanup, ignore_errors=True)
            raise
        radius = cls(directory, auth_port, acct_port, coa_port=coa_port,
            host='127.0.0.1' if listen in ('*', '0.0.0.0') else listen,
            client_secret=client_secret, debug=debug,
            start_timeout=start_timeout, echo=echo)
        radius._cleanup = cleanup
        return radius

    @property
    def command(self):
        mode = ['-X'] if self.debug else ['-f', '-l', 'stdout']
        return [self.executable, *mode, '-d', self.dest]

    @property
    def log(self):
        "Everything FreeRADIUS printed so far."
        with self._lock:
            return ''.join(self._lines)

    def log_has(self, text, timeout=5.0):
        """Whether FreeRADIUS printed `text`, waiting up to `timeout`
        seconds: its answer can reach the client before the log line is
        read from its output (a loaded machine shows it)"""
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def _read(self, stream):
        for line in iter(stream.readline, ''):
            with self._lock:
                self._lines.append(line)
            if self.echo:
                self.echo.write(line)
                self.echo.flush()
        stream.close()

    def start(self):
        if shutil.which(self.executable) is None:
            raise FreeRadiusError(
                f"{self.executable} is not installed: apt-get install "
                "freeradius freeradius-postgresql freeradius-utils")
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors='replace',
            start_new_session=True)
        self._reader = threading.Thread(target=self._read,
            args=(self.process.stdout,), daemon=True,
            name=f'freeradius-{self.auth_port}')
        self._reader.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while 'Ready to process requests' not in self.log:
            if self.process.poll() is not None:
                self._reader.join(2)
                raise FreeRadiusError(
                    f"FreeRADIUS exited with {self.process.returncode}:\n"
                    f"{self.log[-4000:]}")
            if time.monotonic() > deadline:
                raise FreeRadiusError(
                    f"FreeRADIUS not ready after {self.start_timeout} s:\n"
                    f"{self.log[-4000:]}")
            time.sleep(0.05)
        if self.client_secret:
            while not self.status_server(timeout=0.5):
                if self.process.poll() is not None or (
                        time.monotonic() > deadline):
                    raise FreeRadiusError(
                        "FreeRADIUS does not answer Status-Server on "
                        f"{self.host}:{self.auth_port}:\n{self.log[-4000:]}")

    def status_server(self, timeout=1.0, secret=None):
        """Whether FreeRADIUS answers a Status-Server (RFC 5997) on its auth
        port, sent from 127.0.0.1 with secret (default: client_secret)."""
        from pyrad import packet as radius_packet
        from pyrad.client import Client, Timeout

        from tools.radius_peer import load_dictionary
        secret = secret or self.client_secret
        client = Client(server=self.host, authport=self.auth_port,
            secret=secret.encode(), dict=load_dictionary(), retries=1,
            timeout=timeout)
        try:
            pkt = client.CreateAuthPacket(code=radius_packet.StatusServer)
            pkt['NAS-Identifier'] = 'isp-harness'
            reply = client.SendPacket(pkt)
            return reply.code == radius_packet.AccessAccept
        except (Timeout, OSError):
            return False
        finally:
            client._CloseSocket()

    def stop(self, timeout=10):
        "Stop FreeRADIUS (its whole process group) and clean up."
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self._cleanup:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# command line #

def _production_db(args):
    return dict(host=args.db_host, port=args.db_port, user=args.db_user,
        dbname=args.db_name, passfile=args.db_passfile,
        sslmode=args.db_sslmode)


def _write_config_command(args):
    if args.db_password_env != 'PGPASSWORD':
        # FreeRADIUS would have to expand $ENV{...} into its connection
        # string, which it logs: only libpq's own variable keeps it secret
        raise FreeRadiusError(
            "--db-password-env: only PGPASSWORD (read by libpq itself) keeps "
            "the password out of FreeRADIUS's log; set PGPASSWORD in the "
            "FreeRADIUS environment (docker-compose.yml does), or use "
            "--db-passfile")
    paths = dict(PRODUCTION)
    for key in paths:
        if getattr(args, key):
            paths[key] = getattr(args, key)
    write_config(args.out, _production_db(args), args.auth_port,
        args.acct_port, coa_port=args.coa_port, listen=args.listen,
        client_secret=None, sql_queries=args.sql_queries, stock=args.stock,
        product=args.product, **paths)
    source = (f"the passfile {args.db_passfile}" if args.db_passfile
        else f"${args.db_password_env}")
    print(f"FreeRADIUS configuration written to {args.out} (for "
        f"{paths['raddbdir']}; database {args.db_user}@{args.db_host}:"
        f"{args.db_port}/{args.db_name}, password from {source} when "
        "FreeRADIUS starts)")
    return 0


def _run_command(args):
    db = parse_db_uri(args.db_uri)
    secret = args.client_secret or os.environ.get(args.client_secret_env)
    radius = FreeRadius.create(db, auth_port=args.auth_port,
        acct_port=args.acct_port, coa_port=args.coa_port,
        client_secret=secret, debug=args.debug, echo=sys.stdout,
        listen=args.listen, sql_queries=args.sql_queries, stock=args.stock,
        product=args.product)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *a: stop.set())
    with radius:
        print(f"FreeRADIUS ready: auth {args.listen}:{radius.auth_port}, "
            f"acct {args.listen}:{radius.acct_port}"
            + (f", coa {args.listen}:{radius.coa_port}"
                if radius.coa_port else '')
            + f" (configuration in {radius.dest})", flush=True)
        while not stop.wait(0.5):
            if not radius.running:
                print("FreeRADIUS stopped", file=sys.stderr)
                return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.freeradius',
        description="FreeRADIUS 3.2 on the ISP suite's database.")
    commands = parser.add_subparsers(dest='command', required=True)

    write = commands.add_parser('write-config',
        help="write a production configuration directory (the "
        "docker-compose freeradius service mounts deploy/freeradius as "
        "/etc/freeradius)")
    write.add_argument('--out', required=True)
    write.add_argument('--db-host', default='postgres')
    write.add_argument('--db-port', type=int, default=5432)
    write.add_argument('--db-user', default='tryton')
    write.add_argument('--db-name', default='isp')
    write.add_argument('--db-password-env', default='PGPASSWORD',
        help="environment variable of the FreeRADIUS process that holds the "
        "database password: PGPASSWORD, read by libpq itself (FreeRADIUS "
        "logs its connection string, so no other variable is accepted)")
    write.add_argument('--db-passfile',
        help="or a libpq passfile inside the container (e.g. a Docker "
        "secret)")
    write.add_argument('--db-sslmode')
    write.add_argument('--auth-port', type=int, default=1812)
    write.add_argument('--acct-port', type=int, default=1813)
    write.add_argument('--coa-port', type=int)
    write.add_argument('--listen', default='*')
    for key, value in PRODUCTION.items():
        write.add_argument('--' + key.replace('_', '-'),
            help=f"(default {value})")
    write.add_argument('--sql-queries',
        help="a queries.conf to use instead of the stock one")
    write.add_argument('--stock', default=STOCK_DIR)
    write.add_argument('--product', action='store_true',
        help="read the ISP suite's views (isp_network in RADIUS mode)")
    write.set_defaults(func=_write_config_command)

    run = commands.add_parser('run',
        help="run FreeRADIUS in the foreground from a temporary "
        "configuration (demo, development)")
    run.add_argument('--db-uri', required=True,
        help="postgresql://user[:password]@host:port/dbname")
    run.add_argument('--auth-port', type=int, default=1812)
    run.add_argument('--acct-port', type=int, default=1813)
    run.add_argument('--coa-port', type=int)
    run.add_argument('--listen', default='127.0.0.1')
    run.add_argument('--client-secret',
        help="secret of a 127.0.0.1 client (radclient, radtest)")
    run.add_argument('--client-secret-env', default='ISP_RADIUS_SECRET',
        help="or the environment variable holding it (default "
        "%(default)s)")
    run.add_argument('--sql-queries')
    run.add_argument('--stock', default=STOCK_DIR)
    run.add_argument('--product', action='store_true',
        help="read the ISP suite's views (isp_network in RADIUS mode)")
    run.add_argument('--debug', action='store_true',
        help="freeradius -X (prints every request)")
    run.set_defaults(func=_run_command)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FreeRadiusError, ValueError, OSError) as exception:
        print(f"error: {exception}", file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
