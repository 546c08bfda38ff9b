# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Jinja2 templates of the public pages.

Each activated module's ``web/templates`` directory is a namespace named
after the module: ``isp_base/base.html``, ``isp_billing/invoices.html``.
Autoescape is on for every template."""
import functools

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)

from .i18n import web_dir


@functools.lru_cache(maxsize=16)
def environment(modules):
    """The environment of the activated `modules` (a tuple, in load
    order)"""
    loaders = {}
    for module in modules:
        directory = web_dir(module, 'templates')
        if directory is not None:
            loaders[module] = FileSystemLoader(str(directory))
    env = Environment(
        loader=ChoiceLoader([PrefixLoader(loaders, delimiter='/')]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        )
    return env


def render(modules, template, values):
    "The text of `template` rendered with `values`"
    return environment(tuple(modules)).get_template(template).render(values)
