"""granary.torch.Checkpointer against a real server, with Debian's PyTorch: round trips of models
and optimizer states, in-place loads, incremental saves, the asynchronous save's copy and
background upload, restarts, damaged chunks, bad input, and kill -9 of the saving process with
the reclamation of what it left."""
import json
import os
import pickle
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
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


class HeldUploads:
    """Stands in for a Checkpointer's `_native`: save() waits until `release` is set (at most
    `limit` seconds) and then saves through the real one; everything else is the real one's."""

    def __init__(self, real, limit=30):
        self._real = real
        self._limit = limit
        self.entered = threading.Event()  # an upload reached save()
        self.release = threading.Event()

    def save(self, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            raise AssertionError("save() uploaded on the caller's thread, not in the background")
        self.entered.set()
        if not self.release.wait(self._limit):
            raise TimeoutError(f"the test held the upload for more than {self._limit} s")
        return self._real.save(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_save_returns_before_the_upload_which_runs_in_the_background(client, bucket):
    torch.manual_seed(11)
    base = torch.randn(64, 64)
    state = {"model": {"w": torch.randn(1 << 18), "base": base, "view": base[8:16]},
             "history": [torch.arange(5), 0.5], "step": 4}
    at_save = {"model": {k: v.clone() for k, v in state["model"].items()},
               "history": [state["history"][0].clone(), 0.5], "step": 4}
    at_save["model"]["view"] = at_save["model"]["base"][8:16]
    ckpt = Checkpointer(client, f"{bucket}/runs/held", chunk_bytes=64 << 10)
    held = HeldUploads(ckpt._native)
    ckpt._native = held
    handle = None
    try:
        handle = ckpt.save(4, state)  # returns while its upload waits for `release`
        assert held.entered.wait(30), "the upload never started"
        assert not handle.done()
        with pytest.raises(TimeoutError):
            handle.wait(timeout=0.01)
        assert ckpt.list() == []
        assert ckpt.latest_step() is None
        # Training goes on: the state changes in place and in its containers.
        state["model"]["w"].mul_(-1)
        state["model"]["base"].zero_()  # and so its view
        state["history"][0].add_(7)
        state["history"].append(torch.ones(3))
        state["step"] = 5
        assert not handle.done() and ckpt.list() == []
        held.release.set()
        stats = handle.wait(timeout=60)
        assert handle.done() and stats["bytes"] > 0
        assert ckpt.list() == [4]
        loaded = ckpt.load(4)
        assert_same(loaded, at_save)
        assert loaded["model"]["view"].storage().data_ptr() == \
            loaded["model"]["base"].storage().data_ptr()
    finally:
        held.release.set()
        if handle is not None:
            try:
                handle.wait(timeout=60)  # no upload outlives the test (and its bucket)
            except Exception:  # noqa: BLE001  (the test's own assertion says what failed)
                pass


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
    with pytest.raises(ValueError, match="dead_saver_grace"):
        Checkpointer(client, f"{bucket}/runs/e", dead_saver_grace=-1)

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
    address, access, secret, run, columns, last = sys.argv[1:7]
    def state(step):
        g = torch.Generator().manual_seed(step)
        return {"model": {f"w{i}": torch.randn(64, int(columns), generator=g) for i in range(8)},
                "step": step}
    client = granary.Client(address, access, secret)
    ckpt = Checkpointer(client, run, chunk_bytes=64 << 10)
    for step in range(1, int(last) + 1):  # bounded, should a kill never come
        ckpt.save(step, state(step)).wait()
        print(step, flush=True)
""")


def saver_state(step, columns):
    """The state SAVER saves as `step`."""
    g = torch.Generator().manual_seed(step)
    return {"model": {f"w{i}": torch.randn(64, columns, generator=g) for i in range(8)},
            "step": step}


def read_step(saver, round_, timeout=60):
    """The next step the saver reports durable (it prints one per line)."""
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([saver.stdout], [], [], left)[0], \
            f"the saver reported no save in {timeout} s (round {round_})"
        byte = os.read(saver.stdout.fileno(), 1)
        assert byte, f"the saver died (round {round_})"
        line += byte
    return int(line)


def chunk_names(manifest):
    """The names (under chunks/) of the chunks a checkpoint's manifest references."""
    for tensor in manifest.tensors:
        for lo, hi, size in tensor.__getstate__()[4]:  # (name, dtype, shape, size, chunks)
            yield f"{hi:016x}{lo:016x}-{size}"


def manifest_steps(keys, prefix):
    """The steps whose manifests are among `keys`, ascending."""
    return sorted(int(k[len(prefix + "steps/"):].split("/")[0]) for k in keys
                  if k.startswith(prefix + "steps/") and k.endswith("/manifest"))


def manifest_keys(steps, prefix):
    return {f"{prefix}steps/{step:020d}/manifest" for step in steps}


def chunks_of(ckpt, steps, chunks_dir):
    """The keys of the chunks the manifests of `steps` reference."""
    return {chunks_dir + name
            for step in steps for name in chunk_names(ckpt._native.describe(step))}


def kill_phase(steps, orphan_chunks, markers, per_step):
    """Where a kill hit the save in progress, as the objects it left tell."""
    marked = sorted(m.rsplit("/", 1)[1].split("-")[0].lstrip("0") or "0" for m in markers)
    step = f"step {', '.join(marked)}"
    if not markers and not orphan_chunks:
        return "between saves: nothing left over"
    if not markers:
        return f"{len(orphan_chunks)} orphan chunks and no marker (unexpected)"
    if orphan_chunks:
        return f"uploading {step}: {len(orphan_chunks)} of its {per_step} chunks stored"
    if all(m.isdigit() and int(m) in steps for m in marked):
        return f"{step} committed, its marker not yet removed"
    return f"{step} marked, none of its chunks stored yet"


def test_kill_9_while_saving_leaves_the_last_complete_checkpoint(server, client, bucket, tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    run, prefix = f"{bucket}/runs/kill", "runs/kill/"
    chunks_dir, saving_dir = prefix + "chunks/", prefix + "saving/"
    # Reclaims what a killed saver left at once; its puts that land late are checked below.
    ckpt = Checkpointer(client, run, dead_saver_grace=0)
    rng = random.Random(42)
    rounds = []  # what each kill left, for the messages
    for round_ in range(6):
        # Even rounds kill at a random time, in whatever phase the saver is (making the state,
        # copying it, uploading, committing); odd rounds save a larger state (16 MiB a step)
        # and kill once the bucket holds chunks no listed checkpoint accounts for: mid-upload.
        mid_upload = round_ % 2 == 1
        columns = 8192 if mid_upload else 1024
        per_step = 8 * 64 * columns * 4 // (64 << 10)  # 64 KiB chunks, all distinct
        saver = subprocess.Popen(
            [sys.executable, str(script), server.native_address, server.access_key,
             server.secret_key, run, str(columns), "10" if mid_upload else "40"],
            stdout=subprocess.PIPE, bufsize=0, env=dict(os.environ))
        durable = 0
        try:
            # Let it finish a few saves, then kill it during a later one.
            for _ in range(2):
                durable = read_step(saver, round_)
            if mid_upload:
                how = "once uncommitted chunks were seen"
                deadline = time.monotonic() + 30
                while True:
                    # Chunks first: a save that commits in between is then counted in full.
                    stored = sum(1 for _ in client.list_all(bucket, prefix=chunks_dir))
                    if stored > per_step * len(ckpt.list()):
                        break
                    assert saver.poll() is None, f"the saver ended (round {round_})"
                    assert time.monotonic() < deadline, f"no upload seen in 30 s (round {round_})"
            else:
                delay = rng.uniform(0, 0.3)
                how = f"{delay * 1000:.0f} ms after step {durable}"
                time.sleep(delay)
        finally:
            os.kill(saver.pid, signal.SIGKILL)
            saver.wait()
            saver.stdout.close()

        # The space the killed save holds: chunks no listed checkpoint references, and markers.
        before = {o.key for o in client.list_all(bucket, prefix=prefix)}
        steps = manifest_steps(before, prefix)
        assert steps and steps[-1] >= durable, (round_, steps, durable)
        used = chunks_of(ckpt, steps, chunks_dir)
        chunks = {k for k in before if k.startswith(chunks_dir)}
        assert used <= chunks, f"round {round_}: a listed checkpoint lacks chunks"
        orphans = chunks - used
        markers = {k for k in before if k.startswith(saving_dir)}
        assert before == chunks | markers | manifest_keys(steps, prefix), f"round {round_}"

        # A reclamation that deletes no checkpoint removes exactly those (the saver is dead).
        ckpt.keep_last(len(steps))
        after = {o.key for o in client.list_all(bucket, prefix=prefix)}
        # The server finishes the puts the saver had sent before it died: they may land after
        # the listing above (a checkpoint's commit too), and a later reclamation takes them.
        late = after - before
        listed = manifest_steps(after, prefix)
        committed_late = sorted(set(listed) - set(steps))
        assert set(steps) <= set(listed) and committed_late in ([], [steps[-1] + 1]), \
            (round_, steps, listed)
        gone = (orphans - chunks_of(ckpt, committed_late, chunks_dir)) | markers
        rounds.append((f"round {round_} (killed {how}): steps {steps}, "
                       + kill_phase(steps, orphans, markers, per_step)
                       + (f"; {len(late)} of its puts landed after the kill" if late else "")
                       + (f"; step {committed_late} committed after it" if committed_late else ""),
                       len(gone - markers)))
        said = rounds[-1][0]
        assert after & before == before - gone, said
        assert all(k.startswith((chunks_dir, saving_dir)) for k in late - manifest_keys(
            committed_late, prefix)), f"{said}: {sorted(late)}"
        steps = listed
        for step in steps:  # every listed checkpoint is complete and exact
            assert_same(ckpt.load(step), saver_state(step, columns))

        ckpt.keep_last(1)
        assert ckpt.list() == steps[-1:]
        assert sum(1 for _ in client.list_all(bucket, prefix=chunks_dir)) == per_step
        assert_same(ckpt.load(), saver_state(steps[-1], columns))
        # Steps restart at 1 in each round: delete what it saved, as a fresh run would.
        ckpt.delete(steps[-1])
        assert not list(client.list_all(bucket, prefix=prefix)), said
    summary = "\n".join(said for said, _ in rounds)
    assert any(reclaimed for _, reclaimed in rounds), f"no kill left a save's chunks:\n{summary}"


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
