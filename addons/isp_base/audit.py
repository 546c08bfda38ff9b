# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Audit trail of sensitive actions (docs/operations.md).

Tryton's model log (ir.model.log) says that a user changed some fields of a
record, not what they were; the audit trail keeps, for the models and
fields listed here, who, when, and each field's old -> new value.
Credentials are recorded as "changed", never their value.

A model mixes in `AuditMixin` (through a PoolMeta extension) and lists
`_audit_fields` (old -> new) and `_audit_secret_fields` ("changed");
`_audit_create` / `_audit_delete` record creations and deletions too.
Server code records an action that is not a write (a payment recorded)
with `AuditLog.record(...)`.

Entries are written as root whatever the user (nobody may create, change
or delete them through the client) and are read by administrators only:
a branch administrator those of their branches, the head office's
administrators every branch's and the central records' (no branch).
"""
import datetime as dt

from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

#: Longest text kept for one value in an entry.
VALUE_LIMIT = 200


class AuditLog(ModelSQL, ModelView):
    "ISP Audit Log"
    __name__ = 'isp.audit.log'

    date = fields.DateTime("Date", required=True, readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True,
        ondelete='SET NULL')
    company = fields.Many2One('company.company', "Branch", readonly=True,
        ondelete='SET NULL', help="Empty for central records.")
    model = fields.Char("Model", required=True, readonly=True)
    record_id = fields.Integer("Record ID", readonly=True)
    record_name = fields.Char("Record", readonly=True)
    action = fields.Char("Action", required=True, readonly=True)
    changes = fields.Text("Changes", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def record(cls, entries):
        """Store entries: dicts of model, record_id, record_name, action,
        changes (a list of lines) and company (an id or None); the user is
        the transaction's"""
        if not entries:
            return []
        transaction = Transaction()
        user = transaction.user or None
        now = dt.datetime.now()
        to_create = [{
                'date': now,
                'user': user,
                'company': e.get('company'),
                'model': e['model'],
                'record_id': e.get('record_id'),
                'record_name': (e.get('record_name') or '')[:VALUE_LIMIT],
                'action': e['action'],
                'changes': '\n'.join(e.get('changes') or []),
                } for e in entries]
        with without_check_access(), transaction.set_user(0):
            return cls.create(to_create)


def _text(value):
    if value is None or value == '':
        return '-'
    text = str(value)
    if len(text) > VALUE_LIMIT:
        text = text[:VALUE_LIMIT] + '...'
    return text


class AuditMixin:
    """Record the changes of the listed fields in isp.audit.log"""
    __slots__ = ()
    #: fields recorded old -> new
    _audit_fields = ()
    #: fields recorded as "changed" (credentials; CREDENTIAL_FIELDS too)
    _audit_secret_fields = ()
    _audit_create = False
    _audit_delete = False
    #: the field naming the record's branch (None: central record)
    _audit_company_field = 'company'

    @classmethod
    def _audit_secrets(cls):
        """The credential fields: `_audit_secret_fields` and the model's
        CREDENTIAL_FIELDS (message providers, payment gateways)"""
        return set(cls._audit_secret_fields) | set(
            getattr(cls, 'CREDENTIAL_FIELDS', ()))

    @classmethod
    def _audit_names(cls):
        "The audited fields this model has"
        return {n for n in (set(cls._audit_fields) | cls._audit_secrets())
            if n in cls._fields}

    @classmethod
    def _audit_stored(cls, names):
        "The fields of `names` that can be read back (not computed)"
        return {n for n in names
            if not isinstance(cls._fields[n], fields.Function)
            or isinstance(cls._fields[n], fields.MultiValue)}

    @classmethod
    def _audit_read(cls, ids, names):
        """{id: {field: printable value}} of the records, read in a few
        queries as root"""
        names = sorted(names)
        to_read = list(names)
        company = cls._audit_company_field
        if company in cls._fields:
            to_read.append(company)
        for name in names:
            if cls._fields[name]._type in {'many2one', 'reference'}:
                to_read.append(name + '.rec_name')
        with without_check_access(), Transaction().set_user(0), \
                Transaction().set_context(_check_access=False):
            rows = cls.read(list(ids), to_read + ['rec_name'])
        targets = {}
        for name in names:
            field = cls._fields[name]
            if field._type in {'many2many', 'one2many'}:
                ids_ = {i for row in rows for i in (row[name] or [])}
                Target = field.get_target()
                with without_check_access():
                    targets[name] = {r['id']: r['rec_name'] for r in
                        Target.read(list(ids_), ['rec_name'])}
        values = {}
        for row in rows:
            printable = {'rec_name': row['rec_name'],
                '_company': row.get(company)}
            for name in names:
                field = cls._fields[name]
                value = row[name]
                if field._type in {'many2one', 'reference'}:
                    related = row.get(name + '.') or {}
                    value = related.get('rec_name') if value else None
                elif field._type == 'selection' and isinstance(
                        field.selection, (list, tuple)):
                    value = dict(field.selection).get(value, value)
                elif field._type in {'many2many', 'one2many'}:
                    value = ', '.join(sorted(
                            targets[name].get(i, str(i))
                            for i in (value or []))) or None
                printable[name] = value
            values[row['id']] = printable
        return values

    @classmethod
    def _audit_changes(cls, old, new, names):
        "The lines of an entry: old -> new, credentials 'changed'"
        lines = []
        secrets = cls._audit_secrets()
        for name in sorted(names):
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            label = cls._fields[name].string
            if name in secrets:
                lines.append('%s: changed' % label)
            else:
                lines.append('%s: %s -> %s' % (
                        label, _text(before), _text(after)))
        return lines

    @classmethod
    def write(cls, *args):
        watched = cls._audit_names()
        actions = iter(args)
        todo = []
        for records, values in zip(actions, actions, strict=False):
            names = watched & set(values)
            if names and records:
                # a computed credential (a user's password) given a value
                given = {n for n in names - cls._audit_stored(names)
                    if values[n]}
                todo.append((records, cls._audit_stored(names), given))
        before = [cls._audit_read([r.id for r in records], names)
            for records, names, _ in todo]
        super().write(*args)
        if not todo:
            return
        pool = Pool()
        AuditLog = pool.get('isp.audit.log')
        entries = []
        for (records, names, given), old in zip(todo, before, strict=True):
            new = cls._audit_read([r.id for r in records], names)
            for record in records:
                lines = cls._audit_changes(old[record.id], new[record.id],
                    names) + ['%s: changed' % cls._fields[n].string
                    for n in sorted(given)]
                if lines:
                    entries.append(cls._audit_entry(
                            record.id, 'write', lines, new[record.id]))
        AuditLog.record(entries)

    @classmethod
    def _audit_entry(cls, record_id, action, lines, values):
        "An entry of record_id; `values` as _audit_read gives them"
        return {
            'model': cls.__name__,
            'record_id': record_id,
            'record_name': values['rec_name'],
            'company': values['_company'],
            'action': action,
            'changes': lines,
            }

    @classmethod
    def create(cls, vlist):
        records = super().create(vlist)
        if cls._audit_create:
            names = cls._audit_stored(cls._audit_names())
            new = cls._audit_read([r.id for r in records], names)
            AuditLog = Pool().get('isp.audit.log')
            AuditLog.record([cls._audit_entry(r.id, 'create',
                        cls._audit_changes({}, new[r.id], names), new[r.id])
                    for r in records])
        return records

    @classmethod
    def delete(cls, records):
        entries = []
        if cls._audit_delete and records:
            old = cls._audit_read([r.id for r in records], set())
            entries = [cls._audit_entry(r.id, 'delete', [], old[r.id])
                for r in records]
        super().delete(records)
        if entries:
            Pool().get('isp.audit.log').record(entries)

    @classmethod
    def audit_action(cls, records, action, lines=()):
        "Record `action` (a button, a payment...) on records"
        old = cls._audit_read([r.id for r in records], set())
        Pool().get('isp.audit.log').record(
            [cls._audit_entry(r.id, action, list(lines), old[r.id])
                for r in records])


class User(AuditMixin, metaclass=PoolMeta):
    __name__ = 'res.user'
    _audit_fields = ('login', 'name', 'active', 'groups', 'companies',
        'company', 'company_filter')
    _audit_secret_fields = ('password',)
    _audit_create = True
    _audit_delete = True


class Template(AuditMixin, metaclass=PoolMeta):
    "Plans: their price and rates"
    __name__ = 'product.template'
    _audit_fields = ('name', 'list_price', 'isp_plan', 'download_rate',
        'upload_rate', 'setup_fee', 'quota', 'active')
    _audit_company_field = 'isp_company'


class MessageProvider(AuditMixin, metaclass=PoolMeta):
    "Messaging gateways: settings, credentials as 'changed'"
    __name__ = 'isp.message.provider'
    _audit_fields = ('name', 'type', 'company', 'base_url', 'account',
        'sender', 'active', 'capacity', 'priority')
    _audit_create = True
    _audit_delete = True
