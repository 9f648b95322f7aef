"""service/handoff.py: when a kept-alive connection's answer closes it."""
from types import SimpleNamespace

import pytest

from service import handoff


@pytest.fixture(autouse=True)
def fresh():
    handoff._recent.clear()
    yield
    handoff._recent.clear()


def req(sock, n):
    return SimpleNamespace(unreader=SimpleNamespace(sock=sock), req_number=n)


def test_a_lone_connection_keeps_alive_until_its_own_limit():
    a = object()
    closes = [handoff.should_close(req(a, n), shared_every=2, alone_every=5) for n in range(1, 11)]
    assert closes == [False] * 4 + [True] + [False] * 4 + [True]


def test_connections_sharing_a_worker_are_handed_off_sooner():
    a, b = object(), object()
    handoff.should_close(req(b, 1), shared_every=2, alone_every=100)
    assert not handoff.should_close(req(a, 1), shared_every=2, alone_every=100)
    assert handoff.should_close(req(a, 2), shared_every=2, alone_every=100)


def test_a_leaving_connection_does_not_count_against_its_reconnect():
    old, new = object(), object()
    assert handoff.should_close(req(old, 2), shared_every=2, alone_every=2)
    assert not handoff.should_close(req(new, 2), shared_every=2, alone_every=100)


def test_zero_never_closes():
    a, b = object(), object()
    handoff.should_close(req(b, 1), shared_every=0, alone_every=0)
    assert not any(handoff.should_close(req(a, n), shared_every=0, alone_every=0) for n in range(1, 20))
