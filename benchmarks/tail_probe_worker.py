"""bench_tail_trace.py's gevent worker: the service's worker, recording when each connection was accepted and
when each recv() was called and returned (and whether data was already waiting) for the probe config."""
import socket
import time

from service.worker import JSONErrorWorker

_mono = time.monotonic


class RecordingSocket:
    """The connection's socket, noting its last recv(): (called, returned, had to wait for data)."""

    def __init__(self, sock, accepted):
        self._sock, self.accepted = sock, accepted
        self.last = (accepted, accepted, False)

    def recv(self, size, *flags):
        called = _mono()
        try:  # the OS socket under gevent's: never waits
            data = self._sock._sock.recv(size, socket.MSG_DONTWAIT)
            waited = False
        except BlockingIOError:
            data = self._sock.recv(size, *flags)
            waited = True
        if data:
            self.last = (called, _mono(), waited)
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


_accepted = {}  # fd -> time.monotonic() when accept() returned it
attempts = []  # (time.monotonic() of an accept() call, whether it got a connection)


def _recording_do_read(do_read):
    def wrapper(server):
        got = do_read(server)
        now = _mono()
        attempts.append((now, bool(got)))
        if got:
            _accepted[got[0].fileno()] = now
        return got
    return wrapper


class ProbeWorker(JSONErrorWorker):
    def run(self):
        from gevent.server import StreamServer

        StreamServer.do_read = _recording_do_read(StreamServer.do_read)
        super().run()

    def handle(self, listener, client, addr):
        sock = RecordingSocket(client, _accepted.pop(client.fileno(), 0.0))
        sock.started = _mono()
        super().handle(listener, sock, addr)
