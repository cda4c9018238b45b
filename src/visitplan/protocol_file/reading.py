"""Reading a protocol file's text: TOML, JSON or YAML, size limits, and the field reader.

:func:`parse` turns text into plain data (refusing duplicate keys, NaN, lone surrogates);
:class:`Reader` walks that data, converting fields and collecting every error with its field
path. The site file reader (:mod:`visitplan.site`) uses the same :class:`Reader`.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from visitplan.codes import NAME_RULE, is_name, is_visit_code
from visitplan.dates import MAX_YEAR, MIN_YEAR
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.fileio import read_text
from visitplan.i18n import _
from visitplan.model import Anchor, Offset, Unit

T = TypeVar("T")

_OFFSET = re.compile(r"^\s*([+-]?\d+)\s*([A-Za-z]+)\s*\Z", re.ASCII)
_UNITS = {
    "day": Unit.DAYS,
    "days": Unit.DAYS,
    "week": Unit.WEEKS,
    "weeks": Unit.WEEKS,
    "month": Unit.MONTHS,
    "months": Unit.MONTHS,
}
#: The file formats :func:`~visitplan.protocol_file.load` reads, by suffix (YAML needs the
#: optional PyYAML).
FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
#: No offset can be longer than the supported calendar: from any date inside it, it would
#: leave it. Derived from the calendar's years, so it is not a protocol number.
_CALENDAR_YEARS = MAX_YEAR - MIN_YEAR + 1
_MAX_OFFSET = {
    Unit.DAYS: _CALENDAR_YEARS * 366,
    Unit.WEEKS: _CALENDAR_YEARS * 366 // 7,
    Unit.MONTHS: _CALENDAR_YEARS * 12,
}
#: Control characters (and lone surrogates, which cannot be written as UTF-8) in a text field.
#: A language code: ISO 639 (fr, de), with a region when needed (pt_BR).
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?", re.ASCII)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: A protocol file is a few kilobytes; anything far larger is a wrong file, not a protocol.
MAX_FILE_BYTES = 4 * 1024 * 1024


class ProtocolErrors(ProtocolError):
    """Several protocol errors at once; ``errors`` lists each as a :class:`ProtocolError`."""

    def __init__(self, errors: list[ProtocolError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.field, first.value, first.rule + more)
        self.args = (str(first) + more,)


class _Missing:
    """Shown as the value of a required field that is absent."""

    def __str__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


class Reader:
    """Walks the raw document, converting and collecting errors with their field paths."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ProtocolError] = []

    def error(self, path: str, value: object, rule: str) -> None:
        self.errors.append(ProtocolError(path, value, rule, self.source))

    def table(
        self, raw: object, path: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any]:
        if raw is None:
            return {}  # an absent table: the parent reports it if it is required
        if not isinstance(raw, Mapping):
            self.error(path or "document", raw, _("must be a table"))
            return {}
        self.duplicates(raw, path)
        for key in raw:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else key, raw[key], _("unknown field"))
        # A JSON null is no value: a required field given as null is missing.
        for key in sorted(required - {k for k, v in raw.items() if v is not None}):
            self.error(f"{path}.{key}" if path else key, _MISSING, _("is required"))
        return dict(raw)

    def duplicates(self, raw: Mapping[str, Any], path: str) -> None:
        for key in getattr(raw, "duplicate_keys", ()):
            self.error(f"{path}.{key}" if path else key, key, _("duplicate key"))

    def text(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        default: str | None = None,
        *,
        multiline: bool = False,
    ) -> str:
        value = raw.get(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.error(f"{path}.{key}", value, _("must be text"))
            return ""
        if _CONTROL.search(value) or (not multiline and ("\n" in value or "\t" in value)):
            self.error(
                f"{path}.{key}", value, _("must not contain control characters or line breaks")
            )
            return ""
        return value

    def translations(self, raw: Mapping[str, Any], path: str) -> dict[str, str]:
        """The ``translations`` table of an item: language code -> its name in that language
        (``{ fr = "Fin de traitement" }``); empty when there is none."""
        value = raw.get("translations")
        if value is None:
            return {}
        field = f"{path}.translations"
        if not isinstance(value, Mapping):
            self.error(field, value, _('must be a table of names by language, e.g. { fr = "..." }'))
            return {}
        self.duplicates(value, field)
        out: dict[str, str] = {}
        for lang in value:
            if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
                self.error(field, lang, _("a language code is 2 or 3 lower-case letters (fr, de)"))
                continue
            if not isinstance(value[lang], str) or not value[lang].strip():
                self.error(f"{field}.{lang}", value[lang], _("must be non-empty text"))
                continue
            text = self.text(value, lang, field)
            if text:
                out[lang] = text
        return out

    def enum(self, raw: Mapping[str, Any], key: str, path: str, kind: type[T], default: T) -> T:
        value = raw.get(key)
        if value is None:
            return default
        try:
            return kind(value)  # type: ignore[call-arg]
        except ValueError:
            choices = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
            self.error(
                f"{path}.{key}", value, _("must be one of: {choices}").format(choices=choices)
            )
            return default

    def offset(self, raw: object, path: str, *, months: bool = True) -> Offset | None:
        if raw is None:
            return None
        m = _OFFSET.match(raw) if isinstance(raw, str) else None
        if not m:
            self.error(
                path, raw, _("must be an amount and a unit, e.g. '3 days', '4 weeks', '5 months'")
            )
            return None
        unit = _UNITS.get(m.group(2).lower())
        if unit is None:
            self.error(
                path,
                raw,
                _("unknown unit {group!r}; units: days, weeks, months").format(group=m.group(2)),
            )
            return None
        if unit is Unit.MONTHS and not months:
            self.error(
                path, raw, _("must be in days or weeks: a calendar month has no fixed length")
            )
            return None
        number = m.group(1)
        sign = "-" if number.startswith("-") else ""
        digits = number.lstrip("+-").lstrip("0") or "0"
        # Compare lengths first: Python's int() itself refuses strings of over 4300 digits.
        value = int(sign + digits) if len(digits) <= 12 else _MAX_OFFSET[unit] + 1
        if abs(value) > _MAX_OFFSET[unit]:
            self.error(
                path,
                raw,
                _(
                    "is longer than the {CALENDAR_YEARS} years of the supported calendar "
                    "({MIN_YEAR}-{MAX_YEAR}); at most {MAX_OFFSET} {unit}"
                ).format(
                    CALENDAR_YEARS=_CALENDAR_YEARS,
                    MIN_YEAR=MIN_YEAR,
                    MAX_YEAR=MAX_YEAR,
                    MAX_OFFSET=_MAX_OFFSET[unit],
                    unit=unit.value,
                ),
            )
            return None
        return Offset(value, unit)

    def anchor(self, raw: object, path: str) -> Anchor | None:
        if raw == "screening":
            return Anchor.screening()
        if raw == "last-dose":
            return Anchor.last_dose()
        if is_visit_code(raw):
            return Anchor.of_visit(raw)
        if raw is None:
            return None  # reported as a missing required field
        self.error(path, raw, _("must be 'screening', 'last-dose' or a visit code"))
        return None

    def code(self, raw: Mapping[str, Any], key: str, path: str) -> str | None:
        """An optional reference to a visit code (checked against the visits later)."""
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f"{path}.{key}", value, _("must be text (a visit code)"))
            return None
        return value

    def name(self, raw: object, path: str) -> str | None:
        if raw is None:
            return None
        if not is_name(raw):
            self.error(path, raw, NAME_RULE)
            return None
        return raw


class _Table(dict[str, Any]):
    """A JSON/YAML object that remembers the keys it saw twice (TOML refuses them itself)."""

    duplicate_keys: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _Table:
    table = _Table()
    dups: list[str] = []
    for key, value in pairs:
        if key in table:
            dups.append(key)
        table[key] = value
    table.duplicate_keys = tuple(dups)
    return table


#: The most nodes a YAML document may stand for once its aliases are followed. A protocol
#: is a few hundred; ten aliases of ten aliases of ... (a "billion laughs" in 400 bytes) stand
#: for billions, and walking them takes hours even though the parser shares them.
MAX_YAML_NODES = 100_000


def _parse_yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise VisitplanError(
            "protocol file", source, _("is YAML, which needs PyYAML: pip install 'visitplan[yaml]'")
        ) from None

    class Loader(yaml.SafeLoader):
        def construct_document(self, node: yaml.Node) -> Any:
            _check_yaml_size(node, source)
            return super().construct_document(node)

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Table:
        pairs = [
            (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
            for k, v in node.value
        ]
        return _json_object([(str(k), v) for k, v in pairs])

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ProtocolErrors(
            [ProtocolError("file", source, _("is not valid YAML: {detail}").format(detail=detail))]
        ) from None


def _check_yaml_size(root: Any, source: str) -> None:
    """Refuse a YAML document that stands for more than :data:`MAX_YAML_NODES` nodes once its
    aliases are followed, or whose aliases refer to themselves.

    Counted over the node graph without expanding it: each node's size is worked out once.
    """
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _yaml_children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            if size[key] > MAX_YAML_NODES:
                raise ProtocolErrors(
                    [ProtocolError("file", source, _("is not a protocol: its YAML aliases "
"stand for more than {MAX_YAML_NODES:,} "
"values").format(MAX_YAML_NODES=MAX_YAML_NODES))]
                )  # fmt: skip
            continue
        if key in size:
            continue
        if key in on_path:
            raise ProtocolErrors(
                [ProtocolError("file", source, _("is not valid YAML: an alias refers to itself"))]
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _yaml_children(node: Any) -> list[Any]:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
        return [n for pair in value for n in pair]
    return value


def parse(text: str, *, source: str = "<protocol>", fmt: str = "toml") -> Any:
    """The plain data of protocol text in ``fmt``; raise :class:`ProtocolErrors` if unreadable.

    JSON and YAML objects with a key given twice are refused (TOML refuses them itself), and
    so are NaN and infinities in any format (TOML's ``nan``, YAML's ``.inf``).
    """
    if not isinstance(text, str):
        raise ProtocolError("file", type(text).__name__, _("must be text (str)"), source)
    raw: Any
    kind = fmt.upper()
    try:
        if fmt == "json":
            raw = json.loads(text, object_pairs_hook=_json_object, parse_constant=_no_constant)
        elif fmt == "yaml":
            raw = _parse_yaml(text, source)
        elif fmt == "toml":
            raw = tomllib.loads(text)
        else:
            raise VisitplanError("format", fmt, _("must be one of: toml, json, yaml"))
    except VisitplanError:
        raise  # already one line (YAML's own errors, a missing PyYAML): not a "number" error
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, _JSONRefusal) as exc:
        raise ProtocolErrors(
            [
                ProtocolError(
                    "file", source, _("is not valid {kind}: {exc}").format(kind=kind, exc=exc)
                )
            ]
        ) from None
    except RecursionError:
        raise ProtocolErrors(
            [
                ProtocolError(
                    "file", source, _("is not valid {kind}: nested too deeply").format(kind=kind)
                )
            ]
        ) from None
    except ValueError:  # int() refuses numbers of more than 4300 digits
        raise ProtocolErrors(
            [
                ProtocolError(
                    "file", source, _("is not valid {kind}: a number is too long").format(kind=kind)
                )
            ]
        ) from None
    if not text.strip():
        raise ProtocolErrors([ProtocolError("file", source, _("is empty"))])
    bad = _bad_value(raw)
    if isinstance(bad, str):
        raise ProtocolErrors(
            [
                ProtocolError(
                    "file",
                    source,
                    _("holds text that is not valid Unicode: {bad!r}").format(bad=bad),
                )
            ]
        )
    if bad is not None:
        path, number = bad
        raise ProtocolErrors(
            [
                ProtocolError(
                    path, number, _("must be a finite number (not NaN or infinite)"), source
                )
            ]
        )
    return raw


class _JSONRefusal(ValueError):
    """JSON that parses but cannot be a protocol: duplicate keys, NaN or Infinity."""


def _no_constant(name: str) -> Any:
    raise _JSONRefusal(f"{name} is not a number")


def _bad_value(raw: object) -> str | tuple[str, float] | None:
    """The first string holding a lone surrogate (JSON's ``"\\ud800"``), or (field path,
    number) of the first number that is NaN or infinite (TOML's ``nan``, YAML's ``.inf``)."""
    stack: list[tuple[str, object]] = [("", raw)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if re.search("[\ud800-\udfff]", item):
                return item
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path or "file", item
        elif isinstance(item, Mapping):
            for key, value in item.items():
                stack.append(("", key))
                stack.append((f"{path}.{key}" if path else str(key), value))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", value) for i, value in enumerate(item))
    return None


def read_file(path: Path) -> tuple[str, str]:
    """The text of protocol file ``path`` and its format, after the checks of its name and size."""
    if path.is_dir():
        raise VisitplanError("protocol file", str(path), _("is a folder, not a protocol file"))
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VisitplanError(
            "protocol file",
            str(path),
            _("must end in one of: {items}").format(items=", ".join(FORMATS)),
        )
    text = read_text(path, "protocol file", limit=MAX_FILE_BYTES, usual="a protocol is a few kB")
    return text, fmt


def builtin_names() -> list[str]:
    """The protocols shipped with visitplan."""
    folder = resources.files("visitplan") / "protocols"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )
