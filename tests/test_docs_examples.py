"""The Python examples of the README and the quickstart run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = ["README.md", "docs/quickstart.md"]


def python_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text("utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page):
    blocks = python_blocks(page)
    assert blocks, f"{page} has no Python example"
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, page, "exec"), {})
        printed = out.getvalue()
        assert "D1 " in printed or "2022-08-" in printed, printed
