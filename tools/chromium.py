# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Headless Chromium for the tests and benchmarks (Debian's, through
Playwright): its path, its options, and a route handler that keeps a page
on the machine."""
import urllib.parse

#: Debian's chromium for the Playwright tests, and its options
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--no-first-run',
    '--disable-component-update', '--disable-sync']


def loopback_only(route):
    """A Playwright route handler (``context.route('**/*', loopback_only)``):
    requests to 127.0.0.1 and localhost (and its sub-domains) go, any other
    host (a map's tile server, a CDN) is aborted: nothing leaves the
    machine"""
    host = urllib.parse.urlsplit(route.request.url).hostname or ''
    if host in {'127.0.0.1', 'localhost'} or host.endswith('.localhost'):
        route.continue_()
    else:
        route.abort()
