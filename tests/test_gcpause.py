"""``harmonia.gcpause``: the collector stays off while any thread parses, and comes back as it
was found once the last one is done."""

from __future__ import annotations

import gc
import threading

from harmonia.gcpause import gc_paused


def test_a_pause_outlives_another_threads_pause_and_restores_the_collector():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def parse() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)
            seen.append(gc.isenabled())

    worker = threading.Thread(target=parse)
    worker.start()
    assert inside.wait(10)
    with gc_paused():
        assert not gc.isenabled()
    # this thread is done, the worker is still parsing: the collector stays off
    assert not gc.isenabled()
    release.set()
    worker.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
