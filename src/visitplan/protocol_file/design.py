"""The study-design parts of a protocol file that only the CDISC exports read.

Epoch terms and element codes, the population, the eligibility criteria and the objectives:
none of them changes a date. Each is converted by the
:class:`~visitplan.protocol_file.reading.Reader`, which collects the errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from visitplan.cdisc_ct import EPOCH, EPOCH_CODELIST, INTTYPE, OBJECTIVE_LEVEL, PHASE, SEX
from visitplan.codes import is_visit_code
from visitplan.i18n import N_, _
from visitplan.model import Criterion, Epoch, Objective, Population
from visitplan.protocol_file.checks import check_unique
from visitplan.protocol_file.reading import Reader

#: SDTM ETCD: at most 8 characters; upper-case letters, digits and '_', starting with a letter.
ETCD_MAX = 8
CATEGORIES = ("inclusion", "exclusion")


def epoch(r: Reader, raw: object, path: str) -> Epoch | None:
    """An ``[[epochs]]`` table: code, name, and the optional CDISC ``type`` and ``etcd``."""
    e = r.table(raw, path, {"code", "name", "type", "etcd", "translations"}, {"code", "name"})
    if not e:
        return None
    kind = r.text(e, "type", path) or None
    if kind is not None and kind not in EPOCH:
        r.error(
            f"{path}.type",
            kind,
            _("must be a term of the CDISC EPOCH codelist ({EPOCH_CODELIST}): {items}").format(
                EPOCH_CODELIST=EPOCH_CODELIST, items=", ".join(EPOCH)
            ),
        )
    etcd = r.text(e, "etcd", path) or None
    if etcd is not None and not _is_etcd(etcd):
        r.error(
            f"{path}.etcd",
            etcd,
            _(
                "an element code is 1-{ETCD_MAX} upper-case letters, digits and '_', starting "
                "with a letter"
            ).format(ETCD_MAX=ETCD_MAX),
        )
    return Epoch(
        r.text(e, "code", path), r.text(e, "name", path), kind, etcd, r.translations(e, path)
    )


def _is_etcd(text: str) -> bool:
    return (
        0 < len(text) <= ETCD_MAX
        and text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isupper() or c.isdigit() or c == "_") for c in text)
    )


def check_etcds(r: Reader, epochs: list[Epoch]) -> None:
    """Element codes (``etcd``, else the epoch code) are unique across epochs."""
    seen: dict[str, str] = {}
    for e in epochs:
        etcd = e.etcd or e.code
        if etcd in seen and seen[etcd] != e.code:
            r.error(
                f"epochs.{e.code}.etcd",
                etcd,
                _("duplicate element code (epoch {seen})").format(seen=seen[etcd]),
            )
        seen.setdefault(etcd, e.code)


def phase(r: Reader, study: Mapping[str, Any]) -> str:
    value = r.text(study, "phase", "study")
    if value and value not in PHASE:
        r.error(
            "study.phase",
            value,
            _("must be a CDISC trial phase (C66737): {items}").format(items=", ".join(PHASE)),
        )
    return value


def intervention_type(r: Reader, dose: Mapping[str, Any], path: str) -> str:
    value = r.text(dose, "intervention_type", path)
    if value and value not in INTTYPE:
        r.error(
            f"{path}.intervention_type",
            value,
            _("must be a CDISC intervention type (C99078): {items}").format(
                items=", ".join(INTTYPE)
            ),
        )
    return value


def _whole(r: Reader, raw: Mapping[str, Any], key: str, path: str, least: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= 10**6:
        r.error(
            f"{path}.{key}",
            value,
            _("must be a whole number from {least} to 1000000").format(least=least),
        )
        return None
    return value


def population(r: Reader, raw: object) -> Population | None:
    """``[population]``: ages in years, sex, healthy volunteers, planned enrolment."""
    if raw is None:
        return None
    path = "population"
    p = r.table(
        raw, path, {"min_age", "max_age", "sex", "healthy", "planned_enrollment"}, {"min_age"}
    )
    low = _whole(r, p, "min_age", path, 0)
    high = _whole(r, p, "max_age", path, 0)
    if low is not None and high is not None and high < low:
        r.error(f"{path}.max_age", high, _("must not be below min_age ({low})").format(low=low))
    sex = r.text(p, "sex", path, "BOTH")
    if sex not in SEX:
        r.error(
            f"{path}.sex",
            sex,
            _("must be one of: {items} (CDISC C66732)").format(items=", ".join(SEX)),
        )
    healthy = p.get("healthy", False)
    if not isinstance(healthy, bool):
        r.error(f"{path}.healthy", healthy, _("must be true or false"))
        healthy = False
    if low is None:
        return None
    return Population(low, high, sex, healthy, _whole(r, p, "planned_enrollment", path, 1))


def criterion(r: Reader, raw: object, path: str) -> Criterion | None:
    """A ``[[criteria]]`` table: code, category (inclusion or exclusion), text."""
    c = r.table(raw, path, {"code", "category", "text"}, {"code", "category", "text"})
    if not c:
        return None
    code = r.text(c, "code", path)
    if code and not is_visit_code(code):
        r.error(f"{path}.code", code, _("criterion codes are upper-case letters, digits and '_'"))
    category = r.text(c, "category", path)
    if category and category not in CATEGORIES:
        r.error(
            f"{path}.category",
            category,
            _("must be one of: {items}").format(items=", ".join(CATEGORIES)),
        )
    return Criterion(code, category, r.text(c, "text", path, multiline=True))


def objective(r: Reader, raw: object, path: str) -> Objective | None:
    """An ``[[objectives]]`` table: code, level, text and its endpoints (a list of text)."""
    o = r.table(raw, path, {"code", "level", "text", "endpoints"}, {"code", "level", "text"})
    if not o:
        return None
    level = r.text(o, "level", path)
    if level and level not in OBJECTIVE_LEVEL:
        r.error(
            f"{path}.level",
            level,
            _("must be one of: {items}").format(items=", ".join(OBJECTIVE_LEVEL)),
        )
    listed = o.get("endpoints", [])
    endpoints: list[str] = []
    if not isinstance(listed, list):
        r.error(f"{path}.endpoints", listed, _("must be a list of endpoint texts"))
    else:
        for i, item in enumerate(listed):
            text = r.text({str(i): item}, str(i), f"{path}.endpoints", multiline=True)
            if text:
                endpoints.append(text)
    return Objective(r.text(o, "code", path), level, r.text(o, "text", path), tuple(endpoints))


def check_design(r: Reader, criteria: list[Criterion], objectives: list[Objective]) -> None:
    check_unique(r, [c.code for c in criteria], "criteria", N_("criterion code"))
    check_unique(r, [o.code for o in objectives], "objectives", N_("objective code"))
    primary = [o.code for o in objectives if o.level == "primary"]
    if len(primary) > 1:
        r.error("objectives", ", ".join(primary), _("at most one objective can be primary"))
