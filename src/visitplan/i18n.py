"""Languages: every text a person reads goes through :func:`_` (gettext), in the language of
the current context; machine outputs (JSON, CSV headers, CDISC, UIDs, exit codes) never do.

The language is a context variable, so a web request or a CLI command sets it for its own
work only: ``with use("fr"): ...``. English is the source language and the default; another
language is a gettext catalog (``locale/<lang>/LC_MESSAGES/visitplan.mo``, compiled from its
``.po`` by the build), not code. A message without a translation reads in English.

Mark a message with ``_("...")`` where it is made, with named placeholders filled after the
lookup (``_("is after today ({today})").format(today=day)``), never an f-string inside ``_``:
the catalog's entry is the template. ``N_`` marks a text for the catalog without looking it up
(a table of texts translated later, when shown).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
from collections.abc import Iterator
from pathlib import Path

#: The languages visitplan speaks: English (the source) and those with a catalog.
LANGUAGES = ("en", "fr")
DEFAULT = "en"
DOMAIN = "visitplan"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: contextvars.ContextVar[str] = contextvars.ContextVar(
    "visitplan_language", default=DEFAULT
)


def check_language(lang: object, field: str = "--lang") -> str:
    """``lang`` if visitplan speaks it, else a one-line refusal listing the languages."""
    if lang not in LANGUAGES:
        from visitplan.errors import VisitplanError

        raise VisitplanError(field, lang, f"must be one of: {', '.join(LANGUAGES)}")
    assert isinstance(lang, str)
    return lang


def language() -> str:
    """The language of the current context."""
    return _current.get()


def set_language(lang: str) -> contextvars.Token[str]:
    """Make ``lang`` the language of the current context (see :func:`use` for a block)."""
    return _current.set(check_language(lang))


@contextlib.contextmanager
def use(lang: str | None) -> Iterator[str]:
    """Speak ``lang`` inside the block (``None``: keep the current language)."""
    if lang is None:
        yield language()
        return
    token = set_language(lang)
    try:
        yield lang
    finally:
        _current.reset(token)


@functools.cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """``message`` in the current language (English when it has no translation)."""
    lang = _current.get()
    return message if lang == DEFAULT else _catalog(lang).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language."""
    lang = _current.get()
    if lang == DEFAULT:
        return singular if n == 1 else plural
    return _catalog(lang).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it here (it is translated with
    :func:`_` where it is shown)."""
    return message
