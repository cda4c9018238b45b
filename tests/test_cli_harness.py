"""tests/cli.py isolates each in-process invocation: what a command changes in the shared
interpreter (environment, working directory, language, logging) does not reach the next one."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from tests import cli as harness

from visitplan import i18n
from visitplan.cli import cli


@click.command("leaky")
@click.option("--crash", is_flag=True)
def leaky(crash: bool) -> None:
    """Changes everything a command could leave behind, and prints what it was given."""
    click.echo(f"db={os.environ.get('VISITPLAN_DB')} columns={os.environ.get('COLUMNS')}")
    click.echo(f"cwd={os.getcwd()}")
    os.environ["VISITPLAN_LEAK"] = "1"
    os.chdir("/")
    i18n.set_language("fr")
    logging.getLogger("visitplan").addHandler(logging.NullHandler())
    logging.getLogger("visitplan").setLevel(logging.DEBUG)
    click.echo("to stderr", err=True)
    if crash:
        raise RuntimeError("a bug, not a user mistake")


@pytest.fixture
def with_leaky() -> Iterator[None]:
    cli.add_command(leaky)
    try:
        yield
    finally:
        cli.commands.pop("leaky")


def test_what_a_command_changes_does_not_leak(with_leaky, tmp_path, monkeypatch):
    monkeypatch.setenv("VISITPLAN_DB", "/somewhere/real.db")
    monkeypatch.setenv("COLUMNS", "33")
    here = os.getcwd()
    handlers = list(logging.getLogger("visitplan").handlers)
    level = logging.getLogger("visitplan").level

    r = harness.run("leaky", cwd=tmp_path, columns=120)

    assert r.returncode == 0, r.stderr
    # The developer's roster and terminal width never reach a test's command.
    assert r.stdout == f"db=None columns=120\ncwd={Path(tmp_path)}\n"
    assert r.stderr == "to stderr\n"
    assert "VISITPLAN_LEAK" not in os.environ
    assert os.environ["VISITPLAN_DB"] == "/somewhere/real.db" and os.environ["COLUMNS"] == "33"
    assert os.getcwd() == here
    assert i18n.language() == "en"
    assert logging.getLogger("visitplan").handlers == handlers
    assert logging.getLogger("visitplan").level == level
    given = harness.run("leaky", env={"VISITPLAN_DB": "mine.db"})
    assert given.stdout.startswith("db=mine.db columns=None\n")
    assert os.getcwd() == here and "VISITPLAN_LEAK" not in os.environ


def test_an_escaping_exception_reads_as_a_real_process_crash(with_leaky):
    r = harness.run("leaky", "--crash")
    assert r.returncode == 1
    assert isinstance(r.exception, RuntimeError)
    assert "Traceback" in r.stderr and "a bug, not a user mistake" in r.stderr


def test_a_user_mistake_is_exit_2_without_exception():
    r = harness.run("plan", "--screening", "2022-02-30")
    assert (r.returncode, r.exception) == (2, None)
    assert r.stderr == "error: --screening '2022-02-30': is not a day of the calendar\n"
