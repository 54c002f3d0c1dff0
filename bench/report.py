"""The report of `make bench`: one row type, figure and ratio formatting, the Markdown table,
machine facts and the summary. Pure apart from machine_facts(); unit-tested in
tests/unit/test_bench_report.py."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    section: str  # "1 image", "2 start", ...
    metric: str  # what is measured
    project: float | str | None  # Loomworks' figure (number in `unit`, or a word such as "yes")
    unit: str = ""  # "s", "MB", "ms", "req/s", ...
    anchor: float | str | None = None  # the anchor's figure, same unit
    anchor_name: str = ""  # what the anchor is
    published: bool = False  # True when the anchor figure is a published one, not measured here
    better: str = "lower"  # "lower" or "higher": which direction is good for the project
    note: str = ""

    def ratio(self) -> float | None:
        numbers = isinstance(self.project, int | float) and isinstance(self.anchor, int | float)
        return self.project / self.anchor if numbers and self.anchor != 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio()}


class BenchFailure(RuntimeError):
    """A correctness condition broke; ``rows`` are the section's figures all the same."""

    def __init__(self, message: str, rows: list[Row] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []


def fmt_value(value: float | str | None, unit: str = "") -> str:
    """A figure with its unit: 3 significant digits for small numbers, none wasted on big ones."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if value != value:  # NaN
        return "n/a"
    a = abs(value)
    if isinstance(value, int):
        text = f"{value:,}"
    elif a >= 100:
        text = f"{value:,.0f}"
    elif a >= 10:
        text = f"{value:.1f}"
    elif a >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None or ratio != ratio:
        return "—"
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.3f}x"


def markdown_table(rows: list[Row]) -> str:
    """One Markdown table; ratio = Loomworks ÷ anchor ("better" says which way is good)."""
    lines = [
        "| # | measured | Loomworks | anchor | anchor figure | ratio (Loomworks ÷ anchor) | better |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        anchor_fig = fmt_value(r.anchor, r.unit)
        if r.anchor is not None and r.published:
            anchor_fig += " (published)"
        metric = r.metric + (f" ({r.note})" if r.note else "")
        cells = [r.section, metric, fmt_value(r.project, r.unit), r.anchor_name or "—", anchor_fig,
                 fmt_ratio(r.ratio()), r.better if r.ratio() is not None else ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def median(values: list[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_facts(docker_version: str) -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        mem_kb = next((int(ln.split()[1]) for ln in fh if ln.startswith("MemTotal:")), 0)
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "loadavg_start": loadavg(),
        "kernel": platform.release(),
        "docker": docker_version or "unknown",
    }


def facts_line(facts: dict[str, Any]) -> str:
    la = facts.get("loadavg_start", [])
    return (f"{facts['date']}: {facts['nproc']} cores, {facts['memory_gb']} GB RAM, load average "
            f"{' '.join(map(str, la))} at start, kernel {facts['kernel']}, Docker {facts['docker']}")


def summary_md(mode: str, facts: dict[str, Any], rows: list[Row], failures: dict[str, str]) -> str:
    """bench/results/summary.md: the run's facts, the table, and the sections that FAILED."""
    md = [f"Benchmarks, {mode} run, {facts_line(facts)}; load average "
          f"{' '.join(map(str, facts['loadavg_end']))} at the end; {facts['total_s'] / 60:.1f} min.", "",
          markdown_table(rows), "",
          "Ratio = Loomworks ÷ anchor; `better` says which direction favours Loomworks. Anchors are "
          "measured in the same run unless marked (published)."]
    if failures:
        md += ["", "**FAILED:**", *[f"- {s}: {msg.splitlines()[0]}" for s, msg in failures.items()]]
    return "\n".join(md) + "\n"
