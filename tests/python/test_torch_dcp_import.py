"""granary._dcp_import: PyTorch's distributed checkpoint API imports on Debian's python3-torch 1.13
under Python 3.11, without changing the installed package or leaving dataclasses patched."""
import dataclasses

import pytest

torch = pytest.importorskip("torch")

from granary._dcp_import import distributed_checkpoint  # noqa: E402


def test_the_api_imports_and_dataclasses_is_restored():
    before = dataclasses._get_field
    dcp = distributed_checkpoint()
    assert dataclasses._get_field is before
    for name in ("StorageWriter", "StorageReader", "save_state_dict", "load_state_dict",
                 "Metadata", "SavePlan", "LoadPlan"):
        assert hasattr(dcp, name), name
    assert distributed_checkpoint() is dcp  # imported once


def test_the_refused_default_became_a_fresh_copy_per_instance():
    distributed_checkpoint()
    from torch.distributed._shard.sharded_tensor.metadata import (ShardedTensorMetadata,
                                                                  TensorProperties)
    a, b = ShardedTensorMetadata(), ShardedTensorMetadata()
    assert a.tensor_properties == TensorProperties()
    assert a.tensor_properties is not b.tensor_properties


def test_other_mutable_defaults_are_still_refused():
    distributed_checkpoint()

    @dataclasses.dataclass
    class Inner:
        x: int = 0

    with pytest.raises(ValueError, match="mutable default"):
        @dataclasses.dataclass
        class Outer:
            inner: Inner = dataclasses.field(default=Inner())
