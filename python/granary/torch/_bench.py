"""The measuring half of `granary bench checkpoint` (src/tools/bench_checkpoint.cc starts the
server, runs this module and reports): a training state of about --gib GiB (a model's parameters
and Adam's two moments, random tensors) saved and loaded through granary.torch.Checkpointer, and
with torch.save to a file on the same disk + fsync and torch.load of it. Prints one JSON document
on stdout: the figures of each run (bench/README.md says what each one is).

    python3 -m granary.torch._bench --address A --dir DIR --data-dir SERVER_DIR [--gib 2] ...
"""

import argparse
import json
import os
import sys
import time

import torch

import granary
from granary.torch import Checkpointer

MIB = 1 << 20


def training_state(gib, seed):
    """A model's state_dict and its Adam state_dict: 16 MiB weight matrices with biases, the
    parameters a third of `gib`, the two moments the rest."""
    g = torch.Generator().manual_seed(seed)
    layers = max(1, int(gib * 1024 / 3 / 16))
    model = {}
    for i in range(layers):
        model[f"layers.{i}.weight"] = torch.randn(2048, 2048, generator=g)
        model[f"layers.{i}.bias"] = torch.randn(2048, generator=g)
    state = {}
    for n, (name, p) in enumerate(model.items()):
        state[n] = {"step": torch.tensor(100.0),
                    "exp_avg": torch.randn(p.shape, generator=g) * 1e-3,
                    "exp_avg_sq": torch.rand(p.shape, generator=g) * 1e-6}
    optim = {"state": state,
             "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                               "weight_decay": 0.0, "amsgrad": False,
                               "params": list(range(len(model)))}]}
    return {"model": model, "optim": optim, "step": 100}


def tensors_of(state):
    out = list(state["model"].values())
    for s in state["optim"]["state"].values():
        out += [s["exp_avg"], s["exp_avg_sq"]]
    return out


def change_some(state, fraction, seed):
    """Changes `fraction` of the large tensors in place; returns the bytes changed."""
    g = torch.Generator().manual_seed(seed)
    big = [t for t in tensors_of(state) if t.numel() >= 1 << 20]
    count = max(1, round(fraction * len(big)))
    changed = 0
    for i in torch.randperm(len(big), generator=g)[:count].tolist():
        big[i].add_(1e-3)
        changed += big[i].numel() * big[i].element_size()
    return changed


def drop_cache(*paths):
    """Writes back and drops the page cache of every file under `paths`."""
    os.sync()
    for path in paths:
        files = [path] if os.path.isfile(path) else [
            os.path.join(root, f) for root, _, names in os.walk(path) for f in names]
        for name in files:
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError:
                continue  # removed meanwhile
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def torch_save(state, path):
    """torch.save of `state` to the file `path`, then fsync."""
    start = time.perf_counter()
    with open(path, "wb") as f:
        torch.save(state, f)
        f.flush()
        save_s = time.perf_counter() - start
        os.fsync(f.fileno())
    return {"save_s": save_s, "save_fsync_s": time.perf_counter() - start,
            "file_bytes": os.path.getsize(path),
            "incremental_file_bytes": os.path.getsize(path)}  # it writes the whole state again


def timed_save(ckpt, step, state):
    """(stall, time until durable, bytes uploaded, bytes of the state) of one save."""
    start = time.perf_counter()
    handle = ckpt.save(step, state)
    stall = time.perf_counter() - start
    stats = handle.wait()
    return (stall, time.perf_counter() - start, stats["written_bytes"] + stats["manifest_bytes"],
            stats["bytes"])


def granary_saves(ckpt, state, changed):
    """The three saves: the first full, with host buffers allocated; then one in which `changed`
    of the tensors changed, reusing the first one's host buffers; then one in which every large
    tensor changed (a full upload again, as torch.save's every save is), reusing them too."""
    out = {}
    (out["first_stall_s"], out["first_durable_s"], out["first_written_bytes"],
     out["state_bytes"]) = timed_save(ckpt, 1, state)
    out["changed_bytes"] = change_some(state, changed, seed=7)
    out["stall_s"], out["incremental_durable_s"], out["incremental_written_bytes"], _ = \
        timed_save(ckpt, 2, state)
    change_some(state, 1.0, seed=8)
    _, out["full_durable_s"], out["full_written_bytes"], _ = timed_save(ckpt, 3, state)
    return out


def one_run(client, args, i):
    """Saves with both sides, then loads with both from a dropped page cache; the sides take
    turns going first, and the loads run with the state and the save's buffers freed."""
    state = training_state(args.gib, seed=i)
    run = f"{args.bucket}/run-{os.getpid()}-{i}"
    path = os.path.join(args.dir, f"torch-{os.getpid()}-{i}.pt")
    ckpt = Checkpointer(client, run, parallel=args.parallel)
    if i % 2 == 0:
        g = granary_saves(ckpt, state, args.changed)
        t = torch_save(state, path)
    else:
        t = torch_save(state, path)
        g = granary_saves(ckpt, state, args.changed)
    del state, ckpt
    reader = Checkpointer(client, run, parallel=args.parallel)
    loads = [("torch", lambda: torch.load(path)), ("granary", lambda: reader.load(2))]
    for side, load in (loads if i % 2 else loads[::-1]):
        drop_cache(args.data_dir, path)
        seconds, loaded = timed(load)
        del loaded
        (g if side == "granary" else t)["load_s"] = seconds
    reader.keep_last(0)
    os.remove(path)
    return {"granary": g, "torch": t}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--access-key", default=os.environ.get("GRANARY_ACCESS_KEY"))
    p.add_argument("--secret-key", default=os.environ.get("GRANARY_SECRET_KEY"))
    p.add_argument("--bucket", default="bench")
    p.add_argument("--dir", required=True, help="where torch.save writes its file")
    p.add_argument("--data-dir", required=True, help="the server's data directory")
    p.add_argument("--gib", type=float, default=2.0)
    p.add_argument("--changed", type=float, default=0.10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--parallel", type=int, default=8)
    args = p.parse_args()

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    client = granary.Client(args.address, args.access_key, args.secret_key)
    # On a virtual machine the first touch of a page of guest memory costs far more than later
    # ones; touch as much as the runs use once, so that neither side pays it.
    warm = torch.ones(int(4 * args.gib * (1 << 30)) // 4, dtype=torch.float32)
    del warm
    runs = []
    for i in range(args.runs):
        runs.append(one_run(client, args, i))
        print(f"run {i + 1}/{args.runs}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    json.dump({"runs": runs, "torch_version": torch.__version__,
               "torch_threads": torch.get_num_threads()}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
