"""The per-epoch metrics file of a run, one JSON object per line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


class MetricsLog:
    """Append-only `metrics.jsonl` with one line per epoch.

    Args:
        path: the file; created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        """Write one record as a line and flush it to disk."""
        line = json.dumps({k: _plain(v) for k, v in record.items()}, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict]:
        """Return all complete records; a torn last line from a crash is ignored."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def truncate_after(self, epoch: int) -> None:
        """Keep only the records of epochs up to `epoch`, as after a resume from that epoch."""
        kept = [r for r in self.read() if r.get("epoch", 0) <= epoch]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path)
