"""granary.torch.dcp: PyTorch's distributed checkpoint API (save_state_dict / load_state_dict)
over a granary run.

    from granary._dcp_import import distributed_checkpoint
    from granary.torch.dcp import GranaryStorageReader, GranaryStorageWriter

    dcp = distributed_checkpoint()        # torch.distributed._shard.checkpoint
    # on every rank, once torch.distributed's process group is initialized:
    dcp.save_state_dict(state, GranaryStorageWriter(client, "bucket/run-42", step))
    ...
    dcp.load_state_dict(state, GranaryStorageReader(client, "bucket/run-42"))  # the latest

Every rank uploads its own items (its shards of ShardedTensors; the coordinator also the plain
tensors and Python values) as content-addressed chunks, in parallel with the other ranks; chunks
the run already holds are not uploaded again. The coordinator then writes one manifest naming
every rank's tensors, with DCP's Metadata in its extra bytes, so the checkpoint becomes visible
only once every rank's bytes are durable, and not at all when a rank fails. A DCP checkpoint is an
ordinary checkpoint of the run: granary._granary.Checkpointer's list(), delete() and keep_last()
include it.

In the manifest an item is named by its fully qualified name, a tensor's with the offset of its
shard ("layer.weight[4:,0:]"), so an error about a damaged chunk says which one it is. A load
reads only the items its rank needs, in one parallel read, each chunk checked against its hash.

Like torch's own readers, loading unpickles the checkpoint's metadata and Python values: load only
runs whose writers you trust.
"""

import dataclasses
import io
import pickle

import torch
from torch.futures import Future

from .. import _granary
from .._dcp_import import distributed_checkpoint
from . import _check_step, _dtype, _dtype_name
from ..errors import AlreadyExistsError, InvalidArgumentError

_dcp = distributed_checkpoint()
# Importable only once the line above has imported torch.distributed._shard.
from torch.distributed._shard._utils import narrow_tensor_by_index  # noqa: E402

__all__ = ["GranaryStorageWriter", "GranaryStorageReader"]

# The first bytes of the manifest's extra for a checkpoint written here; then the pickled Metadata,
# whose storage_data maps each MetadataIndex to the name of its tensor in the manifest.
_MAGIC = b"GRDCP001"


def _name(index):
    """The manifest name of the item at `index` (a MetadataIndex)."""
    if index.offset is None:
        return index.fqn
    return index.fqn + "[" + ",".join(f"{o}:" for o in index.offset) + "]"


class GranaryStorageWriter(_dcp.StorageWriter):
    """Writes a distributed checkpoint as checkpoint `step` of the run "bucket/prefix" (the bucket
    must exist). Give every rank its own writer for the same run and step. `chunk_bytes` and
    `parallel` are granary._granary.Checkpointer's. After save_state_dict, `stats` holds what
    this rank stored (bytes, chunks, written_bytes, written_chunks: written_* is what it uploaded,
    the rest the run held already). save_state_dict raises CheckpointException (a BaseException)
    when any rank fails, wrapping, for instance, AlreadyExistsError when `step` exists."""

    def __init__(self, client, run, step, *, chunk_bytes=16 << 20, parallel=8):
        super().__init__()
        _check_step(step)
        self._native = _granary.Checkpointer(client, run, chunk_bytes=chunk_bytes,
                                             parallel=parallel)
        self.run = run
        self.step = step
        self.stats = None

    def init(self, is_coordinator):
        self.stats = None

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        # Before any rank uploads; finish() would refuse the step anyway.
        if self.step in self._native.list():
            raise AlreadyExistsError(f"checkpoint {self.step} of {self.run} exists: save under a "
                                     "new step, or delete it first", "already_exists")
        return plans

    def write_data(self, plan, planner):
        items, keep = [], []
        for item in plan.items:
            data = planner.resolve_data(item)
            if item.type == _dcp.planner.WriteItemType.BYTE_IO:
                buffer = data.getbuffer()
                items.append((_name(item.index), "uint8", (buffer.nbytes,), buffer))
            else:
                tensor = data.detach().cpu().contiguous()
                keep.append(tensor)  # alive until the upload is done
                items.append((_name(item.index), _dtype_name(tensor.dtype), tuple(tensor.shape),
                              tensor.reshape(-1).view(torch.uint8).numpy()))
        saved, self.stats = self._native.store_tensors(self.step, items)
        results = [_dcp.storage.WriteResult(index=item.index, size_in_bytes=s.size, storage_data=s)
                   for item, s in zip(plan.items, saved)]
        future = Future()
        future.set_result(results)
        return future

    def finish(self, metadata, results):
        names, tensors = {}, []
        for rank_results in results:
            for result in rank_results:
                names[result.index] = result.storage_data.name
                tensors.append(result.storage_data)
        metadata.storage_data = names
        extra = _MAGIC + pickle.dumps(metadata, protocol=pickle.HIGHEST_PROTOCOL)
        self._native.commit(self.step, tensors, extra)


class GranaryStorageReader(_dcp.StorageReader):
    """Reads the distributed checkpoint `step` of the run "bucket/prefix", or the latest one when
    `step` is None (every rank then checks it read the same). After read_metadata, `manifest` is
    the checkpoint's CheckpointManifest (`manifest.step` the step read). load_state_dict raises
    CheckpointException (a BaseException) wrapping NotFoundError when there is no such checkpoint,
    InvalidArgumentError when it was not saved by GranaryStorageWriter, and CorruptionError naming
    the chunk and tensor when a chunk is damaged or missing."""

    def __init__(self, client, run, step=None, *, parallel=8):
        super().__init__()
        if step is not None:
            _check_step(step)
        self._native = _granary.Checkpointer(client, run, parallel=parallel)
        self.run = run
        self.step = step
        self.manifest = None
        self._names = {}  # MetadataIndex -> the name of its tensor in the manifest

    def read_metadata(self):
        manifest = self._native.describe(self.step)
        extra = manifest.extra
        if not extra.startswith(_MAGIC):
            raise InvalidArgumentError(
                f"checkpoint {manifest.step} of {self.run} was not saved by the distributed "
                "checkpoint API: read it with granary.torch.Checkpointer", "invalid_argument")
        self.manifest = manifest
        return pickle.loads(memoryview(extra)[len(_MAGIC):])

    def init(self, metadata, is_coordinator):
        if not isinstance(metadata.storage_data, dict):
            raise InvalidArgumentError(
                f"checkpoint {self.manifest.step} of {self.run} lists no storage for its items",
                "invalid_argument")
        self._names = metadata.storage_data

    def prepare_local_plan(self, plan):
        return dataclasses.replace(plan, storage_data=self.manifest.step)

    def prepare_global_plan(self, plans):
        steps = sorted({plan.storage_data for plan in plans})
        if len(steps) > 1:
            raise InvalidArgumentError(
                f"the ranks read different checkpoints of {self.run} ({steps}): one was saved "
                "while they loaded the latest; load with an explicit step", "invalid_argument")
        return plans

    def read_data(self, plan, planner):
        tensors = self.manifest.tensors  # a new list at each access
        index_of = {t.name: i for i, t in enumerate(tensors)}
        reads = {}  # manifest index -> the read items it serves
        for item in plan.items:
            name = self._names.get(item.storage_index)
            if name not in index_of:
                raise InvalidArgumentError(
                    f"checkpoint {self.manifest.step} of {self.run} holds no data for "
                    f"{_name(item.storage_index)!r}", "invalid_argument")
            reads.setdefault(index_of[name], []).append(item)
        # Only the tensors this rank needs, all in one parallel read.
        staged = {i: torch.empty(tensors[i].size, dtype=torch.uint8) for i in reads}
        self._native.load(self.manifest, [staged[i].numpy() if i in staged else None
                                          for i in range(len(tensors))])
        for i, items in reads.items():
            saved = tensors[i]
            for item in items:
                if item.type == _dcp.planner.LoadItemType.BYTE_IO:
                    planner.load_bytes(item, io.BytesIO(staged[i].numpy().tobytes()))
                    continue
                tensor = staged[i].view(_dtype(saved.dtype)).reshape(saved.shape)
                tensor = narrow_tensor_by_index(tensor, item.storage_offsets, item.lengths)
                target = planner.resolve_tensor(item).detach()
                if target.size() != tensor.size():
                    raise InvalidArgumentError(
                        f"{_name(item.storage_index)!r} of checkpoint {self.manifest.step}: the "
                        f"read gives {list(tensor.size())}, the target is "
                        f"{list(target.size())}", "invalid_argument")
                target.copy_(tensor)
                planner.commit_tensor(item, target)
        future = Future()
        future.set_result(None)
        return future

