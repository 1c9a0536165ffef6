"""The project's own error types: each carries one clear line for the user."""


class IAWorldError(Exception):
    """Base of every error ia-world raises on purpose (bad input, bad config, bad file)."""


class ConfigError(IAWorldError):
    """A config key is unknown, mistyped or out of range."""


class DataError(IAWorldError):
    """A data file is missing, truncated, corrupt or of the wrong format; names the file."""


class CheckpointError(IAWorldError):
    """A checkpoint is missing, corrupt, or from an incompatible config."""


class BusyError(IAWorldError):
    """Another ia-world process holds the output directory's lock; names its pid."""


WORKER_MARK = "in DataLoader worker process"


def from_worker(error: IAWorldError) -> IAWorldError:
    """The original one-line error of a DataLoader worker (torch re-raises it in the main
    process with the worker's traceback in its message); other errors unchanged."""
    message = str(error)
    if WORKER_MARK not in message:
        return error
    last = [line for line in message.splitlines() if line.strip()][-1]
    prefix = f"{type(error).__module__}.{type(error).__name__}: "
    return type(error)(last[len(prefix):] if last.startswith(prefix) else last)
