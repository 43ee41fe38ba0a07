"""Imports PyTorch's distributed checkpoint API on Debian's python3-torch 1.13 under Python 3.11.

Torch 1.13 ships the API as ``torch.distributed._shard.checkpoint``. Its import fails on Python
3.11: ``ShardedTensorMetadata`` declares ``tensor_properties: TensorProperties =
field(default=TensorProperties())``, and since 3.11 ``dataclasses`` refuses an unhashable default
("mutable default ... use default_factory"). This module imports it without touching the
installed files: for the duration of that one import, a default that ``dataclasses`` refuses in a
class of ``torch.distributed`` becomes a ``default_factory`` returning a copy of it (what the
class means, and safer than the one shared instance older Pythons allowed). ``dataclasses`` is
restored before the call returns. On a torch or Python that imports the API as it is, the
module is returned untouched.
"""

import copy
import dataclasses
import importlib
import threading

_MODULE = "torch.distributed._shard.checkpoint"
_lock = threading.Lock()


def distributed_checkpoint():
    """The module ``torch.distributed._shard.checkpoint`` (ImportError if torch lacks it)."""
    try:
        return importlib.import_module(_MODULE)
    except ValueError as e:
        if "mutable default" not in str(e):
            raise
    with _lock:
        original = dataclasses._get_field

        def get_field(cls, a_name, a_type, *args):
            try:
                return original(cls, a_name, a_type, *args)
            except ValueError as e:
                declared = cls.__dict__.get(a_name)
                if ("mutable default" not in str(e)
                        or not cls.__module__.startswith("torch.distributed.")
                        or not isinstance(declared, dataclasses.Field)
                        or declared.default is dataclasses.MISSING):
                    raise
                default = declared.default
                declared.default = dataclasses.MISSING
                declared.default_factory = lambda: copy.deepcopy(default)
                return original(cls, a_name, a_type, *args)

        dataclasses._get_field = get_field
        try:
            return importlib.import_module(_MODULE)
        finally:
            dataclasses._get_field = original
