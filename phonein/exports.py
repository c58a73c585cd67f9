"""CSV for spreadsheets: cells a spreadsheet would run as formulas are defused.

Listener-written text goes into producers' exports, and a spreadsheet runs a cell that
starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) as a
formula: ``=HYPERLINK(...)`` in a name would run on a producer's machine. Such a cell
gets a leading apostrophe, as OWASP's CSV injection guidance advises; the text is
otherwise exported as typed. Phone numbers in E.164 (``+44…``) get the apostrophe too:
a spreadsheet shows them as text, which they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

# What makes a spreadsheet read a cell as a formula (or hide one behind a tab or a CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Excel reads a CSV as UTF-8 only when it starts with a byte order mark.
BOM = "\ufeff"


def safe_cell(value: Any) -> str:
    """Return ``value`` as CSV cell text that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)  # a number of our own: a minus sign is a sign, not a formula
    text = str(value)
    if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS[:4]):
        return "'" + text
    return text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Yield a CSV document (BOM and header first) a line at a time, every cell defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[Any]) -> str:
        writer.writerow([safe_cell(c) for c in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield BOM + line(header)
    for row in rows:
        yield line(row)
