# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Hotspot voucher profiles, batches and vouchers.

A profile is what a voucher sells (price, validity, limits, rate limit and
the routers it works on), a batch makes its codes in bulk, a voucher is one
code with its state: new -> sold -> active (first login) -> expired, or
disabled, or voided."""
import datetime as dt
import secrets
from decimal import Decimal

from sql import Select
from sql.aggregate import Count
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin,
    Index,
    ModelSQL,
    ModelView,
    Unique,
    Workflow,
    fields,
)
from trytond.model.fields import SQL_OPERATORS
from trytond.modules.product import price_digits
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from trytond.modules.isp_base.common import InputGuardMixin
from trytond.modules.isp_base.field_access import SystemFieldsCopyMixin
from trytond.modules.isp_base.tenancy import (
    BranchOnChangeMixin,
    BranchValuesMixin,
)
from trytond.modules.isp_base.validation import (
    parse_rate_limit,
    rate_problem,
)
from trytond.modules.isp_network.exceptions import ServiceValidationError
from trytond.modules.isp_network.usage import BigInteger

from .exceptions import (
    BatchGeneratedError,
    BatchValidationError,
    CodeSpaceError,
    ProfileValidationError,
    VoucherDeleteError,
)

#: The characters of codes and passwords: no 0/O, 1/I/L look-alikes.
ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 32
MAX_PREFIX_LENGTH = 8
MAX_QUANTITY = 100_000
#: The codes a length can make must be this many times the batch: a code
#: guessed at random is one of the batch at most once in SPACE_FACTOR tries.
SPACE_FACTOR = 1000
#: Vouchers created (one multi-row INSERT) and checked per chunk.
CHUNK_SIZE = 1000
#: Draws of a chunk beyond its size, and rounds of a batch, before giving up
MAX_DRAWS_FACTOR = 10
MAX_ROUNDS = 50
#: The key of the advisory lock serializing the generation of codes.
CODE_LOCK_ID = 0x15B0C4E1

_BATCH_DRAFT = {'readonly': Eval('state') != 'draft'}
GENERATION_FIELDS = {
    'company', 'profile', 'quantity', 'prefix', 'code_length',
    'password_mode', 'password_length'}


def random_code(length, alphabet=ALPHABET):
    "A code of `length` characters of `alphabet` drawn with `secrets`"
    return ''.join(secrets.choice(alphabet) for _ in range(length))


def code_space(length, alphabet=ALPHABET):
    "How many codes `length` random characters make"
    return len(alphabet) ** length


def minimum_code_length(quantity, alphabet=ALPHABET):
    "The shortest random part giving `quantity` codes room (SPACE_FACTOR)"
    length = MIN_CODE_LENGTH
    while code_space(length, alphabet) < SPACE_FACTOR * quantity:
        length += 1
    return length


class Profile(
        BranchValuesMixin, BranchOnChangeMixin, InputGuardMixin,
        SystemFieldsCopyMixin, DeactivableMixin, ModelSQL, ModelView):
    "ISP Voucher Profile"
    __name__ = 'isp.voucher.profile'
    _branch_fields = ('company', 'product', 'router', 'router_pool')

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        help="The branch that sells the vouchers.")
    name = fields.Char("Name", required=True,
        help="Printed on the vouchers, e.g. \"1 day 5 Mbps\".")
    product = fields.Many2One(
        'product.product', "Product", required=True, ondelete='RESTRICT',
        context={'company': Eval('company', -1)}, depends={'company'},
        domain=[
            ('type', '=', 'service'),
            ['OR',
                ('template.isp_company', '=', None),
                ('template.isp_company', '=', Eval('company', -1)),
                ],
            ],
        help="The service product sold: its sale price and its account "
        "category's customer taxes (or the branch's billing tax) make the "
        "voucher's price.")
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"), 'get_currency')
    list_price = fields.Function(fields.Numeric(
            "Price", digits=price_digits,
            help="The product's sale price, without taxes."), 'get_prices')
    price_with_tax = fields.Function(fields.Numeric(
            "Price with Taxes", digits=price_digits,
            help="What the buyer pays."), 'get_prices')
    validity = fields.Integer(
        "Validity", required=True,
        help="How long the voucher works, counted from its first login.")
    validity_unit = fields.Selection([
            ('hours', "Hours"),
            ('days', "Days"),
            ], "Validity Unit", required=True, sort=False)
    uptime_limit = fields.TimeDelta(
        "Uptime Limit",
        help="The connected time the voucher gives (limit-uptime); "
        "empty for no limit.")
    data_quota = fields.Integer(
        "Data Quota",
        help="In MB uploaded and downloaded (limit-bytes-total); "
        "empty for no limit.")
    rate_limit = fields.Char(
        "Rate Limit", strip=True,
        help="MikroTik's syntax, upload/download as the router reads rx/tx: "
        "2M/5M, or with bursts 2M/5M 4M/10M 1500k/4M 8/8; "
        "empty for no limit.")
    shared_users = fields.Integer(
        "Shared Users", required=True,
        help="How many devices may be logged in with one voucher at once.")
    router = fields.Many2One(
        'isp.router', "Router", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={
            'required': ~Eval('router_pool'),
            'invisible': Eval('router_pool') & ~Eval('router'),
            },
        help="The router the vouchers work on.")
    router_pool = fields.Many2One(
        'isp.router.pool', "Router Pool", ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states={
            'required': ~Eval('router'),
            'invisible': Eval('router') & ~Eval('router_pool'),
            },
        help="The routers the vouchers work on, instead of one router.")
    mode = fields.Selection([
            ('api', "API"),
            ('radius', "RADIUS"),
            ], "Mode", required=True,
        help="API: the hotspot user profile and users are written on the "
        "routers; RADIUS: the routers ask FreeRADIUS, which reads the "
        "vouchers from the database.")
    batches = fields.One2Many(
        'isp.voucher.batch', 'profile', "Batches", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.company, Index.Range())))
        cls._order.insert(0, ('name', 'ASC'))

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_validity(cls):
        return 1

    @classmethod
    def default_validity_unit(cls):
        return 'days'

    @classmethod
    def default_shared_users(cls):
        return 1

    @classmethod
    def default_mode(cls):
        return 'api'

    @classmethod
    def _input_bounds(cls):
        return {
            **super()._input_bounds(),
            'validity': (1, 24 * 3660),
            'data_quota': (1, 10 ** 9),
            'shared_users': (1, 1000),
            'rate_limit': (None, 200),
            }

    def get_currency(self, name):
        return self.company.currency.id

    @classmethod
    def get_prices(cls, profiles, names):
        "The product's price and the price with its customer taxes"
        pool = Pool()
        Product = pool.get('product.product')
        Tax = pool.get('account.tax')
        Date = pool.get('ir.date')
        result = {name: {} for name in names}
        for profile in profiles:
            company = profile.company
            with Transaction().set_context(company=company.id):
                product = Product(profile.product.id)
                price = product.list_price_used or Decimal(0)
                taxes = profile._customer_taxes(product)
                total = price
                if taxes:
                    total += sum(line['amount'] for line in Tax.compute(
                            taxes, price, 1, Date.today()))
            if 'list_price' in result:
                result['list_price'][profile.id] = price
            if 'price_with_tax' in result:
                result['price_with_tax'][profile.id] = (
                    company.currency.round(total))
        return result

    def _customer_taxes(self, product):
        """The customer taxes of `product` in the profile's branch: its
        account category's, else the branch's billing tax"""
        pool = Pool()
        Configuration = pool.get('isp.billing.configuration')
        if product.account_category:
            return list(product.account_category.customer_taxes_used)
        tax = Configuration.get_value(self.company, 'tax')
        return [tax] if tax else []

    @property
    def validity_delta(self):
        "The validity as a timedelta"
        return dt.timedelta(**{self.validity_unit: self.validity})

    @property
    def rates(self):
        "The parsed rate limit {plan field name: kbit/s} or None"
        if self.rate_limit:
            return parse_rate_limit(self.rate_limit)

    @classmethod
    def copy(cls, profiles, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('batches', None)
        return super().copy(profiles, default=default)

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('rate_limit') is not None:
            values['rate_limit'] = ' '.join(
                values['rate_limit'].split()) or None
        return values

    @classmethod
    def validate_fields(cls, profiles, field_names):
        super().validate_fields(profiles, field_names)
        for profile in profiles:
            profile.check_limits()

    def _error(self, problem, **kwargs):
        return ProfileValidationError(gettext(
                'isp_voucher.msg_profile_%s' % problem,
                profile=self.rec_name, **kwargs))

    def check_limits(self):
        "The rate limit is MikroTik's syntax and coherent as plans' are"
        pool = Pool()
        Template = pool.get('product.template')
        if self.rate_limit:
            rates = parse_rate_limit(self.rate_limit)
            if rates is None:
                raise self._error(
                    'rate_limit_syntax', rate_limit=self.rate_limit)
            problem = rate_problem(rates)
            if problem:
                problem, name = problem
                raise self._error('rate_limit_' + problem,
                    rate_limit=self.rate_limit,
                    part=Template._label(name) if name else '')
        if self.uptime_limit is not None and (
                self.uptime_limit <= dt.timedelta(0)):
            raise self._error('uptime_limit_positive')
        if self.router and self.router_pool:
            raise self._error('router_or_pool')


class Batch(
        BranchValuesMixin, BranchOnChangeMixin, InputGuardMixin,
        SystemFieldsCopyMixin, Workflow, ModelSQL, ModelView):
    "ISP Voucher Batch"
    __name__ = 'isp.voucher.batch'
    _branch_fields = ('company', 'profile')

    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        states=_BATCH_DRAFT)
    name = fields.Char("Name", required=True,
        help="How the batch is known, e.g. the month or the reseller.")
    profile = fields.Many2One(
        'isp.voucher.profile', "Profile", required=True, ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        states=_BATCH_DRAFT)
    quantity = fields.Integer(
        "Quantity", required=True, states=_BATCH_DRAFT,
        help="How many vouchers the batch makes (up to %s)." % MAX_QUANTITY)
    prefix = fields.Char(
        "Prefix", strip=True, states=_BATCH_DRAFT,
        help="Starts every code: up to %s of the characters %s."
        % (MAX_PREFIX_LENGTH, ALPHABET))
    code_length = fields.Integer(
        "Code Length", required=True, states=_BATCH_DRAFT,
        help="The random characters after the prefix (%s to %s); "
        "the longer, the harder to guess." % (
            MIN_CODE_LENGTH, MAX_CODE_LENGTH))
    password_mode = fields.Selection([
            ('same', "User = Password"),
            ('separate', "Separate Password"),
            ], "Password", required=True, states=_BATCH_DRAFT,
        help="Whether the buyer types the code once (it is the password too) "
        "or a user name and a password.")
    password_length = fields.Integer(
        "Password Length",
        states={
            'readonly': Eval('state') != 'draft',
            'invisible': Eval('password_mode') != 'separate',
            'required': Eval('password_mode') == 'separate',
            })
    state = fields.Selection([
            ('draft', "Draft"),
            ('generated', "Generated"),
            ('disabled', "Disabled"),
            ('voided', "Voided"),
            ], "State", readonly=True, required=True, sort=False)
    generated_date = fields.DateTime("Generated", readonly=True)
    vouchers = fields.One2Many(
        'isp.voucher', 'batch', "Vouchers", readonly=True)
    voucher_count = fields.Function(
        fields.Integer("Vouchers"), 'get_voucher_count')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.company, Index.Range())))
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('draft', 'generated'),
            ('generated', 'disabled'),
            ('disabled', 'generated'),
            ('generated', 'voided'),
            ('disabled', 'voided'),
            }
        cls._buttons.update({
                'generate': {
                    'invisible': Eval('state') != 'draft',
                    'icon': 'tryton-launch',
                    'depends': ['state'],
                    },
                'disable': {
                    'invisible': Eval('state') != 'generated',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'enable': {
                    'invisible': Eval('state') != 'disabled',
                    'icon': 'tryton-forward',
                    'depends': ['state'],
                    },
                'void': {
                    'invisible': ~Eval('state').in_(['generated', 'disabled']),
                    'icon': 'tryton-delete',
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @classmethod
    def default_state(cls):
        return 'draft'

    @classmethod
    def default_code_length(cls):
        return 8

    @classmethod
    def default_password_mode(cls):
        return 'same'

    @classmethod
    def default_password_length(cls):
        return 6

    @classmethod
    def _input_bounds(cls):
        return {
            **super()._input_bounds(),
            'quantity': (1, MAX_QUANTITY),
            'code_length': (MIN_CODE_LENGTH, MAX_CODE_LENGTH),
            'password_length': (MIN_CODE_LENGTH, MAX_CODE_LENGTH),
            'prefix': (None, MAX_PREFIX_LENGTH),
            }

    def get_rec_name(self, name):
        return '%s (%s)' % (self.name, self.profile.rec_name)

    @classmethod
    def get_voucher_count(cls, batches, name):
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        return Voucher.count_per_batch(batches)

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if 'prefix' in values:
            values['prefix'] = (values['prefix'] or '').strip().upper()
        return values

    @classmethod
    def validate_fields(cls, batches, field_names):
        super().validate_fields(batches, field_names)
        if field_names and not (field_names & GENERATION_FIELDS):
            return
        for batch in batches:
            batch.check_codes()

    def check_codes(self):
        """The prefix holds only characters of the alphabet and the codes
        have room: a batch too big for its code length is refused"""
        prefix = self.prefix or ''
        bad = sorted({c for c in prefix if c not in ALPHABET})
        if bad:
            raise BatchValidationError(gettext(
                    'isp_voucher.msg_batch_prefix_invalid',
                    field=self.__names__('prefix')['field'],
                    prefix=prefix, characters=' '.join(bad),
                    alphabet=ALPHABET))
        if (self.quantity and self.code_length
                and code_space(self.code_length)
                < SPACE_FACTOR * self.quantity):
            raise BatchValidationError(gettext(
                    'isp_voucher.msg_batch_code_space',
                    field=self.__names__('code_length')['field'],
                    length=self.code_length, quantity=self.quantity,
                    minimum=minimum_code_length(self.quantity)))

    @classmethod
    def check_modification(cls, mode, batches, values=None, external=False):
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        super().check_modification(
            mode, batches, values=values, external=external)
        if mode == 'write' and GENERATION_FIELDS & values.keys():
            for batch in batches:
                if batch.state != 'draft':
                    raise BatchGeneratedError(gettext(
                            'isp_voucher.msg_batch_generated',
                            batch=batch.rec_name))
        elif mode == 'delete':
            used = Voucher.search([
                    ('batch', 'in', [b.id for b in batches]),
                    ['OR',
                        ('sold_date', '!=', None),
                        ('first_login', '!=', None),
                        ],
                    ], limit=1)
            if used:
                raise VoucherDeleteError(gettext(
                        'isp_voucher.msg_batch_delete_used',
                        batch=used[0].batch.rec_name))

    @classmethod
    def copy(cls, batches, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('vouchers', None)
        default.setdefault('generated_date', None)
        return super().copy(batches, default=default)

    @classmethod
    @ModelView.button
    @Workflow.transition('generated')
    def generate(cls, batches):
        "Make the batches' codes"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        for batch in batches:
            batch.check_codes()
        if batches:
            Voucher.lock_codes()
        for batch in batches:
            Voucher.generate(batch)
        cls.write(batches, {'generated_date': dt.datetime.now()})

    @classmethod
    @ModelView.button
    @Workflow.transition('disabled')
    def disable(cls, batches):
        "Disable every voucher of the batches that is not over"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Voucher.disable(Voucher.search([
                    ('batch', 'in', [b.id for b in batches]),
                    ('state', 'in', ['new', 'sold', 'active']),
                    ]))

    @classmethod
    @ModelView.button
    @Workflow.transition('generated')
    def enable(cls, batches):
        "Give back the disabled vouchers of the batches"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Voucher.enable(Voucher.search([
                    ('batch', 'in', [b.id for b in batches]),
                    ('state', '=', 'disabled'),
                    ]))

    @classmethod
    @ModelView.button
    @Workflow.transition('voided')
    def void(cls, batches):
        "Void every voucher of the batches that is not expired: for good"
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        Voucher.void(Voucher.search([
                    ('batch', 'in', [b.id for b in batches]),
                    ('state', 'in', ['new', 'sold', 'active', 'disabled']),
                    ]))


class Voucher(Workflow, ModelSQL, ModelView):
    "ISP Voucher"
    __name__ = 'isp.voucher'
    _rec_name = 'code'

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True,
        ondelete='RESTRICT')
    batch = fields.Many2One(
        'isp.voucher.batch', "Batch", required=True, readonly=True,
        ondelete='CASCADE')
    profile = fields.Many2One(
        'isp.voucher.profile', "Profile", required=True, readonly=True,
        ondelete='RESTRICT')
    code = fields.Char("Code", required=True, readonly=True,
        help="The hotspot user name, unique across every branch.")
    password = fields.Char("Password", required=True, readonly=True,
        help="The code itself, or its own password.")
    state = fields.Selection([
            ('new', "New"),
            ('sold', "Sold"),
            ('active', "Active"),
            ('expired', "Expired"),
            ('disabled', "Disabled"),
            ('voided', "Voided"),
            ], "State", readonly=True, required=True, sort=False)
    sold_date = fields.DateTime("Sold", readonly=True)
    first_login = fields.DateTime("First Login", readonly=True)
    expiry = fields.DateTime(
        "Expiry", readonly=True,
        help="The first login plus the profile's validity.")
    uptime_used = fields.Integer(
        "Uptime Used", readonly=True, help="In seconds.")
    bytes_used = BigInteger(
        "Bytes Used", readonly=True, help="Uploaded and downloaded.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('code_uniq', Unique(t, t.code),
                'isp_voucher.msg_voucher_code_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.batch, Index.Range()),
                    (t.state, Index.Equality())),
                Index(t, (t.company, Index.Range()),
                    (t.state, Index.Equality())),
                Index(t, (t.expiry, Index.Range()),
                    where=t.state == 'active'),
                })
        cls._order = [('batch', 'DESC'), ('id', 'ASC')]
        cls._transitions |= {
            ('new', 'sold'),
            ('new', 'active'),
            ('sold', 'active'),
            ('active', 'expired'),
            ('new', 'disabled'),
            ('sold', 'disabled'),
            ('active', 'disabled'),
            ('disabled', 'new'),
            ('disabled', 'sold'),
            ('disabled', 'active'),
            ('new', 'voided'),
            ('sold', 'voided'),
            ('active', 'voided'),
            ('disabled', 'voided'),
            }
        cls._buttons.update({
                'sell': {
                    'invisible': Eval('state') != 'new',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                'disable': {
                    'invisible': ~Eval('state').in_(
                        ['new', 'sold', 'active']),
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'enable': {
                    'invisible': Eval('state') != 'disabled',
                    'icon': 'tryton-forward',
                    'depends': ['state'],
                    },
                'void': {
                    'invisible': Eval('state').in_(['expired', 'voided']),
                    'icon': 'tryton-delete',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'new'

    @classmethod
    def count_per_batch(cls, batches):
        "{batch id: number of vouchers}, one query per 1000 batches"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        counts = {b.id: 0 for b in batches}
        for sub_ids in grouped_slice(list(counts), 1000):
            cursor.execute(*table.select(table.batch, Count(table.id),
                    where=SQL_OPERATORS['in'](table.batch, sub_ids),
                    group_by=[table.batch]))
            counts.update(cursor)
        return counts

    # -- generation --

    @classmethod
    def lock_codes(cls):
        """Serialize the generation of codes (PostgreSQL advisory lock until
        the end of the transaction): a batch checks its codes against the
        ones stored, and no other generation inserts in between"""
        transaction = Transaction()
        database = transaction.database
        cursor = transaction.connection.cursor()
        cursor.execute(*Select([database.lock_id(CODE_LOCK_ID, timeout=60)]))

    @classmethod
    def existing_codes(cls, codes):
        """The ones of `codes` already stored (any branch), as a voucher's
        code or as a service's PPPoE user name: RADIUS finds both by the
        user name alone"""
        pool = Pool()
        Service = pool.get('isp.service')
        cursor = Transaction().connection.cursor()
        found = set()
        for table, column in [
                (cls.__table__(), 'code'),
                (Service.__table__(), 'username')]:
            column = getattr(table, column)
            for sub_codes in grouped_slice(list(codes), CHUNK_SIZE):
                cursor.execute(*table.select(column,
                        where=SQL_OPERATORS['in'](column, list(sub_codes))))
                found.update(code for code, in cursor)
        return found

    @classmethod
    def draw_codes(cls, prefix, length, count):
        """`count` distinct new codes `prefix` + `length` random characters;
        a code drawn twice or already stored is drawn again"""
        codes = set()
        for _ in range(MAX_ROUNDS):
            draws = 0
            while len(codes) < count:
                draws += 1
                if draws > MAX_DRAWS_FACTOR * count:
                    break
                codes.add(prefix + random_code(length))
            codes -= cls.existing_codes(codes)
            if len(codes) == count:
                return codes
        raise CodeSpaceError(gettext(
                'isp_voucher.msg_batch_code_exhausted',
                prefix=prefix, length=length))

    @classmethod
    def generate(cls, batch):
        """Create the vouchers of `batch`: its codes drawn in chunks, each
        chunk checked against the stored codes with one query and created
        with one multi-row INSERT.  The unique constraint on the code is the
        last guard: a code stored twice is never committed."""
        profile = batch.profile
        remaining = batch.quantity - cls.count_per_batch([batch])[batch.id]
        prefix = batch.prefix or ''
        while remaining > 0:
            size = min(CHUNK_SIZE, remaining)
            codes = sorted(cls.draw_codes(prefix, batch.code_length, size))
            vlist = []
            for code in codes:
                if batch.password_mode == 'separate':
                    password = random_code(batch.password_length)
                else:
                    password = code
                vlist.append({
                        'company': batch.company.id,
                        'batch': batch.id,
                        'profile': profile.id,
                        'code': code,
                        'password': password,
                        'state': 'new',
                        })
            cls.create(vlist)
            remaining -= size

    # -- workflow --

    @classmethod
    @ModelView.button
    @Workflow.transition('sold')
    def sell(cls, vouchers):
        cls.write(vouchers, {'sold_date': dt.datetime.now()})

    @classmethod
    @Workflow.transition('active')
    def activate(cls, vouchers, first_login=None):
        """The vouchers were seen logged in for the first time (by the
        router sync or RADIUS accounting) at `first_login`: their validity
        starts"""
        first_login = (first_login or dt.datetime.now()).replace(
            microsecond=0)
        by_delta = {}
        for voucher in vouchers:
            if voucher.first_login:
                continue
            expiry = first_login + voucher.profile.validity_delta
            by_delta.setdefault(expiry, []).append(voucher)
        for expiry, group in by_delta.items():
            cls.write(group, {'first_login': first_login, 'expiry': expiry})

    @classmethod
    @Workflow.transition('expired')
    def expire(cls, vouchers):
        "The vouchers' validity, uptime or data are used up"

    @classmethod
    @ModelView.button
    @Workflow.transition('disabled')
    def disable(cls, vouchers):
        "Stop the vouchers for now (enable gives them back)"

    @classmethod
    @ModelView.button
    def enable(cls, vouchers):
        "Give disabled vouchers back the state their dates say"
        targets = {'new': [], 'sold': [], 'active': []}
        for voucher in vouchers:
            if voucher.state != 'disabled':
                continue
            if voucher.first_login:
                targets['active'].append(voucher)
            elif voucher.sold_date:
                targets['sold'].append(voucher)
            else:
                targets['new'].append(voucher)
        for state, group in targets.items():
            if group:
                cls.write(group, {'state': state})
                cls.log(group, 'transition', 'state:%s' % state)

    @classmethod
    @ModelView.button
    @Workflow.transition('voided')
    def void(cls, vouchers):
        "Cancel the vouchers for good"

    @classmethod
    def used_up(cls, vouchers, now):
        "The active ones of `vouchers` whose validity, uptime or data is over"
        result = []
        for voucher in vouchers:
            if voucher.state != 'active':
                continue
            profile = voucher.profile
            if voucher.expiry and voucher.expiry <= now:
                result.append(voucher)
            elif (profile.uptime_limit and voucher.uptime_used is not None
                    and voucher.uptime_used
                    >= profile.uptime_limit.total_seconds()):
                result.append(voucher)
            elif (profile.data_quota and voucher.bytes_used is not None
                    and voucher.bytes_used
                    >= profile.data_quota * 1000 ** 2):
                result.append(voucher)
        return result

    @classmethod
    def expire_due(cls):
        "Cron: expire the active vouchers of the context company used up"
        now = dt.datetime.now()
        domain = [
            ('state', '=', 'active'),
            ['OR',
                ('expiry', '<=', now),
                ('uptime_used', '!=', None),
                ('bytes_used', '!=', None),
                ],
            ]
        company = Transaction().context.get('company')
        if company:
            domain.append(('company', '=', company))
        vouchers = cls.used_up(cls.search(domain), now)
        if vouchers:
            cls.expire(vouchers)
        return vouchers

    @classmethod
    def check_modification(cls, mode, vouchers, values=None, external=False):
        super().check_modification(
            mode, vouchers, values=values, external=external)
        if mode == 'delete':
            for voucher in vouchers:
                if voucher.sold_date or voucher.first_login:
                    raise VoucherDeleteError(gettext(
                            'isp_voucher.msg_voucher_delete_used',
                            voucher=voucher.rec_name))


class Service(metaclass=PoolMeta):
    __name__ = 'isp.service'

    @classmethod
    def validate_fields(cls, services, field_names):
        """A user name may not be a voucher's code (of any branch): RADIUS
        would find both by the user name alone"""
        pool = Pool()
        Voucher = pool.get('isp.voucher')
        super().validate_fields(services, field_names)
        if field_names and 'username' not in field_names:
            return
        usernames = {s.username for s in services if s.username}
        if not usernames:
            return
        table = Voucher.__table__()
        cursor = Transaction().connection.cursor()
        for sub_names in grouped_slice(list(usernames), CHUNK_SIZE):
            cursor.execute(*table.select(table.code,
                    where=SQL_OPERATORS['in'](table.code, list(sub_names)),
                    limit=1))
            row = cursor.fetchone()
            if row:
                raise ServiceValidationError(gettext(
                        'isp_voucher.msg_username_voucher_code',
                        username=row[0]))
