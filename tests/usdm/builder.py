"""The study usdm4's own Builder makes (tests/usdm/validate.py), made once per test run and
checked by usdm4: starting usdm4 takes half a minute, and two test files use the document."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
USDM_PYTHON = ROOT / ".venv-usdm" / "bin" / "python"
VALIDATE = Path(__file__).with_name("validate.py")


@functools.cache
def builder_demo() -> tuple[bytes, dict[str, Any]]:
    """(the document's JSON bytes, usdm4's check of it: rules run, failures, exceptions)."""
    with tempfile.TemporaryDirectory(prefix="usdm4-builder-") as folder:
        path = Path(folder) / "demo.json"
        out = subprocess.run(
            [str(USDM_PYTHON), str(VALIDATE), "--builder-demo", str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        (result,) = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
        return path.read_bytes(), result
