"""The one exception type users see, and how it reads."""

from __future__ import annotations


class VisitplanError(ValueError):
    """A user mistake: bad input, a broken protocol, a rule the facts break.

    The message is one line naming the field, the value and the rule, so the CLI can print it
    as is and exit with code 2, and a Python caller can show it to a person.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field} {_show(value)}: {rule}")


class ProtocolError(VisitplanError):
    """A protocol definition that cannot be used (file, field path, value, rule)."""

    def __init__(self, field: str, value: object, rule: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {field}" if source else field, value, rule)


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= 80 else text[:77] + "..."
