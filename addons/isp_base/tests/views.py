# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""A check of the module's list views that Tryton's own tests do not make:
the web client (sao 8.0) has no list column for date-time fields, so a
`datetime` or `timestamp` field in a list needs `widget="date"` or
`widget="time"` (as Tryton's own views do), or the list does not open."""
from lxml import etree
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

DATETIME_TYPES = {'datetime', 'timestamp'}
TREE_WIDGETS = {'date', 'time'}


class ListViewTestMixin:

    @with_transaction()
    def test_list_view_datetime_widgets(self):
        "Date-time fields in list views have a date or time widget"
        pool = Pool()
        View = pool.get('ir.ui.view')
        problems = []
        for view in View.search([('module', '=', self.module)]):
            Model = pool.get(view.model) if view.model else None
            if Model is None:
                continue
            tree = etree.fromstring(
                Model.fields_view_get(view_id=view.id)['arch'])
            if tree.tag != 'tree':
                continue
            for node in tree.iter('field'):
                name = node.get('name')
                field = Model._fields.get(name)
                if (field is not None and field._type in DATETIME_TYPES
                        and node.get('widget') not in TREE_WIDGETS):
                    problems.append('%s: %s (%s)' % (
                            view.name or view.id, name, view.model))
        self.assertEqual(problems, [])
