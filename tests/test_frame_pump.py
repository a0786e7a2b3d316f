"""The frame pump (generate's and redub's one way to feed the engine) against the engine run synchronously."""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.config import EngineConfig
from speech2vid.runtime.frame_pump import Batch, pump

FACES = [np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)]


@pytest.fixture(scope="module")
def engine(lite_loaded, engine_cache, lite_onnx):  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import make_engine

    eng = make_engine(lite_loaded, EngineConfig(), cache_dir=engine_cache)
    with eng:
        eng.set_identity(FACES)
        yield eng


def test_pump_returns_every_item_in_order_with_its_own_face(engine) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    sizes = [3, 1, 4, 2, 3]  # uneven batches, one with nothing to render
    renders = [
        np.array([True, False, True]),
        np.array([False]),
        np.array([True, True, False, True]),
        np.array([True, True]),
        np.array([False, True, True]),
    ]
    batches, expected = [], []
    item = 0
    for n, render in zip(sizes, renders):
        windows = rng.normal(0.0, 1.0, (n, 12, 35)).astype(np.float32)
        batches.append(Batch(list(range(item, item + n)), windows, render))
        for k in range(n):
            # One window at a time, synchronously: the independent reference for each face.
            expected.append(engine.render_faces(windows[k : k + 1])[0] if render[k] else None)
        item += n

    got = list(pump(engine, iter(batches)))
    assert [i for i, _ in got] == list(range(item))
    for (_, face), want in zip(got, expected):
        if want is None:
            assert face is None
        else:
            assert face is not None and face.shape == want.shape
            # Batched and single-window kernels may differ in the last bits (measured: < 1e-5).
            np.testing.assert_allclose(face, want, atol=1e-4)


def test_pump_refuses_a_batch_whose_flags_do_not_match(engine) -> None:  # type: ignore[no-untyped-def]
    bad = Batch([0, 1], np.zeros((2, 12, 35), np.float32), np.array([True]))
    with pytest.raises(ValueError, match="2 items came with 2 windows and 1 flags"):
        list(pump(engine, [bad]))


def test_prefetch_keeps_order_raises_where_the_producer_failed_and_stops_early() -> None:
    import threading

    from speech2vid.runtime.prefetch import Prefetch

    with Prefetch(iter(range(100)), 3) as items:
        assert list(items) == list(range(100))

    def failing():  # type: ignore[no-untyped-def]
        yield from range(5)
        raise OSError("the video file went away")

    got: list[int] = []
    with pytest.raises(OSError, match="went away"):
        with Prefetch(failing(), 2) as items:
            for x in items:
                got.append(x)
    assert got == list(range(5))  # every item before the failure arrives, then the error

    produced: list[int] = []

    def endless():  # type: ignore[no-untyped-def]
        k = 0
        while True:
            produced.append(k)
            yield k
            k += 1

    before = threading.active_count()
    with Prefetch(endless(), 4) as items:
        assert next(items) == 0
    assert threading.active_count() == before  # leaving the block stopped the producer's thread
    assert len(produced) <= 1 + 4 + 1  # it never ran more than the queue's length ahead
