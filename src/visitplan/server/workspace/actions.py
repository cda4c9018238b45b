"""The workspace's forms that change the roster. Each goes through the roster's API with the
logged-in user (so the audit trail names them); a change the rulebook refuses is shown on
the page with its one-line message, and nothing is changed."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.responses import Response

from visitplan.dates import parse_date
from visitplan.errors import VisitplanError
from visitplan.i18n import N_, _
from visitplan.server.workspace import pages
from visitplan.server.workspace.web import Call


def _participant_form(name: str, change: Callable[[Call, str], str]) -> Callable[[Call], Response]:
    """A form of the participant page: run ``change``, then back to the page with its message,
    or the page again with the refusal next to the form."""

    def run(call: Call) -> Response:
        code = call.request.path_params["code"]
        call.roster.participant(code)  # 404 for a code not enrolled
        try:
            message = change(call, code)
        except VisitplanError as exc:
            return pages.show_participant(call, code, status=400, error=(name, str(exc)))
        return call.done(f"/participants/{code}", message)

    run.__name__ = name
    return run


def _optional(call: Call, name: str) -> str | None:
    return call.field(name) or None


def _record(call: Call, code: str) -> str:
    visit = call.field("visit")
    status = call.field("status") or "done"
    call.roster.record(
        code,
        visit,
        _optional(call, "date"),
        status,
        _optional(call, "time"),
        _optional(call, "reason"),
        user=call.me.name,
    )
    return _("Recorded {code} {visit}: {status}.").format(code=code, visit=visit, status=status)


def _correct(call: Call, code: str) -> str:
    visit = call.field("visit")
    call.roster.correct(
        code,
        visit,
        date=_optional(call, "date"),
        status=_optional(call, "status"),
        time=_optional(call, "time"),
        reason=_optional(call, "reason"),
        user=call.me.name,
    )
    return _("Corrected {code} {visit}.").format(code=code, visit=visit)


def _removal(method: str, message: str) -> Callable[[Call, str], str]:
    """A form that removes something of a visit with a reason (``void``, ``void_appointment``);
    ``message`` is marked with ``N_`` where it is written."""

    def change(call: Call, code: str) -> str:
        visit = call.field("visit")
        remove = getattr(call.roster, method)
        remove(code, visit, reason=_optional(call, "reason"), user=call.me.name)
        return _(message).format(code=code, visit=visit)

    return change


_void = _removal("void", N_("Voided the record of {code} {visit}."))
_cancel = _removal("void_appointment", N_("Cancelled the appointment of {code} {visit}."))


def _book(call: Call, code: str) -> str:
    from visitplan.siteroster import book_in_store

    visit = call.field("visit")
    when, replaced, _count = book_in_store(
        call.roster,
        call.ws.site,
        code,
        visit,
        parse_date(call.field("date"), "date"),
        call.field("time"),
        reason=_optional(call, "reason"),
        user=call.me.name,
    )
    text = (
        _("Booked {code} {visit} on {when} (replaces the earlier appointment).")
        if replaced
        else _("Booked {code} {visit} on {when}.")
    )
    return text.format(code=code, visit=visit, when=when.format("YYYY-MM-DD HH:mm"))


def _bcell(call: Call, code: str) -> str:
    raw = call.field("value")
    try:
        value = float(raw)
    except ValueError:
        raise VisitplanError("bcell_count.value", raw, _("must be a number")) from None
    if not math.isfinite(value):
        raise VisitplanError("bcell_count.value", raw, _("must be a finite count of at least 0"))
    baseline = call.field("baseline") == "yes"
    count = call.roster.record_bcell(
        code,
        call.field("date") or call.roster.today(),
        value,
        pages.bcell_unit(call, call.roster.participant(code).site),
        baseline=baseline,
        reason=_optional(call, "reason"),
        user=call.me.name,
    )
    return _("Recorded the B-cell count of {code}: {value:g} {unit} on {day}.").format(
        code=code, value=count.value, unit=count.unit, day=count.date
    )


record = _participant_form("record", _record)
correct = _participant_form("correct", _correct)
void = _participant_form("void", _void)
book = _participant_form("book", _book)
cancel = _participant_form("cancel", _cancel)
bcell = _participant_form("bcell", _bcell)


def create_feed(call: Call) -> Response:
    """A new feed of the user's own; its link is shown on this response only."""
    try:
        made, token = call.roster.create_feed(
            call.field("label"),
            _optional(call, "participant"),
            reason=_optional(call, "reason"),
            user=call.me.name,
        )
    except VisitplanError as exc:
        return pages.feeds(call, error=str(exc))
    url = str(call.request.base_url).rstrip("/") + f"/feeds/{token}.ics"
    return pages.feeds(call, made=(made.label, url))


def revoke_feed(call: Call) -> Response:
    """Revoke one of the user's own feeds."""
    label = call.field("label")
    mine = {f.label for f in call.roster.feeds() if f.created_by == call.me.name}
    try:
        if label not in mine:
            raise VisitplanError("feed", label, _("is not one of your feeds"))
        call.roster.revoke_feed(label, reason=_optional(call, "reason"), user=call.me.name)
    except VisitplanError as exc:
        return pages.feeds(call, error=str(exc))
    return call.done("/account/feeds", _("Revoked feed {label}.").format(label=label))
