# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The life cycle shared by the HTTP fakes of tools/ (messaging providers,
payment gateways, callback sinks): a threaded HTTP server on loopback."""
import threading
from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class LoopbackService:
    """Start and stop a `handler_class` server on (host, port); port 0 picks
    a free one, read back after start.  The server gets the service as its
    attribute `server_attribute`, for the handler to reach."""
    handler_class = None
    server_attribute = 'fake'
    name = 'fake'
    poll_interval = 0.05
    host = '127.0.0.1'
    port = 0
    _server = None
    _thread = None

    def start(self):
        self._server = LoopbackHTTPServer(
            (self.host, self.port), self.handler_class)
        setattr(self._server, self.server_attribute, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
            kwargs={'poll_interval': self.poll_interval},
            name='fake-' + self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self.port)
