"""What `visitplan --help` loads: only click and the CLI package, never the heavy libraries.

A correctness test of the lazy imports (cli/__init__.py, visitplan/__init__.py), not a timing:
each check runs in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("rich", "icalendar", "sqlalchemy", "matplotlib")
#: Not needed to print help either; they are what made --help slow before (docs/performance.md).
ENGINE = ("pendulum", "attrs", "visitplan.engine", "visitplan.protocol_file")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_library():
    loaded = loaded_after("import visitplan.cli")
    assert "visitplan.cli" in loaded and "click" in loaded
    assert loaded.isdisjoint(HEAVY + ENGINE), sorted(loaded & set(HEAVY + ENGINE))


def test_help_loads_no_heavy_library():
    code = (
        "from visitplan.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    loaded = loaded_after(code)
    assert "visitplan.cli.plan" in loaded  # --help lists the commands, so it imports them
    assert loaded.isdisjoint(HEAVY + ENGINE), sorted(loaded & set(HEAVY + ENGINE))


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("plan", "visitplan.engine"),
        ("Participant", "visitplan.participant"),
        ("builtin", "visitplan.protocol_file"),
        ("VisitplanError", "visitplan.errors"),
        ("engine", "visitplan.engine"),  # a submodule, as `import visitplan` used to load them
    ],
)
def test_public_names_resolve_on_first_use(name, module):
    assert module not in loaded_after("import visitplan")
    assert module in loaded_after(f"import visitplan\nassert visitplan.{name} is not None")


def test_unknown_attribute_is_an_attribute_error():
    import visitplan

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        visitplan.nope  # noqa: B018
    assert "plan" in dir(visitplan)


def test_the_version_is_pyprojects_read_on_first_use():
    import tomllib
    from pathlib import Path

    import visitplan

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    written = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert visitplan.__version__ == written
    assert "__version__" in dir(visitplan)
    # Neither `import visitplan` nor `--help` reads the installed metadata.
    assert "importlib.metadata" not in loaded_after("import visitplan")
    code = (
        "from visitplan.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    )
    assert "importlib.metadata" not in loaded_after(code)
    assert "importlib.metadata" in loaded_after("import visitplan\nvisitplan.__version__")
