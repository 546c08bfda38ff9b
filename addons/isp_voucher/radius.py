# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Vouchers of RADIUS profiles in FreeRADIUS's views (isp_network's
radius_sql.py), next to the PPPoE services: the user name is the code.

radcheck: Cleartext-Password, Simultaneous-Use (the profile's shared users)
and Auth-Type := Reject for a disabled voucher, or one whose validity,
uptime or data is used up even before the expiry cron ran.  Expired and
voided vouchers are absent (FreeRADIUS rejects an unknown user).

radreply: Mikrotik-Rate-Limit, Session-Timeout (what is left of the uptime
limit and of the validity: the validity itself before the first login),
Mikrotik-Total-Limit and Mikrotik-Total-Limit-Gigawords (what is left of the
data quota).

Rows are scoped by the voucher's company like the services' (the queries
join the NAS of the packet's source address).  Ids are negative so they
never meet the services' ids; they keep the order of the attributes.
Pure module: no trytond import."""

TABLES = {'voucher': 'isp_voucher', 'voucher_profile': 'isp_voucher_profile'}

_NOW = "(now() AT TIME ZONE 'UTC')"
_VALIDITY = ("p.validity * CASE p.validity_unit WHEN 'days' THEN 86400 "
    "ELSE 3600 END")
_UPTIME_LIMIT = "EXTRACT(EPOCH FROM p.uptime_limit)::bigint"
_QUOTA = "p.data_quota::bigint * 1000000"
_LEFT_BYTES = "GREATEST(%s - COALESCE(v.bytes_used, 0), 0)" % _QUOTA
_LEFT_SECONDS = (
    "GREATEST(LEAST("
    "CASE WHEN p.uptime_limit IS NOT NULL "
    "THEN %(uptime)s - COALESCE(v.uptime_used, 0) END, "
    "CASE WHEN v.expiry IS NOT NULL "
    "THEN EXTRACT(EPOCH FROM v.expiry - %(now)s)::bigint "
    "ELSE %(validity)s END), 1)" % {
        'uptime': _UPTIME_LIMIT, 'now': _NOW, 'validity': _VALIDITY})
_USED_UP = (
    "v.expiry <= %(now)s "
    "OR (p.uptime_limit IS NOT NULL "
    "AND COALESCE(v.uptime_used, 0) >= %(uptime)s) "
    "OR (p.data_quota IS NOT NULL "
    "AND COALESCE(v.bytes_used, 0) >= %(quota)s)" % {
        'now': _NOW, 'uptime': _UPTIME_LIMIT, 'quota': _QUOTA})


def _rows(values, states):
    "The rows of the vouchers in `states`: `values` (n, attribute, op, value)"
    return """
        SELECT (-(v.id * 8 + 7 - x.n))::integer AS id,
            v.code::text AS username, x.attribute, x.op, x.value,
            v.company, NULL::integer AS router
        FROM {voucher} v
        JOIN {voucher_profile} p ON p.id = v.profile
        CROSS JOIN LATERAL (VALUES
            """ + values + """
            ) AS x (n, attribute, op, value)
        WHERE p.mode = 'radius' AND v.state IN (""" + ', '.join(
        "'%s'" % state for state in states) + """)
            AND x.value IS NOT NULL"""


VIEWS = {
    'radcheck': _rows("""(0, 'Cleartext-Password', ':=', v.password::text),
            (1, 'Simultaneous-Use', ':=', p.shared_users::text),
            (2, 'Auth-Type', ':=', CASE
                    WHEN v.state = 'disabled' OR %(used_up)s
                    THEN 'Reject' END)""" % {'used_up': _USED_UP},
        ['new', 'sold', 'active', 'disabled']),
    'radreply': _rows("""(0, 'Mikrotik-Rate-Limit', ':=', p.rate_limit::text),
            (1, 'Session-Timeout', ':=', (%(seconds)s)::text),
            (2, 'Mikrotik-Total-Limit', ':=', CASE
                    WHEN p.data_quota IS NOT NULL
                    THEN (%(bytes)s %% 4294967296)::text END),
            (3, 'Mikrotik-Total-Limit-Gigawords', ':=', CASE
                    WHEN p.data_quota IS NOT NULL
                        AND %(bytes)s >= 4294967296
                    THEN (%(bytes)s / 4294967296)::text END)""" % {
            'seconds': _LEFT_SECONDS, 'bytes': _LEFT_BYTES},
        ['new', 'sold', 'active']),
    }


def register():
    "Add the vouchers to isp_network's views (at every install of them)"
    from trytond.modules.isp_network import radius_sql
    radius_sql.EXTENSIONS['isp_voucher'] = (TABLES, VIEWS)
