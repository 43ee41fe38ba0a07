"""`granary bench cluster` runs end to end (etcd, node and manager processes on loopback) and
reports every figure; the figures themselves are recorded in bench/RESULTS.md."""
import json
import os
import subprocess

BINARY = os.environ.get("GRANARY_BINARY", "build/granary")


def test_the_benchmark_runs_and_reports_every_figure(tmp_path):
    out = subprocess.run([BINARY, "bench", "cluster", "--dir", str(tmp_path), "--quick",
                          "--size-kib", "256", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["errors"] == []
    rows = {w["name"]: w for w in report["workloads"]}
    for nodes, replicas in ((1, "1 replica"), (3, "1 replica"), (3, "3 replicas"),
                            (6, "3 replicas")):
        for op in ("put", "get"):
            row = rows[f"256k {op}, {nodes} nodes, {replicas}"]
            assert row["granary"] > 0 and row["baseline_value"] > 0 and row["ratio"] > 0
    assert rows["256k put, 3 nodes: 3 replicas against 1"]["ratio"] > 0
    repair = rows["repair after losing 1 of 6 nodes"]
    assert repair["granary"] > 0 and repair["details"]["restored_bytes"] > 0
    assert not list(tmp_path.iterdir())  # the benchmark removed what it wrote
