"""One writer per output directory: an advisory lock (filelock) taken before any work.

`run_lock(out)` first checks that `out=` can be a directory we write to (not a file, creatable,
writable), then takes `<out>/.ia-world.lock` without waiting; a second writer stops at once with
one line naming the holder's pid (which the holder writes into the lock file). The lock is
advisory: it guards ia-world's own writers (pretrain, generate, evaluate, world_model, rl,
verify --repair), nothing else.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ia_world.errors import BusyError, ConfigError

LOCK_NAME = ".ia-world.lock"


def check_out_dir(out: str | Path, key: str = "out") -> Path:
    """Create `out` (parents too) unless it exists; ConfigError naming it when it is a file,
    cannot be created, or is not writable. Called before any work."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{key}={out} is a file; {key}= must name a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{key}={out}: cannot create the directory "
                          f"({error.strerror or error})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={out}: the directory is not writable")
    return out


def holder_pid(lock_file: Path) -> str:
    """The pid the lock's holder wrote into the lock file ('unknown' if it has not yet)."""
    for _ in range(20):  # the holder writes its pid just after taking the lock
        try:
            text = lock_file.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return text
        time.sleep(0.025)
    return "unknown"


@contextlib.contextmanager
def run_lock(out: str | Path, key: str = "out", name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the advisory lock of output directory `out` for the duration of the block.

    ConfigError when `out` is not a writable directory; BusyError naming the holder's pid when
    another process holds the lock.
    """
    out = check_out_dir(out, key)
    lock_file = out / name
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(f"{out}: another ia-world process (pid {holder_pid(lock_file)}) is "
                        f"writing here; wait for it to end or use another {key}=") from None
    except OSError as error:
        raise ConfigError(f"{key}={out}: cannot create {name} "
                          f"({error.strerror or error})") from None
    try:
        fd = lock._context.lock_file_fd  # the open lock file: the holder's pid goes in it
        if fd is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield out
    finally:
        lock.release()

