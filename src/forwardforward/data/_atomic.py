"""Write a file so that readers see either the old content or the complete new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# mkstemp creates files readable by the owner only. Data files in a shared cache are
# normally readable by everyone.
_FILE_MODE = 0o644


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path`, and move it onto `path` when the block succeeds.

    The temporary file lives in the same folder so that `os.replace` is a rename within one
    file system. When the block raises, the temporary file is deleted and `path` is untouched.
    """
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, _FILE_MODE)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)
