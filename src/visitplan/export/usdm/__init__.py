"""A protocol as a complete CDISC USDM v4.0 study: a ``Wrapper`` JSON document.

Study, StudyVersion (titles, the sponsor's and the registry's identifiers, organisations,
the sponsor role, eligibility criterion items, conditions, the study intervention) and one
InterventionalStudyDesign (arm, epochs, elements, study cells, population, eligibility
criteria, objectives, activities, encounters, the main timeline and one sub-timeline per
repeating visit, with a ScheduledDecisionInstance after each occurrence that stops on an
event). Every coded attribute is a CDISC CT term of :data:`visitplan.cdisc_ct.CT_PACKAGE_DATE`.

No date is computed here: occurrences and their order come from the engine's reference plan
(:func:`visitplan.export.cdisc.reference_schedule`); timings are the protocol's own offsets as
ISO 8601 durations. What USDM cannot say (a repeat's end, an event to wait for, a flag, the
last-dose anchor, sites and rules) travels in extension attributes under :data:`EXT`, which
``visitplan protocol import-usdm`` reads back; see docs/cdisc.md.
"""

from __future__ import annotations

import json

from visitplan.export.usdm.parts import EXT, USDM_VERSION, Obj
from visitplan.export.usdm.study import Study
from visitplan.model import Protocol

__all__ = ["EXT", "USDM_VERSION", "to_usdm_json", "usdm_study"]


def usdm_study(protocol: Protocol) -> Obj:
    """The protocol as a USDM v4.0 ``Wrapper`` (a plain JSON structure)."""
    return Study(protocol).wrapper()


def to_usdm_json(protocol: Protocol) -> str:
    """:func:`usdm_study` as indented JSON text."""
    return json.dumps(usdm_study(protocol), indent=2, ensure_ascii=False) + "\n"
