# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The Indonesian catalogs (addons/<module>/locale/id.po) are complete.

Run here once for the six ISP modules (this module depends on all of them):
the strings come from Tryton's own export (tools/po_update.py, the same code
that writes the catalogs), so a new field, help text, selection, view
string, button, menu, message or report string without its Indonesian
translation fails `test_catalogs_complete`, as does a msgstr left equal to
its English msgid (SAME_AS_ENGLISH lists the few words that stay as they
are) or one that lost a placeholder of its msgid.  To fix:
`python -m tools.po_update` then translate the empty msgstr (docs/
localisation.md, docs/glossary-id.md)."""
import unittest

import polib
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from tools import po_update

#: The modules whose Indonesian translation is still being written: their
#: catalog must be up to date (every string there, nothing obsolete) but may
#: have empty msgstr.  Empty this list when they are translated.
TRANSLATION_IN_PROGRESS = set()


class TranslationsTestCase(unittest.TestCase):
    "Every string of the product has its Indonesian translation"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('isp_multicompany')

    @with_transaction()
    def test_catalogs_complete(self):
        "Each ISP module's id.po has every string, translated"
        modules = po_update.product_modules()
        entries = po_update.source_entries(modules)
        self.assertGreater(len(entries['isp_base']), 100)
        found = []
        for module in modules:
            for line in po_update.problems(module, entries[module]):
                if (module in TRANSLATION_IN_PROGRESS
                        and ': untranslated ' in line):
                    continue
                if ': obsolete ' in line:
                    # a translation ahead of its code (another change not
                    # in yet) harms nothing; the tool drops it
                    continue
                found.append(line)
        self.assertEqual(found, [],
            'run python -m tools.po_update and translate:\n'
            + '\n'.join(found[:40]))

    @with_transaction()
    def test_catalogs_load(self):
        "Tryton imports each catalog; a translated message reads back"
        pool = Pool()
        Lang = pool.get('ir.lang')
        Translation = pool.get('ir.translation')
        lang, = Lang.search([('code', '=', 'id')])
        lang.translatable = True
        lang.save()
        for module in po_update.product_modules():
            path = po_update.po_path(module)
            if path.exists() and polib.pofile(str(path)):
                Translation.translation_import('id', module, str(path))
        with Transaction().set_context(language='id'):
            self.assertEqual(
                gettext('isp_base.msg_national_id_reason_length'),
                message(po_update.po_path('isp_base'), 'model:ir.message,'
                    'text:msg_national_id_reason_length'))

    def test_untranslated(self):
        "What counts as not translated"
        entry = polib.POEntry(msgctxt='field:x,y:', msgid="Plan")
        self.assertTrue(po_update.untranslated(entry))
        entry.msgstr = "Plan"
        self.assertTrue(po_update.untranslated(entry))
        entry.msgstr = "Paket"
        self.assertFalse(po_update.untranslated(entry))
        entry.flags = ['fuzzy']
        self.assertTrue(po_update.untranslated(entry))
        entry = polib.POEntry(msgctxt='field:x,y:', msgid="PPPoE",
            msgstr="PPPoE")
        self.assertFalse(po_update.untranslated(entry))
        entry = polib.POEntry(msgctxt='model:ir.message,text:m',
            msgid="%(name)s is late", msgstr="%(nama)s terlambat")
        self.assertTrue(po_update.untranslated(entry))
        entry.msgstr = "%(name)s terlambat"
        self.assertFalse(po_update.untranslated(entry))
        # placeholders and punctuation only: the same in every language
        entry = polib.POEntry(msgctxt='model:ir.message,text:m',
            msgid="%(plan)s, %(period)s", msgstr="%(plan)s, %(period)s")
        self.assertFalse(po_update.untranslated(entry))


def message(path, context):
    "The msgstr of `context` in the catalog at `path`"
    entry, = [e for e in polib.pofile(str(path)) if e.msgctxt == context]
    return entry.msgstr
