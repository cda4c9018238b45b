"""Content lines: events serialised as icalendar writes them, each shared line made once.

A property value shared by many events (a date, a status, a kind) is built once with its
line (:func:`_put`), and ASCII lines are folded by slices with icalendar's rule
(:func:`_fold`); the bytes are icalendar's own (``tests/test_ics.py`` compares them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import icalendar
from icalendar import vText

from visitplan.errors import VisitplanError


def _serialise(component: icalendar.Component, known: Mapping[int, bytes]) -> bytes:
    """``component.to_ical(sorted=False)``, the same bytes, with each shared line made once.

    Unsorted: properties in the order they were added (RFC 5545 gives them none); icalendar's
    default re-sorts every event's property and parameter names. Every line is icalendar's own
    (``Component.content_line``), but a property value shared by many events (see :func:`_put`)
    is turned into its line once, and lines are folded by :func:`_fold`: building and folding
    the same lines again for every event was most of the export (docs/performance.md).
    ``known``: id -> line of other values the caller keeps alive (the DTSTAMP of an export).
    """
    lines = []
    for name, value in component.property_items(sorted=False):
        key = id(value)
        line = known.get(key) or _LINES.get(key)
        if line is None:
            if name == "BEGIN" or name == "END":  # the component's name, made anew each time
                mark = (name, value)
                line = _MARKS.get(mark)
                if line is None:
                    line = _MARKS[mark] = _line(component, name, value)
            else:
                line = _line(component, name, value)
        lines.append(line)
    lines.append(b"")
    return b"\r\n".join(lines)


def _line(component: icalendar.Component, name: str, value: object) -> bytes:
    """The content line of property ``name`` = ``value``: icalendar's, folded, encoded.

    Every line of the export is made here, so this is where TEXT is made safe: a value whose
    line would hold a raw control character (a CR, which icalendar leaves unescaped and
    vobject reads as a line end, forging properties and events; an ESC; a NUL) is written
    as :func:`text_value` makes it, and a line that still holds one is never written.
    """
    if isinstance(value, str) and _TEXT_CONTROL.search(value):
        value = vText(text_value(value))
    line = component.content_line(name, value, sorted=False)
    if _RAW_CONTROL.search(line):
        raise VisitplanError(f"calendar property {name}", str(line), _CONTROL_RULE)
    return _fold(line)


#: What RFC 5545 allows in no content line (3.1, 3.3.11): controls other than HTAB. A TEXT
#: line break is written escaped (``\\n``). Lone surrogates cannot be written as UTF-8.
_RAW_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
#: Also replaced in TEXT values: C1 controls and the Unicode line and paragraph separators,
#: which some readers take for line ends (Python's str.splitlines does).
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_RULE = "must not contain control characters"


def text_value(text: str) -> str:
    """``text`` as an iCalendar TEXT value can carry it: a CR LF or a lone CR becomes a line
    break (written escaped as ``\\n``), and every other control character, C1 control, line
    or paragraph separator and lone surrogate becomes U+FFFD (the replacement character)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_CONTROL.sub("\ufffd", text)


def _fold(line: str) -> bytes:
    """``Contentline.to_ical()``: the line folded as icalendar folds it, encoded.

    icalendar 7.3 folds character by character, every line, short or long (its ``_foldline``,
    once the largest cost of the export, and again when French texts made most descriptions
    non-ASCII). The line is folded here over its UTF-8 octets with the same rule: at most 74
    octets per piece, never inside a character (RFC 5545 3.1), and a piece never ends with
    the ``\\`` or ``^`` of an escape, which moves to the next piece (icalendar issue 1501:
    Google Calendar drops events whose escapes are split). ``tests/test_ics.py`` checks it
    against icalendar's own on ASCII, accented, CJK and emoji text.
    """
    data = line.encode("utf-8")
    size = len(data)
    if size < 75:
        return data
    pieces = []
    start = 0
    while size - start > 74:
        end = start + 74
        while data[end] & 0xC0 == 0x80:  # a continuation octet: the character does not fit
            end -= 1
        if data[end - 1] in _ESCAPES:
            end -= 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return b"\r\n ".join(pieces)


#: The octets an escape starts with (TEXT's backslash, RFC 6868's caret).
_ESCAPES = frozenset(b"\\^")


#: Property values built once and shared by every event (they are never changed once built):
#: what ``Component.add`` makes of a date, a status or a kind is the same object each time, so
#: building it again for each of hundreds of thousands of events was most of the export's own
#: time (see docs/performance.md). Bounded: dates over a few years and a few constants.
_PROPS: dict[tuple[str, type, object], object] = {}
_PROPS_MAX = 20_000
#: id -> the content line of each value in _PROPS, made with it (see _serialise). _PROPS keeps
#: the values alive, so an id here is never reused by another object.
_LINES: dict[int, bytes] = {}
#: (BEGIN or END, a component name) -> its line.
_MARKS: dict[tuple[str, object], bytes] = {}


def _put(component: icalendar.Component, name: str, value: object) -> None:
    """``component.add(name, value)`` for a property it does not have yet, from the cache.

    Only for values whose equality means the same text: dates, strings, numbers, durations and
    lists of strings (never aware datetimes, which compare equal across zones).
    """
    key = (name, type(value), tuple(value) if isinstance(value, list) else value)
    prop = _PROPS.get(key)
    if prop is None:
        holder = icalendar.Event()
        holder.add(name, value)
        prop = holder[name]
        if len(_PROPS) < _PROPS_MAX:
            _LINES[id(prop)] = _line(holder, name, prop)
            _PROPS[key] = prop
    component[name] = prop
