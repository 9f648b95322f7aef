"""service/handoff.py: the workers' shared board, who accepts, and when a kept-alive answer closes."""
import multiprocessing
from types import SimpleNamespace

import pytest

from service import handoff
from service.handoff import AcceptGate, Board


def req(n, port=40000):
    return SimpleNamespace(req_number=n, peer_addr=("127.0.0.1", port))


def board_with(*held):
    """A board with one worker per count, in slots 0, 1, ..."""
    board = Board(8)
    for slot, n in enumerate(held):
        assert board.claim(set(range(slot))) == slot
        board.enter(slot, 1000 + slot)
        board.add(slot, n)
    return board


def _child(board, slot, started, done):
    board.enter(slot, 4242)
    board.add(slot, 7)
    started.set()
    done.wait(10)


def test_workers_forked_from_one_master_see_each_others_counts():
    board = Board(4)
    board.claim(set())
    board.claim({0})
    ctx = multiprocessing.get_context("fork")
    started, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_child, args=(board, 1, started, done))
    child.start()
    try:
        assert started.wait(10)
        board.enter(0, 1)
        assert board.least_other(0) == 7
    finally:
        done.set()
        child.join(10)
    board.release(1)
    assert board.least_other(0) is None  # a released slot is no worker


def test_claim_skips_taken_slots_and_says_when_full():
    board = Board(3)
    assert board.claim(set()) == 0
    assert board.claim({0, 2}) == 1
    with pytest.raises(ValueError, match="more than 3 workers"):
        board.claim({0, 1, 2})


def test_least_other_ignores_itself_and_empty_slots():
    board = board_with(5, 2, 9)
    assert board.least_other(1) == 5
    assert board.least_other(0) == 2
    assert Board(4).least_other(0) is None


@pytest.mark.parametrize(("mine", "other", "closes"),
                         [(8, 8, False), (9, 8, False), (10, 8, True), (15, 1, True), (1, 15, False)])
def test_a_worker_over_its_share_by_more_than_one_closes(mine, other, closes):
    board = board_with(mine, other)
    assert handoff.should_close(req(1), board, 0, every=0) is closes


def test_alone_or_without_a_board_only_the_limit_closes():
    assert not handoff.should_close(req(5), board_with(30), 0, every=0)
    assert not handoff.should_close(req(5), None, None, every=0)
    assert handoff.should_close(req(3, port=1), None, None, every=3)


def test_the_request_limit_spreads_over_the_last_quarter_and_is_exact_for_small_limits():
    limits = {handoff.request_limit(100, ("h", port)) for port in range(1000, 1200)}
    assert limits == set(range(75, 101))
    assert {handoff.request_limit(3, ("h", port)) for port in range(50)} == {3}
    closes = [handoff.should_close(req(n, port=1234), None, None, every=100) for n in range(1, 101)]
    first = closes.index(True) + 1
    assert first == handoff.request_limit(100, ("h", 1234)) and all(closes[first - 1:])


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_gate_opens_for_the_least_loaded_and_for_a_lone_worker():
    assert AcceptGate(board_with(3, 3), 0).open()
    assert AcceptGate(board_with(2, 3), 0).open()
    assert AcceptGate(board_with(9), 0).open()


def test_the_gate_leaves_connections_to_a_less_loaded_worker_for_at_most_max_defer():
    clock = Clock()
    gate = AcceptGate(board_with(4, 3), 0, clock)
    waited = []
    while not gate.open():
        waited.append(clock.now)
        clock.now += handoff.RECHECK
    assert waited and waited[-1] < handoff.MAX_DEFER <= clock.now + 1e-9
    clock.now += 1.0  # a later connection: a new episode, refused again at first
    assert not gate.open()
