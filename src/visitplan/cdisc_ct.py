"""The CDISC Controlled Terminology that visitplan's CDISC exports use, from one dated package.

Every coded value of the SDTM and USDM exports comes from here: a term is (NCI concept code,
submission value, preferred term). The terms are copied from the CDISC CT packages of
:data:`CT_PACKAGE_DATE` (SDTM CT and DDF CT, the release that the ``usdm4`` package carries),
and the USDM export writes that date as every code's ``codeSystemVersion``. Only the terms
visitplan writes are listed; a protocol file names an epoch type by its submission value.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: The CDISC CT release the codes below come from (SDTM CT and DDF CT of that date).
CT_PACKAGE_DATE = "2026-03-27"
CDISC_SYSTEM = "http://www.cdisc.org"


class Term(NamedTuple):
    """One term of a codelist: NCI concept code, submission value, preferred term."""

    code: str
    submission: str
    preferred: str


def _codelist(*terms: tuple[str, str, str]) -> dict[str, Term]:
    return {t[1]: Term(*t) for t in terms}


#: EPOCH (C99079, SDTM CT, extensible): the values of SDTM EPOCH and USDM StudyEpoch.type.
EPOCH = _codelist(
    ("C125938", "BASELINE", "Baseline Epoch"),
    ("C102255", "BLINDED TREATMENT", "Blinded Treatment Epoch"),
    ("C123452", "CONTINUATION TREATMENT", "Continuation Therapy Epoch"),
    ("C202578", "FOLLOW-UP", "Follow-Up Epoch"),
    ("C123453", "INDUCTION TREATMENT", "Induction Therapy Epoch"),
    ("C209541", "INTERVENTION", "Investigational Intervention Epoch"),
    ("C202577", "LONG-TERM FOLLOW-UP", "Long-term Follow-up Epoch"),
    ("C165873", "OBSERVATION", "Observation Study Epoch"),
    ("C102256", "OPEN LABEL TREATMENT", "Open Label Treatment Epoch"),
    ("C199844", "PRE-SCREENING", "Pre-Screening Epoch"),
    ("C210380", "PRODUCT EXPOSURE", "Product Exposure Epoch"),
    ("C98779", "RUN-IN", "Run-in Period"),
    ("C202487", "SCREENING", "Screening Epoch"),
    ("C101526", "TREATMENT", "Treatment Epoch"),
    ("C42872", "WASHOUT", "Washout Period"),
)
EPOCH_CODELIST = "C99079"

#: Trial Phase Response (C66737, SDTM CT, extensible): a study's phase.
PHASE = _codelist(
    ("C54721", "EARLY PHASE I", "Early Phase 1 Trial"),
    ("C48660", "NOT APPLICABLE", "Not Applicable"),
    ("C15600", "PHASE I TRIAL", "Phase I Trial"),
    ("C15693", "PHASE I/II TRIAL", "Phase I/II Trial"),
    ("C15601", "PHASE II TRIAL", "Phase II Trial"),
    ("C15694", "PHASE II/III TRIAL", "Phase II/III Trial"),
    ("C15602", "PHASE III TRIAL", "Phase III Trial"),
    ("C15603", "PHASE IV TRIAL", "Phase IV Trial"),
)

#: Sex of Participants (C66732, SDTM CT): a population's planned sex.
SEX = _codelist(
    ("C49636", "BOTH", "Both"),
    ("C16576", "F", "Female"),
    ("C20197", "M", "Male"),
)

#: Category of Inclusion/Exclusion (C66797, SDTM CT).
IECAT = _codelist(
    ("C25370", "EXCLUSION", "Exclusion Criteria"),
    ("C25532", "INCLUSION", "Inclusion Criteria"),
)

#: Age Unit (C66781, SDTM CT), by visitplan's unit words.
AGE_UNIT = {
    "days": Term("C25301", "DAYS", "Day"),
    "weeks": Term("C29844", "WEEKS", "Week"),
    "months": Term("C29846", "MONTHS", "Month"),
    "years": Term("C29848", "YEARS", "Year"),
}

#: Objective Level (C188725) and Endpoint Level (C188726), DDF CT, by visitplan's level words.
OBJECTIVE_LEVEL = {
    "primary": Term("C85826", "Study Primary Objective", "Trial Primary Objective"),
    "secondary": Term("C85827", "Study Secondary Objective", "Trial Secondary Objective"),
    "exploratory": Term("C163559", "Exploratory Objective", "Trial Exploratory Objective"),
}
ENDPOINT_LEVEL = {
    "primary": Term("C94496", "Primary Endpoint", "Primary Endpoint"),
    "secondary": Term("C139173", "Secondary Endpoint", "Secondary Endpoint"),
    "exploratory": Term("C170559", "Exploratory Endpoint", "Exploratory Endpoint"),
}

#: Intervention Type Response (C99078, SDTM CT): a study intervention's type.
INTTYPE = _codelist(
    ("C307", "BIOLOGIC", "Biological Agent"),
    ("C16830", "DEVICE", "Medical Device"),
    ("C1505", "DIETARY SUPPLEMENT", "Dietary Supplement"),
    ("C1909", "DRUG", "Pharmacologic Substance"),
    ("C15238", "GENETIC", "Gene Therapy"),
    ("C923", "VACCINE", "Vaccine"),
)

# Single terms of DDF and SDTM codelists (codelist in the comment).
ENCOUNTER_VISIT = Term("C25716", "Visit", "Visit")  # C188728 Encounter Type
TIMING_AFTER = Term("C201356", "After", "After Timing Type")  # C201264 Timing Type
TIMING_BEFORE = Term("C201357", "Before", "Before Timing Type")
TIMING_FIXED = Term("C201358", "Fixed Reference", "Fixed Reference Timing Type")
START_TO_START = Term("C201355", "Start to Start", "Start to Start")  # C201265
OFFICIAL_TITLE = Term("C207616", "Official Study Title", "Official Study Title")  # C207419
PHARMA_COMPANY = Term("C54149", "Pharmaceutical Company", "Drug Company")  # C188724
STUDY_REGISTRY = Term("C93453", "Clinical Study Registry", "Study Registry")  # C188724
SPONSOR_ROLE = Term("C70793", "Sponsor", "Clinical Study Sponsor")  # C215480 Study Role
INTERVENTION_ROLE = Term(
    "C41161", "Experimental Intervention", "Protocol Agent"
)  # C207417 Study Intervention Role
EXPERIMENTAL_ARM = Term("C174266", "Experimental Arm", "Investigational Arm")  # C174222
WITHIN_STUDY = Term(
    "C188866", "Data Generated Within Study", "Data Generated Within Study"
)  # C188727 Study Arm Data Origin Type
INTERVENTIONAL = Term("C98388", "INTERVENTIONAL", "Interventional Study")  # C99077
SINGLE_GROUP = Term("C82640", "SINGLE GROUP", "Single Group Study")  # C99076
PARALLEL = Term("C82639", "PARALLEL", "Parallel Study")  # C99076
PROTOCOL_DOCUMENT = Term("C70817", "Protocol", "Study Protocol")  # C215477
DOCUMENT_FINAL = Term("C25508", "Final", "Final")  # C188723
GLOBAL_SCOPE = Term("C68846", "Global", "Global")  # C207412
APPROVAL_DATE = Term("C71476", "Approval Date", "Approval Date")  # C207413


def _letters(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def epoch_term(value: str) -> Term | None:
    """The EPOCH term whose submission value is ``value`` (exactly), else None."""
    return EPOCH.get(value)


def default_epoch_term(code: str, name: str) -> Term | None:
    """The EPOCH term an epoch's code or name spells, ignoring case and punctuation.

    ``RUNIN`` is RUN-IN, ``FOLLOWUP`` and "Follow-up" are FOLLOW-UP, "Screening" is
    SCREENING; None when neither spells a term (the protocol file then names it).
    """
    by_letters = {_letters(t.submission): t for t in EPOCH.values()}
    return by_letters.get(_letters(code)) or by_letters.get(_letters(name))
