"""Checks across a protocol's parts: references, anchor cycles and unique codes.

Each check reports through the :class:`~visitplan.protocol_file.reading.Reader`, so every
error of a file is found before any is raised.
"""

from __future__ import annotations

from collections.abc import Mapping

from visitplan.codes import reads_as_occurrence
from visitplan.engine import _LAST_DOSE, _topological
from visitplan.errors import ProtocolError
from visitplan.i18n import N_, _
from visitplan.model import (
    AnchorKind,
    Epoch,
    Milestone,
    Protocol,
    Rules,
    Translations,
    Visit,
    Washout,
)
from visitplan.protocol_file.reading import Reader


def check_references(
    r: Reader,
    visits: list[Visit],
    epochs: list[Epoch],
    rules: Rules,
    day1: str | None,
    screening_visit: str | None,
    no_visits: bool,
) -> None:
    """Cross-references: epochs, anchors, cycles, and what the engine needs of Day 1."""
    by_code = {v.code: v for v in visits if v.code}
    epoch_codes = {e.code for e in epochs}
    for v in visits:
        if v.epoch and v.epoch not in epoch_codes:
            r.error(
                f"visits.{v.code}.epoch",
                v.epoch,
                _("unknown epoch; defined: {items}").format(items=", ".join(sorted(epoch_codes))),
            )
        for a, where in (
            (v.anchor, "anchor"),
            (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
        ):
            if a is None or a.kind is not AnchorKind.VISIT:
                continue
            target = by_code.get(a.visit or "")
            if target is None:
                r.error(f"visits.{v.code}.{where}", a.visit, _("unknown visit"))
            elif target is v:
                r.error(f"visits.{v.code}.{where}", a.visit, _("a visit cannot anchor on itself"))
            elif target.repeat:
                r.error(
                    f"visits.{v.code}.{where}", a.visit, _("cannot anchor on a repeating visit")
                )
            elif target.condition and target.condition != v.condition:
                r.error(
                    f"visits.{v.code}.{where}",
                    a.visit,
                    _(
                        "anchors on a visit that only applies when flagged {condition}; give "
                        "this visit condition = {condition!r} too"
                    ).format(condition=target.condition),
                )
        stop = v.repeat.stop_visit if v.repeat else None
        if stop is not None:
            target = by_code.get(stop)
            path = f"visits.{v.code}.repeat.stop_visit"
            if target is None:
                r.error(path, stop, _("unknown visit"))
            elif target.repeat:
                r.error(path, stop, _("cannot stop at a repeating visit"))
            elif target.condition and target.condition != v.condition:
                r.error(
                    path,
                    stop,
                    _("only applies when flagged {condition}").format(condition=target.condition),
                )
        if v.repeat:
            for other in visits:
                if other is not v and reads_as_occurrence(other.code, v.code):
                    # FU repeating makes FU1, FU2, ...: a visit FU1 (or a repeat FU1 making
                    # FU12) would share a code with an occurrence; records could not tell.
                    r.error(
                        f"visits.{other.code}.code",
                        other.code,
                        _("clashes with the occurrence codes of the repeating visit {code}").format(
                            code=v.code
                        ),
                    )
    if day1 is not None and by_code and day1 not in by_code:
        r.error("study.day1_visit", day1, _("unknown visit"))
    elif day1 is not None and day1 in by_code:
        d1 = by_code[day1]
        if d1.repeat or d1.condition or d1.wait_for:
            r.error(
                "study.day1_visit",
                day1,
                _(
                    "Day 1 must be a single visit that applies to every participant (no repeat, "
                    "condition or wait_for)"
                ),
            )
    if screening_visit is not None and screening_visit not in by_code:
        r.error("study.screening_visit", screening_visit, _("unknown visit"))
    elif screening_visit is not None:
        sv = by_code[screening_visit]
        if sv.anchor.kind is not AnchorKind.SCREENING or sv.offset.value or sv.repeat:
            # The engine records this visit as done on the screening date itself.
            r.error(
                "study.screening_visit",
                screening_visit,
                _(
                    "the screening visit happens on the screening date: anchor = 'screening', "
                    "offset = '0 days', no repeat"
                ),
            )
    if rules.early_end_visit is not None and rules.early_end_visit not in by_code:
        r.error("rules.early_end_visit", rules.early_end_visit, _("unknown visit"))
    elif rules.early_end_visit is not None and by_code[rules.early_end_visit].repeat:
        r.error(
            "rules.early_end_visit",
            rules.early_end_visit,
            _("must be a visit that does not repeat"),
        )
    if no_visits:
        r.error("visits", [], _("a protocol needs at least one visit"))
    if not any(v.is_dosing for v in visits):
        for v in visits:
            for a, where in (
                (v.anchor, "anchor"),
                (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
            ):
                if a is not None and a.kind is AnchorKind.LAST_DOSE:
                    r.error(
                        f"visits.{v.code}.{where}",
                        "last-dose",
                        _("no visit gives a dose (a procedure with a dose)"),
                    )
    _check_cycles(r, visits, by_code)


def _check_cycles(r: Reader, visits: list[Visit], by_code: Mapping[str, Visit]) -> None:
    """Report an anchor cycle with its path, e.g. ``A -> B -> A`` (unknown anchors aside).

    The engine's dependency order finds the cycle, so loading and planning share one check;
    this names the field of the cycle's first visit in the file that closes it.
    """
    nodes = list(by_code.values())
    # The engine's graph is keyed by visit number, zero-padded: its report then starts at the
    # least key, the cycle's first visit in the file, and a malformed code (reported on its
    # own, but still planned here) cannot be mistaken for the report's arrows.
    width = len(str(len(nodes)))
    key = {v.code: f"{i:0{width}d}" for i, v in enumerate(nodes)}
    shown = {k: code for code, k in key.items()} | {_LAST_DOSE: "last-dose"}
    edges: dict[str, list[tuple[str, str]]] = {
        _LAST_DOSE: [(key[v.code], "dose") for v in nodes if v.is_dosing]
    }
    for v in nodes:
        out: list[tuple[str, str]] = []
        for a, where in (
            (v.anchor, "anchor"),
            (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
        ):
            if a is not None and a.kind is AnchorKind.VISIT:
                if a.visit is not None and a.visit in by_code and a.visit != v.code:
                    out.append((key[a.visit], where))
            elif a is not None and a.kind is AnchorKind.LAST_DOSE:
                out.append((_LAST_DOSE, where))
        stop = v.repeat.stop_visit if v.repeat else None
        if stop is not None and stop in by_code and stop != v.code:
            out.append((key[stop], "repeat.stop_visit"))
        edges[key[v.code]] = out
    try:
        _topological({node: {dep for dep, _ in out} for node, out in edges.items()})
    except ProtocolError as exc:
        # The engine prints the loop from its least key, the last dose as "last dose".
        loop = [_LAST_DOSE if n == "last dose" else n for n in str(exc.value).split(" -> ")]
        loop = loop[:-1]
        n = len(loop)
        if not all(any(d == loop[(i + 1) % n] for d, _ in edges[loop[i]]) for i in range(n)):
            loop.reverse()  # read it as "anchors on", the way the file is written
        start = loop.index(min(n for n in loop if n != _LAST_DOSE))
        loop = loop[start:] + loop[:start]
        first, to = loop[0], loop[1 % n]
        field = next(where for dep, where in edges[first] if dep == to)
        names = [shown[n] for n in loop]
        r.error(
            f"visits.{shown[first]}.{field}",
            shown[to],
            _("anchors form a cycle: {items}").format(items=" -> ".join([*names, names[0]])),
        )


def check_unique(r: Reader, codes: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for c in codes:
        if not c:
            continue  # a missing code is reported as a missing field
        if c in seen:
            r.error(f"{path}.{c}", c, _("duplicate {what}").format(what=_(what)))
        seen.add(c)


def check_events_and_washouts(
    r: Reader, visits: list[Visit], milestones: list[Milestone], washouts: list[Washout]
) -> None:
    once = {v.code for v in visits if v.repeat is None}
    every = {v.code for v in visits if v.repeat is not None}
    check_unique(r, [m.code for m in milestones], "milestones", N_("milestone code"))
    check_unique(r, [w.code for w in washouts], "washouts", N_("washout code"))
    for m in milestones:
        a = m.anchor
        if a.kind is AnchorKind.VISIT and a.visit not in once:
            rule = "cannot anchor on a repeating visit" if a.visit in every else "unknown visit"
            r.error(f"milestones.{m.code}.anchor", a.visit, rule)
    for w in washouts:
        if w.binds and w.binds not in once:
            rule = "cannot bind a repeating visit" if w.binds in every else "unknown visit"
            r.error(f"washouts.{w.code}.binds", w.binds, rule)


def translation_gaps(protocol: Protocol) -> dict[str, list[str]]:
    """Language -> the fields that have no text in it, for every language the protocol
    translates anything into (``{"fr": ["visits.HBV.name"]}``): a person reading the protocol
    in that language would meet those in the protocol's own language. Not an error."""
    named: list[tuple[str, Translations]] = [
        (f"epochs.{e.code}.name", e.translations) for e in protocol.epochs
    ]
    procedures = {}
    for v in protocol.visits:
        named.append((f"visits.{v.code}.name", v.translations))
        for p in v.procedures:
            procedures[p.code] = p
    for p in procedures.values():
        named.append((f"procedures.{p.code}.name", p.translations))
        if p.dose is not None and p.dose.presentation:
            named.append((f"procedures.{p.code}.dose.presentation", p.dose.translations))
    named += [(f"milestones.{m.code}.name", m.translations) for m in protocol.milestones]
    languages = sorted({lang for _, pairs in named for lang, _text in pairs})
    gaps = {}
    for lang in languages:
        missing = [field for field, pairs in named if lang not in dict(pairs)]
        if missing:
            gaps[lang] = missing
    return gaps
