"""The ``visitplan`` command line. Each command lives in its own module of this package.

Modules here import only click at load time; the engine, rich and exporters are imported
inside the commands so that ``visitplan --help`` starts fast.
"""

from __future__ import annotations

import sys

import click

from visitplan.cli.common import EXIT_CODES, VisitplanGroup, lang_option

#: (module, command) pairs registered on the main group, in help order.
COMMANDS = [
    ("visitplan.cli.plan", "plan"),
    ("visitplan.cli.demo", "demo"),
    ("visitplan.cli.roster", "enroll"),
    ("visitplan.cli.roster", "import"),
    ("visitplan.cli.roster", "record"),
    ("visitplan.cli.roster", "discontinue"),
    ("visitplan.cli.roster", "withdraw"),
    ("visitplan.cli.corrections", "correct"),
    ("visitplan.cli.corrections", "void"),
    ("visitplan.cli.roster", "show"),
    ("visitplan.cli.roster", "due"),
    ("visitplan.cli.roster", "overdue"),
    ("visitplan.cli.roster", "deviations"),
    ("visitplan.cli.roster", "history"),
    ("visitplan.cli.audit", "audit"),
    ("visitplan.cli.agenda", "agenda"),
    ("visitplan.cli.book", "book"),
    ("visitplan.cli.chart", "chart"),
    ("visitplan.cli.ics", "ics"),
    ("visitplan.cli.serve", "feed"),
    ("visitplan.cli.users", "user"),
    ("visitplan.cli.serve", "serve"),
    ("visitplan.cli.publish", "publish"),
    ("visitplan.cli.eligibility", "eligibility"),
    ("visitplan.cli.protocol", "protocol"),
    ("visitplan.cli.cdisc", "cdisc"),
]


@click.group(
    cls=VisitplanGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.version_option(package_name="visitplan")
@lang_option
def cli() -> None:
    """Plan clinical-trial visits from a protocol's schedule and export calendars."""


for _module, _name in COMMANDS:
    cli.add_lazy(_name, _module)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``visitplan`` script; it always ends with :exc:`SystemExit` (the
    exit code)."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="visitplan")
