"""gunicorn's HTTP/1 response, sending its head together with the first body bytes: one send, one segment.

gunicorn writes a response's head and its body with two ``sendall`` calls. On a kept-alive connection
every answer then costs two system calls and two TCP segments, and the client wakes twice. Here the head
is held until the first body bytes (or the end of the response) and goes out with them in one call.
What is sent is byte for byte the same; only the number of writes changes. Chunked bodies and files
(``sendfile``) send the held head first, as gunicorn does.
"""
from __future__ import annotations

import time

from gunicorn import util
from gunicorn.http import wsgi


class OneWriteResponse(wsgi.Response):
    """``gunicorn.http.wsgi.Response`` whose head leaves with the first body bytes."""

    _head = None   # the head's bytes while held

    def default_headers(self):
        """gunicorn's status line, Server, Date and Connection lines (and Transfer-Encoding when chunked),
        with the Date line formatted once a second: it names whole seconds."""
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        version = self.req.version
        headers = [f"HTTP/{version[0]}.{version[1]} {self.status}\r\n", _server_line(self.version),
                   _date_line(), _CONNECTION[connection]]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers

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
        send_all(self.sock, head + data)

    def sendfile(self, respiter):
        self.send_headers()
        self._flush_head()
        return super().sendfile(respiter)

    def close(self):
        if not self.headers_sent:
            self.send_headers()
        self._flush_head()
        super().close()


_CONNECTION = {c: f"Connection: {c}\r\n" for c in ("upgrade", "close", "keep-alive")}
_date = (-1, "")   # (the second, its "Date: ..." line), replaced whole: safe for threads


def _date_line() -> str:
    """gunicorn's "Date: <util.http_date()>" line, made anew only when the second changes."""
    global _date
    sec = int(time.time())
    stamp = _date
    if sec != stamp[0]:
        stamp = _date = sec, f"Date: {util.http_date(sec)}\r\n"
    return stamp[1]


def _server_line(version: str, _lines={}) -> str:  # noqa: B006 - a per-process cache on purpose
    line = _lines.get(version)
    if line is None:
        line = _lines[version] = f"Server: {version}\r\n"
    return line


def send_all(sock, data: bytes) -> None:
    """``sock.sendall(data)``, trying one plain send first. gevent's ``sendall`` asks the kernel for the
    socket's send buffer size (a getsockopt system call) on every call; an answer of a few hundred bytes
    leaves whole in one send, and whatever a send leaves is sent by ``sendall`` as before."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def install() -> None:
    """Make gunicorn build every HTTP/1 response of this process as a ``OneWriteResponse`` (a worker
    calls it after the fork; ``wsgi.create`` looks the class up at each request)."""
    wsgi.Response = OneWriteResponse
