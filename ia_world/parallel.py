"""One helper for CPU work spread over processes: an ordered map, in-process or a spawn pool."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


@contextmanager
def ordered_map(workers: int) -> Iterator[Callable]:
    """An ordered, lazy map: in-process for one worker, a 'spawn' process pool otherwise.

    A worker that dies (e.g. a script calling this without an `if __name__ == "__main__"`
    guard) raises BrokenProcessPool instead of hanging.
    """
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.map
