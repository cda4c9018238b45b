"""One harness for the CLI tests: ``visitplan`` run in-process with click's CliRunner.

``run("plan", "--participant", ...)`` returns a :class:`Result` with the exit code, standard
output and standard error kept apart (click >= 8.2), like the ``subprocess.run`` it replaces,
at a fraction of the cost (no interpreter start, no import of the package per call).

Each call is isolated from the next and from the test process, since the commands share the
interpreter:

- the environment: ``os.environ`` plus ``env`` (a value of ``None`` unsets a name) for the
  call only; the whole environment is put back afterwards, whatever the command set.
  ``COLUMNS`` is set when ``columns`` is given, else removed, so a table is as wide as in a
  pipe (80) whatever the test's shell;
  ``VISITPLAN_DB`` is removed unless ``env`` gives it;
- the working directory: ``cwd`` for the call only;
- context variables (the language ``i18n.use`` sets, anything a command keeps in one): the
  command runs in a copy of the current context, which is dropped;
- logging: the handlers and levels of the root and ``visitplan`` loggers are put back;
- ``sys.stdout``/``sys.stderr``: CliRunner swaps and restores them.

An exception that escapes the command (a bug, never a user mistake) is written to ``stderr``
as the traceback a real process prints, with exit code 1, so that "no traceback" assertions
hold in-process too. What a real process alone can show (``python -m visitplan``, signals,
cold-start import laziness, file modes, the server) stays in the few subprocess tests.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from visitplan.cli import cli

_LOGGERS = ("", "visitplan")


@dataclass(frozen=True)
class Result:
    """What one ``visitplan`` invocation gave: the names of ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes
    output: str  # stdout and stderr interleaved, as a terminal shows them
    args: tuple[str, ...]
    exception: BaseException | None = None  # what escaped the command (a bug), if anything

    @property
    def exit_code(self) -> int:
        """click's name for :attr:`returncode`."""
        return self.returncode


@contextlib.contextmanager
def _working_directory(cwd: Path | str | None) -> Iterator[None]:
    before = os.getcwd()  # put back even without ``cwd``: a command may change it
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _environment_kept() -> Iterator[None]:
    # CliRunner puts back only the names it was given; a command may set others.
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    saved = [(lg, list(lg.handlers), lg.level) for lg in map(logging.getLogger, _LOGGERS)]
    try:
        yield
    finally:
        for logger, handlers, level in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)


def run(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | str | None = None,
    input: str | bytes | None = None,
    columns: int | None = None,
) -> Result:
    """Run ``visitplan ARGS...`` in-process and return its exit code and outputs."""
    overrides: dict[str, str | None] = {
        "COLUMNS": None if columns is None else str(columns),
        # A test never reaches the developer's own roster through their shell's variable.
        "VISITPLAN_DB": None,
    }
    overrides.update(env or {})
    runner = CliRunner()

    def invoke() -> Result:
        with _environment_kept(), _working_directory(cwd), _logging_kept():
            done = runner.invoke(cli, list(args), input=input, env=overrides, prog_name="visitplan")
        stderr = done.stderr
        code = done.exit_code
        exc = done.exception
        if exc is not None and not isinstance(exc, SystemExit):
            assert done.exc_info is not None
            stderr += "".join(traceback.format_exception(*done.exc_info))
            code = 1
        escaped = None if isinstance(exc, SystemExit) else exc
        return Result(
            code, done.stdout, stderr, done.stdout_bytes, done.output, tuple(args), escaped
        )

    return contextvars.copy_context().run(invoke)
