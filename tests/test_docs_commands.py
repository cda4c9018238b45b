"""Every page of the docs that shows commands runs them, in order, and shows what they print.

The pages are README.md and every ``docs/**/*.md`` (a new page, or a translation such as
docs/fr/tutorial.md, is picked up by the glob). On each page, in one fresh temporary folder
and with a fixed date:

- a ```` ```console ```` block holds commands, each on a line starting with ``$ `` (a line
  ending in ``\\`` continues on the next); the lines after a command, up to the next ``$ `` line
  or the end of the block, are exactly what it prints (standard output and error as a terminal
  shows them; trailing spaces and trailing blank lines aside). A command shown with nothing
  after it must print nothing. It must exit 0, or 2 when what it prints starts with
  ``error:``, or the code its comment names (``# exit 1``);
- ``visitplan ...`` (or ``.venv/bin/visitplan ...``) runs in-process through tests/cli.py, with
  ``> FILE`` (standard output to a file) and ``echo TEXT | visitplan ...`` (standard input);
  ``export NAME=VALUE`` sets a variable for the page's later commands (``$NAME``, ``~`` and
  ``$HOME`` are expanded; ``$HOME`` is the page's folder); ``cat > FILE <<'EOF'`` writes the
  lines up to ``EOF`` into FILE (the way a page creates a file it needs); ``mkdir -p DIR``.
  The page's folder is the reader's home folder: where a command prints its absolute path,
  the page shows ``~`` instead;
  Any other shell line fails the test: the page has to be runnable as written;
- a ```` ```python ```` block runs (in the page's folder, after the commands above it); a
  ```` ```text ```` block right after it is exactly what it prints;
- today is 2026-06-01, or the date of a ``<!-- docs-test: today YYYY-MM-DD -->`` line on the
  page (the clock is frozen at 09:00 UTC that day: ``pendulum.now``/``today``, so the audit
  trail's times are fixed too). A page says in its text which day its outputs are from.

A block that cannot run in a test (a server that blocks, a CalDAV server, a set-up script) is
preceded by ``<!-- docs-test: skip (why; where it is tested) -->``. The skips are counted and
listed in :data:`SKIPS`, so that they cannot grow silently.

``VISITPLAN_DOCS_UPDATE=1 pytest tests/test_docs_commands.py`` writes what the commands
print into the pages instead of comparing (read the diff before committing it).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pendulum
import pytest
from tests import cli as harness

ROOT = Path(__file__).parent.parent
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/**/*.md"))]
DEFAULT_TODAY = "2026-06-01"
UPDATE = os.environ.get("VISITPLAN_DOCS_UPDATE") == "1"

#: Every block the test does not run, by page and reason (up to its first ';'): a new skip
#: must be added here.
SKIPS = {
    ("README.md", "sets up the project itself"),
    ("README.md", "starts a server that runs until stopped"),
    ("docs/calendars.md", "each link is a new random secret, and serve runs until stopped"),
    ("docs/calendars.md", "needs a CalDAV server"),
    ("docs/cdisc.md", "installs usdm4 in a Python 3.12 venv"),
    ("docs/cdisc.md", "signatures, not a program"),
    ("docs/quickstart.md", "sets up the project itself"),
    ("docs/roster.md", "needs the database edited by hand"),
    ("docs/roster.md", "starts a PostgreSQL server for the project's own tests"),
    ("docs/site-calendar.md", "a fragment: my_check and roster are the reader's"),
    ("docs/tutorial.md", "installs the project"),
    ("docs/workspace.md", "starts a server that runs until stopped"),
}

SHELLS = ("bash", "sh", "shell")
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"^<!-- docs-test: skip \((.+)\) -->\s*$")
TODAY = re.compile(r"^<!-- docs-test: today (\d{4}-\d\d-\d\d) -->\s*$")


@dataclass
class Command:
    line: str  # the command as shown, continuations joined
    expected: list[str]
    first: int  # index of the first output line in the page
    end: int  # index past the last output line


@dataclass
class Block:
    kind: str
    start: int  # index of the first line inside the fence
    lines: list[str]
    skip: str | None
    commands: list[Command] = field(default_factory=list)
    output: Block | None = None  # a python block's ```text block


def blocks(text: str) -> list[Block]:
    return list(_blocks(text))


def _blocks(text: str) -> Iterator[Block]:
    lines = text.split("\n")
    i, skip, last_python = 0, None, None
    while i < len(lines):
        m = FENCE.match(lines[i])
        if SKIP.match(lines[i]):
            skip = SKIP.match(lines[i]).group(1)  # type: ignore[union-attr]
        elif m and m.group(1):
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            block = Block(m.group(1), i + 1, lines[i + 1 : j], skip)
            between = lines[last_python[1] : i] if last_python else ["x"]
            if block.kind == "text" and last_python and all(not s.strip() for s in between):
                last_python[0].output = block
            else:
                if block.kind == "console":
                    block.commands = commands(block)
                yield block
            last_python = (block, j + 1) if block.kind == "python" else None
            skip, i = None, j
        elif lines[i].strip():
            skip = None
        i += 1


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    i = 0
    while i < len(block.lines):
        line = block.lines[i]
        if line.startswith("$ "):
            shown = line[2:]
            while shown.endswith("\\"):
                i += 1
                shown = shown[:-1].rstrip() + " " + block.lines[i].strip()
            found.append(Command(shown, [], block.start + i + 1, block.start + i + 1))
        elif found:
            found[-1].expected.append(line)
            found[-1].end = block.start + i + 1
        i += 1
    return found


def skipped() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for b in blocks((ROOT / page).read_text("utf-8")):
            if b.skip and b.kind in ("console", "python", *SHELLS):
                out.append((page, b.skip.split(";")[0]))
    return out


def tidy(lines: list[str]) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


class Page:
    """One page's folder, variables and frozen clock, its commands run one after another."""

    def __init__(self, folder: Path, today: str) -> None:
        self.folder = folder
        # As a reader's shell: no language chosen (the suite's English default is not the
        # reader's; the built-in Brest site speaks French), so a page shows the language it
        # sets with `export VISITPLAN_LANG=...` or gets the site's.
        self.env: dict[str, str | None] = {
            "HOME": str(folder),
            "COLUMNS": None,
            "VISITPLAN_LANG": None,
        }
        self.now = pendulum.parse(today + "T09:00:00Z")

    def expand(self, text: str) -> str:
        text = re.sub(r"(^|[\s=])~/", lambda m: m.group(1) + str(self.folder) + "/", text)

        def value(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            got = self.env.get(name)
            assert got is not None, f"${name} is used before the page sets it"
            return got

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)

    def run(self, shown: str, body: list[str]) -> tuple[int, str, int | None]:
        """Run one command line; returns (exit code, what it printed, the exit code its
        comment names or None)."""
        words = shlex.split(self.expand(shown), comments=True)
        named = re.search(r"#\s*exit (\d+)", shown)
        wanted = int(named.group(1)) if named else None
        if words[:1] == ["export"]:
            name, _, value = words[1].partition("=")
            self.env[name] = value
            return 0, "", wanted
        if words[:2] == ["mkdir", "-p"]:
            for d in words[2:]:
                (self.folder / d).mkdir(parents=True, exist_ok=True)
            return 0, "", wanted
        if words[:2] == ["cat", ">"] and len(words) == 4 and words[3].startswith("<<"):
            (self.folder / words[2]).write_text("\n".join(body) + "\n", "utf-8")
            return 0, "", wanted
        stdin = None
        if words[0] == "echo" and "|" in words:
            bar = words.index("|")
            stdin = " ".join(words[1:bar]) + "\n"
            words = words[bar + 1 :]
        target = None
        if len(words) > 2 and words[-2] == ">":
            target, words = words[-1], words[:-2]
        assert words[0] in ("visitplan", ".venv/bin/visitplan"), f"not runnable here: {shown}"
        r = harness.run(*words[1:], env=self.env, cwd=self.folder, input=stdin)
        if target is not None:
            (self.folder / target).write_bytes(r.stdout_bytes)
            return r.returncode, self.home(r.stderr), wanted
        return r.returncode, self.home(r.output), wanted

    def home(self, printed: str) -> str:
        for name in {str(self.folder.resolve()), str(self.folder)}:
            printed = printed.replace(name, "~")
        return printed


@contextlib.contextmanager
def frozen(monkeypatch: pytest.MonkeyPatch, now: pendulum.DateTime) -> Iterator[None]:
    real_now = pendulum.now

    def fake_now(tz: object = None) -> pendulum.DateTime:
        return now.in_timezone(tz) if tz is not None else now.in_timezone("UTC")

    monkeypatch.setattr(pendulum, "now", fake_now)
    monkeypatch.setattr(pendulum, "today", lambda tz=None: fake_now(tz).start_of("day"))
    try:
        yield
    finally:
        monkeypatch.setattr(pendulum, "now", real_now)


def heredoc(block: Block, cmd: Command) -> tuple[list[str], list[str]]:
    """A ``<<'EOF'`` command's body, and what follows the closing EOF as its output."""
    m = re.search(r"<<\s*'?(\w+)'?", cmd.line)
    if not m:
        return [], cmd.expected
    end = cmd.expected.index(m.group(1))
    return cmd.expected[:end], cmd.expected[end + 1 :]


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_shown(page, tmp_path, monkeypatch):
    path = ROOT / page
    text = path.read_text("utf-8")
    today = next((m.group(1) for m in map(TODAY.match, text.split("\n")) if m), DEFAULT_TODAY)
    runner = Page(tmp_path, today)
    failures: list[str] = []
    updates: list[tuple[int, int, list[str]]] = []
    with frozen(monkeypatch, runner.now):
        for block in blocks(text):
            if block.skip:
                continue
            if block.kind in SHELLS:
                failures.append(
                    f"{page}:{block.start}: a ```{block.kind} block neither runs nor "
                    "says why (```console, or a docs-test: skip comment)"
                )
            if block.kind == "console":
                assert block.commands, f"{page}:{block.start}: a console block with no $ command"
                for cmd in block.commands:
                    body, expected = heredoc(block, cmd)
                    code, printed, wanted = runner.run(cmd.line, body)
                    got = tidy(printed.split("\n"))
                    if wanted is None:
                        wanted = 2 if expected[:1] and expected[0].startswith("error:") else 0
                    if code != wanted:
                        failures.append(f"{page}:{cmd.first}: `{cmd.line}` exit {code}\n{printed}")
                    if got != tidy(expected):
                        if UPDATE and not body:
                            updates.append((cmd.first, cmd.end, got))
                        failures.append(
                            f"{page}:{cmd.first}: `{cmd.line}` printed\n"
                            + "\n".join(got)
                            + "\n--- the page shows\n"
                            + "\n".join(tidy(expected))
                        )
            elif block.kind == "python":
                out = io.StringIO()
                here = os.getcwd()
                os.chdir(tmp_path)
                try:
                    with contextlib.redirect_stdout(out):
                        exec(compile("\n".join(block.lines), f"{page}:{block.start}", "exec"), {})
                finally:
                    os.chdir(here)
                if block.output is not None:
                    got = tidy(out.getvalue().split("\n"))
                    if got != tidy(block.output.lines):
                        if UPDATE:
                            end = block.output.start + len(block.output.lines)
                            updates.append((block.output.start, end, got))
                        failures.append(
                            f"{page}:{block.start}: the Python example printed\n" + "\n".join(got)
                        )
    if UPDATE and updates:
        lines = text.split("\n")
        for first, end, got in sorted(updates, reverse=True):
            keep_blank = end > first and not lines[end - 1].strip()
            lines[first:end] = got + ([""] if keep_blank else [])
        path.write_text("\n".join(lines), "utf-8")
    assert not failures, "\n\n".join(failures)


def test_the_skipped_blocks_are_the_listed_ones():
    """Skips cannot grow silently: each is listed above, and there are few."""
    assert sorted(skipped()) == sorted(SKIPS)
    assert len(SKIPS) <= 12
