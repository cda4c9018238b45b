"""SDTM datasets as SAS transport (XPORT) version 5 files, the format FDA submissions take.

The rows are those of :mod:`visitplan.export.cdisc` (the same as the CSV export); this module
only types and labels them and hands them to ReadStat through ``pyreadstat`` (the optional
extra ``visitplan[xpt]``), which writes the transport file. Variable names, labels and types
are SDTMIG v3.4's; a character variable's length is that of its longest value (at least 1),
numeric variables are 8-byte IBM floats. See docs/cdisc.md.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from visitplan.errors import VisitplanError
from visitplan.i18n import _

#: SDTMIG v3.4 variable labels of the variables visitplan writes (a v5 label holds 40 bytes).
LABELS = {
    "STUDYID": "Study Identifier",
    "DOMAIN": "Domain Abbreviation",
    "USUBJID": "Unique Subject Identifier",
    "VISITNUM": "Visit Number",
    "VISIT": "Visit Name",
    "VISITDY": "Planned Study Day of Visit",
    "ARMCD": "Planned Arm Code",
    "ARM": "Description of Planned Arm",
    "TVSTRL": "Visit Start Rule",
    "TVENRL": "Visit End Rule",
    "ETCD": "Element Code",
    "ELEMENT": "Description of Element",
    "TESTRL": "Rule for Start of Element",
    "TEENRL": "Rule for End of Element",
    "TEDUR": "Planned Duration of Element",
    "TAETORD": "Planned Order of Element within Arm",
    "TABRANCH": "Branch",
    "TATRANS": "Transition Rule",
    "EPOCH": "Epoch",
    "SVPRESP": "Pre-specified",
    "SVOCCUR": "Occurrence",
    "SVREASOC": "Reason for Occur Value",
    "SVSTDTC": "Start Date/Time of Observation",
    "SVENDTC": "End Date/Time of Observation",
    "SVSTDY": "Study Day of Start of Observation",
    "SVENDY": "Study Day of End of Observation",
    "SVUPDES": "Description of Unplanned Visit",
}
#: The SDTMIG type ``Num`` variables; every other variable is ``Char``.
NUMERIC = frozenset({"VISITNUM", "VISITDY", "TAETORD", "SVSTDY", "SVENDY"})
#: SDTMIG dataset labels by dataset name (the member name is the domain code).
DATASETS = {
    "TV": "Trial Visits",
    "TE": "Trial Elements",
    "TA": "Trial Arms",
    "SV": "Subject Visits",
}
#: A version 5 transport file stores a character value in at most 200 bytes.
MAX_CHAR_BYTES = 200


def to_xpt(rows: Iterable[Mapping[str, str]], columns: Sequence[str], dataset: str) -> bytes:
    """The rows as a SAS transport v5 file of one dataset (``TV``, ``TE``, ``TA`` or ``SV``).

    A character value longer than 200 bytes (UTF-8) cannot be stored: it raises
    :class:`VisitplanError` naming the dataset, the variable and the value. A numeric variable
    is missing where the CSV cell is empty.
    """
    if dataset not in DATASETS:
        raise VisitplanError(
            "dataset", dataset, _("must be one of: {items}").format(items=", ".join(DATASETS))
        )
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        for c in columns:
            data[c].append(_cell(dataset, c, row.get(c, "")))
    try:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]
        import pyreadstat
    except ImportError:
        raise VisitplanError(
            "--format", "xpt", _("needs pyreadstat: pip install 'visitplan[xpt]'")
        ) from None
    frame = pd.DataFrame(
        {c: pd.Series(v, dtype="float64" if c in NUMERIC else object) for c, v in data.items()}
    )
    with tempfile.TemporaryDirectory(prefix="visitplan-xpt-") as folder:
        path = Path(folder) / f"{dataset.lower()}.xpt"
        pyreadstat.write_xport(
            frame,
            path,
            file_label=DATASETS[dataset],
            column_labels=[LABELS[c] for c in columns],
            table_name=dataset,
            file_format_version=5,
        )
        return path.read_bytes()


def _cell(dataset: str, column: str, value: str) -> str | float:
    if column not in LABELS:
        raise VisitplanError(f"{dataset} variable", column, _("has no SDTMIG label here"))
    if column in NUMERIC:
        return math.nan if value == "" else float(value)
    size = len(value.encode("utf-8"))
    if size > MAX_CHAR_BYTES:
        raise VisitplanError(
            f"{dataset}.{column}",
            value,
            _(
                "is {size} bytes; a SAS transport v5 file holds at most {MAX_CHAR_BYTES} bytes "
                "in a character value"
            ).format(size=size, MAX_CHAR_BYTES=MAX_CHAR_BYTES),
        )
    return value
