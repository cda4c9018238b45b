"""The engine's words: why it refuses a record, flags a visit or leaves an occurrence out of
the plan, in the current language (visitplan.i18n). The engine decides; these only say it,
each rule in one place, so that the planning code reads as planning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from visitplan.i18n import _, ngettext

if TYPE_CHECKING:
    import pendulum

    from visitplan.model import Visit


def before_screening(screening: pendulum.Date) -> str:
    """A recorded date before the participant's screening."""
    return _("is before the screening date {screening}; no visit precedes screening").format(
        screening=screening
    )


def after_today(today: pendulum.Date) -> str:
    """A visit recorded done on a day still to come."""
    return _("is after today ({today}); only a visit that happened is done").format(today=today)


def no_end(limit: int) -> str:
    """A repeat that would go past ``limit`` occurrences (a protocol mistake)."""
    return _("does not end within {MAX_OCCURRENCES} occurrences").format(MAX_OCCURRENCES=limit)


def outside_strict_window(earliest: pendulum.Date, latest: pendulum.Date, name: str) -> str:
    """A date outside a strict window (refused, never flagged)."""
    return _("must be between {earliest} and {latest} (the strict window of {name})").format(
        earliest=earliest, latest=latest, name=name
    )


def dose_gap(after: pendulum.Date, before: pendulum.Date, days: int, min_dose_gap: object) -> str:
    """A dose given fewer than ``min_dose_gap`` after the one before it."""
    return _(
        "dose on {after} is {days} days after the previous one ({before}); the minimum is "
        "{min_dose_gap}"
    ).format(after=after, days=days, before=before, min_dose_gap=min_dose_gap)


def missed(reason: str | None) -> str:
    """A visit recorded as missed, with the reason recorded if any."""
    if reason:
        return _("recorded as missed: {reason}").format(reason=reason)
    return _("recorded as missed")


def done_after_stop(day: pendulum.Date, visit: str | None, stop: pendulum.Date) -> str:
    """An occurrence done after the visit that ends its repeat."""
    return _("done {day}, after {visit} ({stop})").format(day=day, visit=visit, stop=stop)


def ended(
    v: Visit,
    k: int,
    target: pendulum.Date,
    limit: pendulum.Date | None,
    stop_event: pendulum.Date | None,
    stop_visit: pendulum.Date | None,
) -> str:
    """Why occurrence ``k`` (from 0) of repeat ``v``, at ``target``, is not in the plan: its
    count, its time limit, the event or the visit that ends it (in this order)."""
    rep = v.repeat
    assert rep is not None
    if rep.count is not None and k >= rep.count:
        return ngettext(
            "the protocol plans {n} occurrence", "the protocol plans {n} occurrences", rep.count
        ).format(n=rep.count)
    if limit is not None and target > limit:
        return _("its target {target} is after {anchor} + {until} ({limit})").format(
            target=target, anchor=v.anchor, until=rep.until, limit=limit
        )
    if stop_event is not None and target > stop_event:
        return _("its target {target} is after {event} on {day}").format(
            target=target, event=rep.stop_event, day=stop_event
        )
    return _("its target {target} is on or after {visit} ({day})").format(
        target=target, visit=rep.stop_visit, day=stop_visit
    )
