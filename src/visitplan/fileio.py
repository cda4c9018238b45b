"""Reading users' files with one-line errors; writing output files safely: atomically, and
never outside the chosen folder."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from visitplan.errors import VisitplanError


def read_text(path: str | Path, what: str, *, encoding: str = "utf-8-sig") -> str:
    """The text of a file a user names (``what``: "roster file", "site file", ...).

    The default encoding accepts a UTF-8 BOM, as Excel and Windows editors write one. A missing
    file, bytes that are not UTF-8, or any other operating-system failure (a folder, no
    permission) raises :class:`VisitplanError` naming ``what`` and the path, never a traceback.
    """
    try:
        return Path(path).read_text(encoding=encoding)
    except FileNotFoundError:
        raise VisitplanError(what, str(path), "does not exist") from None
    except UnicodeDecodeError:
        raise VisitplanError(what, str(path), "must be UTF-8 text") from None
    except OSError as exc:
        raise VisitplanError(what, str(path), f"cannot be read: {exc.strerror}") from None


def atomic_write(path: str | Path, data: str | bytes | Iterable[bytes]) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader sees the old file or the new one, never half of one, even if the writer is killed.
    ``data`` may be an iterable of byte chunks (e.g. :func:`visitplan.export.ics.iter_ical`):
    they are written as they come, one held at a time, and if their producer raises, the
    temporary file is removed and the old file stays as it was.
    An operating-system failure (no space, no permission, a folder in the way) raises
    :class:`VisitplanError` and leaves the old file as it was.
    """
    path = Path(path)
    made = _make_parents(path)
    tmp: Path | None = None
    try:
        tmp = _stage(path, data)
        _replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a temporary file behind
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_dirs(made)
        raise
    return path


def write_files(folder: str | Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write every ``name -> data`` of ``files`` under ``folder``, all or nothing.

    Every name is checked with :func:`inside` and every file is staged to a temporary file
    before the first one replaces its target, so a bad name or a failed write leaves the folder
    exactly as it was (folders created for the attempt are removed again).
    """
    targets = {inside(folder, name): data for name, data in files.items()}
    for target in targets:
        if target.is_dir():
            raise VisitplanError("output file", str(target), "is a folder; remove it first")
    made: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in targets.items():
            made += _make_parents(target)
            staged.append((_stage(target, data), target))
        for tmp, target in staged:
            _replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        _remove_dirs(made)
        raise
    return list(targets)


def inside(folder: str | Path, name: str) -> Path:
    """``folder / name``, refusing a name that would leave ``folder`` (``..``, absolute paths).

    Symbolic links are resolved first, so a link inside ``folder`` that points elsewhere is
    refused too.
    """
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if target == base or base not in target.parents:
        raise VisitplanError("output name", name, f"must stay inside the folder {folder}")
    return target


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of ``path``; return those created, deepest last."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VisitplanError(
            "output folder", str(path.parent), f"cannot be created: {exc.strerror}"
        ) from None
    return list(reversed(missing))


def _stage(path: Path, data: str | bytes | Iterable[bytes]) -> Path:
    """``data`` (or its chunks, one at a time) written and synced to a temporary file next to
    ``path``."""
    chunks: Iterable[bytes]
    if isinstance(data, str):
        chunks = (data.encode("utf-8"),)
    elif isinstance(data, bytes):
        chunks = (data,)
    else:
        chunks = data
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise VisitplanError(
            "output file", str(path), f"cannot be written: {exc.strerror}"
        ) from None
    tmp = Path(name)
    try:
        # mkstemp makes 0600 files: give the file the mode a plain open() would (or keep the
        # replaced file's), so a web server or a colleague can read what visitplan writes.
        os.chmod(fd if os.chmod in os.supports_fd else tmp, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VisitplanError(
            "output file", str(path), f"cannot be written: {exc.strerror}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, else what the umask leaves of 0666."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Read without changing it where the system tells (Linux); os.umask can only be read by
    # setting it, which another thread could see for an instant.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VisitplanError(
            "output file", str(path), f"cannot be written: {exc.strerror}"
        ) from None


def _remove_dirs(made: list[Path]) -> None:
    for d in reversed(made):
        # Not empty (someone else wrote there) or already gone: leave it.
        with contextlib.suppress(OSError):
            d.rmdir()
