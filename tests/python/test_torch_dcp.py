"""granary.torch.dcp: PyTorch's distributed checkpoint API over a granary run, against a real
server. Two ranks in separate processes (gloo, a FileStore in a temporary directory, sockets on
127.0.0.1 only) each upload their own shards and the coordinator commits one manifest; fresh
processes load it back, also resharded; a second save uploads only what changed; a failed rank
leaves nothing listed. Single-process checks (no_dist) cover dtypes, refusals and damaged chunks.

The ranks are this file run as a script: `python test_torch_dcp.py '<json arguments>'`.
"""
import io
import itertools
import json
import os
import pickle
import subprocess
import sys
import threading
import uuid

import pytest

torch = pytest.importorskip("torch")

import granary  # noqa: E402
from conftest import empty_and_delete_bucket  # noqa: E402
from granary._dcp_import import distributed_checkpoint  # noqa: E402
from granary_server import _die_with_parent  # noqa: E402
from granary.torch.dcp import GranaryStorageReader, GranaryStorageWriter  # noqa: E402

dcp = distributed_checkpoint()
import torch.distributed as dist  # noqa: E402
from torch.distributed._shard import sharded_tensor  # noqa: E402
from torch.distributed._shard.sharding_spec import ChunkShardingSpec  # noqa: E402

WORLD = 2
CHUNK_BYTES = 1024
ROWS, COLS = 64, 32  # of the tensor sharded across the ranks (float32: 4 KiB per shard)
RANK_TIMEOUT_S = 60


def expected_state(version):
    """The global values of the saved state; from one version to the next only "bias" and
    "step" change."""
    g = torch.Generator().manual_seed(7)
    return {
        "sharded": torch.randn(ROWS, COLS, generator=g),
        "weight": torch.randn(48, 16, generator=g).to(torch.float64),
        "bias": torch.arange(16, dtype=torch.int64) * version,
        "config": {"lr": 0.1, "betas": (0.9, 0.99), "name": "run"},
        "step": version,
    }


def byte_item_size(value):
    """The size of a Python value as DCP's default planner stores it (torch.save)."""
    out = io.BytesIO()
    torch.save(value, out)
    return len(out.getvalue())


# The ranks ------------------------------------------------------------------------------------

def shard_across_ranks(full, dim):
    spec = ChunkShardingSpec(dim=dim, placements=[f"rank:{r}/cpu" for r in range(WORLD)])
    st = sharded_tensor.zeros(spec, *full.shape, dtype=full.dtype)
    for shard in st.local_shards():
        md = shard.metadata
        shard.tensor.copy_(full[tuple(slice(o, o + s)
                                      for o, s in zip(md.shard_offsets, md.shard_sizes))])
    return st


def rank_state(version, fail=False):
    state = expected_state(version)
    state["sharded"] = shard_across_ranks(state["sharded"], dim=0)
    if fail:
        state["config"]["lock"] = threading.Lock()  # torch.save fails on the coordinator
    return state


class FailOnRank(dcp.default_planner.DefaultSavePlanner):
    """Fails every item of one rank while the ranks write."""

    def __init__(self, rank):
        super().__init__()
        self.failing_rank = rank

    def resolve_data(self, write_item):
        if dist.get_rank() == self.failing_rank:
            raise RuntimeError(f"rank {self.failing_rank} cannot resolve {write_item.index.fqn}")
        return super().resolve_data(write_item)


def rank_save(client, args):
    """Saves each (step, version) of args["saves"]; reports this rank's store stats."""
    stats = []
    for step, version in args["saves"]:
        writer = GranaryStorageWriter(client, args["run"], step, chunk_bytes=CHUNK_BYTES)
        dcp.save_state_dict(rank_state(version), writer)
        stats.append(writer.stats)
    return {"stats": stats}


def fresh(layout):
    """A state to load into: zeros, with "sharded" laid out as `layout`."""
    zeros = {"sharded": torch.zeros(ROWS, COLS), "weight": torch.zeros(48, 16, dtype=torch.float64),
             "bias": torch.zeros(16, dtype=torch.int64), "config": None, "step": None}
    if layout != "full":
        zeros["sharded"] = shard_across_ranks(zeros["sharded"], dim={"dim0": 0, "dim1": 1}[layout])
    return zeros


def rank_load(client, args):
    """Loads args["step"] (None: the latest) into fresh states of several layouts; reports what
    each holds, a ShardedTensor as its local shards [(offsets, tensor)]."""
    loaded = {}
    for layout in args["layouts"]:
        state = fresh(layout)
        reader = GranaryStorageReader(client, args["run"], args["step"])
        dcp.load_state_dict(state, reader)
        if layout != "full":
            state["sharded"] = [(list(s.metadata.shard_offsets), s.tensor.clone())
                                for s in state["sharded"].local_shards()]
        loaded[layout] = (reader.manifest.step, state)
    return {"loaded": loaded}


def rank_fail(client, args):
    """Saves step args["step"] while rank 1 fails, then while rank 0 does, then cleanly; reports
    what each failed save raised here and the steps listed after it."""
    native = granary._granary.Checkpointer(client, args["run"])
    failures = []
    for failing in (1, 0):
        writer = GranaryStorageWriter(client, args["run"], args["step"], chunk_bytes=CHUNK_BYTES)
        try:
            if failing == 0:
                dcp.save_state_dict(rank_state(1, fail=True), writer)
            else:
                dcp.save_state_dict(rank_state(1), writer, planner=FailOnRank(failing))
            failures.append(("saved", None, native.list()))
        except dcp.CheckpointException as e:  # a BaseException
            errors = {rank: f"{type(exc).__name__}: {exc}" for rank, (exc, _) in e.failures.items()}
            failures.append(("raised", errors, native.list()))
    writer = GranaryStorageWriter(client, args["run"], args["step"], chunk_bytes=CHUNK_BYTES)
    dcp.save_state_dict(rank_state(1), writer)
    return {"failures": failures, "stats": writer.stats}


ACTIONS = {"save": rank_save, "load": rank_load, "fail": rank_fail}


def rank_main(args):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's sockets on 127.0.0.1
    dist.init_process_group("gloo", init_method="file://" + args["store"], rank=args["rank"],
                            world_size=WORLD)
    try:
        with granary.Client(args["address"], args["access_key"], args["secret_key"],
                            timeout_ms=30_000) as client:
            report = ACTIONS[args["action"]](client, args)
    finally:
        dist.destroy_process_group()
    with open(args["out"], "wb") as f:
        pickle.dump(report, f)


# The test side --------------------------------------------------------------------------------

_runs = itertools.count()


def run_ranks(server, tmp_path, action, **args):
    """Runs `action` in WORLD fresh rank processes and returns their reports, by rank. Every
    process is stopped before it returns; one that fails fails the test with its output."""
    n = next(_runs)
    common = dict(args, action=action, address=server.native_address,
                  access_key=server.access_key, secret_key=server.secret_key,
                  store=str(tmp_path / f"store-{n}"))
    procs, outs = [], []
    try:
        for rank in range(WORLD):
            outs.append(tmp_path / f"{action}-{n}-rank{rank}.pickle")
            spec = dict(common, rank=rank, out=str(outs[-1]))
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                           json.dumps(spec)],
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent))
        logs = [p.communicate(timeout=RANK_TIMEOUT_S)[0].decode(errors="replace")
                for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {rank} exited with {p.returncode}:\n{log[-6000:]}"
    reports = []
    for out in outs:
        with open(out, "rb") as f:
            reports.append(pickle.load(f))
    return reports


@pytest.fixture(scope="module")
def saved(server, client, tmp_path_factory):
    """A run with checkpoint 1 (version 1) saved by two ranks: (run, bucket, per-rank stats)."""
    bucket = f"test-dcp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(bucket)
    run = f"{bucket}/runs/dcp"
    reports = run_ranks(server, tmp_path_factory.mktemp("dcp"), "save", run=run, saves=[[1, 1]])
    yield run, bucket, [r["stats"][0] for r in reports]
    empty_and_delete_bucket(client, bucket)


def test_each_rank_uploads_its_own_shard_and_one_manifest_lists_them(client, saved):
    run, _, stats = saved
    shard_bytes = ROWS * COLS * 4 // WORLD
    state = expected_state(1)
    # Rank 1 holds only its shard; the coordinator its shard, the replicated tensors and values.
    assert stats[1]["bytes"] == stats[1]["written_bytes"] == shard_bytes
    assert stats[1]["chunks"] == shard_bytes // CHUNK_BYTES
    plain = (state["weight"].numel() * 8 + state["bias"].numel() * 8
             + byte_item_size(state["config"]) + byte_item_size(state["step"]))
    assert stats[0]["bytes"] == stats[0]["written_bytes"] == shard_bytes + plain

    native = granary._granary.Checkpointer(client, run)
    assert native.list() == [1]
    manifest = native.describe(1)
    assert manifest.extra.startswith(b"GRDCP001")
    sizes = {t.name: t.size for t in manifest.tensors}
    assert sizes == {
        "sharded[0:,0:]": shard_bytes, f"sharded[{ROWS // 2}:,0:]": shard_bytes,
        "weight[0:,0:]": state["weight"].numel() * 8, "bias[0:]": state["bias"].numel() * 8,
        "config": byte_item_size(state["config"]), "step": byte_item_size(state["step"]),
    }
    shard = next(t for t in manifest.tensors if t.name == f"sharded[{ROWS // 2}:,0:]")
    assert (shard.dtype, list(shard.shape)) == ("float32", [ROWS // 2, COLS])


def test_fresh_ranks_load_it_exactly_also_resharded(server, saved, tmp_path):
    run, _, _ = saved
    reports = run_ranks(server, tmp_path, "load", run=run, step=None,
                        layouts=["dim0", "dim1", "full"])
    want = expected_state(1)
    for rank, report in enumerate(reports):
        for layout, (step, state) in report["loaded"].items():
            where = f"rank {rank}, layout {layout}"
            assert step == 1, where
            for key in ("weight", "bias"):
                assert torch.equal(state[key], want[key]), f"{where}: {key}"
            assert state["config"] == want["config"] and state["step"] == 1, where
            if layout == "full":
                assert torch.equal(state["sharded"], want["sharded"]), where
                continue
            (offsets, tensor), = state["sharded"]
            dim = 0 if layout == "dim0" else 1
            assert offsets[dim] == rank * want["sharded"].shape[dim] // WORLD, where
            expected = want["sharded"].narrow(dim, offsets[dim], tensor.shape[dim])
            assert torch.equal(tensor, expected), where


def test_a_second_save_uploads_only_what_changed(server, client, bucket, tmp_path):
    run = f"{bucket}/runs/incremental"
    reports = run_ranks(server, tmp_path, "save", run=run, saves=[[10, 1], [20, 2]])
    first = [r["stats"][0] for r in reports]
    second = [r["stats"][1] for r in reports]
    assert first[1]["written_bytes"] == ROWS * COLS * 4 // WORLD
    # Version 2 changes the coordinator's "bias" (one chunk) and "step" (one byte item) only.
    assert second[1]["written_bytes"] == 0 and second[1]["bytes"] == first[1]["bytes"]
    assert second[0]["bytes"] == first[0]["bytes"] - byte_item_size(1) + byte_item_size(2)
    assert second[0]["written_chunks"] == 2
    assert second[0]["written_bytes"] == 16 * 8 + byte_item_size(2)
    native = granary._granary.Checkpointer(client, run)
    assert native.list() == [10, 20]
    native.keep_last(1)  # an ordinary checkpoint of the run
    assert native.list() == [20]
    state = {"bias": torch.zeros(16, dtype=torch.int64), "step": None}
    dcp.load_state_dict(state, GranaryStorageReader(client, run), no_dist=True)
    assert torch.equal(state["bias"], expected_state(2)["bias"]) and state["step"] == 2


def test_a_failed_rank_leaves_nothing_listed(server, client, bucket, tmp_path):
    run = f"{bucket}/runs/failing"
    reports = run_ranks(server, tmp_path, "fail", run=run, step=3)
    for rank, report in enumerate(reports):
        (what1, errors1, listed1), (what0, errors0, listed0) = report["failures"]
        # 1.13 gathers every rank's write results to the coordinator, which calls finish() only
        # when no rank failed, and raises CheckpointException on every rank.
        assert what1 == what0 == "raised", f"rank {rank}"
        assert list(errors1) == [1] and "rank 1 cannot resolve sharded" in errors1[1]
        assert list(errors0) == [0] and "lock" in errors0[0]
        assert listed1 == listed0 == [], f"rank {rank}"
    # The uploads of the failed saves are no obstacle to saving the step.
    assert granary._granary.Checkpointer(client, run).list() == [3]
    assert reports[1]["stats"]["bytes"] == ROWS * COLS * 4 // WORLD


# In one process (no_dist) ---------------------------------------------------------------------

def test_dtypes_views_and_values_round_trip_in_one_process(client, bucket):
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    state = {
        "transposed": base.t(), "strided": base[1:5, ::3], "scalar": torch.tensor(2.5),
        "empty": torch.empty(0, 4), "bf16": torch.randn(7).to(torch.bfloat16),
        "half": torch.randn(3, 2).half(), "bool": torch.tensor([True, False, True]),
        "complex": torch.randn(4, dtype=torch.complex64),
        "int8": torch.tensor([-3, 4], dtype=torch.int8),
        "value": {"nested": [1, (2, 3.0)], "bytes": b"\x00\xff", "none": None},
    }
    writer = GranaryStorageWriter(client, f"{bucket}/one", 0, chunk_bytes=16)
    dcp.save_state_dict(state, writer, no_dist=True)
    target = {k: torch.zeros_like(v) if isinstance(v, torch.Tensor) else None
              for k, v in state.items()}
    reader = GranaryStorageReader(client, f"{bucket}/one", 0)
    dcp.load_state_dict(target, reader, no_dist=True)
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            assert target[key].dtype == value.dtype and torch.equal(target[key], value), key
        else:
            assert target[key] == value, key


def test_a_checkpoint_not_saved_by_the_dcp_api_is_refused_clearly(client, bucket):
    run = f"{bucket}/plain"
    native = granary._granary.Checkpointer(client, run)
    native.save(5, [("w", "float32", (2,), bytes(8))], b"not dcp")
    message = f"checkpoint 5 of {run} was not saved by the distributed checkpoint API"
    with pytest.raises(granary.InvalidArgumentError, match=message):
        GranaryStorageReader(client, run).read_metadata()
    # load_state_dict wraps what a rank raised (CheckpointException is a BaseException).
    with pytest.raises(dcp.CheckpointException) as raised:
        dcp.load_state_dict({"w": torch.zeros(2)}, GranaryStorageReader(client, run, 5),
                            no_dist=True)
    exc, _ = raised.value.failures[0]
    assert isinstance(exc, granary.InvalidArgumentError) and message in str(exc)
    with pytest.raises(granary.NotFoundError):
        GranaryStorageReader(client, f"{bucket}/nothing").read_metadata()


def test_saving_an_existing_step_is_refused_before_any_upload(client, bucket):
    run = f"{bucket}/twice"
    dcp.save_state_dict({"w": torch.ones(4)}, GranaryStorageWriter(client, run, 1), no_dist=True)
    writer = GranaryStorageWriter(client, run, 1)
    with pytest.raises(dcp.CheckpointException) as raised:
        dcp.save_state_dict({"w": torch.zeros(4)}, writer, no_dist=True)
    exc, _ = raised.value.failures[0]
    assert isinstance(exc, granary.AlreadyExistsError)
    assert writer.stats is None  # refused while planning, before write_data
    with pytest.raises(granary.InvalidArgumentError, match="step must be an int >= 0"):
        GranaryStorageWriter(client, run, -1)


def test_a_damaged_chunk_is_reported_with_its_tensor(client, bucket):
    run = f"{bucket}/damaged"
    dcp.save_state_dict({"weight": torch.randn(8, 8)}, GranaryStorageWriter(client, run, 1),
                        no_dist=True)
    for obj in client.list_all(bucket, prefix="damaged/chunks/"):
        client.put(bucket, obj.key, b"\x00" * obj.size)
    with pytest.raises(dcp.CheckpointException) as raised:
        dcp.load_state_dict({"weight": torch.zeros(8, 8)}, GranaryStorageReader(client, run),
                            no_dist=True)
    exc, _ = raised.value.failures[0]
    assert isinstance(exc, granary.CorruptionError) and "weight[0:,0:]" in str(exc)


if __name__ == "__main__":
    rank_main(json.loads(sys.argv[1]))
