"""The FIFO memory bank: order, capacity, labels, state_dict, errors."""

from __future__ import annotations

import pytest
import torch

from contrastkit.state import Queue


def _rows(start: int, n: int, d: int = 2) -> torch.Tensor:
    return torch.arange(start, start + n, dtype=torch.float32)[:, None].expand(n, d).clone()


def test_fifo_keeps_the_newest_keys() -> None:
    """After pushing 0..9 in chunks into a queue of 4, it holds exactly 6..9."""
    q = Queue(4, 2)
    assert len(q) == 0
    assert q.keys().shape == (0, 2)
    for start, n in ((0, 3), (3, 2), (5, 4), (9, 1)):
        q.push(_rows(start, n))
    assert len(q) == 4
    assert sorted(q.keys()[:, 0].tolist()) == [6.0, 7.0, 8.0, 9.0]


def test_push_larger_than_capacity_keeps_its_tail() -> None:
    """A push of more keys than the capacity keeps only its last ``size`` rows."""
    q = Queue(3, 2)
    q.push(_rows(0, 2))
    q.push(_rows(10, 7))
    assert sorted(q.keys()[:, 0].tolist()) == [14.0, 15.0, 16.0]


def test_keys_are_detached() -> None:
    """Stored keys do not carry the autograd graph."""
    q = Queue(4, 2)
    x = torch.randn(2, 2, requires_grad=True)
    q.push(x * 2)
    assert not q.keys().requires_grad


def test_labels_follow_their_keys() -> None:
    """With labels=True each key keeps its label through wrap-around."""
    q = Queue(3, 2, labels=True)
    q.push(_rows(0, 2), torch.tensor([0, 1]))
    q.push(_rows(2, 2), torch.tensor([2, 3]))
    pairs = sorted(zip(q.keys()[:, 0].tolist(), q.labels().tolist(), strict=True))
    assert pairs == [(1.0, 1), (2.0, 2), (3.0, 3)]


def test_state_dict_round_trip_gives_the_same_next_state() -> None:
    """Save, load into a fresh queue, push the same keys: identical banks."""
    a = Queue(5, 3, labels=True)
    a.push(torch.randn(4, 3), torch.tensor([1, 2, 3, 4]))
    b = Queue(5, 3, labels=True)
    b.load_state_dict(a.state_dict())
    nxt, y = torch.randn(3, 3), torch.tensor([5, 6, 7])
    a.push(nxt, y)
    b.push(nxt, y)
    torch.testing.assert_close(a.keys(), b.keys())
    assert a.labels().tolist() == b.labels().tolist()
    assert len(a) == len(b) == 5


def test_bad_pushes_raise() -> None:
    """Wrong width, missing or unexpected labels, non-finite keys: clear errors."""
    q = Queue(4, 3)
    with pytest.raises(ValueError, match="width 3"):
        q.push(torch.randn(2, 4))
    with pytest.raises(ValueError, match="no labels"):
        q.push(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="keys"):
        q.push(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="labels=True"):
        q.labels()
    with pytest.raises(ValueError, match="needs `labels`"):
        Queue(4, 3, labels=True).push(torch.randn(2, 3))
    with pytest.raises(ValueError, match="size"):
        Queue(0, 3)


def test_shard_is_the_whole_bank_in_one_process() -> None:
    """Without a process group, this rank's share is the whole bank."""
    q = Queue(6, 2)
    q.push(torch.randn(6, 2))
    torch.testing.assert_close(q.shard(), q.keys())
