"""Granary: Python client for the Granary storage system.

    import granary

    with granary.Client("127.0.0.1:9100", access_key, secret_key) as client:
        client.create_bucket("data")
        client.put("data", "a/b", b"hello")                # any bytes-like object
        assert client.get("data", "a/b") == b"hello"
        buf = bytearray(5)
        client.get_into("data", "a/b", buf)                # no intermediate copy
        for obj in client.list_all("data", prefix="a/"):
            print(obj.key, obj.size)

The client is the C++ native client (pybind11); every call releases the GIL while it talks to the
server, so threads sharing one Client run their requests in parallel.

Errors raise subclasses of granary.Error with `.code` (e.g. "not_found") and `.message`; see
granary.errors for the classes and for how batch calls report per-item failures.

Submodules: granary.kv (KV-cache pools: `from granary.kv import KVStore`), granary.torch (training
checkpoints: `from granary.torch import Checkpointer`; needs PyTorch).
"""

from ._granary import (
    BucketInfo,
    ListPartsResult,
    ListResult,
    ListUploadsResult,
    ObjectInfo,
    PartInfo,
    SharedBuffer,
    UploadInfo,
)
from .client import Client
from .errors import *  # noqa: F401,F403  (the exception classes; listed in errors.__all__)
from . import errors as _errors

__all__ = [
    "Client", "ObjectInfo", "BucketInfo", "ListResult", "PartInfo", "ListPartsResult",
    "UploadInfo", "ListUploadsResult", "SharedBuffer",
] + [name for name in _errors.__all__ if name != "CLASSES_BY_CODE"]

__version__ = "0.1.0"
