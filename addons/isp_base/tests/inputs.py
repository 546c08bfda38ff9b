# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Checks shared by the ISP modules' tests: every random default drawn per
record, every field of the ISP modules guarded against bad input."""

from trytond.modules.isp_base.common import (
    InputGuardMixin,
    SecretDefaultsMixin,
    _input_kind,
)
from trytond.modules.isp_base.exceptions import InputValidationError


def _owner(Model, name):
    "The module of the first class of Model's MRO defining `name`"
    for klass in Model.__mro__:
        # the pool's own classes (trytond.pool) copy the fields
        if klass.__module__ != 'trytond.pool' and name in vars(klass):
            return klass.__module__
    return ''


def _isp(Model, name):
    return _owner(Model, name).startswith('trytond.modules.isp_')


def random_default_fields(pool):
    """Yield (model, field name) of every field whose default, defined by
    an ISP module, is a different text at each call (a random secret)"""
    for _, Model in pool.iterobject():
        for field_name, default in Model._defaults.items():
            if not _isp(Model, 'default_%s' % field_name):
                continue
            try:
                values = {default() for _ in range(3)}
            except Exception:
                # defaults needing a context or records: not random ones
                continue
            if len(values) > 1 and all(isinstance(v, str) for v in values):
                yield Model, field_name


def assert_secret_defaults(test, pool):
    "Each random default is handed out per record (SecretDefaultsMixin)"
    found = list(random_default_fields(pool))
    test.assertTrue(found)
    for Model, field_name in found:
        with test.subTest(model=Model.__name__, field=field_name):
            test.assertTrue(issubclass(Model, SecretDefaultsMixin))
            test.assertIn(field_name, Model._secret_defaults())
    return found


#: kind: values each field of the kind must refuse
BAD_INPUT = {
    'integer': ['abc', '10M', float('inf'), float('nan'), 2 ** 40, True,
        [1]],
    'float': ['abc', float('inf'), float('-inf'), float('nan'), 'nan',
        1e300, [1]],
    'numeric': ['abc', 'Infinity', 'NaN', 10 ** 40, [1]],
    'char': ['x' * 100_000, 'a\x00b', ['x'], {'a': 1}],
    'text': ['a\x00b', ['x']],
    }


def guarded_fields(pool):
    """Yield (model, field name, kind) of every field an ISP module defines
    that users may write and that holds a number or a text"""
    for _, Model in pool.iterobject():
        if not hasattr(Model, 'preprocess_values'):
            continue
        for name, field in Model._fields.items():
            kind = _input_kind(field)
            if (kind is None or field.readonly is True
                    or name in {'id', 'rec_name'} or not _isp(Model, name)):
                continue
            yield Model, name, kind


def assert_input_guard(test, pool):
    """Each guarded field refuses every bad value of its kind with an
    InputValidationError naming the field"""
    found = list(guarded_fields(pool))
    test.assertTrue(found)
    for Model, name, kind in found:
        label = Model.__names__(name)['field']
        test.assertTrue(issubclass(Model, InputGuardMixin), Model.__name__)
        for value in BAD_INPUT[kind]:
            with test.subTest(model=Model.__name__, field=name,
                    value=str(value)[:20]):
                with test.assertRaises(InputValidationError) as cm:
                    Model.preprocess_values('write', {name: value})
                test.assertIn(label, cm.exception.message)
                test.assertLess(len(cm.exception.message), 400)
    return found
