# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Translations and formatting of the public pages.

Each module keeps its catalogs beside its pages:
``<module>/web/locale/<lang>/LC_MESSAGES/messages.po``.  They are read from
the ``.po`` files at run time (compiled in memory once per process and
language, no build step: an editable install and a wheel work the same), and
the catalogs of every activated module are merged into one translation per
language.  The message ids are the English texts: English needs no catalog.
"""
import functools
import io
import pathlib
import sys

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency as _format_currency
from babel.numbers import format_decimal as _format_decimal
from babel.support import NullTranslations, Translations

#: The languages of the public pages (codes of ir.lang).
LANGUAGES = ('id', 'en')
DEFAULT_LANGUAGE = 'en'
#: The name of each language in itself, for the language switch.
LANGUAGE_NAMES = {'id': 'Bahasa Indonesia', 'en': 'English'}


def N_(message):
    "Mark `message` for extraction; translated where it is shown"
    return message


def module_dir(module):
    "The directory of an activated module's package, or None"
    package = sys.modules.get('trytond.modules.%s' % module)
    if package is None or not getattr(package, '__file__', None):
        return None
    return pathlib.Path(package.__file__).parent


def web_dir(module, name):
    "`<module>/web/<name>` when it exists, else None"
    base = module_dir(module)
    if base is None:
        return None
    path = base / 'web' / name
    return path if path.is_dir() else None


@functools.lru_cache(maxsize=64)
def _catalog(path, mtime):
    with open(path, 'rb') as fp:
        catalog = read_po(fp)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@functools.lru_cache(maxsize=32)
def translations(modules, language):
    """The merged translations of `modules` (their web catalogs) in
    `language`"""
    result = None
    if language != DEFAULT_LANGUAGE:
        for module in modules:
            directory = web_dir(module, 'locale')
            if directory is None:
                continue
            path = directory / language / 'LC_MESSAGES' / 'messages.po'
            if not path.is_file():
                continue
            catalog = _catalog(str(path), path.stat().st_mtime)
            if result is None:
                result = Translations()
                result.plural = catalog.plural
            result.merge(catalog)
    return result or NullTranslations()


def pick_language(*candidates):
    "The first of `candidates` (language codes or None) that is served"
    for code in candidates:
        if not code:
            continue
        code = code.split('_')[0].split('-')[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=8)
def locale(language):
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


class Formatter:
    "Translation and formatting in one language"

    def __init__(self, modules, language):
        self.language = language
        self.locale = locale(language)
        self._translations = translations(modules, language)

    def gettext(self, message, **values):
        "The translation of `message` with %(name)s placeholders filled"
        text = self._translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular, plural, n, **values):
        text = self._translations.ngettext(singular, plural, n)
        return text % dict(values, num=n)

    def number(self, value, digits=None):
        if value is None:
            return ''
        fmt = None
        if digits is not None:
            fmt = '#,##0' + ('.' + '0' * digits if digits else '')
        return _format_decimal(value, format=fmt, locale=self.locale)

    def currency(self, amount, currency):
        "`amount` in `currency` (a code or a currency.currency)"
        if amount is None:
            return ''
        code = getattr(currency, 'code', currency)
        return _format_currency(amount, code, locale=self.locale)

    def date(self, value, format='medium'):
        if value is None:
            return ''
        return _format_date(value, format=format, locale=self.locale)

    def datetime(self, value, format='medium'):
        if value is None:
            return ''
        return _format_datetime(value, format=format, locale=self.locale)
