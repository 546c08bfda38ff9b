# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Branch isolation of what the record rules do not cover.

Record rules apply to the ORM calls of an RPC with access checks (`read`,
`create`, buttons...).  Wizards run without them (their transitions create
and write as the user with no rule), on_change calls read related records
without them, and so does server code working for a user.  Such code checks
what it is given with `check_companies`: the ids a client sent may be any
branch's."""
from collections import defaultdict

from trytond.i18n import gettext
from trytond.model import ModelStorage, ModelView
from trytond.pool import Pool
from trytond.transaction import (
    Transaction,
    check_access,
    inactive_records,
    without_check_access,
)

from .exceptions import BranchAccessError


def check_companies(records):
    """Refuse (BranchAccessError) any of `records` the user may not use:
    a company that is not among the user's companies (the company filter's,
    as the record rules read them), or a record the read rules hide from
    the user (another branch's, or one that does not exist).  Shared records
    (no branch) pass.  The root user (0: crons, workers, server code) may use
    every record.  Empty values (None) are ignored.  The message names
    neither the records nor their branch."""
    transaction = Transaction()
    if transaction.user == 0:
        return
    pool = Pool()
    User = pool.get('res.user')
    Rule = pool.get('ir.rule')
    by_model = defaultdict(set)
    for record in records:
        if record is None or record.id is None or record.id < 0:
            continue
        by_model[record.__name__].add(int(record.id))
    for model, ids in by_model.items():
        Model = pool.get(model)
        if model == 'company.company':
            forbidden = ids - set(User.get_companies())
        else:
            with check_access():
                domain = Rule.domain_get(model, mode='read')
            with without_check_access(), inactive_records():
                found = Model.search(
                    [('id', 'in', list(ids)), domain] if domain
                    else [('id', 'in', list(ids))], order=[])
            forbidden = ids - {r.id for r in found}
        if forbidden:
            raise BranchAccessError(gettext(
                    'isp_base.msg_record_other_branch',
                    model=Model.__names__()['model']))


class BranchValuesMixin:
    """A client's create and write (RPC, with access checks) refuse
    (BranchAccessError, naming no record) the records of other branches
    given to `_branch_fields`: the domain validation would refuse them
    naming them"""
    __slots__ = ()
    _branch_fields = ()

    @classmethod
    def _check_branch_values(cls, vlist):
        transaction = Transaction()
        if not (transaction.user and transaction.check_access):
            return
        check_companies([
                cls._fields[name].get_target()(values[name])
                for values in vlist for name in cls._branch_fields
                if values.get(name) is not None])

    @classmethod
    def create(cls, vlist):
        cls._check_branch_values(vlist)
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        cls._check_branch_values(args[1::2])
        super().write(*args)


def view_records(view):
    """The stored records a view instance (a wizard's state, an on_change's
    record) refers to, through its Many2One, Reference, One2Many and
    Many2Many values, and through its ModelView lines; unread fields are
    not read."""
    records = []
    values = view._values._items() if view._values else []
    for name, value in values:
        field = view._fields.get(name)
        if field is None or not value:
            continue
        if field._type in {'many2one', 'one2one', 'reference'}:
            value = [value]
        elif field._type not in {'one2many', 'many2many'}:
            continue
        for target in value:
            if isinstance(target, ModelStorage):
                records.append(target)
            if isinstance(target, ModelView) and target._values:
                records.extend(view_records(target))
    return records


class BranchOnChangeMixin:
    """on_change and on_change_with calls by a client refuse another
    branch's records in the values sent (and a record id of another
    branch): they read the related records without rules and would
    return their names and values."""
    __slots__ = ()

    def _check_on_change_companies(self):
        if not Transaction().check_access:
            # server code, not a client
            return
        records = view_records(self)
        if self.id is not None and self.id >= 0 and isinstance(
                self, ModelStorage):
            records.append(self.__class__(self.id))
        check_companies(records)

    def on_change(self, fieldnames):
        self._check_on_change_companies()
        return super().on_change(fieldnames)

    def on_change_with(self, fieldnames):
        self._check_on_change_companies()
        return super().on_change_with(fieldnames)

    def on_change_notify(self):
        self._check_on_change_companies()
        return super().on_change_notify()


class BranchWizardMixin:
    """Every step of the wizard checks, before it runs, that the records it
    was started on and every record its forms hold (as sent by the client)
    are the user's branches' (`check_companies`).  The transitions and the
    business methods they call check again what they use."""
    __slots__ = ()

    def _execute(self, state_name):
        if not getattr(self, '_branch_checked', False):
            self._branch_checked = True
            check_companies(self._branch_records())
        return super()._execute(state_name)

    def _branch_records(self):
        records = []
        if self.model and self.model.__name__ != 'ir.ui.menu' and (
                issubclass(self.model, ModelStorage)):
            records.extend(self.records)
            if self.record is not None:
                records.append(self.record)
        for state_name, state in self.states.items():
            if hasattr(state, 'model_name'):
                records.extend(view_records(getattr(self, state_name)))
        return records
