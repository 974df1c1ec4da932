"""Typed errors of the library. Each message is one line that names the problem and the fix;
the CLI prints it as it is and exits non-zero."""


class GateError(Exception):
    """Base class: anything the user can fix by changing their input."""

    exit_code = 1


class UsageError(GateError):
    exit_code = 2


class DataError(GateError):
    """A data set or data file is missing, malformed or of the wrong schema."""


class SamplesError(GateError):
    """A samples file does not fit the data set it is scored against."""


class ModelSpecError(GateError):
    """A model spec that names no model we can load."""


class RunStoreError(GateError):
    """A run directory that cannot be read or written as asked."""


class SandboxError(GateError):
    """The execution sandbox could not start."""
