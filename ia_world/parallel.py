"""One helper for CPU work spread over processes: an ordered map, in-process or a spawn pool."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import torch

_UNGUARDED = ("a script that starts worker processes must call ia-world under "
              "`if __name__ == \"__main__\":` (spawned workers re-import it)")


def single_thread() -> None:
    """Pool-worker initialiser: one intra-op thread, so `workers` processes use `workers` cores
    instead of each taking every core (which stalls a many-core machine)."""
    torch.set_num_threads(1)


@contextmanager
def ordered_map(workers: int) -> Iterator[Callable]:
    """An ordered, lazy map: in-process for one worker, a 'spawn' pool of single-thread processes
    otherwise.

    A worker that dies raises RuntimeError saying the likely cause instead of hanging.
    """
    if workers <= 1:
        yield map
        return
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A spawned worker still re-importing an unguarded script (the flag multiprocessing
        # itself checks before refusing to start processes then): stop before the pool
        # allocates semaphores that would leak, and warn after the parent's error.
        raise RuntimeError(_UNGUARDED)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=single_thread) as pool:
        try:
            yield pool.map
        except BrokenProcessPool:
            raise RuntimeError(
                f"a worker process of this {workers}-process pool died: {_UNGUARDED}, and a "
                "worker can run out of memory; or set workers=1") from None
