# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""trytond's WSGI application (`trytond.application`, the entry point Tryton
gives WSGI servers) served by several processes sharing one listening
socket: each process a threaded werkzeug server, the kernel handing the
connections to whichever accepts first.

It stands, in the benchmarks, for what production does to use more than
one core for HTTP: several trytond processes behind the proxy
(`docker compose up --scale trytond=N`) or a pre-forking WSGI server
(`gunicorn -w N trytond.application:app`, see docs/deployment.md).  One
`trytond` process serves every request under one GIL.

    python -m bench.wsgi_server -c trytond.conf -d DB -n 3 --listen H:P
"""
import argparse
import os
import signal
import socket
import sys


def serve(sock, host, port):
    "Serve the application on `sock` in this (forked) process"
    from trytond.application import app
    from werkzeug.serving import make_server
    server = make_server(host, port, app, threaded=True, fd=sock.fileno())
    server.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-c', '--config', required=True)
    parser.add_argument('-d', '--database', required=True)
    parser.add_argument('-n', '--processes', type=int, default=2)
    parser.add_argument('--listen', default='127.0.0.1:8000')
    options = parser.parse_args(argv)
    host, port = options.listen.rsplit(':', 1)
    port = int(port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(256)
    os.environ['TRYTOND_CONFIG'] = options.config
    os.environ['TRYTOND_DATABASE_NAMES'] = options.database
    children = []
    for _ in range(options.processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                serve(sock, host, port)
            finally:
                os._exit(1)
        children.append(pid)
    sock.close()

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.wait()
    stop(None, None)


if __name__ == '__main__':
    main()
