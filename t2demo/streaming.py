"""Work in a thread, read as a stream: the pattern behind live CEM (the second pass streams from
the batching scheduler, t2demo.serving).

The worker emits items into a queue; the reader (a web framework's thread, a CLI loop) iterates
them as they come. A reader that stops early (closes the generator) sets the stop event, so the
worker ends at its next check and releases whatever it holds (the SVF lock); a worker's
exception reaches the reader instead of leaving it waiting forever.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator

_END = object()
Work = Callable[[Callable[[object], None], threading.Event], object]


def stream_from_thread(work: Work, name: str, stop: threading.Event | None = None) -> Generator[object, None, object]:
    """Run work(emit, stop) in a daemon thread and yield what it emits; the generator's return
    value is work's result, and work's exception is raised in the reader."""
    stop = stop or threading.Event()
    items: queue.Queue = queue.Queue()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, work(items.put, stop)))
        except BaseException as e:  # handed to the reader
            outcome.append((False, e))
        finally:
            items.put(_END)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        while (item := items.get()) is not _END:
            yield item
    finally:  # also reached when the reader closes the generator
        stop.set()
        worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
