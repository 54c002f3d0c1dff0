"""The bench's pure logic: ratios, figure formatting, the Markdown table and summary of `make bench`
(bench/report.py), wrk's output and its failures (bench/proxy.py), BuildKit's executed steps
(bench/image.py), latency percentiles (bench/health.py), section selection, and the TLS goals'
ceilings with the C helper that times their public-key operations (bench/tls.py, tls_pkey.c)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import report, tls
from bench.__main__ import parse_only
from bench.health import percentiles_ms
from bench.image import executed_steps
from bench.proxy import failed, failures_figure, parse_wrk
from bench.report import Row

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("project", "anchor", "ratio"), [
    (0.8, 2.0, 0.4), (3.0, None, None), (3.0, 0, None), (3.0, "1/1 completed", None), ("yes", 2.0, None)])
def test_ratio_is_project_over_a_numeric_non_zero_anchor_and_none_otherwise(project, anchor, ratio):
    got = Row("x", "m", project, "s", anchor).ratio()
    assert got is None if ratio is None else got == pytest.approx(ratio)


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


WRK_CLEAN = """Running 10s test @ https://localhost:40123/web/login
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   371.29ms  102.55ms 528.01ms   70.12%
    Req/Sec    11.02      4.51    20.00     60.00%
  Latency Distribution
     50%  360.12ms
     75%  420.00ms
     90%  480.55ms
     99%  528.01ms
  215 requests in 10.00s, 1.01MB read
Requests/sec:     21.49
Transfer/sec:    103.27KB
"""

# wrk counts an answer slower than --timeout as a "timeout" error and leaves it out of its percentiles
WRK_FAILURES = (WRK_CLEAN.replace("50%  360.12ms", "50%  472.00us").replace("99%  528.01ms", "99%    3.20s")
                .replace("  215 requests in 10.00s, 1.01MB read\n", "  40 requests in 3.01s, 4.60KB read\n"
                         "  Socket errors: connect 1, read 2, write 0, timeout 9\n"
                         "  Non-2xx or 3xx responses: 10\n"))


def test_wrk_output_without_errors():
    r = parse_wrk(WRK_CLEAN)
    assert r == {"rps": 21.49, "p50_ms": 360.12, "p99_ms": 528.01, "requests": 215, "non_2xx_3xx": 0,
                 "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    assert failed(r) == 0


def test_wrk_timeouts_and_errors_are_failed_requests():
    r = parse_wrk(WRK_FAILURES)
    assert r["socket_errors"] == {"connect": 1, "read": 2, "write": 0, "timeout": 9}
    assert r["non_2xx_3xx"] == 10 and r["requests"] == 40
    assert r["p50_ms"] == pytest.approx(0.472) and r["p99_ms"] == pytest.approx(3200.0)
    assert failed(r) == 22  # a timeout counts: wrk leaves it out of its percentiles
    assert failed({**parse_wrk(WRK_CLEAN), "socket_errors": {"timeout": 1}}) == 1


def test_failures_figure_names_each_kind_that_occurred():
    runs = {"a": parse_wrk(WRK_CLEAN), "b": parse_wrk(WRK_FAILURES)}
    assert failures_figure(runs) == "22 failed of 255 (non-2xx/3xx 10, connect 1, read 2, timeout 9)"
    assert failures_figure({"a": parse_wrk(WRK_CLEAN)}) == "0 failed of 215"


def test_wrk_output_that_is_not_wrk_latency_output_is_refused():
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(ValueError, match="99%"):
        parse_wrk(WRK_CLEAN.replace("     99%  528.01ms\n", ""))


BUILD_LOG = """#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#5 [runtime 1/9] FROM docker.io/library/debian:bookworm-slim
#5 DONE 0.0s
#7 [addons 1/3] COPY addons /opt/loomworks/addons
#7 CACHED
#9 [addons 2/3] RUN python3 -m compileall -q /opt/loomworks/addons
#9 DONE 1.2s
#10 [runtime 8/9] COPY --from=addons /opt/loomworks/addons /opt/loomworks/addons
#10 DONE 0.3s
"""


def test_executed_steps_are_the_done_ones_not_cached_internal_or_from():
    assert executed_steps(BUILD_LOG) == [
        "[addons 2/3] RUN python3 -m compileall -q /opt/loomworks/addons",
        "[runtime 8/9] COPY --from=addons /opt/loomworks/addons /opt/loomworks/addo",  # 60 characters
    ]


def test_percentiles_in_ms_nearest_rank():
    p = percentiles_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert p == {"p50": 51.0, "p90": 90.0, "p99": 99.0, "p99.9": 100.0, "max": 100.0}
    assert all(v != v for v in percentiles_ms([]).values())  # NaN: no samples


def test_only_selects_sections_in_run_order_and_refuses_unknown_ones():
    assert parse_only(None) == ["image", "start", "health", "proxy", "tls", "wal", "shutdown", "backup",
                                "swarm"]
    assert parse_only("wal, health") == ["health", "wal"]
    with pytest.raises(SystemExit, match="unknown section.*nope"):
        parse_only("health,nope")


def test_tls_ceilings_add_only_each_modes_public_key_operations():
    raw = {"plain": {"connections": 1000, "nginx_cpu_s": 0.04, "client_cpu_s": 0.06},  # 0.04 + 0.06 ms
           "pkey": {"ecdsa_p256_sign_us": 40, "ecdsa_p256_verify_us": 120,
                    "x25519_keygen_us": 30, "x25519_derive_us": 50}}
    top = tls.ceilings(raw)
    assert top["full"]["server_ms"] == pytest.approx(0.12) and top["full"]["client_ms"] == pytest.approx(0.2)
    assert top["full"]["per_nginx_cpu"] == pytest.approx(0.04 / 0.16)
    assert top["full"]["shared_cores"] == pytest.approx(0.1 / 0.42)
    assert top["resumed"]["per_nginx_cpu"] == pytest.approx(0.04 / 0.12)  # no signature
    assert top["resumed"]["shared_cores"] == pytest.approx(0.1 / 0.26)


def test_tls_pkey_times_each_operation_with_an_ecdsa_key_and_names_a_bad_key(tmp_path: Path):
    key = tmp_path / "privkey.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(key)], check=True, capture_output=True)
    exe = tls.build(tls.PKEY_SRC, tmp_path)
    costs = tls.pkey_costs(exe, key, 0.02)
    assert costs["openssl"].startswith("OpenSSL ")
    ops = {op for sides in tls.PKEY_OPS.values() for side in sides.values() for op in side}
    assert ops == set(costs) - {"openssl"} and all(costs[op] > 0 for op in ops)
    (tmp_path / "bad.pem").write_text("not a key\n")
    with pytest.raises(report.BenchFailure, match=r"bad\.pem: not a readable PEM private key"):
        tls.pkey_costs(exe, tmp_path / "bad.pem", 0.02)
