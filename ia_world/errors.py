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
