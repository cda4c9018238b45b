"""The USDM Study, its version and its design (the timelines are in timelines.py)."""

from __future__ import annotations

import uuid

import attrs

from visitplan import cdisc_ct as ct
from visitplan.export.cdisc import (
    default_arm,
    epoch_value,
    etcd,
    studyid,
    te_rows,
)
from visitplan.export.usdm.parts import (
    EXT,
    NS,
    REGISTRY,
    USDM_VERSION,
    Builder,
    Obj,
    dosing_epoch,
    link,
    named,
    package_version,
    template,
    transition_rule,
    unmerged_plan,
)
from visitplan.model import Protocol


class Study:
    """One export: the builder, the protocol and the ids that parts refer to."""

    def __init__(self, protocol: Protocol) -> None:
        self.p = protocol
        self.b = Builder()
        self.plan = unmerged_plan(protocol)
        self.epoch_ids = {e.code: self.b.id("StudyEpoch") for e in protocol.epochs}
        procs = {pr.code: pr for v in protocol for pr in v.procedures}
        self.procs = procs
        self.activity_ids = {code: self.b.id("Activity") for code in procs}
        self.intervention_ids = {
            pr.dose.drug: self.b.id("StudyIntervention") for pr in procs.values() if pr.dose
        }
        self.conditions: list[Obj] = []
        self.item_ids: dict[str, str] = {}

    # -- the study and its version ---------------------------------------------------------
    def wrapper(self) -> Obj:
        p = self.p
        study = {
            "id": str(uuid.uuid5(NS, p.id)),
            "name": p.id,
            "label": p.title,
            "description": p.description or p.title,
            "versions": [self.version()],
            "documentedBy": [],
            "instanceType": "Study",
        }
        return {
            "study": study,
            "usdmVersion": USDM_VERSION,
            "systemName": "visitplan",
            "systemVersion": package_version(),
        }

    def version(self) -> Obj:
        b, p = self.b, self.p
        version_id = b.id("StudyVersion")
        sponsor = b.obj(
            "Organization",
            name=p.sponsor or "Sponsor",
            label=p.sponsor or "Sponsor",
            type=b.code(ct.PHARMA_COMPANY),
            identifierScheme="Sponsor name",
            identifier=p.sponsor or "Sponsor",
            legalAddress=None,
            managedSites=[],
        )
        organizations = [sponsor]
        identifiers = [
            b.obj("StudyIdentifier", text=studyid(p), scopeId=sponsor["id"]),
        ]
        if p.id.startswith("NCT") and p.id != studyid(p):
            registry = b.obj(
                "Organization",
                name=REGISTRY,
                label=REGISTRY,
                type=b.code(ct.STUDY_REGISTRY),
                identifierScheme="USGOV",
                identifier="CT-GOV",
                legalAddress=None,
                managedSites=[],
            )
            organizations.append(registry)
            identifiers.append(b.obj("StudyIdentifier", text=p.id, scopeId=registry["id"]))
        role = named(
            b,
            "StudyRole",
            "SPONSOR",
            "Sponsor",
            f"{sponsor['name']} sponsors the study",
            code=b.code(ct.SPONSOR_ROLE),
            appliesToIds=[version_id],
            assignedPersons=[],
            organizationIds=[sponsor["id"]],
            masking=None,
            notes=[],
        )
        items = [
            template(
                b,
                "EligibilityCriterionItem",
                c.code,
                c.code,
                f"{c.category} criterion {c.code}",
                c.text,
            )
            for c in p.criteria
        ]
        self.item_ids = {c.code: item["id"] for c, item in zip(p.criteria, items, strict=True)}
        design = self.design()
        interventions = [
            named(
                b,
                "StudyIntervention",
                drug,
                drug,
                f"{drug}, the study drug of the dosing visits",
                role=b.code(ct.INTERVENTION_ROLE),
                type=b.code(ct.INTTYPE[self._dose_type(drug)]),
                minimumResponseDuration=None,
                codes=[],
                administrations=[],
                notes=[],
                id=iid,
            )
            for drug, iid in self.intervention_ids.items()
        ]
        return {
            "id": version_id,
            "extensionAttributes": [b.ext("protocol", self._extras())],
            "versionIdentifier": "1",
            "rationale": f"Schedule of activities of {p.id} as its protocol file states it",
            "documentVersionIds": [],
            "dateValues": [],
            "amendments": [],
            "businessTherapeuticAreas": [],
            "studyIdentifiers": identifiers,
            "referenceIdentifiers": [],
            "studyDesigns": [design],
            "titles": [b.obj("StudyTitle", text=p.title, type=b.code(ct.OFFICIAL_TITLE))],
            "eligibilityCriterionItems": items,
            "narrativeContentItems": [],
            "abbreviations": [],
            "roles": [role],
            "organizations": organizations,
            "studyInterventions": interventions,
            "administrableProducts": [],
            "medicalDevices": [],
            "productOrganizationRoles": [],
            "biomedicalConcepts": [],
            "bcCategories": [],
            "bcSurrogates": [],
            "dictionaries": [],
            "conditions": self.conditions,
            "notes": [],
            "instanceType": "StudyVersion",
        }

    def _dose_type(self, drug: str) -> str:
        for pr in self.procs.values():
            if pr.dose is not None and pr.dose.drug == drug and pr.dose.intervention_type:
                return pr.dose.intervention_type
        return "DRUG"

    def _extras(self) -> Obj:
        """Protocol parts with no USDM home: Day 1, the visits' order in the protocol file
        (VISITNUM counts it), sites, rules, milestones, washouts."""
        from visitplan.protocol_file import to_dict

        doc = to_dict(self.p)
        keep = ("sites", "rules", "milestones", "washouts")
        return (
            {
                "study": {
                    k: doc["study"][k]
                    for k in ("day1_visit", "screening_visit")
                    if k in doc["study"]
                },
                "visit_order": [v.code for v in self.p],
            }
            | {k: doc[k] for k in keep if k in doc}
            | self._epoch_translations()
        )

    def _epoch_translations(self) -> Obj:
        """The epochs' names in other languages (USDM's StudyEpoch has the protocol's own)."""
        named = {e.code: dict(e.translations) for e in self.p.epochs if e.translations}
        return {"epoch_translations": named} if named else {}

    # -- the design ---------------------------------------------------------------------------
    def design(self) -> Obj:
        b, p = self.b, self.p
        armcd, arm_text = default_arm(p)
        arm = named(
            b,
            "StudyArm",
            armcd,
            arm_text,
            f"The single arm of {p.id}: {arm_text}",
            type=b.code(ct.EXPERIMENTAL_ARM),
            dataOriginDescription="Data collected during the study",
            dataOriginType=b.code(ct.WITHIN_STUDY),
            populationIds=[],
            notes=[],
        )
        epochs = link(
            [
                {
                    "id": self.epoch_ids[e.code],
                    "extensionAttributes": [],
                    "name": e.code,
                    "label": e.name,
                    "description": e.name,
                    "type": b.code(ct.EPOCH[epoch_value(e)]),
                    "notes": [],
                    "instanceType": "StudyEpoch",
                }
                for e in p.epochs
            ]
        )
        te = {r["ELEMENT"]: r for r in te_rows(p)}
        elements, cells = [], []
        for e in p.epochs:
            row = te.get(e.name)
            element = named(
                b,
                "StudyElement",
                etcd(e),
                e.name,
                f"The element of epoch {e.code}",
                transitionStartRule=transition_rule(b, "start", etcd(e), row["TESTRL"])
                if row
                else None,
                transitionEndRule=transition_rule(b, "end", etcd(e), row["TEENRL"])
                if row
                else None,
                studyInterventionIds=[]
                if e.code != dosing_epoch(p)
                else list(self.intervention_ids.values()),
                notes=[],
            )
            elements.append(element)
            cells.append(
                b.obj(
                    "StudyCell",
                    armId=arm["id"],
                    epochId=self.epoch_ids[e.code],
                    elementIds=[element["id"]],
                )
            )
        criteria = link(
            [
                named(
                    b,
                    "EligibilityCriterion",
                    c.code,
                    c.code,
                    c.text,
                    category=b.code(ct.IECAT[c.category.upper()]),
                    identifier=c.code,
                    criterionItemId=self.item_ids[c.code],
                    notes=[],
                )
                for c in p.criteria
            ]
        )
        activities = self.activities()
        timelines, encounters = self.timelines()
        return {
            "id": b.id("InterventionalStudyDesign"),
            "extensionAttributes": [],
            "name": f"{p.id} design",
            "label": p.title,
            "description": p.description or p.title,
            "studyType": b.code(ct.INTERVENTIONAL),
            "studyPhase": b.alias(ct.PHASE[p.phase]) if p.phase else None,
            "therapeuticAreas": [],
            "characteristics": [],
            "encounters": encounters,
            "activities": activities,
            "arms": [arm],
            "studyCells": cells,
            "rationale": p.description or p.title,
            "epochs": epochs,
            "elements": elements,
            "estimands": [],
            "indications": [],
            "studyInterventionIds": list(self.intervention_ids.values()),
            "objectives": self.objectives(),
            "population": self.population([c["id"] for c in criteria]),
            "scheduleTimelines": timelines,
            "biospecimenRetentions": [],
            "documentVersionIds": [],
            "eligibilityCriteria": criteria,
            "analysisPopulations": [],
            "notes": [],
            "subTypes": [],
            "model": b.code(ct.SINGLE_GROUP),
            "intentTypes": [],
            "blindingSchema": None,
            "instanceType": "InterventionalStudyDesign",
        }

    def population(self, criterion_ids: list[str]) -> Obj:
        b, pop = self.b, self.p.population
        age = None
        if pop is not None and pop.max_age is not None:
            years = ct.AGE_UNIT["years"]
            age = b.obj(
                "Range",
                minValue=b.obj("Quantity", value=float(pop.min_age), unit=b.alias(years)),
                maxValue=b.obj("Quantity", value=float(pop.max_age), unit=b.alias(years)),
                isApproximate=False,
            )
        enrol = None
        if pop is not None and pop.planned_enrollment is not None:
            enrol = b.obj("Quantity", value=float(pop.planned_enrollment), unit=None)
        return named(
            b,
            "StudyDesignPopulation",
            "POPULATION",
            "Study population",
            "The participants the eligibility criteria admit",
            includesHealthySubjects=pop.healthy if pop else False,
            plannedEnrollmentNumber=enrol,
            plannedCompletionNumber=None,
            # USDM lists the sexes: both is male and female (DDF00188).
            plannedSex=[
                b.code(ct.SEX[x]) for x in (("F", "M") if pop.sex == "BOTH" else (pop.sex,))
            ]
            if pop
            else [],
            criterionIds=criterion_ids,
            plannedAge=age,
            notes=[],
            cohorts=[],
        )

    def objectives(self) -> list[Obj]:
        b = self.b
        return [
            template(
                b,
                "Objective",
                o.code,
                o.code,
                f"{o.level} objective",
                o.text,
                level=b.code(ct.OBJECTIVE_LEVEL[o.level]),
                endpoints=[
                    template(
                        b,
                        "Endpoint",
                        f"{o.code}-EP{i}",
                        f"{o.code} endpoint {i}",
                        f"{o.level} endpoint",
                        text,
                        purpose=f"Measures objective {o.code}",
                        level=b.code(ct.ENDPOINT_LEVEL[o.level]),
                    )
                    for i, text in enumerate(o.endpoints, start=1)
                ],
            )
            for o in self.p.objectives
        ]

    def activities(self) -> list[Obj]:
        b = self.b
        out = []
        for code, pr in self.procs.items():
            procedure = named(
                b,
                "Procedure",
                code,
                pr.name,
                pr.describe(),
                procedureType=pr.kind.value,
                code=b.code(
                    ct.Term(pr.kind.value, pr.kind.value, pr.kind.value),
                    system=EXT + "procedure-kind",
                ),
                studyInterventionId=self.intervention_ids[pr.dose.drug] if pr.dose else None,
                notes=[],
            )
            rule: Obj = {"kind": pr.kind.value}
            if pr.condition:
                rule["condition"] = pr.condition
            if pr.dose is not None:
                # USDM's own texts are the protocol's; translations ride in the extension.
                rule["dose"] = attrs.asdict(pr.dose, filter=lambda a, _v: a.name != "translations")
                if pr.dose.translations:
                    rule["dose"]["translations"] = dict(pr.dose.translations)
            if pr.translations:
                rule["translations"] = dict(pr.translations)
            activity = {
                "id": self.activity_ids[code],
                "extensionAttributes": [b.ext("procedure", rule)],
                "name": code,
                "label": pr.name,
                "description": pr.describe()
                + (f" (only if flagged {pr.condition})" if pr.condition else ""),
                "childIds": [],
                "definedProcedures": [procedure],
                "biomedicalConceptIds": [],
                "bcCategoryIds": [],
                "bcSurrogateIds": [],
                "timelineId": None,
                "notes": [],
                "instanceType": "Activity",
            }
            out.append(activity)
        return link(out)

    # -- the timelines --------------------------------------------------------------------------
    def timelines(self) -> tuple[list[Obj], list[Obj]]:
        from visitplan.export.usdm.timelines import Timelines

        return Timelines(self).build()
