"""The one exception type users see, and how it reads."""

from __future__ import annotations

import math
import re
import reprlib

from visitplan.i18n import _


class VisitplanError(ValueError):
    """A user mistake: bad input, a broken protocol, a rule the facts break.

    The message is one line naming the field, the value and the rule, so the CLI can print it
    as is and exit with code 2, and a Python caller can show it to a person.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        text = _("{field} {value}: {rule}").format(
            field=one_line(field, 200), value=_show(value), rule=rule
        )
        super().__init__(one_line(text, 2000))

    def about(self, code: str) -> VisitplanError:
        """This error with the participant it is about before its field: a command that plans
        many participants must say whose facts stopped it."""
        field = _("participant {code}: {field}").format(code=code, field=self.field)
        return VisitplanError(field, self.value, self.rule)


class ProtocolError(VisitplanError):
    """A protocol definition that cannot be used (file, field path, value, rule)."""

    def __init__(self, field: str, value: object, rule: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {field}" if source else field, value, rule)


def one_line(text: str, limit: int = 2000) -> str:
    """``text`` with control characters, line breaks and lone surrogates escaped, and cut to
    ``limit`` characters: a message built from hostile input still prints as one clean line.
    """
    clean = printable(text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def printable(text: str) -> str:
    """``text`` with control characters, line breaks and lone surrogates written escaped
    (``'\\x1b[2J'`` for an escape sequence that would clear the screen): safe to print on a
    terminal, in a table cell or a line of output, whatever a user or a file put in it."""
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)


#: C0/C1 controls (line breaks, escape sequences), Unicode line/paragraph separators, surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


#: How a value inside a container is shown: a few levels and items, each cut short, so a
#: document nested a thousand deep is shown without recursing through it.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxdict, _BRIEF.maxlist, _BRIEF.maxstring = 3, 4, 6, 40
_BRIEF.maxtuple, _BRIEF.maxset, _BRIEF.maxfrozenset, _BRIEF.maxlong = 6, 6, 6, 40
_BRIEF.maxother = 40


def _show(value: object) -> str:
    """``value`` as one line of at most 80 characters, whatever it is (nested a thousand deep,
    a number of 5,000 digits, an object whose ``str`` fails)."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict | list | tuple | set | frozenset):
        text = _BRIEF.repr(value)
    elif isinstance(value, int) and value.bit_length() > 14_000:
        # str() of an int of over 4,300 digits raises ValueError (and takes quadratic time).
        digits = int(value.bit_length() * math.log10(2))
        text = _("(a number of about {digits} digits)").format(digits=digits)
    else:
        try:
            text = str(value)
        except Exception:  # a value's own str() must not turn an error into a traceback
            text = f"({type(value).__name__})"
    return one_line(text, 80)
