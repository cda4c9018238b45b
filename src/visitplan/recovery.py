"""B-cell recovery derived from recorded counts (pure functions, no date arithmetic).

The protocol's rule (default-protocol.md): recovery is a blood B-cell count at or above
min(lower limit of normal, the participant's own pre-treatment baseline count). The lower limit
of normal is a site setting (``bcell_lln`` of the protocol's ``[[sites]]`` entry).

Choices made here (documented in docs/events-and-conditions.md):

- Counts dated on or before Day 1 are pre-treatment (the Day 1 sample is drawn before the first
  dose); recovery is looked for only in counts dated strictly after Day 1.
- The baseline is the participant's ``bcell_baseline`` when given, else the latest count dated
  on or before Day 1; with neither, the threshold is the lower limit of normal alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import pendulum

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Protocol
from visitplan.participant import Count, Participant


def baseline(counts: Iterable[Count], day1: pendulum.Date, given: float | None) -> float | None:
    """The pre-treatment count: ``given`` if set, else the latest count on or before Day 1."""
    if given is not None:
        return given
    before = [c for c in counts if c.date <= day1]
    return max(before, key=lambda c: c.date).value if before else None


def threshold(lln: float, baseline_count: float | None) -> float:
    """The recovery threshold: min(lower limit of normal, baseline), or the LLN alone."""
    return lln if baseline_count is None else min(lln, baseline_count)


def recovery_date(
    counts: Iterable[Count], day1: pendulum.Date, limit: float
) -> pendulum.Date | None:
    """The date of the first count after Day 1 at or above ``limit``, or None (not yet)."""
    for c in sorted(counts, key=lambda c: c.date):
        if c.date > day1 and c.value >= limit:
            return c.date
    return None


def derived_recovery(
    protocol: Protocol, participant: Participant, day1: pendulum.Date
) -> pendulum.Date | None:
    """Recovery derived from the participant's counts against their site's limit.

    Returns None when there are no counts after Day 1 or none reaches the threshold. Raises
    :class:`VisitplanError` when counts exist but the site defines no ``bcell_lln``.
    """
    counts = participant.bcell_counts
    if not any(c.date > day1 for c in counts):
        return None
    site = protocol.site_of(participant.site)
    if site.bcell_lln is None:
        raise VisitplanError(
            f"sites.{site.code}.bcell_lln",
            None,
            _("is needed to derive B-cell recovery from counts (or record the recovery date)"),
        )
    limit = threshold(site.bcell_lln, baseline(counts, day1, participant.bcell_baseline))
    return recovery_date(counts, day1, limit)
