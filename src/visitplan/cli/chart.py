"""``visitplan chart``: a per-participant timeline or the site's load, as SVG or PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import parse_date_option, protocol_option
from visitplan.cli.sitectx import db_option, roster_option, site_option
from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum


@click.command()
@click.argument("kind", type=click.Choice(["timeline", "load"]))
@protocol_option
@site_option
@db_option
@roster_option
@click.option(
    "--bookings",
    type=click.Path(dir_okay=False),
    help="Without a database: a bookings CSV (participant,visit,date,time); booked days are drawn.",
)
@click.option("--from", "start", callback=parse_date_option, help="First day shown.")
@click.option("--to", "end", callback=parse_date_option, help="Last day shown.")
@click.option(
    "--today",
    callback=parse_date_option,
    help="Where the today line goes (with --db also the date the plans are made as of).",
)
@click.option(
    "--by", type=click.Choice(["day", "week"]), default="day", show_default=True,
    help="Load chart: visits per day or per ISO week.",
)  # fmt: skip
@click.option(
    "--output", "-o", required=True, type=click.Path(dir_okay=False),
    help="The picture to write: FILE.svg or FILE.png.",
)  # fmt: skip
def chart(
    kind: str,
    protocol_spec: str,
    site_spec: str | None,
    db: str | None,
    roster: str | None,
    bookings: str | None,
    start: pendulum.Date | None,
    end: pendulum.Date | None,
    today: pendulum.Date | None,
    by: str,
    output: str,
) -> None:
    """Draw KIND: `timeline` (each participant's visits: window bars, target marks, a today
    line) or `load` (the site's visits per day or week, biopsy visits apart, days over
    capacity or closed labelled). Participants and appointments come from the roster
    database (--db, $VISITPLAN_DB or ./visitplan.db), else from --roster and --bookings."""
    from pathlib import Path

    from visitplan.charts import FORMATS, load_chart, timeline_chart
    from visitplan.cli.sitectx import choose_db, load_site_data
    from visitplan.dates import today_at
    from visitplan.errors import VisitplanError
    from visitplan.fileio import atomic_write

    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise VisitplanError("--output", output, _("must end in .svg or .png"))
    if start is not None and end is not None and end < start:
        raise VisitplanError(
            "--to", end.isoformat(), _("is before --from ({start})").format(start=start)
        )
    store_db = choose_db(db, roster=roster, bookings=bookings)
    _protocol, site, schedules, held = load_site_data(
        protocol_spec, site_spec, db=store_db, roster=roster, bookings=bookings, today=today
    )
    if kind == "timeline":
        data = timeline_chart(
            schedules,
            held,
            today=today or today_at([site.timezone]),
            start=start,
            end=end,
            site=site,
            fmt=fmt,
        )
    else:
        if start is None or end is None:
            raise VisitplanError("--from/--to", None, _("the load chart needs both days"))
        data = load_chart(site, schedules, held, start, end, by=by, fmt=fmt)
    atomic_write(output, data)
    click.echo(_("wrote {file} ({n} bytes)").format(file=output, n=len(data)))
