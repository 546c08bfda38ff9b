# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""RADIUS accounting turned into per-service daily usage, fair usage, and
the retention of the raw rows.

FreeRADIUS writes one ``radacct`` row per session and updates its
counters (gigawords included) at each Interim-Update and at the Stop.  The
aggregation adds what each row gained since it was last counted to the
usage of its service on the day of the update, and records what it counted
on the row itself, in the same transaction: re-running finds nothing new,
and an interrupted run counts nothing.  A partial index holds exactly the
rows whose counters moved, so a run never reads the history.
"""
import datetime as dt
from collections import defaultdict

from sql.aggregate import Sum
from trytond import backend
from trytond import config as config_
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.model.fields import SQL_OPERATORS
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.tools import timezone as tz
from trytond.transaction import Transaction

from . import radius_sql

BATCH = 5000
GB = 10 ** 9


def _config(name, default):
    return config_.getint('isp_network', name, default=default)


def install_radius_views():
    """Create FreeRADIUS's views (again) over the product's tables, with
    the rows of radius_sql.EXTENSIONS (PostgreSQL only)"""
    if backend.name == 'postgresql':
        pool = Pool()
        radius_sql.install(Transaction().connection.cursor(), {
                'service': pool.get('isp.service')._table,
                'router': pool.get('isp.router')._table,
                'template': pool.get('product.template')._table,
                })


class BigInteger(fields.Integer):
    "An integer stored on 64 bits (byte counters)"
    _sql_type = 'BIGINT'


class ServiceUsage(ModelSQL, ModelView):
    "ISP Service Usage"
    __name__ = 'isp.service.usage'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    service = fields.Many2One(
        'isp.service', "Service", required=True, readonly=True,
        ondelete='CASCADE')
    date = fields.Date("Date", required=True, readonly=True,
        help="The day in the branch's time zone.")
    bytes_in = BigInteger("Bytes In", readonly=True,
        help="Sent by the subscriber (upload, Acct-Input-Octets).")
    bytes_out = BigInteger("Bytes Out", readonly=True,
        help="Received by the subscriber (download, Acct-Output-Octets).")
    session_time = fields.Integer("Session Time", readonly=True,
        help="In seconds.")
    total = fields.Function(BigInteger("Total"), 'get_total')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('service_date_uniq', Unique(t, t.service, t.date),
                'isp_network.msg_service_usage_unique'),
            ]
        cls._sql_indexes.add(
            Index(t, (t.company, Index.Range()), (t.date, Index.Range())))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def __register__(cls, module):
        super().__register__(module)
        # registered last: the views read the tables of the models above
        install_radius_views()

    @classmethod
    def default_bytes_in(cls):
        return 0

    @classmethod
    def default_bytes_out(cls):
        return 0

    @classmethod
    def default_session_time(cls):
        return 0

    def get_total(self, name):
        return (self.bytes_in or 0) + (self.bytes_out or 0)

    # -- aggregation --

    @classmethod
    def _radius_routers(cls):
        pool = Pool()
        Router = pool.get('isp.router')
        domain = [
            ('provisioning_mode', '=', 'radius'),
            ('radius_address', '!=', None),
            ]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        with Transaction().set_context(active_test=False):
            return Router.search(domain)

    @classmethod
    def aggregate(cls, batch=BATCH):
        """Cron: add the new accounting of the context company's RADIUS
        routers to the daily usage, then apply fair usage"""
        pool = Pool()
        Service = pool.get('isp.service')
        if backend.name != 'postgresql':
            return
        routers = cls._radius_routers()
        if not routers:
            return
        while cls._aggregate_batch(routers, batch) >= batch:
            pass
        Service.apply_fair_usage()

    @classmethod
    def _aggregate_batch(cls, routers, batch):
        "Count one batch of pending radacct rows; return its size"
        cursor = Transaction().connection.cursor()
        by_address = {r.radius_address: r for r in routers}
        cursor.execute(
            "SELECT radacctid, host(nasipaddress), username, "
            "COALESCE(acctinputoctets, 0), COALESCE(acctoutputoctets, 0), "
            "COALESCE(acctsessiontime, 0), isp_input_counted, "
            "isp_output_counted, isp_time_counted, "
            "COALESCE(acctupdatetime, acctstoptime, acctstarttime, now()) "
            "FROM radacct WHERE " + radius_sql.PENDING
            + " AND nasipaddress = ANY(%s::inet[]) "
            "ORDER BY radacctid LIMIT %s FOR UPDATE SKIP LOCKED",
            (list(by_address), batch))
        rows = cursor.fetchall()
        if not rows:
            return 0
        services = cls._services_by_name(
            {(by_address[r[1]].company.id, r[2]) for r in rows
                if r[1] in by_address})
        zones = {}
        totals = defaultdict(lambda: [0, 0, 0])
        counted = []
        for (id_, address, username, in_, out, time_, in_c, out_c, time_c,
                at) in rows:
            counted.append((id_, in_, out, time_))
            router = by_address.get(address)
            if router is None:
                continue
            company = router.company
            service = services.get((company.id, username))
            if service is None:
                continue
            if company.id not in zones:
                zones[company.id] = tz.ZoneInfo(company.timezone) if (
                    company.timezone) else tz.UTC
            date = at.astimezone(zones[company.id]).date()
            total = totals[service, company.id, date]
            # a counter that went back started again from zero
            for index, (value, done) in enumerate(
                    [(in_, in_c), (out, out_c), (time_, time_c)]):
                total[index] += value - done if value >= done else value
        cls._add_usage(totals)
        ids, ins, outs, times = map(list, zip(*counted, strict=True))
        cursor.execute(
            "UPDATE radacct AS a SET isp_input_counted = v.i, "
            "isp_output_counted = v.o, isp_time_counted = v.t "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
            "%s::bigint[]) AS v (id, i, o, t) WHERE a.radacctid = v.id",
            (ids, ins, outs, times))
        return len(rows)

    @classmethod
    def _services_by_name(cls, keys):
        "{(company id, user name): service id}"
        pool = Pool()
        Service = pool.get('isp.service')
        table = Service.__table__()
        cursor = Transaction().connection.cursor()
        result = {}
        by_company = defaultdict(set)
        for company, username in keys:
            by_company[company].add(username)
        for company, names in by_company.items():
            for sub_names in grouped_slice(sorted(names), 1000):
                cursor.execute(*table.select(
                        table.id, table.username,
                        where=(table.company == company)
                        & SQL_OPERATORS['in'](
                            table.username, list(sub_names))))
                for id_, username in cursor:
                    result[company, username] = id_
        return result

    @classmethod
    def _add_usage(cls, totals):
        "Add {(service, company, date): [in, out, time]} to the usage rows"
        if not totals:
            return
        service_ids = sorted({k[0] for k in totals})
        dates = sorted({k[2] for k in totals})
        existing = {}
        for sub_ids in grouped_slice(service_ids, 1000):
            for usage in cls.search([
                        ('service', 'in', list(sub_ids)),
                        ('date', 'in', dates),
                        ]):
                existing[usage.service.id, usage.date] = usage
        to_save = []
        for (service, company, date), (in_, out, time_) in totals.items():
            usage = existing.get((service, date))
            if usage is None:
                usage = cls(service=service, company=company, date=date,
                    bytes_in=0, bytes_out=0, session_time=0)
            usage.bytes_in = (usage.bytes_in or 0) + in_
            usage.bytes_out = (usage.bytes_out or 0) + out
            usage.session_time = (usage.session_time or 0) + time_
            to_save.append(usage)
        cls.save(to_save)

    @classmethod
    def totals(cls, starts, ends=None):
        """{service id: bytes in + out} since the date of each service in
        `starts` ({service id: date}), up to its date in `ends` (included)
        when given"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        result = defaultdict(int)
        if not starts:
            return result
        for sub_ids in grouped_slice(sorted(starts), 1000):
            sub_ids = list(sub_ids)
            cursor.execute(*table.select(
                    table.service, table.date,
                    Sum(table.bytes_in + table.bytes_out),
                    where=SQL_OPERATORS['in'](table.service, sub_ids)
                    & (table.date >= min(starts[i] for i in sub_ids)),
                    group_by=[table.service, table.date]))
            for service, date, total in cursor:
                if date >= starts[service] and (
                        ends is None or date <= ends[service]):
                    result[service] += int(total or 0)
        return result

    # -- retention --

    @classmethod
    def prune(cls):
        """Cron: close the sessions a router forgot to stop, delete the
        counted raw rows older than the retention, and old post-auth logs
        (PostgreSQL; days and hours from the [isp_network] section)"""
        if backend.name != 'postgresql':
            return
        routers = cls._radius_routers()
        addresses = [r.radius_address for r in routers]
        if not addresses:
            return
        cursor = Transaction().connection.cursor()
        now = dt.datetime.now(dt.UTC)
        stale = now - dt.timedelta(hours=_config('radacct_stale_hours', 48))
        cursor.execute(
            "UPDATE radacct SET acctstoptime = COALESCE(acctupdatetime, "
            "acctstarttime), acctterminatecause = 'Stale-Session' "
            "WHERE acctstoptime IS NULL "
            "AND COALESCE(acctupdatetime, acctstarttime) < %s "
            "AND nasipaddress = ANY(%s::inet[])", (stale, addresses))
        retention = now - dt.timedelta(
            days=_config('radacct_retention_days', 180))
        while True:
            cursor.execute(
                "DELETE FROM radacct WHERE radacctid IN ("
                "SELECT radacctid FROM radacct WHERE acctstoptime < %s "
                "AND NOT " + radius_sql.PENDING
                + " AND nasipaddress = ANY(%s::inet[]) LIMIT %s)",
                (retention, addresses, BATCH * 4))
            if cursor.rowcount < BATCH * 4:
                break
        postauth = now - dt.timedelta(
            days=_config('radpostauth_retention_days', 30))
        cursor.execute(
            "DELETE FROM radpostauth WHERE authdate < %s "
            "AND (nasipaddress IS NULL OR nasipaddress = ANY(%s::inet[]))",
            (postauth, addresses))


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    usages = fields.One2Many(
        'isp.service.usage', 'service', "Usage", readonly=True)

    @classmethod
    def copy(cls, services, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('usages', None)
        return super().copy(services, default=default)

    def get_usage_cycle_start(self, date):
        """The first day of the usage cycle holding `date`: the calendar
        month here; billing modules override it with the billing day"""
        return date.replace(day=1)

    @classmethod
    def apply_fair_usage(cls, date=None):
        """Throttle the context company's RADIUS services over their plan's
        quota this cycle, and give the full rate back at the next cycle.
        The write queues the router, which sends the CoA."""
        pool = Pool()
        Date = pool.get('ir.date')
        Usage = pool.get('isp.service.usage')
        if date is None:
            date = Date.today()
        domain = [
            ('router.provisioning_mode', '=', 'radius'),
            ['OR',
                [('state', 'in', ['active', 'isolated']),
                    ('plan.quota', '!=', None),
                    ('plan.throttled_download_rate', '!=', None)],
                ('radius_throttled', '=', True),
                ],
            ]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        services = cls.search(domain)
        starts = {s.id: s.get_usage_cycle_start(date) for s in services}
        totals = Usage.totals(starts)
        throttle, release = [], []
        for service in services:
            quota = service.plan.quota
            over = bool(quota) and totals.get(service.id, 0) >= quota * GB
            if over and service.state != 'terminated':
                if not service.radius_throttled:
                    throttle.append(service)
            elif service.radius_throttled and (
                    not quota or service.state == 'terminated'
                    or (service.radius_throttled_since or date)
                    < starts[service.id]):
                release.append(service)
        if throttle:
            cls.write(throttle, {
                    'radius_throttled': True,
                    'radius_throttled_since': date,
                    })
        if release:
            cls.write(release, {
                    'radius_throttled': False,
                    'radius_throttled_since': None,
                    })
        return throttle, release

