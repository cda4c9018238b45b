"""Reading users' files with one-line errors; writing output files safely: atomically, and
never outside the chosen folder."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from visitplan.errors import VisitplanError
from visitplan.i18n import _

#: The largest file any reader reads, unless it names a smaller limit of its own (each reader's
#: limit is listed in docs/reliability.md).
MAX_READ_BYTES = 64 * 1024 * 1024


def read_bytes(
    path: str | Path, what: str, *, limit: int = MAX_READ_BYTES, usual: str = ""
) -> bytes:
    """The bytes of a file a user names (``what``: "roster file", "site file", ...).

    Only a regular file is read, and only up to ``limit`` bytes: a FIFO would block forever, a
    link to ``/dev/zero`` would never end, and a huge file would fill the memory. The file is
    opened without blocking and checked through its open descriptor (``fstat``), so it cannot
    be swapped for another between the check and the read; a file that grows while it is read
    is still cut off at ``limit``. A missing file, a folder, a FIFO or device, a file over
    ``limit`` or any other operating-system failure raises :class:`VisitplanError` naming
    ``what`` and the path, never a traceback. ``usual`` says in that message what size such a
    file has ("a protocol is a few kB").
    """
    fd = _open_regular(path, what)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise _too_large(path, what, limit, usual)
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise VisitplanError(
                what, str(path), _("cannot be read: {strerror}").format(strerror=exc.strerror)
            ) from None
    if len(data) > limit:
        raise _too_large(path, what, limit, usual)
    return data


def read_text(
    path: str | Path,
    what: str,
    *,
    encoding: str = "utf-8-sig",
    limit: int = MAX_READ_BYTES,
    usual: str = "",
) -> str:
    """The text of a file a user names, read as :func:`read_bytes` reads it.

    The default encoding accepts a UTF-8 BOM, as Excel and Windows editors write one; bytes
    that are not UTF-8 raise :class:`VisitplanError` naming ``what`` and the path.
    """
    data = read_bytes(path, what, limit=limit, usual=usual)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise VisitplanError(what, str(path), _("must be UTF-8 text")) from None


def size_limit(limit: int) -> str:
    """``limit`` bytes as people write it: ``4 MB``, ``512 kB``."""
    mb = 1024 * 1024
    return f"{limit // mb} MB" if limit % mb == 0 else f"{limit // 1024} kB"


def _open_regular(path: str | Path, what: str) -> int:
    """A read-only descriptor of the regular file ``path``; anything else is refused.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise VisitplanError(what, str(path), _("does not exist")) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or "not a valid path"
        raise VisitplanError(
            what, str(path), _("cannot be read: {reason}").format(reason=reason)
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise VisitplanError(
                what,
                str(path),
                _("cannot be read: {strerror}").format(strerror=os.strerror(errno.EISDIR)),
            )
        if not stat.S_ISREG(mode):
            raise VisitplanError(
                what, str(path), _("is not a regular file (a FIFO, a device or a socket)")
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_large(path: str | Path, what: str, limit: int, usual: str) -> VisitplanError:
    return VisitplanError(
        what,
        str(path),
        _("is larger than {limit}; {value}").format(
            limit=size_limit(limit), value=usual or "the limit of its reader"
        ),
    )


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

    Every name is checked with :func:`portable_names` and :func:`inside`, then written by
    :func:`write_all`: a bad name or a failed write leaves the folder exactly as it was
    (folders created for the attempt are removed again).
    """
    portable_names(files)
    return write_all((inside(folder, name), data) for name, data in files.items())


def write_all(files: Iterable[tuple[Path, str | bytes | Iterable[bytes]]]) -> list[Path]:
    """Write each ``(path, data)`` of ``files``, all or nothing (see :class:`Staging`).

    Each file is staged as it comes (so an iterator can make them one at a time, holding one
    in memory), and only once every one is staged are they renamed over their targets.
    """
    with Staging() as staging:
        for target, data in files:
            staging.add(target, data)
    return staging.written


class Staging:
    """Files written all or nothing: :meth:`add` stages each to a temporary file beside its
    target as it comes; leaving the ``with`` block renames them all over their targets, or,
    if the block raised, removes every temporary file and every folder made for them, so that
    no target has changed. ``written`` lists the targets once they are in place.
    """

    def __init__(self) -> None:
        self._made: list[Path] = []
        self._staged: list[tuple[Path, Path]] = []
        self._seen: set[Path] = set()
        self.written: list[Path] = []

    def add(self, target: Path, data: str | bytes | Iterable[bytes]) -> None:
        """Stage ``data`` (or its chunks, one at a time) for ``target``."""
        if target.is_dir():
            raise VisitplanError("output file", str(target), _("is a folder; remove it first"))
        key = target.resolve()
        if key in self._seen:
            raise VisitplanError("output file", str(target), _("would be written twice"))
        self._seen.add(key)
        self._made += _make_parents(target)
        self._staged.append((_stage(target, data), target))

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is not None:
            self._discard()
            return
        try:
            for tmp, target in self._staged:
                _replace(tmp, target)
                self.written.append(target)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        for tmp, _target in self._staged:
            tmp.unlink(missing_ok=True)
        _remove_dirs(self._made)


#: Names Windows keeps for devices, whatever their case and extension (``nul.txt.ics`` is NUL).
WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def portable_names(names: Iterable[str]) -> None:
    """Refuse file names that are not the same files everywhere a folder may be copied to.

    A part of a name that is a Windows device (``CON.ics``, ``nul.txt.ics``: Windows opens the
    device, not a file) and two names that differ only in case (``ab.ics`` and ``AB.ics``: one
    file on Windows and macOS, so one participant's calendar would replace the other's) raise
    :class:`VisitplanError` naming them.
    """
    check = PortableNames()
    for name in names:
        check(name)


class PortableNames:
    """:func:`portable_names` one name at a time, for names that come as a stream."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        for part in name.replace("\\", "/").split("/"):
            device = part.split(".")[0].rstrip(" ").upper()
            if device in WINDOWS_DEVICES:
                raise VisitplanError(
                    "output file",
                    name,
                    _(
                        "is named after a Windows device ({device}): Windows would not make it"
                    ).format(device=device),
                )
        key = name.casefold()
        if key in self._seen:
            raise VisitplanError(
                "output files",
                f"{self._seen[key]} and {name}",
                _("differ only in case: they would be one file on Windows and macOS"),
            )
        self._seen[key] = name
        return name


def inside(folder: str | Path, name: str) -> Path:
    """``folder / name``, refusing a name that would leave ``folder`` (``..``, absolute paths).

    Symbolic links are resolved first, so a link inside ``folder`` that points elsewhere is
    refused too.
    """
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if target == base or base not in target.parents:
        raise VisitplanError(
            "output name", name, _("must stay inside the folder {folder}").format(folder=folder)
        )
    return target


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of ``path``; return those created, deepest last."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VisitplanError(
            "output folder",
            str(path.parent),
            _("cannot be created: {strerror}").format(strerror=exc.strerror),
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
            "output file",
            str(path),
            _("cannot be written: {strerror}").format(strerror=exc.strerror),
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
            "output file",
            str(path),
            _("cannot be written: {strerror}").format(strerror=exc.strerror),
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
            "output file",
            str(path),
            _("cannot be written: {strerror}").format(strerror=exc.strerror),
        ) from None


def _remove_dirs(made: list[Path]) -> None:
    for d in reversed(made):
        # Not empty (someone else wrote there) or already gone: leave it.
        with contextlib.suppress(OSError):
            d.rmdir()
