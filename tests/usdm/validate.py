"""Run inside the usdm4 venv (Python >= 3.12): check USDM files with the usdm4 package.

    python validate.py FILE.json ...      -> one JSON line per file on stdout
    python validate.py --builder-demo OUT.json   -> writes a document made by usdm4's Builder

For each file: it loads as usdm4's ``Wrapper`` pydantic model, then ``USDM4().validate``
runs the DDF rules; the line lists the rules run and every failing rule with its messages.
"""

from __future__ import annotations

import json
import sys

import usdm4.api as api
from simple_error_log.errors import Errors
from usdm4 import USDM4
from usdm4.api.wrapper import Wrapper
from usdm4.rules.results import RuleStatus


def check(path: str) -> dict[str, object]:
    with open(path, encoding="utf-8") as f:
        Wrapper.model_validate(json.load(f))  # raises on any model error
    result = USDM4().validate(path)
    failures = {
        o.rule_id: [e.get("message", "") for e in o.errors.to_dict(level=Errors.DEBUG)]
        for o in result.by_status(RuleStatus.FAILURE)
    }
    exceptions = {o.rule_id: o.exception for o in result.by_status(RuleStatus.EXCEPTION)}
    return {
        "file": path,
        "rules_run": result.count(),
        "passed": len(result.by_status(RuleStatus.SUCCESS)),
        "failures": failures,
        "exceptions": exceptions,
    }


def builder_demo(out: str) -> None:
    """usdm4's own Builder: its minimum study plus a design whose main timeline starts a
    sub-timeline holding one visit (an Encounter), the way USDM schedules repeats."""
    errors = Errors()
    u = USDM4()
    b = u.builder(errors)
    w = b.minimum("Builder demo", "DEMO-1", "1")
    code = b.cdisc_code
    epoch = b.create(api.StudyEpoch, {"name": "E1", "type": code("C101526")})
    arm = b.create(
        api.StudyArm,
        {"name": "A1", "type": code("C174266"), "dataOriginDescription": "study",
         "dataOriginType": code("C188866")},
    )  # fmt: skip
    cell = b.create(api.StudyCell, {"armId": arm.id, "epochId": epoch.id, "elementIds": []})
    enc1 = b.create(api.Encounter, {"name": "V1", "type": code("C25716")})
    enc2 = b.create(api.Encounter, {"name": "V2", "type": code("C25716")})
    b.double_link([enc1, enc2], "previousId", "nextId")
    sub_sai = b.create(
        api.ScheduledActivityInstance, {"name": "S2", "encounterId": enc2.id, "epochId": epoch.id}
    )
    sub_exit = b.create(api.ScheduleTimelineExit, {})
    sub_sai.timelineExitId = sub_exit.id
    fixed = code("C201358")
    start = code("C201355")
    sub_t = b.create(
        api.Timing,
        {"name": "T2", "type": fixed, "value": "P0D", "valueLabel": "P0D",
         "relativeToFrom": start, "relativeFromScheduledInstanceId": sub_sai.id,
         "relativeToScheduledInstanceId": sub_sai.id},
    )  # fmt: skip
    sub = b.create(
        api.ScheduleTimeline,
        {"name": "SUB", "mainTimeline": False, "entryCondition": "always", "entryId": sub_sai.id,
         "exits": [sub_exit], "timings": [sub_t], "instances": [sub_sai]},
    )  # fmt: skip
    main_sai = b.create(
        api.ScheduledActivityInstance,
        {"name": "S1", "encounterId": enc1.id, "epochId": epoch.id, "timelineId": sub.id},
    )
    main_exit = b.create(api.ScheduleTimelineExit, {})
    main_sai.timelineExitId = main_exit.id
    main_t = b.create(
        api.Timing,
        {"name": "T1", "type": code("C201358"), "value": "P0D", "valueLabel": "P0D",
         "relativeToFrom": code("C201355"), "relativeFromScheduledInstanceId": main_sai.id,
         "relativeToScheduledInstanceId": main_sai.id},
    )  # fmt: skip
    main = b.create(
        api.ScheduleTimeline,
        {"name": "MAIN", "mainTimeline": True, "entryCondition": "always",
         "entryId": main_sai.id, "exits": [main_exit], "timings": [main_t],
         "instances": [main_sai]},
    )  # fmt: skip
    population = b.create(
        api.StudyDesignPopulation, {"name": "P", "includesHealthySubjects": False}
    )
    design = b.create(
        api.InterventionalStudyDesign,
        {"name": "D", "rationale": "demo", "model": code("C82640"), "arms": [arm],
         "studyCells": [cell], "epochs": [epoch], "population": population,
         "encounters": [enc1, enc2], "scheduleTimelines": [main, sub]},
    )  # fmt: skip
    w.study.versions[0].studyDesigns = [design]
    if errors.count():
        raise SystemExit(f"usdm4's builder reported errors: {errors.to_dict()}")
    with open(out, "w", encoding="utf-8") as f:
        f.write(w.to_json())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--builder-demo"]:
        builder_demo(sys.argv[2])
        print(json.dumps(check(sys.argv[2])))
    else:
        for name in sys.argv[1:]:
            print(json.dumps(check(name)))
