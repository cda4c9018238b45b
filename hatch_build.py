"""The build hook: compile the translation catalogs (``.po``) into ``.mo`` files.

The ``.po`` files are the source, committed; a ``.mo`` is made at build time, never committed.
For a wheel the ``.mo`` files are written to a temporary folder and added to the wheel; for an
editable install (``pip install -e``) they are written next to their ``.po`` in the source
tree, which is what the installed package reads.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LOCALE = Path("src") / "visitplan" / "locale"


def compile_catalogs(locale: Path, out: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``locale`` into the same path under
    ``out``; fuzzy entries are left out (they are guesses, not translations)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    made = []
    for po in sorted(locale.glob("*/LC_MESSAGES/*.po")):
        mo = out / po.relative_to(locale).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parts[-3])
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        made.append(mo)
    return made


class CatalogHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships the .po files; its wheel compiles them
        locale = Path(self.root) / LOCALE
        if version == "editable":
            compile_catalogs(locale, locale)
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="visitplan-mo-"))
        for mo in compile_catalogs(locale, self._tmp):
            target = Path("visitplan") / "locale" / mo.relative_to(self._tmp)
            build_data["force_include"][str(mo)] = target.as_posix()

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
