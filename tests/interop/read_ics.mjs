// Reads an .ics file with Mozilla's ical.js (Thunderbird's parser) and prints its events as
// JSON: what ical.js itself resolves, so the Python tests can compare instants and dates.
// Usage: node read_ics.mjs FILE
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const text = readFileSync(process.argv[2], "utf8");
const root = new ICAL.Component(ICAL.parse(text));
// Resolve TZIDs with the VTIMEZONEs of the file itself (what is under test), not a built-in list.
for (const vtz of root.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(new ICAL.Timezone(vtz));
}
const when = (t) => (t.isDate ? t.toString() : t.toJSDate().toISOString());
const events = root.getAllSubcomponents("vevent").map((comp) => {
  const ev = new ICAL.Event(comp);
  return {
    uid: ev.uid,
    summary: ev.summary,
    description: ev.description,
    location: ev.location,
    start: when(ev.startDate),
    end: when(ev.endDate),
    isDate: ev.startDate.isDate,
    tzid: ev.startDate.isDate ? null : ev.startDate.zone.tzid,
    status: comp.getFirstPropertyValue("status"),
    sequence: ev.sequence,
    categories: comp.getAllProperties("categories").flatMap((p) => p.getValues()),
    alarms: comp.getAllSubcomponents("valarm").map((a) => a.getFirstPropertyValue("trigger").toString()),
  };
});
process.stdout.write(JSON.stringify({ name: root.getFirstPropertyValue("x-wr-calname"), events }));
