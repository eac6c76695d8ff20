"""The node process's GC setting (`raftx.kv.server.set_gc_threshold`, ``--gc-gen0``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from raftx.kv.server import GC_GEN0_THRESHOLD, build_parser, set_gc_threshold


@pytest.fixture
def saved_threshold() -> Iterator[tuple[int, ...]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_sets_generation_0_and_keeps_the_older_generations(saved_threshold: tuple[int, ...]) -> None:
    set_gc_threshold(12_345)
    assert gc.get_threshold() == (12_345, *saved_threshold[1:])


def test_zero_leaves_the_threshold_alone(saved_threshold: tuple[int, ...]) -> None:
    set_gc_threshold(0)
    assert gc.get_threshold() == saved_threshold


def test_negative_is_refused(saved_threshold: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        set_gc_threshold(-1)
    assert gc.get_threshold() == saved_threshold


def test_serve_parser_defaults_to_the_process_setting() -> None:
    base = ["--id", "1", "--listen", "127.0.0.1:1", "--data-dir", "x"]
    assert build_parser().parse_args(base).gc_gen0 == GC_GEN0_THRESHOLD
    assert build_parser().parse_args([*base, "--gc-gen0", "0"]).gc_gen0 == 0
