"""gunicorn's HTTP/1 response, sending its head together with the first body bytes: one send, one segment.

gunicorn writes a response's head and its body with two ``sendall`` calls. On a kept-alive connection
every answer then costs two system calls and two TCP segments, and the client wakes twice. Here the head
is held until the first body bytes (or the end of the response) and goes out with them in one call.
What is sent is byte for byte the same; only the number of writes changes. Chunked bodies and files
(``sendfile``) send the held head first, as gunicorn does.
"""
from __future__ import annotations

from gunicorn import util
from gunicorn.http import wsgi


class OneWriteResponse(wsgi.Response):
    """``gunicorn.http.wsgi.Response`` whose head leaves with the first body bytes."""

    _head = None   # the head's bytes while held

    def send_headers(self):
        if self.headers_sent:
            return
        tosend = self.default_headers()
        tosend.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])
        self._head = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")
        self.headers_sent = True

    def _flush_head(self):
        head, self._head = self._head, None
        if head:
            util.write(self.sock, head)

    def _emit_body(self, data):
        head = self._head
        if head is None or self.chunked:
            self._flush_head()
            util.write(self.sock, data, self.chunked)
            return
        self._head = None
        util.write(self.sock, head + data)

    def sendfile(self, respiter):
        self.send_headers()
        self._flush_head()
        return super().sendfile(respiter)

    def close(self):
        if not self.headers_sent:
            self.send_headers()
        self._flush_head()
        super().close()


def install() -> None:
    """Make gunicorn build every HTTP/1 response of this process as a ``OneWriteResponse`` (a worker
    calls it after the fork; ``wsgi.create`` looks the class up at each request)."""
    wsgi.Response = OneWriteResponse
