# `granary bench client` and `granary bench s3` in a short run: every door and baseline is
# measured for each size and operation, and the JSON carries what bench/RESULTS.md records
# (MB/s, ops/s, p99 latency, the ratio to each baseline).
import json
import os
import subprocess

import pytest

BINARY = os.environ.get("GRANARY_BINARY", "granary")


def run_bench(kind, tmp_path):
    out = subprocess.run([BINARY, "bench", kind, "--dir", str(tmp_path / kind), "--quick",
                          "--sizes", "4", "--sizes", "64", "--threads", "2", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-4000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind,doors", [
    ("client", {"native", "native-shm", "native-batch", "native-shm-batch"}),
    ("s3", {"s3"})])
def test_bench_measures_every_door_against_its_baselines(kind, doors, tmp_path):
    report = run_bench(kind, tmp_path)
    assert report["benchmark"] == kind
    assert report["errors"] == []
    seen = set()
    for w in report["workloads"]:
        size, op, door = w["name"].split(" ")
        seen.add((size, op, door, w["baseline"]))
        assert w["unit"] == "MB/s" and w["granary"] > 0 and w["baseline_value"] > 0, w
        assert w["ratio"] == pytest.approx(w["granary"] / w["baseline_value"]), w
        for figures in w["details"].values():
            assert figures["ops"] > 0 and figures["ops_per_sec"] > 0, w
            assert 0 < figures["p50_us"] <= figures["p99_us"], w
        # A batch door's figures count objects; its latency is per call of `batch` objects.
        if door.endswith("-batch"):
            assert w["details"][door]["batch"] == 16, w
    expected = {(size, op, door, baseline) for size in ("4k", "64k") for op in ("put", "get")
                for door in doors for baseline in ("engine", "files")}
    assert expected <= seen, sorted(expected - seen)


@pytest.mark.parametrize("args,named", [
    (["client", "--sizes", "0"], "--sizes"),
    (["s3", "--sizes", "-4"], "--sizes"),
    (["client", "--threads", "0"], "--threads"),
    (["cluster", "--size-kib", "0"], "--size-kib"),
])
def test_bench_refuses_sizes_and_clients_out_of_range(args, named, tmp_path):
    out = subprocess.run([BINARY, "bench", *args, "--dir", str(tmp_path / "b")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert out.returncode > 0, out  # refused with an exit status, not killed by a signal
    message = (out.stdout + out.stderr).decode(errors="replace")
    assert named in message and "not in range" in message, message
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
