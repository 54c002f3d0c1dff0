"""bench/report.py: ratios, figure formatting, the Markdown table and summary of `make bench`."""

from __future__ import annotations

import pytest

from bench import report
from bench.report import Row

pytestmark = pytest.mark.unit


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
    assert report.fmt_value(value, unit) == text


@pytest.mark.parametrize(("ratio", "text"), [(25.4, "25x"), (0.42, "0.42x"), (0.0123, "0.012x"), (None, "—")])
def test_fmt_ratio(ratio, text):
    assert report.fmt_ratio(ratio) == text


def test_table_marks_published_anchors_and_escapes_pipes():
    rows = [
        Row("1 image", "loomworks/erp final size", 0.8, "GB", 1.99, "odoo:18", published=True),
        Row("5 wal", "a | b", 80.0, "MB/s", 40.0, "gzip", better="higher", note="n=2"),
        Row("1 image", "cold build", 200.0, "s"),
    ]
    lines = report.markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| # | measured | Loomworks | anchor")
    assert "| 1.99 GB (published) | 0.40x | lower |" in lines[2]
    assert "a \\| b (n=2)" in lines[3] and "| 2.00x | higher |" in lines[3]
    assert lines[4].endswith("| — | — | — |  |")
    assert all(line.count("|") - line.count("\\|") == 8 for line in lines)


def test_median_refuses_no_values():
    assert report.median([3.0, 1.0, 2.0]) == 2.0
    with pytest.raises(ValueError):
        report.median([])


FACTS = {"date": "2026-11-29 08:50 UTC", "nproc": 2, "memory_gb": 23.5, "loadavg_start": [0.04, 0.77, 1.3],
         "kernel": "6.1", "docker": "20.10.24", "loadavg_end": [1.11, 1.68, 1.59], "total_s": 1200.0}


def test_summary_names_the_run_and_lists_failed_sections():
    rows = [Row("4 proxy", "req/s", 20.0, "req/s", 22.0, "direct", better="higher")]
    text = report.summary_md("full", FACTS, rows, {"proxy": "proxy: failed requests: timeout 3\nmore"})
    assert text.startswith("Benchmarks, full run, 2026-11-29 08:50 UTC: 2 cores, 23.5 GB RAM, load average "
                           "0.04 0.77 1.3 at start, kernel 6.1, Docker 20.10.24; load average 1.11 1.68 1.59 "
                           "at the end; 20.0 min.\n")
    assert "| 4 proxy | req/s | 20.0 req/s | direct | 22.0 req/s | 0.91x | higher |" in text
    assert text.endswith("**FAILED:**\n- proxy: proxy: failed requests: timeout 3\n")
    assert "FAILED" not in report.summary_md("full", FACTS, rows, {})


def test_a_failure_keeps_the_sections_rows():
    rows = [Row("3 health", "p99", 2.0, "ms")]
    assert report.BenchFailure("connections grew", rows).rows == rows
    assert report.BenchFailure("broken").rows == []
