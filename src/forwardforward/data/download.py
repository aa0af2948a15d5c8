"""Download a file from a list of mirrors and verify its SHA-256 before it appears on disk."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from forwardforward.data._atomic import atomic_write
from forwardforward.errors import DataError, UsageError

logger = logging.getLogger(__name__)

OFFLINE_ENV_VAR = "FORWARDFORWARD_OFFLINE"

_OFFLINE_VALUES = ("1", "true", "yes", "on")
_ONLINE_VALUES = ("", "0", "false", "no", "off")
_CHUNK_SIZE = 1 << 20
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_USER_AGENT = "forwardforward (Python urllib)"


class DownloadFailed(DataError):
    """Error raised when every mirror of a file failed. `failures` lists each mirror with its reason."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


def downloads_allowed() -> bool:
    """Return False when the environment variable FORWARDFORWARD_OFFLINE disables downloads.

    The values 1, true, yes and on (any case) disable downloads. Unset, empty, 0, false, no
    and off allow them.

    Raises:
        UsageError: FORWARDFORWARD_OFFLINE has any other value.
    """
    value = os.environ.get(OFFLINE_ENV_VAR, "").strip().lower()
    if value in _OFFLINE_VALUES:
        return False
    if value in _ONLINE_VALUES:
        return True
    raise UsageError(
        f"Invalid {OFFLINE_ENV_VAR}={os.environ[OFFLINE_ENV_VAR]!r}. "
        f"Set it to 1 to disable downloads, or to 0 or nothing to allow them."
    )


class _MirrorFailed(Exception):
    """One mirror did not deliver the expected file. The message is the reason."""


def _describe_network_error(error: Exception, timeout: float, received: int) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"connection failed: {error.reason}"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, http.client.IncompleteRead):
        return f"connection closed after {received + len(error.partial)} bytes, before the end of the body"
    return f"connection failed: {error!r}"


def _fetch(url: str, file: BinaryIO, timeout: float) -> str:
    """Stream the response body of `url` into `file` and return its SHA-256 hex digest.

    Network failures raise `_MirrorFailed`. Errors writing `file` propagate as `OSError`.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (http.client.HTTPException, OSError) as error:
        raise _MirrorFailed(_describe_network_error(error, timeout, received)) from error

    with response:
        expected_length = response.headers.get("Content-Length")
        while True:
            try:
                chunk = response.read(_CHUNK_SIZE)
            except (http.client.HTTPException, OSError) as error:
                raise _MirrorFailed(_describe_network_error(error, timeout, received)) from error
            if not chunk:
                break
            file.write(chunk)
            digest.update(chunk)
            received += len(chunk)

    if expected_length is not None and expected_length.isdigit() and received != int(expected_length):
        raise _MirrorFailed(f"connection closed after {received} of {expected_length} bytes")
    return digest.hexdigest()


def _check_arguments(urls: list[str], sha256: str, timeout: float) -> None:
    if isinstance(urls, str) or not urls:
        raise UsageError(f"download_file needs a non-empty list of URLs, got {urls!r}.")
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise UsageError(f"Invalid download URL {url!r}: the scheme must be http or https.")
    if not _SHA256_PATTERN.fullmatch(sha256):
        raise UsageError(f"Invalid SHA-256 {sha256!r}: expected 64 lowercase hexadecimal digits.")
    if not timeout > 0:
        raise UsageError(f"Invalid download timeout {timeout!r}: expected a positive number of seconds.")


def download_file(urls: list[str], destination: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download a file from the first mirror in `urls` that delivers it with the given SHA-256.

    Each mirror streams into a temporary file in the folder of `destination`. Only a complete
    download whose SHA-256 matches is renamed to `destination`. A failed attempt (HTTP error,
    broken connection, timeout, checksum mismatch) deletes the temporary file, logs a warning
    and moves on to the next mirror. A local write error stops at once. `timeout` is the
    limit in seconds for connecting and for each read, not for the whole download. The folder
    is created when missing, and removed again when every mirror fails and it is still empty.
    An existing `destination` is replaced. Returns `destination`.

    Raises:
        UsageError: `urls` is empty or contains a URL that is not http or https, `sha256` is not
            64 lowercase hexadecimal digits, or `timeout` is not positive.
        DownloadFailed: every mirror failed (the message names the file, the folder and each
            mirror with its reason). A subclass of DataError.
        DataError: the folder cannot be created or written.
    """
    destination = Path(destination)
    _check_arguments(urls, sha256, timeout)

    folder = destination.parent
    created = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"Cannot create the data folder {folder} for {destination.name}: {error.strerror}."
        ) from error

    failures: list[str] = []
    for url in urls:
        logger.info("Downloading %s from %s", destination, url)
        try:
            with atomic_write(destination) as file:
                actual_sha256 = _fetch(url, file, timeout)
                if actual_sha256 != sha256:
                    raise _MirrorFailed(f"SHA-256 mismatch: expected {sha256}, got {actual_sha256}")
        except _MirrorFailed as error:
            logger.warning("Download of %s from %s failed: %s", destination.name, url, error)
            failures.append(f"{url} ({error})")
            continue
        except OSError as error:
            # A local disk problem, such as a full file system or a read-only folder, which
            # the next mirror would hit too.
            raise DataError(
                f"Cannot write {destination.name} into {folder}: {error.strerror or error}. "
                "Free disk space or choose another data folder."
            ) from error

        logger.info("Saved %s (%d bytes, SHA-256 verified)", destination, destination.stat().st_size)
        return destination

    _remove_empty(created)
    raise DownloadFailed(
        f"Download of {destination.name} into {folder} failed from every mirror: "
        + ", ".join(failures)
        + ". Check the network connection, or download the file by hand and put it in that folder.",
        failures,
    )


def _missing_folders(folder: Path) -> list[Path]:
    """Return `folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (deepest first) while they are empty, so a failed download leaves no trace."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
