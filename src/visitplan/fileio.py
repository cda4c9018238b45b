"""Writing output files safely: atomically, and never outside the chosen folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from visitplan.errors import VisitplanError


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader sees the old file or the new one, never half of one, even if the writer is killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def inside(folder: str | Path, name: str) -> Path:
    """``folder / name``, refusing a name that would leave ``folder`` (``..``, absolute paths)."""
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise VisitplanError("output name", name, f"must stay inside the folder {folder}")
    return target
