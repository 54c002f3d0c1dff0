"""bench/common.py: ratios, figure formatting and the Markdown table of `make bench`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "bench_common", Path(__file__).resolve().parents[2] / "bench" / "common.py")
assert _spec and _spec.loader
common = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = common  # dataclasses look their module up
_spec.loader.exec_module(common)
Row = common.Row


def test_ratio_is_project_over_anchor():
    assert Row("1 image", "size", 0.8, "GB", 2.0).ratio() == pytest.approx(0.4)


@pytest.mark.parametrize("anchor", [None, 0, "1/1 completed"])
def test_no_ratio_without_a_numeric_non_zero_anchor(anchor):
    assert Row("x", "m", 3.0, "s", anchor).ratio() is None


def test_no_ratio_for_a_word_figure():
    assert Row("x", "m", "yes", "", 2.0).ratio() is None


@pytest.mark.parametrize(("value", "unit", "text"), [
    (1234.5, "req/s", "1,234 req/s"),  # banker's rounding is fine; no decimals above 100
    (42.345, "ms", "42.3 ms"),
    (3.14159, "s", "3.14 s"),
    (0.012345, "ms", "0.0123 ms"),
    (3, "", "3"),
    (None, "s", "—"),
    (float("nan"), "s", "n/a"),
    ("2 → 2", "", "2 → 2"),
])
def test_fmt_value(value, unit, text):
    assert common.fmt_value(value, unit) == text


@pytest.mark.parametrize(("ratio", "text"), [(25.4, "25x"), (0.42, "0.42x"), (0.0123, "0.012x"), (None, "—")])
def test_fmt_ratio(ratio, text):
    assert common.fmt_ratio(ratio) == text


def test_table_marks_published_anchors_and_escapes_pipes():
    rows = [
        Row("1 image", "loomworks/erp final size", 0.8, "GB", 1.99, "odoo:18", published=True),
        Row("5 wal", "a | b", 80.0, "MB/s", 40.0, "gzip", better="higher", note="n=2"),
        Row("1 image", "cold build", 200.0, "s"),
    ]
    lines = common.markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| # | measured | Loomworks | anchor")
    assert "| 1.99 GB (published) | 0.40x | lower |" in lines[2]
    assert "a \\| b (n=2)" in lines[3] and "| 2.00x | higher |" in lines[3]
    assert lines[4].endswith("| — | — | — |  |")
    assert all(line.count("|") - line.count("\\|") == 8 for line in lines)


def test_median_refuses_no_values():
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    with pytest.raises(ValueError):
        common.median([])
