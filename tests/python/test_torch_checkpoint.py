"""granary.torch.Checkpointer against a real server, with Debian's PyTorch: round trips of models
and optimizer states, in-place loads, incremental saves, the asynchronous save's copy, restarts,
damaged chunks, bad input, and kill -9 of the saving process."""
import json
import os
import pickle
import random
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

torch = pytest.importorskip("torch")

import granary  # noqa: E402
from conftest import make_client  # noqa: E402
from granary.torch import Checkpointer  # noqa: E402
from granary_server import BINARY, GranaryServer  # noqa: E402


def small_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))


def trained(seed=0):
    model = small_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(4, 64)).square().sum().backward()
        opt.step()
    return model, opt


def assert_same(a, b, path="state"):
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride(), path
        assert a.requires_grad == b.requires_grad, path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}.{i}")
    else:
        assert a == b, path


def test_models_and_optimizer_states_round_trip(client, bucket):
    model, opt = trained()
    base = torch.arange(60, dtype=torch.float64).reshape(6, 10)
    tied = torch.nn.Parameter(torch.randn(5, 3))
    raw = torch.arange(6, dtype=torch.uint8)  # 6 bytes: not a whole number of float32s
    cplx = torch.randn(3, dtype=torch.complex64)
    state = {
        "float_view_first": raw[:4].view(torch.float32),  # pickled before its byte buffer
        "raw": raw,
        "conj": cplx.conj(),  # a lazy view whose storage holds other values
        "neg": cplx.conj().imag,
        "model": model.state_dict(),
        "optim": opt.state_dict(),
        "dtypes": [torch.randn(3).to(d) for d in (torch.float16, torch.bfloat16, torch.float64)]
        + [torch.tensor([1, -2], dtype=torch.int8), torch.tensor([True, False]),
           torch.randn(2, dtype=torch.complex64), torch.arange(4, dtype=torch.int64)],
        "base": base,
        "view": base[1:4, ::3],            # a view: saved with its storage, loaded sharing it
        "transposed": base.t(),            # non-contiguous
        "tied": (tied, tied),              # one Parameter twice
        "scalar": torch.tensor(2.5),
        "empty": torch.empty(0, 4),
        "plain": {"lr": 0.1, "name": "run", "none": None, "size": torch.Size([2, 3]),
                  "nested": [1, (2, 3.0), {"x": b"bytes"}]},
    }
    ckpt = Checkpointer(client, f"{bucket}/runs/a", chunk_bytes=4096)
    handle = ckpt.save(10, state)
    stats = handle.wait()
    assert stats["bytes"] > 0 and stats["written_bytes"] <= stats["bytes"]
    assert ckpt.list() == [10]

    loaded = Checkpointer(client, f"{bucket}/runs/a").load()
    on_cpu = Checkpointer(client, f"{bucket}/runs/a").load(10, map_location="cpu")
    for key in ("conj", "neg"):  # saved as their values, in a contiguous storage
        expected = state.pop(key)
        assert torch.equal(loaded.pop(key), expected) and torch.equal(on_cpu.pop(key), expected)
    assert_same(state, loaded)
    assert_same(state, on_cpu)
    assert loaded["view"].storage().data_ptr() == loaded["base"].storage().data_ptr()
    assert loaded["tied"][0] is loaded["tied"][1]
    assert isinstance(loaded["tied"][0], torch.nn.Parameter)

    # The optimizer resumes from the loaded state exactly as from the original.
    model2 = small_model(1)
    model2.load_state_dict(loaded["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["optim"])
    x = torch.randn(4, 64)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).square().sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_load_into_fills_tensors_in_place(client, bucket):
    model, opt = trained()
    ckpt = Checkpointer(client, f"{bucket}/runs/b")
    ckpt.save(1, {"model": model.state_dict(), "optim": opt.state_dict()}, blocking=True)

    target = small_model(7)
    before = {k: v.data_ptr() for k, v in target.state_dict().items()}
    assert ckpt.load_into(target, key="model") is target
    for k, v in target.state_dict().items():
        assert v.data_ptr() == before[k], k
        assert torch.equal(v, model.state_dict()[k]), k

    # Nested states too, including a non-contiguous destination.
    dest = {k: torch.empty_like(v).t().contiguous().t() if v.dim() == 2 else torch.empty_like(v)
            for k, v in model.state_dict().items()}
    ckpt.load_into(dest, key="model")
    for k, v in dest.items():
        assert torch.equal(v, model.state_dict()[k]), k

    wrong = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    with pytest.raises(granary.InvalidArgumentError,
                       match=r"'0.bias' is float32\[32\] in the checkpoint and float32\[16\]"):
        ckpt.load_into(wrong, key="model")
    with pytest.raises(granary.InvalidArgumentError, match="strict=False"):
        ckpt.load_into(torch.nn.Linear(64, 32), key="model")
    partial = torch.nn.Sequential(torch.nn.Linear(64, 32))
    ckpt.load_into(partial, key="model", strict=False)
    assert torch.equal(partial[0].weight, model[0].weight)


def test_a_second_checkpoint_writes_only_the_changed_tensors(client, bucket):
    torch.manual_seed(3)
    state = {f"layer{i}": torch.randn(64, 1024) for i in range(10)}  # 256 KiB each
    ckpt = Checkpointer(client, f"{bucket}/runs/c", chunk_bytes=64 << 10)
    first = ckpt.save(1, state).wait()
    assert first["written_bytes"] == 10 * 256 << 10
    old = state["layer3"].clone()
    state["layer3"] += 1  # 10 % of the tensors change
    second = ckpt.save(2, state).wait()
    assert second["bytes"] == first["bytes"]
    assert second["written_bytes"] == 256 << 10
    assert second["manifest_bytes"] < 0.05 * second["written_bytes"]
    assert_same(ckpt.load(1)["layer3"], old)
    assert_same(ckpt.load(2), state)

    # Deleting the first frees its changed chunks only; the second still loads.
    chunks = lambda: sum(1 for _ in client.list_all(bucket, prefix="runs/c/chunks/"))  # noqa
    n = chunks()
    ckpt.delete(1)
    assert chunks() == n - 4
    assert_same(ckpt.load(), state)


def test_save_returns_after_the_copy_and_the_checkpoint_keeps_those_bytes(client, bucket):
    weights = torch.randn(1 << 20)
    saved = weights.clone()
    ckpt = Checkpointer(client, f"{bucket}/runs/d")
    handle = ckpt.save(5, {"w": weights})
    weights.add_(1.0)  # training goes on at once
    assert handle.stall_seconds >= 0
    handle.wait()
    assert handle.done()
    assert torch.equal(ckpt.load(5)["w"], saved)
    # Saves queue behind the one uploading, and reuse its host memory.
    handles = [ckpt.save(s, {"w": weights + s}) for s in range(6, 9)]
    for s, h in zip(range(6, 9), handles):
        h.wait()
        assert torch.equal(ckpt.load(s)["w"], weights + s)
    ckpt.keep_last(2)
    assert ckpt.list() == [7, 8]

    # A pending handle inherited by a forked child says where to wait, instead of hanging.
    handle = ckpt.save(9, {"w": weights})
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            handle.done() or handle.wait()
            os.write(write, b"done" if handle.done() else b"hang")
        except RuntimeError as e:
            os.write(write, b"refused" if "forked child" in str(e) else b"other")
        finally:
            os._exit(0)
    os.close(write)
    try:
        answered = select.select([read], [], [], 30)[0]
        assert answered, "a forked child hung waiting on an inherited save handle"
        assert os.read(read, 16) in (b"refused", b"done")  # done: it finished before the fork
    finally:
        os.close(read)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    handle.wait()


def test_errors_are_clear(client, bucket):
    ckpt = Checkpointer(client, f"{bucket}/runs/e")
    with pytest.raises(granary.NotFoundError):
        ckpt.load()
    with pytest.raises(granary.InvalidArgumentError, match="step"):
        ckpt.save(-1, {})
    with pytest.raises(granary.InvalidArgumentError, match="sparse|layout"):
        ckpt.save(1, {"s": torch.eye(3).to_sparse()})
    ckpt.save(1, {"a": torch.ones(2)}).wait()
    with pytest.raises(granary.AlreadyExistsError):
        ckpt.save(1, {"a": torch.zeros(2)}).wait()
    with pytest.raises(granary.NoSuchBucketError):
        Checkpointer(client, "no-such-bucket/run")

    # A pickled object of an arbitrary class is not constructed unless the run is trusted.
    ckpt.save(2, {"obj": ValueError("x")}).wait()
    with pytest.raises(pickle.UnpicklingError, match="builtins.ValueError.*trusted=True"):
        ckpt.load(2)
    assert Checkpointer(client, f"{bucket}/runs/e", trusted=True).load(2)["obj"].args == ("x",)


def test_load_after_a_server_restart():
    model, _ = trained(5)
    with GranaryServer() as own:
        with make_client(own.native_address) as c:
            c.create_bucket("restart")
            Checkpointer(c, "restart/run").save(3, {"m": model.state_dict()}, blocking=True)
        own.kill()  # kill -9: what was acknowledged must be there after the restart
        own.start()
        with make_client(own.native_address) as c:
            loaded = Checkpointer(c, "restart/run").load()
    assert_same(loaded["m"], model.state_dict())


def test_a_damaged_chunk_is_named_on_load(server, client, bucket):
    torch.manual_seed(9)
    w = torch.randn(256 << 10)  # 1 MiB: stored as a blob in the engine's files
    Checkpointer(client, f"{bucket}/runs/g").save(4, {"layer.w": w}, blocking=True)
    needle = w[1000:1016].numpy().tobytes()
    damaged = 0
    for root, _, files in os.walk(server.data_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "r+b") as f:
                data = f.read()
                at = data.find(needle)
                if at >= 0:
                    f.seek(at)
                    f.write(bytes(b ^ 0xFF for b in needle))
                    damaged += 1
    assert damaged >= 1
    with pytest.raises(granary.CorruptionError) as e:
        Checkpointer(client, f"{bucket}/runs/g").load()
    assert "layer.w" in str(e.value) and "chunks/" in str(e.value) and "checkpoint 4" in str(e.value)


SAVER = textwrap.dedent("""
    import sys, torch, granary
    from granary.torch import Checkpointer
    address, access, secret, run = sys.argv[1:5]
    def state(step):
        g = torch.Generator().manual_seed(step)
        return {"model": {f"w{i}": torch.randn(64, 1024, generator=g) for i in range(8)},
                "step": step}
    client = granary.Client(address, access, secret)
    ckpt = Checkpointer(client, run, chunk_bytes=64 << 10)
    step = 1
    while True:
        ckpt.save(step, state(step)).wait()
        print(step, flush=True)
        step += 1
""")


def test_kill_9_while_saving_leaves_the_last_complete_checkpoint(server, client, bucket, tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    run = f"{bucket}/runs/kill"
    env = dict(os.environ)
    rng = random.Random(42)
    durable = 0
    for round_ in range(4):
        saver = subprocess.Popen(
            [sys.executable, str(script), server.native_address, server.access_key,
             server.secret_key, run], stdout=subprocess.PIPE, text=True, env=env)
        try:
            # Let it finish a few saves, then kill it at a random point of the next one.
            for _ in range(2):
                line = saver.stdout.readline()
                assert line, f"the saver died (round {round_})"
                durable = max(durable, int(line))
            time.sleep(rng.uniform(0, 0.3))
        finally:
            os.kill(saver.pid, signal.SIGKILL)
            saver.wait()
        # Steps restart at 1 in each round: delete what it saved, as a fresh run would.
        ckpt = Checkpointer(client, run)
        steps = ckpt.list()
        assert steps and steps[-1] >= durable
        for step in steps:  # every listed checkpoint is complete and exact
            g = torch.Generator().manual_seed(step)
            loaded = ckpt.load(step)
            assert loaded["step"] == step
            for i in range(8):
                assert torch.equal(loaded["model"][f"w{i}"], torch.randn(64, 1024, generator=g))
        # The killed save's chunks are reclaimed (its saver is dead), the rest kept.
        ckpt.keep_last(1)
        kept = ckpt.load()
        chunks = sum(1 for _ in client.list_all(bucket, prefix="runs/kill/chunks/"))
        assert chunks == 8 * 4  # 8 tensors of 256 KiB in 64 KiB chunks, all distinct
        assert not list(client.list_all(bucket, prefix="runs/kill/saving/"))
        assert kept["step"] == steps[-1]
        ckpt.delete(steps[-1])
        durable = 0


def test_the_benchmark_runs_and_reports_every_figure(tmp_path):
    out = subprocess.run([BINARY, "bench", "checkpoint", "--dir", str(tmp_path), "--gib", "0.05",
                          "--runs", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    rows = {(r["name"], r["baseline"]): r for r in report["workloads"]}
    for name, baseline in (("save stall", "torch.save"), ("save until durable", "torch.save+fsync"),
                           ("save until durable, later save", "torch.save+fsync"),
                           ("load, page cache dropped", "torch.load"),
                           ("second checkpoint written", "changed bytes")):
        row = rows[(name, baseline)]
        assert row["granary"] > 0 and row["baseline_value"] > 0, row
    # The later save changed every large tensor: nearly all of the state went up again (the
    # biases and step counters, unchanged, were not).
    run = report["config"]["per_run"][0]["granary"]
    assert run["full_written_bytes"] >= 0.99 * run["state_bytes"]
    # Only the changed tensors (and a small manifest) are written again.
    written = rows[("second checkpoint written", "changed bytes")]
    assert written["granary"] <= 1.05 * written["baseline_value"]
    assert not list(tmp_path.iterdir())  # the benchmark removed what it wrote
