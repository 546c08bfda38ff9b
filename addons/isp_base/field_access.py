# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""System fields: the read-only fields the ISP modules declare are changed
by workflows, wizards and the system only, never by a user's create or
write.

`readonly=True` is a hint to the clients (they do not send such fields);
Tryton does not refuse them from an RPC call.  The field access of these
fields is therefore `write = False` for every user when the access is
checked (RPC calls, imports, server code under `check_access`).  Buttons,
wizards, crons, workers and routes run without access checks (or as root)
and keep writing them.  A `copy` duplicates the record as the system does
(its method resets or regenerates what must not be copied) and is let
through with `copying_records`."""
import weakref
from contextlib import contextmanager

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

_ISP_MODULES = 'trytond.modules.isp_'
_system_fields = weakref.WeakKeyDictionary()


def system_fields(Model):
    """The names of the stored, statically read-only fields of `Model`
    declared by an ISP module (on its own models and on the models it
    extends)"""
    names = _system_fields.get(Model)
    if names is None:
        declared = set()
        for klass in Model.__mro__:
            if klass.__module__.startswith(_ISP_MODULES):
                declared.update(name for name, value in vars(klass).items()
                    if isinstance(value, fields.Field))
        names = set()
        for name in declared:
            field = Model._fields.get(name)
            if (field is None or field.readonly is not True
                    or (isinstance(field, fields.Function)
                        and not field.setter)):
                continue
            names.add(name)
        names = _system_fields[Model] = frozenset(names)
    return names


@contextmanager
def copying_records():
    "Let the creations of a `copy` give values to the system fields"
    with Transaction().set_context(_isp_copying=True):
        yield


class SystemFieldsCopyMixin:
    "`copy` gives the copies the system fields its method leaves them"
    __slots__ = ()

    @classmethod
    def copy(cls, records, default=None):
        with copying_records():
            return super().copy(records, default=default)


class ModelFieldAccess(metaclass=PoolMeta):
    __name__ = 'ir.model.field.access'

    @classmethod
    def get_access(cls, models):
        accesses = super().get_access(models)
        transaction = Transaction()
        if (transaction.user == 0
                or transaction.context.get('_isp_copying')):
            return accesses
        pool = Pool()
        result = {}
        for model in models:
            maccesses = accesses[model]
            try:
                Model = pool.get(model)
            except KeyError:
                result[model] = maccesses
                continue
            names = system_fields(Model)
            if names:
                # the cached dictionaries are not changed
                maccesses = dict(maccesses)
                for name in names:
                    maccesses[name] = {
                        **maccesses.get(name, {
                                'read': True, 'create': True,
                                'delete': True}),
                        'write': False,
                        }
            result[model] = maccesses
        return result
