# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Write or check the ISP modules' translation catalogs (locale/<lang>.po).

    python -m tools.po_update [--lang id] [--check] [MODULE ...]

Without `--check`, `addons/<module>/locale/<lang>.po` of each MODULE (all the
ISP modules when none is given) gets every translatable string of the module,
exactly the entries Tryton's own "Export Translations" produces for it: model
and field names, help texts, selections, view strings and buttons, menus and
actions, the messages of message.xml and the other translatable records
(notification templates ...), report strings.  The translations already in the
file are kept, a new string gets an empty msgstr, a string the module no
longer has is dropped.

With `--check` nothing is written: each module's strings with no translation
(an empty or fuzzy msgstr, or a msgstr equal to its English msgid that is not
in SAME_AS_ENGLISH) and the differences between the file and the module are
listed, and the exit status is 1 when there is any.

The strings come from Tryton itself, on a SQLite database with the ISP
modules activated (cached by the content of addons/, as scripts/test caches
the tests' databases): the "Set Translations" wizard collects the strings of
the modules' views and reports, then `ir.translation.translation_export`
exports the module's source-language rows, whose context (type, name, record)
and msgid are those of any other language's export.
"""
import hashlib
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADDONS = ROOT / 'addons'

#: English strings that are Indonesian as they are (product and protocol
#: names, words Indonesian ISP staff use untranslated): a msgstr equal to its
#: msgid is an accident unless its msgid is here.  Keep it short: a word
#: Indonesian has its own word for is translated (docs/glossary-id.md).
SAME_AS_ENGLISH = frozenset({
        "PPPoE", "RADIUS", "MikroTik", "RouterOS", "QRIS", "Hotspot",
        "Router", "Routers", "Voucher", "Status", "Internet", "WhatsApp",
        "E-mail", "SLA", "IP", "NAS", "VLAN", "Port", "OLT", "ONT", "ODP",
        "Modem", "Midtrans", "Xendit", "M-Pesa", "Online", "Offline",
        "Total", "Model", "Server", "Secret", "Upload", "Download",
        "Bandwidth", "Portal", "Reseller", "Resellers", "Token", "URL",
        "API", "SMS", "PIN", "MAC", "Normal", "Manual", "Detail", "Data",
        "Rate Limit", "ISP", "Burst", "Helpdesk", "CoA", "Host", "API-SSL",
        "Pool", "Uptime", "Duitku", "Midtrans (Snap)",
        "Batch", "Mode", "OK", "Format", "PDF", "CSV", "Excel (XLSX)",
        "MRR", "ARPU", "Webhook", "Passkey",
        "VPN", "TCP", "UDP", "SHA1", "SHA256", "SHA512", "AES-128-CBC",
        "AES-192-CBC", "AES-256-CBC", "AES-128-GCM", "AES-192-GCM",
        "AES-256-GCM",
        })

#: %(name)s, %s, %d and {name} in a string: its translation keeps them
PLACEHOLDER = re.compile(r'%\(\w+\)[sdrf]|%[sdrf]|\{\w*\}')


def product_modules():
    "The ISP modules: addons/<name> with a tryton.cfg"
    return sorted(p.parent.name for p in ADDONS.glob('*/tryton.cfg'))


def po_path(module, lang='id'):
    return ADDONS / module / 'locale' / ('%s.po' % lang)


def addons_hash():
    "The hash scripts/test names the tests' cached databases with"
    digest = hashlib.sha1()
    paths = sorted(p for p in ADDONS.rglob('*')
        if p.is_file() and p.suffix in {'.py', '.xml', '.cfg'}
        and 'tests' not in p.relative_to(ADDONS).parts)
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def source_entries(modules):
    """{module: [polib.POEntry]}: Tryton's export of each module's strings,
    with an empty msgstr, sorted as Tryton sorts a catalog.  In a
    transaction of a database where the modules are activated (the strings
    of the views and reports are set in it: roll it back)."""
    import polib
    from trytond.ir.translation import INTERNAL_LANG
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Translation = pool.get('ir.translation')
    View = pool.get('ir.ui.view')
    Report = pool.get('ir.action.report')
    TranslationSet = pool.get('ir.translation.set', type='wizard')

    with Transaction().set_context(active_test=False):
        views = View.search([('module', 'in', modules)])
        reports = Report.search([
                ('module', 'in', modules),
                ('translatable', '=', True),
                ])
    session_id, _, _ = TranslationSet.create()
    for model, records, method in [
            (View, views, 'set_view'),
            (Report, reports, 'set_report')]:
        if not records:
            continue
        with Transaction().set_context(active_model=model.__name__,
                active_ids=[r.id for r in records],
                active_id=records[0].id):
            getattr(TranslationSet(session_id), method)()
    TranslationSet.delete(session_id)

    result = {}
    for module in modules:
        content = Translation.translation_export(INTERNAL_LANG, module)
        entries = []
        if content:
            for entry in polib.pofile(content.decode('utf-8')):
                entry.msgstr = ''
                if entry.msgid_plural:
                    entry.msgstr_plural = {0: ''}
                entry.flags = [f for f in entry.flags if f != 'fuzzy']
                entries.append(entry)
        result[module] = entries
    return result


def _key(entry):
    return (entry.msgctxt, entry.msgid, entry.msgid_plural or None)


def merge(entries, path):
    """The catalog text of `entries` with the translations of the file at
    `path` (if any): kept for the same context and msgid, empty for a new
    string; the file's other entries are dropped"""
    import polib
    from trytond.ir.translation import TrytonPOFile
    old = {}
    if path.exists():
        old = {_key(e): e for e in polib.pofile(str(path))
            if not e.obsolete}
    pofile = TrytonPOFile(wrapwidth=78)
    pofile.metadata = {'Content-Type': 'text/plain; charset=utf-8'}
    for entry in entries:
        entry = polib.POEntry(msgctxt=entry.msgctxt, msgid=entry.msgid,
            msgid_plural=entry.msgid_plural, msgstr='',
            flags=list(entry.flags))
        previous = old.get(_key(entry))
        if previous:
            entry.msgstr = previous.msgstr
            if entry.msgid_plural:
                entry.msgstr_plural = dict(previous.msgstr_plural)
            if 'fuzzy' in previous.flags:
                entry.flags.append('fuzzy')
        elif entry.msgid_plural:
            entry.msgstr_plural = {0: ''}
        pofile.append(entry)
    pofile.sort()
    text = str(pofile)
    return text if text.endswith('\n') else text + '\n'


def placeholders(text):
    "The sorted Python and format placeholders of `text`"
    return sorted(PLACEHOLDER.findall(text))


def untranslated(entry):
    """Whether the catalog `entry` has no real translation: empty, fuzzy,
    a placeholder of its msgid lost or renamed, or the English left as it is
    (not in SAME_AS_ENGLISH)"""
    if 'fuzzy' in entry.flags:
        return True
    values = ([entry.msgstr] if not entry.msgid_plural
        else list(entry.msgstr_plural.values()))
    if not all(v.strip() for v in values):
        return True
    if any(placeholders(v) != placeholders(entry.msgid) for v in values):
        return True
    return (entry.msgstr == entry.msgid
        and entry.msgid not in SAME_AS_ENGLISH
        and any(c.isalpha() for c in PLACEHOLDER.sub('', entry.msgid)))


def problems(module, entries, lang='id'):
    """[str]: what is wrong with `module`'s catalog against its `entries`
    (missing, obsolete, untranslated, English left as it is)"""
    import polib
    path = po_path(module, lang)
    if not path.exists():
        return ['%s: no %s' % (module, path.relative_to(ROOT))] if entries \
            else []
    found = [e for e in polib.pofile(str(path)) if not e.obsolete]
    keys = {_key(e) for e in found}
    wanted = {_key(e) for e in entries}
    result = []
    for entry in entries:
        if _key(entry) not in keys:
            result.append('%s: missing %s %r' % (
                    module, entry.msgctxt, entry.msgid))
    for entry in found:
        if _key(entry) not in wanted:
            result.append('%s: obsolete %s %r' % (
                    module, entry.msgctxt, entry.msgid))
        elif untranslated(entry):
            result.append('%s: untranslated %s %r' % (
                    module, entry.msgctxt, entry.msgid))
    return result


def _database():
    """Point Tryton's test tools at a cached SQLite database of all the ISP
    modules (before trytond is imported) and activate them"""
    os.environ.setdefault('TRYTOND_DATABASE_URI', 'sqlite://')
    os.environ.setdefault('DB_NAME', ':memory:')
    if 'DB_CACHE' not in os.environ:
        home = os.environ.get('ISP_CACHE_HOME') or os.path.join(
            os.environ.get('XDG_CACHE_HOME')
            or os.path.expanduser('~/.cache'), 'isp-suite')
        os.environ['DB_CACHE'] = os.path.join(
            home, 'dbcache', 'po-%s' % addons_hash())
    os.makedirs(os.environ['DB_CACHE'], exist_ok=True)
    from trytond.tests.test_tryton import DB_NAME, activate_module

    from tools.test_db_cache import closure, dependencies
    depends = dependencies()
    below = set().union(*(closure(m, depends) for m in depends))
    # the modules no other depends on (isp_multicompany): the same cached
    # activation as their tests'
    activate_module(sorted(set(depends) - below))
    return DB_NAME


def main(argv):
    check = '--check' in argv
    argv = [a for a in argv if a != '--check']
    lang = 'id'
    if '--lang' in argv:
        index = argv.index('--lang')
        lang = argv[index + 1]
        del argv[index:index + 2]
    modules = argv or product_modules()
    unknown = set(modules) - set(product_modules())
    if unknown:
        raise SystemExit('not an ISP module: %s' % ', '.join(sorted(unknown)))
    db_name = _database()
    from trytond.transaction import Transaction
    with Transaction().start(db_name, 0, readonly=False) as transaction:
        entries = source_entries(product_modules())
        transaction.rollback()
    status = 0
    for module in modules:
        if check:
            found = problems(module, entries[module], lang)
            for line in found:
                print(line)
            print('%s: %d strings, %d to do' % (
                    module, len(entries[module]), len(found)))
            status = status or bool(found)
            continue
        path = po_path(module, lang)
        if not entries[module] and not path.exists():
            print('%s: no strings' % module)
            continue
        path.parent.mkdir(exist_ok=True)
        text = merge(entries[module], path)
        path.write_text(text, encoding='utf-8')
        print('%s: %s (%d strings)' % (
                module, path.relative_to(ROOT), len(entries[module])))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
