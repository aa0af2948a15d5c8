"""Exceptions that the command line turns into one-line messages.

`UsageError` is a mistake in what the user asked for and exits with status 2. `DataError`
and `TrainingError` are failures while doing it and exit with status 1. `RunInterrupted` is a
Ctrl-C and exits with status 130. Library callers can catch
`ForwardForwardError` for all of them.
"""

from __future__ import annotations


class ForwardForwardError(Exception):
    """Base class of the errors that forwardforward raises on purpose."""

    exit_code = 1


class UsageError(ForwardForwardError, ValueError):
    """An invalid recipe, option, key or value given by the user."""

    exit_code = 2


class DataError(ForwardForwardError):
    """A data set that is missing, corrupt, truncated or contains invalid values."""


class TrainingError(ForwardForwardError):
    """A training run that cannot go on, such as a loss that became NaN."""


class RunInterrupted(ForwardForwardError):
    """A training run stopped by the user (Ctrl-C); its last checkpoint is kept."""

    exit_code = 130
