# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Static files of the public pages, served by the product.

``GET /<database>/isp_base/static/<module>/<path>`` serves
``<module>/web/static/<path>`` of an activated module (stylesheets, images,
the few scripts pages need, npm libraries copied there and pinned).  Paths
leaving that directory (``..``, absolute, backslashes, NUL) are 404.  Each
answer has an ETag (If-None-Match gives 304) and Cache-Control: a day, or a
year (immutable) for URLs carrying the file's version (`static_url`)."""
import functools
import hashlib
import mimetypes
import pathlib

from trytond.protocols.wrappers import HTTPStatus, Response, with_pool
from trytond.wsgi import app

from .i18n import module_dir
from .security import secure

MAX_AGE = 24 * 3600
IMMUTABLE = 'public, max-age=31536000, immutable'


@functools.lru_cache(maxsize=256)
def _read(path, mtime):
    data = pathlib.Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:20]


def static_file(module, path):
    "(bytes, etag) of `<module>/web/static/<path>`, or None"
    base = module_dir(module)
    if base is None or not path or len(path) > 255:
        return None
    parts = path.split('/')
    if path.startswith('/') or any(p in {'', '.', '..'} or '\\' in p
            or '\x00' in p or p.startswith('.') for p in parts):
        return None
    root = (base / 'web' / 'static').resolve()
    target = root.joinpath(*parts)
    try:
        target = target.resolve()
        target.relative_to(root)
        if not target.is_file():
            return None
        return _read(str(target), target.stat().st_mtime)
    except (ValueError, OSError):
        return None


def static_url(database, module, path):
    "The versioned URL of a static file (cached for a year)"
    found = static_file(module, path)
    url = '/%s/isp_base/static/%s/%s' % (database, module, path)
    return url + '?v=' + found[1] if found else url


@app.route('/<database_name>/isp_base/static/<path:path>',
    methods={'GET'})
@with_pool
def static(request, pool, path):
    "A static file of an activated module's web/static directory"
    module, _, rest = path.partition('/')
    found = None
    if module in pool._modules:
        found = static_file(module, rest)
    if found is None:
        return secure(Response('not found', status=HTTPStatus.NOT_FOUND,
                content_type='text/plain'))
    data, etag = found
    if request.args.get('v') == etag:
        cache = IMMUTABLE
    else:
        cache = 'public, max-age=%d' % MAX_AGE
    headers = {'Cache-Control': cache}
    if etag in request.if_none_match:
        response = Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
    else:
        content_type = mimetypes.guess_type(rest)[0] or \
            'application/octet-stream'
        if content_type.startswith('text/') or content_type in {
                'application/javascript', 'image/svg+xml'}:
            content_type += '; charset=utf-8'
        response = Response(data, status=HTTPStatus.OK, headers=headers,
            content_type=content_type)
    response.set_etag(etag)
    return secure(response, cache=True)


static.max_request_size = 1024
