"""The exception classes of granary and the client's own argument checks."""
import pickle

import pytest

import granary
from granary import errors
from granary_server import ACCESS_KEY, SECRET_KEY

from conftest import make_client

# Every code of include/granary/status.h (CodeName).
ALL_CODES = {
    "not_found", "invalid_argument", "corruption", "io_error", "no_space", "unavailable",
    "not_supported", "already_exists", "internal", "precondition_failed", "not_modified",
    "unauthenticated", "permission_denied", "no_such_bucket", "no_such_upload",
    "bucket_not_empty", "invalid_range", "bad_digest", "invalid_part", "entity_too_small",
    "no_such_pool", "stale_map",
}


def test_one_class_per_code():
    assert set(errors.CLASSES_BY_CODE) == ALL_CODES
    classes = list(errors.CLASSES_BY_CODE.values())
    assert len(set(classes)) == len(classes)
    for code, cls in errors.CLASSES_BY_CODE.items():
        assert issubclass(cls, granary.Error) and cls.code == code
        assert getattr(granary, cls.__name__) is cls
        assert cls.__doc__


def test_builtin_bases():
    assert issubclass(granary.Error, Exception)
    assert issubclass(granary.UnavailableError, ConnectionError)
    assert issubclass(granary.InvalidArgumentError, ValueError)
    assert issubclass(granary.PermissionDeniedError, PermissionError)
    assert not issubclass(granary.NotFoundError, ConnectionError)


def test_error_attributes_and_pickling():
    e = granary.NoSuchBucketError("bucket \"x\" does not exist", "no_such_bucket")
    assert (e.code, e.message, str(e)) == ("no_such_bucket", 'bucket "x" does not exist',
                                           'bucket "x" does not exist')
    e.results = [1, None]
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is granary.NoSuchBucketError
    assert (copy.code, copy.message, copy.results) == (e.code, e.message, [1, None])
    assert repr(granary.UnavailableError("down")).startswith("UnavailableError(")
    assert granary.Error("plain").code == "unknown"


def test_module_exports():
    for name in granary.__all__:
        assert hasattr(granary, name)
    assert "Client" in granary.__all__ and "NotFoundError" in granary.__all__
    assert granary.Client.__doc__ and granary.Client.put.__doc__
    assert "GIL" in granary.__doc__


def test_constructor_arguments(server):
    for options, match in [({"max_connections": 0}, "max_connections"),
                           ({"parallel_chunks": 0}, "parallel_chunks"),
                           ({"timeout_ms": -1}, "timeout_ms"),
                           ({"retries": -1}, "retries"),
                           ({"chunk_bytes": -1}, "chunk_bytes")]:
        with pytest.raises(ValueError, match=match):
            granary.Client(server.native_address, ACCESS_KEY, SECRET_KEY, **options)
    with pytest.raises(TypeError):
        granary.Client(server.native_address, 5, SECRET_KEY)
    with pytest.raises(TypeError):
        granary.Client(server.native_address, ACCESS_KEY, SECRET_KEY, 16)  # options are keywords


def test_credentials_from_environment(server, monkeypatch):
    monkeypatch.setenv("GRANARY_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("GRANARY_SECRET_KEY", SECRET_KEY)
    with granary.Client(server.native_address) as c:
        assert isinstance(c.list_buckets(), list)
    monkeypatch.delenv("GRANARY_SECRET_KEY")
    with pytest.raises(ValueError, match="GRANARY_SECRET_KEY"):
        granary.Client(server.native_address, ACCESS_KEY)


def test_wrong_credentials(server):
    for access, secret in [(ACCESS_KEY, "wrong-secret-key-0000000000000000"),
                           ("UNKNOWNACCESSKEY", SECRET_KEY)]:
        with pytest.raises(granary.UnauthenticatedError) as e:
            c = granary.Client(server.native_address, access, secret, timeout_ms=30_000)
            c.list_buckets()  # in case the client authenticates lazily
        assert e.value.code == "unauthenticated"
        assert e.value.message


def test_nothing_listening_is_unavailable():
    import socket
    with socket.socket() as s:  # a port that nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % s.getsockname()[1]
        with pytest.raises(granary.UnavailableError) as e:
            c = make_client(address, timeout_ms=5000, retries=0)
            c.list_buckets()
    assert isinstance(e.value, ConnectionError)
    assert e.value.code == "unavailable"


def test_bad_address():
    with pytest.raises(granary.Error):
        make_client("not an address")


def test_close_and_context_manager(server):
    c = make_client(server.native_address)
    assert not c.closed and server.native_address in repr(c)
    c.close()
    assert c.closed and "closed" in repr(c)
    with pytest.raises(ValueError, match="closed"):
        c.list_buckets()
    c.close()  # twice is harmless
    with make_client(server.native_address) as c2:
        c2.list_buckets()
    assert c2.closed
