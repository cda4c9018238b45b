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
Human dates (tables, calendar descriptions) are written in the language's own form by
:func:`human_date` ("lun. 8 mars 2027"); machine outputs and what users type keep ISO dates.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import gettext
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT = "en"
DOMAIN = "visitplan"
LOCALE_DIR = Path(__file__).parent / "locale"


def _languages() -> tuple[str, ...]:
    """English and every language with a catalog under :data:`LOCALE_DIR`: a new language is a
    folder ``locale/<lang>/LC_MESSAGES`` with its ``visitplan.po`` (and, once built, ``.mo``)."""
    found = set()
    if LOCALE_DIR.is_dir():
        for folder in LOCALE_DIR.iterdir():
            messages = folder / "LC_MESSAGES"
            if any((messages / f"{DOMAIN}{ext}").is_file() for ext in (".po", ".mo")):
                found.add(folder.name)
    return (DEFAULT, *sorted(found - {DEFAULT}))


#: The languages visitplan speaks: English (the source) and those with a catalog.
LANGUAGES = _languages()

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


@contextlib.contextmanager
def speaking(lang: str | None) -> Iterator[str]:
    """:func:`use` for a language that may not be one visitplan speaks (a protocol's own, say
    ``de``): then the block keeps the current language."""
    with use(lang if lang in LANGUAGES else None) as current:
        yield current


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


def human_date(day: datetime.date, lang: str | None = None) -> str:
    """``day`` as a person reads it in ``lang`` (default: the current language), weekday
    first: "Mon 8 Mar 2027", "lun. 8 mars 2027" (Babel's CLDR data)."""
    return _human_date(datetime.date(day.year, day.month, day.day), lang or language())


@functools.lru_cache(maxsize=8192)
def _human_date(day: datetime.date, lang: str) -> str:
    # Babel parses its pattern and walks CLDR data on every call: a site calendar names the
    # same few hundred days tens of thousands of times.
    from babel.dates import format_date

    return str(format_date(day, "EEE d MMM y", locale=lang))


def shown_date(day: datetime.date) -> str:
    """``day`` as a person reads it in the current language: ISO in English (the form users
    type and the English outputs have always shown), :func:`human_date` in any other."""
    lang = language()
    return day.isoformat() if lang == DEFAULT else human_date(day, lang)


def holiday_language(supported: Sequence[str], lang: str | None = None) -> str | None:
    """The language code the ``holidays`` package uses for ``lang`` among ``supported``
    (``fr`` -> ``fr``, ``en`` -> ``en_US``), or None if it has none of it."""
    lang = lang or language()
    if lang in supported:
        return lang
    for code in sorted(supported):
        if code.split("_")[0] == lang:
            return code
    return None
