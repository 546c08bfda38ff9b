# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""What FreeRADIUS reads and writes in the product's PostgreSQL database.

FreeRADIUS's sql module reads the standard names ``nas``, ``radcheck``,
``radreply``, ``radusergroup``, ``radgroupcheck`` and ``radgroupreply``:
here they are **views over the product's tables** (routers, services,
plans), so a change is visible to the next Access-Request the moment its
transaction commits: no copy, no sync job, no lag.  FreeRADIUS writes
``radacct`` (the stock table plus three bookkeeping columns of the usage
aggregation), ``radpostauth`` and ``nasreload``, created here.

Tenants: every view carries the ``company`` of its rows, and the queries
FreeRADIUS runs (``freeradius_queries``) join them to the ``nas`` row of the
packet's *source address*: a router only ever authenticates the subscribers
of its own company, whatever NAS-IP-Address it claims.

PostgreSQL only (the module skips all of this on SQLite: RADIUS mode needs
PostgreSQL).  Pure module: no trytond import, so ``tools/freeradius.py``
can use the queries without a database.
"""
import re

__all__ = ['install', 'freeradius_queries', 'EXTENSIONS', 'VIEWS', 'PENDING']

# the columns of the aggregation: what was already counted as usage
COUNTED = ('isp_input_counted', 'isp_output_counted', 'isp_time_counted')
# rows whose counters moved since they were counted (a partial index
# holds exactly those, so the aggregation never scans the raw history)
PENDING = (
    "(COALESCE(acctinputoctets, 0) <> isp_input_counted "
    "OR COALESCE(acctoutputoctets, 0) <> isp_output_counted "
    "OR COALESCE(acctsessiontime, 0) <> isp_time_counted)")

FUNCTIONS = [
    # validation.format_rate of isp_base
    """CREATE OR REPLACE FUNCTION isp_format_rate(kbps integer)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE
            WHEN COALESCE(kbps, 0) = 0 THEN '0'
            WHEN kbps % 1000 = 0 THEN (kbps / 1000)::text || 'M'
            ELSE kbps::text || 'k' END
    $$""",
    # validation.rate_limit of isp_base (Template.rate_limit)
    """CREATE OR REPLACE FUNCTION isp_rate_limit(
        up integer, down integer, burst_up integer, burst_down integer,
        threshold_up integer, threshold_down integer, burst_time integer)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE
            WHEN COALESCE(up, 0) = 0 OR COALESCE(down, 0) = 0 THEN NULL
            ELSE isp_format_rate(up) || '/' || isp_format_rate(down)
                || CASE
                    WHEN COALESCE(burst_up, 0) <> 0
                        AND COALESCE(burst_down, 0) <> 0
                        AND COALESCE(threshold_up, 0) <> 0
                        AND COALESCE(threshold_down, 0) <> 0
                        AND COALESCE(burst_time, 0) <> 0
                    THEN ' ' || isp_format_rate(burst_up) || '/'
                        || isp_format_rate(burst_down) || ' '
                        || isp_format_rate(threshold_up) || '/'
                        || isp_format_rate(threshold_down) || ' '
                        || burst_time::text || '/' || burst_time::text
                    ELSE '' END
            END
    $$""",
    ]

# {service}, {router}, {template}: the product's table names
RADIUS_SERVICE = """
    FROM {service} s
    JOIN {router} r ON r.id = s.router
    WHERE s.state IN ('active', 'isolated')
        AND r.provisioning_mode = 'radius'"""

VIEWS = {
    'nas': """
        SELECT r.id, r.radius_address::text AS nasname,
            r.code::text AS shortname, 'other'::text AS type,
            NULL::integer AS ports, r.radius_secret::text AS secret,
            NULL::text AS server, NULL::text AS community,
            r.name::text AS description, r.company
        FROM {router} r
        WHERE r.active AND r.provisioning_mode = 'radius'
            AND r.radius_address IS NOT NULL
            AND r.radius_secret IS NOT NULL""",
    'radcheck': """
        SELECT s.id * 4 + v.n AS id, s.username::text AS username,
            v.attribute, v.op, v.value, s.company, s.router
        FROM {service} s
        JOIN {router} r ON r.id = s.router
        JOIN {template} p ON p.id = s.plan
        CROSS JOIN LATERAL (VALUES
            (0, 'Cleartext-Password', ':=', s.password::text),
            (1, 'Simultaneous-Use', ':=', p.simultaneous_use::text),
            (2, 'Calling-Station-Id', '==', s.caller_id::text),
            (3, 'Auth-Type', ':=', CASE
                    WHEN s.state = 'isolated'
                        AND r.isolation_method = 'disable'
                    THEN 'Reject' END)
            ) AS v (n, attribute, op, value)
        WHERE s.state IN ('active', 'isolated')
            AND r.provisioning_mode = 'radius'
            AND v.value IS NOT NULL""",
    'radreply': """
        SELECT s.id * 4 + v.n AS id, s.username::text AS username,
            v.attribute, v.op, v.value, s.company, s.router
        FROM {service} s
        JOIN {router} r ON r.id = s.router
        CROSS JOIN LATERAL (VALUES
            (0, 'Framed-IP-Address', ':=', s.remote_address::text),
            (1, 'Framed-Pool', ':=', CASE
                    WHEN s.state = 'isolated'
                        AND r.isolation_method = 'profile'
                        AND s.remote_address IS NULL
                    THEN r.isolation_pool::text END),
            (2, 'Mikrotik-Address-List', ':=', CASE
                    WHEN s.state = 'isolated'
                        AND r.isolation_method IN ('profile', 'address_list')
                    THEN r.isolation_address_list::text END)
            ) AS v (n, attribute, op, value)
        WHERE s.state IN ('active', 'isolated')
            AND r.provisioning_mode = 'radius'
            AND v.value IS NOT NULL""",
    'radusergroup': """
        SELECT s.id, s.username::text AS username,
            CASE
                WHEN s.state = 'isolated' AND r.isolation_method = 'profile'
                    AND r.isolation_rate_limit IS NOT NULL
                THEN 'isp-isolation-' || r.id::text
                WHEN s.radius_throttled
                THEN 'isp-plan-' || s.plan::text || '-throttled'
                ELSE 'isp-plan-' || s.plan::text
            END AS groupname,
            1 AS priority, s.company, s.router
        """ + RADIUS_SERVICE,
    'radgroupcheck': """
        SELECT 0 AS id, ''::text AS groupname, ''::text AS attribute,
            ''::text AS op, ''::text AS value
        WHERE false""",
    'radgroupreply': """
        SELECT p.id * 4 AS id, 'isp-plan-' || p.id::text AS groupname,
            'Mikrotik-Rate-Limit'::text AS attribute, ':='::text AS op,
            isp_rate_limit(p.upload_rate, p.download_rate,
                p.burst_upload_rate, p.burst_download_rate,
                p.burst_threshold_upload, p.burst_threshold_download,
                p.burst_time) AS value
        FROM {template} p
        WHERE p.isp_plan AND COALESCE(p.upload_rate, 0) <> 0
            AND COALESCE(p.download_rate, 0) <> 0
        UNION ALL
        SELECT p.id * 4 + 1, 'isp-plan-' || p.id::text || '-throttled',
            'Mikrotik-Rate-Limit', ':=',
            COALESCE(
                isp_rate_limit(p.throttled_upload_rate,
                    p.throttled_download_rate, NULL, NULL, NULL, NULL, NULL),
                isp_rate_limit(p.upload_rate, p.download_rate,
                    p.burst_upload_rate, p.burst_download_rate,
                    p.burst_threshold_upload, p.burst_threshold_download,
                    p.burst_time))
        FROM {template} p
        WHERE p.isp_plan AND COALESCE(p.upload_rate, 0) <> 0
            AND COALESCE(p.download_rate, 0) <> 0
        UNION ALL
        SELECT r.id * 4 + 2, 'isp-isolation-' || r.id::text,
            'Mikrotik-Rate-Limit', ':=', r.isolation_rate_limit::text
        FROM {router} r
        WHERE r.isolation_rate_limit IS NOT NULL""",
    }

TABLES = [
    # FreeRADIUS 3.2's mods-config/sql/main/postgresql/schema.sql, with the
    # bookkeeping columns of the usage aggregation
    """CREATE TABLE IF NOT EXISTS radacct (
        RadAcctId bigserial PRIMARY KEY,
        AcctSessionId text NOT NULL,
        AcctUniqueId text NOT NULL UNIQUE,
        UserName text,
        Realm text,
        NASIPAddress inet NOT NULL,
        NASPortId text,
        NASPortType text,
        AcctStartTime timestamp with time zone,
        AcctUpdateTime timestamp with time zone,
        AcctStopTime timestamp with time zone,
        AcctInterval bigint,
        AcctSessionTime bigint,
        AcctAuthentic text,
        ConnectInfo_start text,
        ConnectInfo_stop text,
        AcctInputOctets bigint,
        AcctOutputOctets bigint,
        CalledStationId text,
        CallingStationId text,
        AcctTerminateCause text,
        ServiceType text,
        FramedProtocol text,
        FramedIPAddress inet,
        FramedIPv6Address inet,
        FramedIPv6Prefix inet,
        FramedInterfaceId text,
        DelegatedIPv6Prefix inet,
        Class text
        )""",
    "ALTER TABLE radacct ADD COLUMN IF NOT EXISTS isp_input_counted "
    "bigint NOT NULL DEFAULT 0",
    "ALTER TABLE radacct ADD COLUMN IF NOT EXISTS isp_output_counted "
    "bigint NOT NULL DEFAULT 0",
    "ALTER TABLE radacct ADD COLUMN IF NOT EXISTS isp_time_counted "
    "bigint NOT NULL DEFAULT 0",
    # the stock indexes (FreeRADIUS's own queries)
    "CREATE INDEX IF NOT EXISTS radacct_active_session_idx "
    "ON radacct (AcctUniqueId) WHERE AcctStopTime IS NULL",
    "CREATE INDEX IF NOT EXISTS radacct_bulk_close "
    "ON radacct (NASIPAddress, AcctStartTime) WHERE AcctStopTime IS NULL",
    "CREATE INDEX IF NOT EXISTS radacct_start_user_idx "
    "ON radacct (AcctStartTime, UserName)",
    # the product's: Simultaneous-Use and CoA (open sessions of a user),
    # the aggregation (pending rows only), the pruning (stop time)
    "CREATE INDEX IF NOT EXISTS radacct_isp_open_user_idx "
    "ON radacct (UserName, NASIPAddress) WHERE AcctStopTime IS NULL",
    "CREATE INDEX IF NOT EXISTS radacct_isp_pending_idx "
    "ON radacct (NASIPAddress, RadAcctId) WHERE " + PENDING,
    "CREATE INDEX IF NOT EXISTS radacct_isp_stop_idx "
    "ON radacct (AcctStopTime) WHERE AcctStopTime IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS radacct_isp_update_idx "
    "ON radacct (AcctUpdateTime) WHERE AcctStopTime IS NULL",
    """CREATE TABLE IF NOT EXISTS radpostauth (
        id bigserial PRIMARY KEY,
        username text NOT NULL,
        pass text,
        reply text,
        CalledStationId text,
        CallingStationId text,
        authdate timestamp with time zone NOT NULL default now(),
        Class text,
        NASIPAddress inet
        )""",
    "ALTER TABLE radpostauth ADD COLUMN IF NOT EXISTS NASIPAddress inet",
    "CREATE INDEX IF NOT EXISTS radpostauth_username_idx "
    "ON radpostauth (username)",
    "CREATE INDEX IF NOT EXISTS radpostauth_authdate_idx "
    "ON radpostauth (authdate)",
    """CREATE TABLE IF NOT EXISTS nasreload (
        NASIPAddress inet PRIMARY KEY,
        ReloadTime timestamp with time zone NOT NULL
        )""",
    ]


def drop_views(cursor):
    "Drop the views (before their tables' columns change)"
    for name in reversed(list(VIEWS)):
        cursor.execute('DROP VIEW IF EXISTS %s' % name)


#: rows other modules add to the views: {key: (tables, {view: query})},
#: `tables` maps the names in the queries to table names; each query is
#: appended with UNION ALL (same columns as the view) once its tables exist
EXTENSIONS = {}


def _extensions(cursor, view):
    "The extension queries of `view` whose tables exist"
    queries = []
    for key in sorted(EXTENSIONS):
        tables, views = EXTENSIONS[key]
        if view not in views:
            continue
        cursor.execute('SELECT ' + ', '.join(
                ['to_regclass(%s)'] * len(tables)), list(tables.values()))
        if all(cursor.fetchone()):
            queries.append(views[view].format(**tables))
    return queries


def install(cursor, tables):
    """Create (again) the functions, views and FreeRADIUS tables.

    `tables` maps 'service', 'router', 'template' to the product's table
    names.  Views are dropped and created at every module update: a view
    pins the types of the columns it reads."""
    for statement in TABLES:
        cursor.execute(statement)
    for statement in FUNCTIONS:
        cursor.execute(statement)
    drop_views(cursor)
    for name, query in VIEWS.items():
        query = ' UNION ALL '.join(
            [query.format(**tables)] + _extensions(cursor, name))
        cursor.execute('CREATE VIEW %s AS %s' % (name, query))
    for statement in QUERY_FUNCTIONS:
        cursor.execute(statement)


# FreeRADIUS #

# Every query is limited to the company of the NAS the packet comes from.
# FreeRADIUS sends plain queries: PostgreSQL would plan each view join
# again for every request (0.3 to 0.9 ms, more than running it), so the
# queries live in PL/pgSQL functions, whose plans are kept per connection.
_COMPANY_NAS = (
    "SELECT m.nasname::inet FROM nas n JOIN nas m ON m.company = n.company "
    "WHERE n.nasname = p_nas")
_ROWS = "RETURNS TABLE (id integer, name text, attribute text, value text, " \
    "op text)"
_OPEN = (
    "FROM radacct a WHERE a.username = p_user AND a.acctstoptime IS NULL "
    "AND a.nasipaddress IN (" + _COMPANY_NAS + ")")


def _function(name, arguments, returns, query):
    return (
        "CREATE OR REPLACE FUNCTION %s(%s) %s LANGUAGE plpgsql STABLE "
        "AS $$ BEGIN RETURN QUERY %s; END $$" % (
            name, arguments, returns, query))


_BY_USER = (
    "SELECT c.id::integer, c.username, c.attribute, c.value, c.op "
    "FROM %s c JOIN nas n ON n.company = c.company "
    "WHERE c.username = p_user AND n.nasname = p_nas ORDER BY c.id")
QUERY_FUNCTIONS = [
    _function('isp_radius_check', 'p_user text, p_nas text', _ROWS,
        _BY_USER % 'radcheck'),
    _function('isp_radius_reply', 'p_user text, p_nas text', _ROWS,
        _BY_USER % 'radreply'),
    _function('isp_radius_groups', 'p_user text, p_nas text',
        "RETURNS TABLE (name text)",
        "SELECT g.groupname FROM radusergroup g "
        "JOIN nas n ON n.company = g.company "
        "WHERE g.username = p_user AND n.nasname = p_nas "
        "ORDER BY g.priority"),
    _function('isp_radius_group_reply', 'p_group text', _ROWS,
        "SELECT g.id::integer, g.groupname, g.attribute, g.value, g.op "
        "FROM radgroupreply g WHERE g.groupname = p_group ORDER BY g.id"),
    _function('isp_radius_simul_count', 'p_user text, p_nas text',
        "RETURNS TABLE (count bigint)", "SELECT COUNT(*) " + _OPEN),
    _function('isp_radius_simul_verify', 'p_user text, p_nas text',
        "RETURNS TABLE (radacctid bigint, acctsessionid text, "
        "username text, nasipaddress inet, nasportid text, "
        "framedipaddress inet, callingstationid text, framedprotocol text)",
        "SELECT a.radacctid, a.acctsessionid, a.username, a.nasipaddress, "
        "a.nasportid, a.framedipaddress, a.callingstationid, "
        "a.framedprotocol " + _OPEN),
    ]

_ARGS = "('%{SQL-User-Name}', '%{Packet-Src-IP-Address}')"
QUERIES = {
    'authorize_check_query': (
        "SELECT id, name, attribute, value, op FROM isp_radius_check"
        + _ARGS),
    'authorize_reply_query': (
        "SELECT id, name, attribute, value, op FROM isp_radius_reply"
        + _ARGS),
    'group_membership_query': "SELECT name FROM isp_radius_groups" + _ARGS,
    'authorize_group_reply_query': (
        "SELECT id, name, attribute, value, op "
        "FROM isp_radius_group_reply('%{${group_attribute}}')"),
    'simul_count_query': "SELECT count FROM isp_radius_simul_count" + _ARGS,
    'simul_verify_query': "SELECT * FROM isp_radius_simul_verify" + _ARGS,
    }

POST_AUTH = '''\
# no password in the log table (the stock query stores the one tried)
query = "\\
	INSERT INTO radpostauth \\
		(username, pass, reply, CalledStationId, CallingStationId, \\
		authdate, NASIPAddress) \\
	VALUES(\\
		'%{SQL-User-Name}', '', '%{reply:Packet-Type}', \\
		'%{Called-Station-Id}', '%{Calling-Station-Id}', \\
		'%S.%M', '%{Packet-Src-IP-Address}')"'''

_NAS_ADDRESS = re.compile(
    r"%\{%\{NAS-IPv6-Address\}:-%\{NAS-IP-Address\}\}"
    r"|(?<=VALUES \(')%\{NAS-IP-Address\}")


def _section(text, name):
    "The body of the top-level section `name { ... }` of queries.conf"
    match = re.search(r'^%s \{\n' % re.escape(name), text, re.M)
    if not match:
        raise ValueError("no %s section in queries.conf" % name)
    depth, index = 1, match.end()
    while depth:
        char = text[index]
        depth += {'{': 1, '}': -1}.get(char, 0)
        index += 1
    return text[match.end():index - 1]


def accounting_section(stock_queries):
    """The stock accounting section recording the packet's source address
    as NASIPAddress: routers are known by it (the nas view), also behind
    NAT, whatever NAS-IP-Address they claim."""
    body, count = _NAS_ADDRESS.subn(
        '%{Packet-Src-IP-Address}', _section(stock_queries, 'accounting'))
    if count < 5:
        raise ValueError(
            "unexpected stock accounting queries: %d NAS addresses" % count)
    return body


def freeradius_queries(stock_queries):
    """The sql_queries of tools/freeradius.write_config for the product
    (`stock_queries`: the text of the stock postgresql queries.conf)"""
    queries = dict(QUERIES)
    queries['accounting'] = accounting_section(stock_queries)
    queries['post-auth'] = POST_AUTH
    return queries
