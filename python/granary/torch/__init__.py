"""granary.torch: PyTorch training checkpoints in a granary bucket.

    from granary.torch import Checkpointer

    ckpt = Checkpointer(client, "bucket/run-42")
    handle = ckpt.save(step, {"model": model.state_dict(), "optim": opt.state_dict()})
    ...                                   # training goes on while the upload runs
    handle.wait()                         # durable (raises what failed)
    state = ckpt.load()                   # the latest complete checkpoint
    ckpt.load_into(model, key="model")    # in place, into the module's own tensors

save() takes any nesting of dicts, lists and tuples of tensors and plain Python values. It returns
once the tensors' bytes are copied to host memory (the training stall); a background thread then
uploads them as content-addressed chunks in parallel, skipping chunks the run already holds, and
writes the checkpoint's manifest last, so a checkpoint is listed only once every byte of it is
durable. Tensors that share a storage (tied weights, views) are saved once and loaded sharing it
again. Every chunk is checked against its hash on load.

One save runs at a time per Checkpointer: save() first waits for the previous one's upload. The
host buffers of a finished save are reused by the next, so steady-state saves stall only for a
copy at memory speed. One process saves and deletes a run's checkpoints (any number may load).

PyTorch's distributed checkpoint API (several processes saving one checkpoint): granary.torch.dcp.
"""

import collections
import io
import mmap
import os
import pickle
import threading
import time

import torch

from .. import _granary
from .. import errors as _errors
from ..errors import InvalidArgumentError

__all__ = ["Checkpointer", "SaveHandle"]

# The first bytes of a manifest's extra written by this module; then a pickle of the state with
# each tensor replaced by a reference to its storage (the manifest's tensor of that index).
_MAGIC = b"GRTORCH1"
_FORMAT = 1


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InvalidArgumentError(f"step must be an int >= 0, not {step!r}", "invalid_argument")


def _dtype(name):
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise InvalidArgumentError(f"the checkpoint holds a tensor of unknown dtype {name!r}",
                                   "invalid_argument")
    return dtype


def _paths(obj, leaf=torch.Tensor, prefix=""):
    """Yields (path, leaf) for the leaves of type `leaf` in nested dicts, lists and tuples; a
    path is the keys and indexes joined by dots ("optim.state.0.exp_avg")."""
    if isinstance(obj, leaf):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, leaf, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _paths(v, leaf, f"{prefix}.{i}" if prefix else str(i))


def _flat_bytes(t):
    """The whole storage of `t` as a 1-d uint8 tensor on its device (no copy), every byte of it
    even when its size is not a multiple of `t`'s element size (a dtype view of a byte buffer)."""
    if hasattr(t, "untyped_storage"):
        storage = t.untyped_storage()
    else:
        storage = torch.storage.TypedStorage(wrap_storage=t.storage()._storage, dtype=torch.uint8)
    return torch.empty(0, dtype=torch.uint8, device=t.device).set_(storage)


def _typed(flat, dtype):
    """The bytes `flat` (1-d uint8) as elements of `dtype`; a tail shorter than one is left out."""
    itemsize = torch.empty(0, dtype=dtype).element_size()
    return flat[:flat.numel() - flat.numel() % itemsize].view(dtype)


def _check_savable(path, t):
    if t.layout != torch.strided:
        raise InvalidArgumentError(f"tensor {path!r} has layout {t.layout}: only dense (strided) "
                                   "tensors are saved; convert it (e.g. .to_dense())",
                                   "invalid_argument")
    if t.is_quantized or t.device.type == "meta":
        raise InvalidArgumentError(f"tensor {path!r} ({t.device.type}, {t.dtype}) holds no "
                                   "plain bytes to save", "invalid_argument")


class _Staged:
    """What a save copied to host memory: the storages' bytes in one buffer, and the pickle."""

    def __init__(self):
        self.storages = []  # (name, nbytes, offset into the buffer)
        self.keys = {}  # (device, data_ptr) -> storage index
        self.pickle = b""
        self.nbytes = 0


class _Pickler(pickle.Pickler):
    """Pickles a state, replacing each tensor by a reference to its storage."""

    def __init__(self, file, staged, names, sources):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._staged = staged
        self._names = names  # id(tensor) -> its path in the state
        self._sources = sources  # the flat bytes of each storage, by index
        self._numbers = {}  # id(tensor) -> its number, in pickling order
        self._seen = []

    def persistent_id(self, obj):
        if not isinstance(obj, torch.Tensor):
            return None
        # The same tensor object twice is loaded as one object again.
        number = self._numbers.get(id(obj))
        if number is not None:
            return ("same", number)
        self._numbers[id(obj)] = len(self._numbers)
        self._seen.append(obj)  # keeps id() unique while pickling
        path = self._names.get(id(obj), f"tensor{len(self._numbers) - 1}")
        _check_savable(path, obj)
        flags = (obj.requires_grad, isinstance(obj, torch.nn.Parameter))
        if obj.is_conj() or (hasattr(obj, "is_neg") and obj.is_neg()):
            # A lazily conjugated or negated view: its storage holds other values. Saved as
            # the values, in a storage of their own.
            obj = obj.resolve_conj()
            obj = obj.resolve_neg() if hasattr(obj, "resolve_neg") else obj
            self._seen.append(obj)
        storage = obj.storage()
        nbytes = storage.nbytes()
        key = (str(obj.device), storage.data_ptr()) if nbytes else ("empty", id(obj))
        index = self._staged.keys.get(key)
        if index is None:
            index = len(self._sources)
            self._staged.keys[key] = index
            self._staged.storages.append((path, nbytes, self._staged.nbytes))
            self._staged.nbytes += nbytes
            self._sources.append(_flat_bytes(obj) if nbytes else None)
        return ("tensor", index, _dtype_name(obj.dtype), str(obj.device), obj.storage_offset(),
                tuple(obj.shape), tuple(obj.stride())) + flags


# What a checkpoint's pickle may construct besides tensors, unless the Checkpointer trusts the run.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("torch", "Size"), ("torch", "device"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "range"),
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, tensor, trusted):
        super().__init__(file)
        self._tensor = tensor
        self._trusted = trusted
        self._loaded = []  # the tensors, in pickling order

    def find_class(self, module, name):
        if self._trusted or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(
            f"the checkpoint holds an object of {module}.{name}, which load() does not construct "
            "from a bucket's bytes: open the Checkpointer with trusted=True if you trust who "
            "wrote the run")

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "same":
            if not isinstance(pid[1], int) or not 0 <= pid[1] < len(self._loaded):
                raise pickle.UnpicklingError(f"bad reference {pid!r} in the checkpoint")
            return self._loaded[pid[1]]
        if not isinstance(pid, tuple) or len(pid) != 9 or pid[0] != "tensor":
            raise pickle.UnpicklingError(f"unknown reference {pid!r} in the checkpoint")
        self._loaded.append(self._tensor(*pid[1:]))
        return self._loaded[-1]


class SaveHandle:
    """A save in progress: wait() returns once it is durable and listed."""

    def __init__(self, step):
        self.step = step
        self.stall_seconds = 0.0  # how long save() kept the caller
        self._pid = os.getpid()  # the upload runs in this process only
        self._done = threading.Event()
        self._stats = None
        self._error = None

    def done(self):
        """Whether the save has ended (durable, or failed)."""
        return self._done.is_set()

    def wait(self, timeout=None):
        """Blocks until the checkpoint is durable and returns the save's counters (a dict: bytes,
        chunks, written_bytes, written_chunks: what was uploaded, the rest the run held;
        manifest_bytes). Raises
        what made the save fail, or TimeoutError after `timeout` seconds; RuntimeError in a
        forked child, where the upload does not run."""
        if os.getpid() != self._pid and not self._done.is_set():
            raise RuntimeError(f"the save of checkpoint {self.step} runs in the process that "
                               f"started it (pid {self._pid}), not in this forked child: wait "
                               "there")
        if not self._done.wait(timeout):
            raise TimeoutError(f"checkpoint {self.step} is not durable after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._stats

    def _finish(self, stats=None, error=None):
        self._stats, self._error = stats, error
        self._done.set()

    def __repr__(self):
        state = "pending" if not self.done() else ("failed" if self._error else "durable")
        return f"<granary.torch.SaveHandle step={self.step} {state}>"


class _HostBuffer:
    """Host memory a save copies the state into, populated when made (no page faults during the
    copy). On the server's host it is memory shared with the server (Client.shared_buffer), so
    that the upload moves no byte over the socket; elsewhere, anonymous memory."""

    def __init__(self, nbytes, client):
        self.nbytes = nbytes
        self._map = None
        shared = getattr(client, "shared_buffer", None)
        if shared is not None and nbytes > 0:
            try:
                self._map = shared(nbytes, populate=True)
            except (_errors.UnavailableError, _errors.NotSupportedError,
                    _errors.InvalidArgumentError, _errors.NoSpaceError):
                pass  # another host, or beyond the server's limits: plain memory
        if self._map is None:
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
            self._map = mmap.mmap(-1, max(nbytes, 1), flags=flags)
        self.shared = not isinstance(self._map, mmap.mmap)
        self.view = memoryview(self._map)
        self.tensor = torch.frombuffer(self._map, dtype=torch.uint8)


class Checkpointer:
    """Checkpoints of one training run, the objects under "bucket/prefix" (the bucket must
    exist). `client` is a granary.Client; `chunk_bytes` the size tensors are cut into (the unit
    of deduplication), `parallel` the chunks moved at once. `trusted`: load() constructs any
    Python object the checkpoint's pickle names (as torch.load does); by default only plain
    values, containers, torch.Size and dtypes, so that reading a bucket cannot run code.
    `dead_saver_grace`: seconds for which a reclamation (delete, keep_last, the first save)
    spares the chunks of a save killed on this host, whose last requests may still be landing
    on the server."""

    def __init__(self, client, run, *, chunk_bytes=16 << 20, parallel=8, trusted=False,
                 dead_saver_grace=60.0):
        self._native = _granary.Checkpointer(client, run, chunk_bytes=chunk_bytes,
                                             parallel=parallel, dead_saver_grace=dead_saver_grace)
        self._client = client
        self.run = run
        self._trusted = trusted
        self._lock = threading.Lock()  # one save() at a time
        self._pending = None  # (SaveHandle, thread) of the save uploading
        self._spare = None  # the host buffer of the last finished save, for the next

    # -- save ------------------------------------------------------------------------------

    def save(self, step, state, blocking=False):
        """Saves `state` as checkpoint `step` (an int >= 0 not yet saved) and returns a
        SaveHandle once the tensors are copied to host memory; with blocking=True, once the
        checkpoint is durable. InvalidArgumentError for a tensor that cannot be saved (sparse,
        quantized, meta); AlreadyExistsError (from wait()) when the step exists."""
        started = time.perf_counter()
        _check_step(step)
        with self._lock:
            self._wait_pending()
            staged, sources = self._pickle(state)
            buffer = self._host_buffer(staged.nbytes)
            for (_, nbytes, offset), source in zip(staged.storages, sources):
                if nbytes:
                    buffer.tensor[offset:offset + nbytes].copy_(source)
            handle = SaveHandle(step)
            thread = threading.Thread(target=self._upload, args=(handle, staged, buffer),
                                      name=f"granary-checkpoint-{step}")
            thread.start()
            self._pending = (handle, thread)
            handle.stall_seconds = time.perf_counter() - started
        if blocking:
            handle.wait()
        return handle

    def wait(self):
        """Waits for the save in progress, if any (its errors are its handle's)."""
        with self._lock:
            self._wait_pending()

    def _wait_pending(self):
        if self._pending is not None:
            self._pending[1].join()
            self._pending = None

    def _pickle(self, state):
        staged = _Staged()
        names = {id(t): path for path, t in _paths(state)}
        sources = []
        out = io.BytesIO()
        out.write(_MAGIC)
        _Pickler(out, staged, names, sources).dump((_FORMAT, state))
        staged.pickle = out.getvalue()
        # Storage names must be unique: a path can repeat only for keys that print alike.
        seen = collections.Counter()
        for i, (name, nbytes, offset) in enumerate(staged.storages):
            seen[name] += 1
            if seen[name] > 1:
                staged.storages[i] = (f"{name}#{seen[name]}", nbytes, offset)
        return staged, sources

    def _host_buffer(self, nbytes):
        spare, self._spare = self._spare, None
        if spare is not None and spare.nbytes >= nbytes and spare.nbytes <= 2 * nbytes + (64 << 20):
            return spare
        return _HostBuffer(nbytes, self._client)

    def _upload(self, handle, staged, buffer):
        try:
            tensors = [(name, "uint8", (nbytes,), buffer.view[offset:offset + nbytes])
                       for name, nbytes, offset in staged.storages]
            handle._finish(stats=self._native.save(handle.step, tensors, staged.pickle))
        except BaseException as e:  # noqa: BLE001  (handed to whoever waits)
            handle._finish(error=e)
        finally:
            self._spare = buffer

    # -- load ------------------------------------------------------------------------------

    def _manifest(self, step):
        manifest = self._native.describe(step)
        if not manifest.extra.startswith(_MAGIC):
            raise InvalidArgumentError(
                f"checkpoint {manifest.step} of {self.run} was not saved by granary.torch."
                "Checkpointer (a distributed checkpoint is read with granary.torch.dcp)",
                "invalid_argument")
        return manifest

    def _unpickle(self, manifest, tensor):
        body = io.BytesIO(manifest.extra)
        body.seek(len(_MAGIC))
        version, state = _Unpickler(body, tensor, self._trusted).load()
        if version != _FORMAT:
            raise InvalidArgumentError(f"checkpoint {manifest.step} of {self.run} has format "
                                       f"{version}; this granary reads {_FORMAT}",
                                       "invalid_argument")
        return state

    def load(self, step=None, map_location=None):
        """The state saved as checkpoint `step`, or as the latest complete one. Each storage is
        read straight into a new CPU tensor's memory, chunks in parallel (and then moved to its
        device, so a GPU checkpoint passes through host memory whole). `map_location`: a device
        (str or torch.device) for every tensor; by default each goes back to the device it was
        saved from. NotFoundError when there is no such checkpoint; CorruptionError naming the
        chunk and tensor when a chunk is damaged or missing."""
        manifest = self._manifest(step)
        storages = [torch.empty(t.size, dtype=torch.uint8) for t in manifest.tensors]
        self._native.load(manifest, [s.numpy() for s in storages])
        if map_location is not None:
            map_location = torch.device(map_location)
        on_device = {}

        def tensor(index, dtype, device, offset, shape, stride, requires_grad, is_param):
            target = map_location or torch.device(device)
            flat = on_device.get((index, target))
            if flat is None:
                flat = storages[index] if target.type == "cpu" else storages[index].to(target)
                on_device[(index, target)] = flat
            t = _TensorRef(index, dtype, offset, shape, stride).view(flat)
            if is_param:
                return torch.nn.Parameter(t, requires_grad=requires_grad)
            return t.requires_grad_(requires_grad) if requires_grad else t

        return self._unpickle(manifest, tensor)

    def load_into(self, target, step=None, *, key=None, strict=True):
        """Fills the tensors of `target` in place from checkpoint `step` (or the latest):
        `target` is a torch.nn.Module (its state_dict) or nested dicts/lists of tensors; `key`
        selects the part of the saved state that matches it (e.g. "model", or a tuple of keys).
        Tensors are matched by path; shapes and dtypes must agree. With strict (the default),
        a tensor of one side missing from the other is an error too. Contiguous CPU tensors are
        read into without an intermediate copy, so when a load fails midway (a damaged chunk)
        some of them already hold the checkpoint's values: load again, or restore them.
        Returns `target`."""
        manifest = self._manifest(step)

        def tensor(index, dtype, device, offset, shape, stride, requires_grad, is_param):
            return _TensorRef(index, dtype, offset, shape, stride)

        saved = self._unpickle(manifest, tensor)
        for part in (key if isinstance(key, tuple) else (() if key is None else (key,))):
            saved = saved[part]
        refs = dict(_paths(saved, _TensorRef))
        into = target.state_dict() if isinstance(target, torch.nn.Module) else target
        dests = dict(_paths(into))
        missing = sorted(set(refs) - set(dests))
        unexpected = sorted(set(dests) - set(refs))
        if strict and (missing or unexpected):
            raise InvalidArgumentError(
                f"load_into: the checkpoint's tensors {missing[:5]} are not in the target and "
                f"the target's {unexpected[:5]} are not in the checkpoint (strict=False skips "
                "them)", "invalid_argument")
        # Storages read straight into a target tensor (the one tensor that is all of it), and
        # those read into a temporary, then copied to each tensor that views them.
        direct, needed = {}, set()
        for path in sorted(set(refs) & set(dests)):
            ref, dest = refs[path], dests[path]
            if tuple(dest.shape) != ref.shape or _dtype_name(dest.dtype) != ref.dtype:
                raise InvalidArgumentError(
                    f"load_into: {path!r} is {ref.dtype}{list(ref.shape)} in the checkpoint and "
                    f"{_dtype_name(dest.dtype)}{list(dest.shape)} in the target",
                    "invalid_argument")
            size = manifest.tensors[ref.index].size
            if (ref.whole(size) and dest.device.type == "cpu" and dest.is_contiguous()
                    and ref.index not in direct):
                direct[ref.index] = dest
            else:
                needed.add(ref.index)
        buffers, temporaries = [], {}
        for i, saved_tensor in enumerate(manifest.tensors):
            if i in needed:
                temporaries[i] = torch.empty(saved_tensor.size, dtype=torch.uint8)
                buffers.append(temporaries[i].numpy())
            elif i in direct:
                buffers.append(direct[i].detach().view(-1).view(torch.uint8).numpy())
            else:
                buffers.append(None)
        with torch.no_grad():
            self._native.load(manifest, buffers)
            for path in sorted(set(refs) & set(dests)):
                ref, dest = refs[path], dests[path]
                if ref.index in temporaries:
                    dest.copy_(ref.view(temporaries[ref.index]))
        return target

    # -- the run ---------------------------------------------------------------------------

    def list(self):
        """The steps of the complete checkpoints, ascending."""
        return self._native.list()

    def latest_step(self):
        """The step of the latest complete checkpoint, or None."""
        steps = self._native.list()
        return steps[-1] if steps else None

    def delete(self, step):
        """Removes checkpoint `step` and the chunks no other checkpoint uses."""
        self._native.delete(step)

    def keep_last(self, n):
        """Deletes all but the `n` latest checkpoints, and reclaims their chunks."""
        self._native.keep_last(n)

    def close(self):
        """Waits for the save in progress."""
        self.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"granary.torch.Checkpointer({self.run!r})"


class _TensorRef:
    """A saved tensor before its bytes are read: a view of storage `index`."""

    def __init__(self, index, dtype, offset, shape, stride):
        self.index, self.dtype, self.offset = index, dtype, offset
        self.shape, self.stride = tuple(shape), tuple(stride)

    def whole(self, storage_bytes):
        """Whether the tensor is its whole storage, contiguous."""
        numel, expected, contiguous = 1, 1, True
        for size, stride in reversed(list(zip(self.shape, self.stride))):
            contiguous = contiguous and (size == 1 or stride == expected)
            expected *= size
            numel *= size
        itemsize = torch.empty(0, dtype=_dtype(self.dtype)).element_size()
        return self.offset == 0 and numel * itemsize == storage_bytes and contiguous

    def view(self, flat):
        return torch.as_strided(_typed(flat, _dtype(self.dtype)), self.shape, self.stride,
                                self.offset)
