"""Protocol files: read (TOML, JSON or YAML) into the model with strict validation, and write back.

A protocol file is meant to be read and reviewed by a person; see docs/protocol-files.md.
Validation collects every error it can find before raising, so ``visitplan protocol check``
reports them all at once.

The package is split by seam: :mod:`~visitplan.protocol_file.reading` (text, formats, size
limits, the field reader), :mod:`~visitplan.protocol_file.building` (the model from a parsed
document), :mod:`~visitplan.protocol_file.checks` (references, cycles, unique codes) and
:mod:`~visitplan.protocol_file.writing`. The public API is the names below.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Protocol
from visitplan.protocol_file.building import from_dict
from visitplan.protocol_file.reading import (
    FORMATS,
    MAX_FILE_BYTES,
    ProtocolErrors,
    builtin_names,
    parse,
    read_file,
)
from visitplan.protocol_file.writing import dumps, to_dict

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "ProtocolErrors",
    "builtin",
    "builtin_names",
    "dumps",
    "from_dict",
    "load",
    "loads",
    "to_dict",
]


def loads(text: str, *, source: str = "<protocol>", fmt: str = "toml") -> Protocol:
    """Parse a protocol from TOML, JSON or YAML text; raise :class:`ProtocolErrors` if invalid.

    JSON and YAML objects with a key given twice are refused (TOML refuses them itself).
    """
    return from_dict(parse(text, source=source, fmt=fmt), source=source)


def load(path: str | Path) -> Protocol:
    """Read a protocol file (``.toml``, ``.json``, or ``.yaml``/``.yml`` with PyYAML)."""
    path = Path(path)
    text, fmt = read_file(path)
    return loads(text, source=str(path), fmt=fmt)


def builtin(name: str = "NCT05124925") -> Protocol:
    """A protocol shipped with visitplan, loaded through the same path as any protocol file."""
    if name not in builtin_names():
        raise VisitplanError(
            "protocol",
            name,
            _("is not built in; built in: {items}").format(items=", ".join(builtin_names())),
        )
    text = (resources.files("visitplan") / "protocols" / f"{name}.toml").read_text(encoding="utf-8")
    return loads(text, source=f"builtin:{name}")
