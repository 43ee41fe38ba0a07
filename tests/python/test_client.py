"""granary.Client against a real server: every call, every kind of buffer, the result classes and
the errors they raise."""
import hashlib
import pickle
import time

import numpy as np
import pytest

import granary

MiB = 1 << 20


# Buckets ----------------------------------------------------------------------------------------

def test_bucket_lifecycle(client):
    name = "pytest-bucket-lifecycle"
    client.create_bucket(name)
    try:
        info = client.head_bucket(name)
        assert isinstance(info, granary.BucketInfo)
        assert info.name == name
        assert abs(info.created - time.time()) < 3600
        assert info.created_ns // 10**9 == int(info.created)
        assert name in repr(info)
        assert name in [b.name for b in client.list_buckets()]
        with pytest.raises(granary.AlreadyExistsError) as e:
            client.create_bucket(name)
        assert e.value.code == "already_exists"
        client.put(name, "k", b"x")
        with pytest.raises(granary.BucketNotEmptyError):
            client.delete_bucket(name)
        client.delete(name, "k")
    finally:
        client.delete_bucket(name)
    with pytest.raises(granary.NoSuchBucketError) as e:
        client.head_bucket(name)
    assert e.value.code == "no_such_bucket"
    assert name not in [b.name for b in client.list_buckets()]


def test_invalid_bucket_name_is_invalid_argument(client):
    with pytest.raises(granary.InvalidArgumentError) as e:
        client.create_bucket("Not_A_Valid_Bucket")
    assert isinstance(e.value, ValueError)
    assert e.value.code == "invalid_argument"
    assert e.value.message


def test_missing_bucket(client):
    with pytest.raises(granary.NoSuchBucketError):
        client.put("no-such-bucket-pytest", "k", b"x")
    with pytest.raises(granary.NoSuchBucketError):
        client.get("no-such-bucket-pytest", "k")
    with pytest.raises(granary.NoSuchBucketError):
        client.list("no-such-bucket-pytest")


# Put and get with every kind of buffer ----------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda b: b,
    bytearray,
    memoryview,
    lambda b: np.frombuffer(b, dtype=np.uint8),
    lambda b: np.frombuffer(b, dtype=np.float32).reshape(4, -1),  # multi-dimensional, 4-byte items
    lambda b: memoryview(bytearray(b"..") + b)[2:],                # a slice: contiguous
], ids=["bytes", "bytearray", "memoryview", "numpy", "numpy2d", "memoryview-slice"])
def test_put_accepts_any_contiguous_buffer(client, bucket, make):
    data = bytes(range(256)) * 64
    info = client.put(bucket, "obj", make(data))
    assert info.size == len(data)
    assert info.etag == hashlib.md5(data).hexdigest()
    assert client.get(bucket, "obj") == data


def test_put_refuses_non_buffers_and_strided_arrays(client, bucket):
    with pytest.raises(TypeError, match="encode"):
        client.put(bucket, "k", "a str")
    with pytest.raises(TypeError, match="bytes-like"):
        client.put(bucket, "k", 12)
    strided = np.arange(100, dtype=np.uint8)[::2]
    with pytest.raises(ValueError, match="contiguous"):
        client.put(bucket, "k", strided)
    with pytest.raises(TypeError, match="cannot be used as bytes"):
        client.put(bucket, "k", np.array([object(), object()]))
    with pytest.raises(granary.NotFoundError):
        client.head(bucket, "k")  # nothing was stored


def test_object_info(client, bucket):
    before = time.time()
    info = client.put(bucket, "dir/obj", b"hello", content_type="text/plain",
                      metadata={"owner": "alice", "run": "7"})
    assert isinstance(info, granary.ObjectInfo)
    assert (info.bucket, info.key, info.size) == (bucket, "dir/obj", 5)
    assert info.etag == hashlib.md5(b"hello").hexdigest()
    assert info.content_type == "text/plain"
    assert info.metadata == {"owner": "alice", "run": "7"}
    assert info.version > 0
    assert info.parts == 0
    assert abs(info.mtime - before) < 3600
    assert info.mtime == pytest.approx(info.mtime_ns / 1e9)
    assert "dir/obj" in repr(info) and "ObjectInfo" in repr(info)

    head = client.head(bucket, "dir/obj")
    assert head == info
    assert pickle.loads(pickle.dumps(head)) == head

    plain = client.put(bucket, "plain", b"")
    assert plain.content_type is None
    assert plain.metadata == {}
    assert plain.size == 0
    assert plain.version != info.version
    assert client.get(bucket, "plain") == b""


def test_unicode_keys_and_headers(client, bucket):
    key = "données/日本/ключ ✓"
    info = client.put(bucket, key, b"u", headers={"cache-control": "no-cache"})
    assert info.key == key
    assert client.get(bucket, key) == b"u"
    assert [o.key for o in client.list(bucket, prefix="données/").objects] == [key]
    assert client.head(bucket, key).headers.get("cache-control") == "no-cache"
    with pytest.raises(TypeError, match="headers"):
        client.put(bucket, key, b"u", headers=[("a", "b")])


def test_overwrite_changes_version(client, bucket):
    first = client.put(bucket, "k", b"one")
    second = client.put(bucket, "k", b"two")
    assert second.version != first.version
    assert client.get(bucket, "k") == b"two"


def test_ranged_get(client, bucket):
    data = bytes(range(200))
    client.put(bucket, "k", data)
    assert client.get(bucket, "k", 10) == data[10:]
    assert client.get(bucket, "k", 10, 5) == data[10:15]
    assert client.get(bucket, "k", 0, 1) == data[:1]
    assert client.get(bucket, "k", 190, 100) == data[190:]  # cut at the end
    with pytest.raises(granary.InvalidRangeError) as e:
        client.get(bucket, "k", 500)
    assert e.value.code == "invalid_range"


def test_get_argument_errors(client, bucket):
    client.put(bucket, "k", b"abc")
    with pytest.raises(ValueError, match="offset"):
        client.get(bucket, "k", -1)
    with pytest.raises(ValueError, match="length"):
        client.get(bucket, "k", 0, -5)
    with pytest.raises(TypeError, match="offset"):
        client.get(bucket, "k", 1.5)
    with pytest.raises(TypeError):
        client.get(bucket, 42)
    with pytest.raises(TypeError, match="metadata"):
        client.put(bucket, "k", b"x", metadata={"a": 1})
    with pytest.raises(TypeError, match="content_type"):
        client.put(bucket, "k", b"x", content_type=5)
    assert client.get(bucket, "k", np.int64(1), np.int32(1)) == b"b"  # numpy ints are ints


def test_get_into(client, bucket):
    data = np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    client.put(bucket, "k", data)

    buf = bytearray(len(data))
    assert client.get_into(bucket, "k", buf) == len(data)
    assert buf == data

    big = bytearray(len(data) + 100)  # larger than needed: the rest is left alone
    assert client.get_into(bucket, "k", big) == len(data)
    assert big[:len(data)] == data and big[len(data):] == bytes(100)

    arr = np.zeros(len(data), dtype=np.uint8)
    assert client.get_into(bucket, "k", arr) == len(data)
    assert arr.tobytes() == data

    window = bytearray(300)
    view = memoryview(window)[100:200]  # a writable slice: filled in place
    assert client.get_into(bucket, "k", view, 50, 100) == 100
    assert window[100:200] == data[50:150] and window[:100] == bytes(100)


def test_get_into_refuses_bad_buffers(client, bucket):
    client.put(bucket, "k", b"0123456789")
    with pytest.raises(granary.InvalidArgumentError, match="too small"):
        client.get_into(bucket, "k", bytearray(5))
    with pytest.raises(TypeError, match="read-only"):
        client.get_into(bucket, "k", b"0123456789")
    ro = np.zeros(10, dtype=np.uint8)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        client.get_into(bucket, "k", ro)
    with pytest.raises(ValueError, match="contiguous"):
        client.get_into(bucket, "k", np.zeros((10, 10), dtype=np.uint8)[:, 0])
    with pytest.raises(TypeError):
        client.get_into(bucket, "k", [0] * 10)
    with pytest.raises(granary.NotFoundError):
        client.get_into(bucket, "missing", bytearray(10))


def test_large_object_roundtrip(client, bucket):
    size = 64 * MiB
    data = np.random.default_rng(7).integers(0, 2**63, size // 8, dtype=np.uint64)
    info = client.put(bucket, "big", data)
    assert info.size == size
    assert info.etag == hashlib.md5(data.tobytes()).hexdigest()

    out = np.empty_like(data)
    assert client.get_into(bucket, "big", out) == size
    assert np.array_equal(out, data)

    got = client.get(bucket, "big")
    assert len(got) == size and got == data.tobytes()

    # A range across the 4 MiB chunk boundary, and the last bytes.
    raw = data.view(np.uint8)
    assert client.get(bucket, "big", 4 * MiB - 10, 100) == raw[4 * MiB - 10:4 * MiB + 90].tobytes()
    assert client.get(bucket, "big", size - 3) == raw[-3:].tobytes()


# Head, delete, copy, conditions -----------------------------------------------------------------

def test_head_and_delete(client, bucket):
    client.put(bucket, "k", b"abc")
    assert client.exists(bucket, "k")
    client.delete(bucket, "k")
    assert not client.exists(bucket, "k")
    with pytest.raises(granary.NotFoundError) as e:
        client.head(bucket, "k")
    assert e.value.code == "not_found" and e.value.message
    with pytest.raises(granary.NotFoundError):
        client.get(bucket, "k")
    with pytest.raises(granary.NotFoundError):
        client.delete(bucket, "k")
    client.delete(bucket, "k", missing_ok=True)


def test_copy(client, bucket):
    src = client.put(bucket, "src", b"payload", content_type="a/b", metadata={"m": "1"})
    copied = client.copy(bucket, "src", bucket, "dst")
    assert copied.key == "dst" and copied.size == 7 and copied.etag == src.etag
    assert client.get(bucket, "dst") == b"payload"
    assert client.head(bucket, "dst").metadata == {"m": "1"}
    assert client.head(bucket, "dst").content_type == "a/b"

    replaced = client.copy(bucket, "src", bucket, "dst2", content_type="c/d", metadata={"n": "2"})
    assert client.head(bucket, "dst2").metadata == {"n": "2"}
    assert replaced.content_type == "c/d"
    with pytest.raises(granary.NotFoundError):
        client.copy(bucket, "missing", bucket, "x")
    with pytest.raises(granary.PreconditionFailedError):
        client.copy(bucket, "src", bucket, "x", source_if_version=src.version + 12345)


def test_conditions(client, bucket):
    info = client.put(bucket, "k", b"v1", if_none_match="*")
    with pytest.raises(granary.PreconditionFailedError) as e:
        client.put(bucket, "k", b"v2", if_none_match="*")
    assert e.value.code == "precondition_failed"
    assert client.get(bucket, "k", if_version=info.version) == b"v1"
    with pytest.raises(granary.PreconditionFailedError):
        client.get(bucket, "k", if_version=info.version + 1000)
    with pytest.raises(granary.PreconditionFailedError):
        client.put(bucket, "k", b"v2", if_match="0" * 32)
    with pytest.raises(granary.NotModifiedError):
        client.get(bucket, "k", if_none_match=info.etag)
    assert client.head(bucket, "k", if_match=info.etag).version == info.version
    info2 = client.put(bucket, "k", b"v2", if_match=info.etag)
    assert client.get(bucket, "k") == b"v2" and info2.version != info.version


# Listing ----------------------------------------------------------------------------------------

def test_list_pages_and_prefixes(client, bucket):
    keys = sorted([f"a/{i:03d}" for i in range(25)] + ["b/x", "b/y", "c"])
    client.put_many(bucket, [(k, k.encode()) for k in keys])

    page = client.list(bucket, max_keys=10)
    assert isinstance(page, granary.ListResult)
    assert [o.key for o in page.objects] == keys[:10]
    assert page.truncated and page.next_continuation_token
    page2 = client.list(bucket, max_keys=10, continuation_token=page.next_continuation_token)
    assert [o.key for o in page2.objects] == keys[10:20]
    assert page.objects is page.objects  # built once

    assert [o.key for o in client.list(bucket, prefix="b/").objects] == ["b/x", "b/y"]
    assert [o.key for o in client.list(bucket, start_after="b/x").objects] == ["b/y", "c"]
    rolled = client.list(bucket, delimiter="/")
    assert rolled.common_prefixes == ["a/", "b/"]
    assert [o.key for o in rolled.objects] == ["c"]
    assert not rolled.truncated

    assert [o.key for o in client.list_all(bucket, page_size=7)] == keys
    assert [o.key for o in client.list_all(bucket, prefix="a/", page_size=4)] == keys[:25]
    listed = list(client.list_all(bucket, delimiter="/", page_size=1))
    assert [x if isinstance(x, str) else x.key for x in listed] == ["a/", "b/", "c"]
    assert next(iter(client.list_all(bucket))).size == len(keys[0])
    with pytest.raises(ValueError):
        client.list(bucket, max_keys=-1)


# Batches ----------------------------------------------------------------------------------------

def test_put_many_get_many_delete_many(client, bucket):
    items = {f"k{i}": bytes([i]) * (i + 1) for i in range(50)}
    items["np"] = np.arange(16, dtype=np.uint16)
    items["mv"] = memoryview(b"memory")
    infos = client.put_many(bucket, items)
    assert [i.key for i in infos] == list(items)
    assert infos[3].size == 4 and infos[-2].size == 32

    keys = list(items) + ["missing"]
    got = client.get_many(bucket, keys)
    assert got[:50] == [items[f"k{i}"] for i in range(50)]
    assert got[50] == np.arange(16, dtype=np.uint16).tobytes()
    assert got[51] == b"memory"
    assert got[52] is None

    assert client.put_many(bucket, [("p1", b"1"), ["p2", bytearray(b"2")]])[1].size == 1
    assert client.put_many(bucket, {}) == [] and client.get_many(bucket, []) == []

    deleted = client.delete_many(bucket, ["k0", "k1", "missing"])
    assert deleted == [True, True, False]
    assert client.get_many(bucket, ["k0", "k2"]) == [None, items["k2"]]


def test_get_many_into(client, bucket):
    client.put_many(bucket, {"a": b"aaaa", "b": b"bb", "c": b"c" * 1000})
    bufs = [bytearray(4), np.zeros(8, np.uint8), bytearray(1), bytearray(2000)]
    sizes = client.get_many_into(bucket, ["a", "b", "missing", "c"], bufs)
    assert sizes == [4, 2, None, 1000]
    assert bufs[0] == b"aaaa" and bufs[1][:2].tobytes() == b"bb" and bufs[3][:1000] == b"c" * 1000

    with pytest.raises(ValueError, match="one buffer per key"):
        client.get_many_into(bucket, ["a", "b"], [bytearray(4)])
    with pytest.raises(TypeError, match="read-only"):
        client.get_many_into(bucket, ["a"], [b"xxxx"])

    # A too-small buffer fails that item only.
    small = [bytearray(4), bytearray(1)]
    with pytest.raises(granary.InvalidArgumentError) as e:
        client.get_many_into(bucket, ["a", "c"], small)
    assert e.value.results[0] == 4 and isinstance(e.value.results[1], granary.InvalidArgumentError)
    assert [k for k, _ in e.value.failures] == ["c"]
    assert "1 of 2" in e.value.message
    outcome = client.get_many_into(bucket, ["a", "c"], small, return_exceptions=True)
    assert outcome[0] == 4 and isinstance(outcome[1], granary.InvalidArgumentError)


def test_batch_failures(client, bucket):
    with pytest.raises(granary.NoSuchBucketError) as e:
        client.get_many("no-such-bucket-pytest", ["a", "b"])
    assert len(e.value.results) == 2 and len(e.value.failures) == 2
    results = client.put_many("no-such-bucket-pytest", {"a": b"1"}, return_exceptions=True)
    assert isinstance(results[0], granary.NoSuchBucketError)

    # One bad key among good ones: the good ones are stored.
    with pytest.raises(granary.InvalidArgumentError) as e:
        client.put_many(bucket, {"good": b"1", "x" * 2000: b"2"})
    assert isinstance(e.value.results[0], granary.ObjectInfo)
    assert client.get(bucket, "good") == b"1"

    with pytest.raises(TypeError, match="single str"):
        client.get_many(bucket, "abc")
    with pytest.raises(TypeError, match="pairs"):
        client.put_many(bucket, [b"not a pair"])
    with pytest.raises(ValueError, match="pairs"):
        client.put_many(bucket, [("a", b"1", "extra")])
    with pytest.raises(TypeError, match="str"):
        client.delete_many(bucket, [1, 2])


# Multipart uploads ------------------------------------------------------------------------------

def test_multipart_upload(client, bucket):
    part1 = np.random.default_rng(3).integers(0, 256, 5 * MiB, dtype=np.uint8)
    part2 = b"tail" * 1000
    upload = client.create_multipart_upload(bucket, "mp", content_type="x/y",
                                            metadata={"k": "v"})
    assert isinstance(upload, str) and upload
    uploads = client.list_multipart_uploads(bucket)
    assert [(u.key, u.upload_id) for u in uploads.uploads] == [("mp", upload)]

    p1 = client.upload_part(bucket, "mp", upload, 1, part1)
    p2 = client.upload_part(bucket, "mp", upload, 2, part2)
    assert isinstance(p1, granary.PartInfo)
    assert (p1.part_number, p1.size, p1.etag) == (1, 5 * MiB, hashlib.md5(part1).hexdigest())
    listed = client.list_parts(bucket, "mp", upload)
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, 5 * MiB), (2, len(part2))]

    info = client.complete_multipart_upload(bucket, "mp", upload, [p1, (2, p2.etag)])
    digest = hashlib.md5(bytes.fromhex(p1.etag) + bytes.fromhex(p2.etag)).hexdigest()
    assert info.etag == f"{digest}-2" and info.parts == 2
    assert info.size == 5 * MiB + len(part2)
    assert client.get(bucket, "mp") == part1.tobytes() + part2
    assert client.head(bucket, "mp").metadata == {"k": "v"}
    with pytest.raises(granary.NoSuchUploadError):
        client.upload_part(bucket, "mp", upload, 3, b"x")


def test_multipart_errors(client, bucket):
    upload = client.create_multipart_upload(bucket, "mp")
    small = client.upload_part(bucket, "mp", upload, 1, b"small")
    last = client.upload_part(bucket, "mp", upload, 2, b"last")
    with pytest.raises(granary.EntityTooSmallError):
        client.complete_multipart_upload(bucket, "mp", upload, [small, last])
    with pytest.raises(granary.InvalidPartError):
        client.complete_multipart_upload(bucket, "mp", upload, [(1, "0" * 32)])
    with pytest.raises(ValueError, match="part_number"):
        client.upload_part(bucket, "mp", upload, 0, b"x")
    with pytest.raises(ValueError, match="part_number"):
        client.upload_part(bucket, "mp", upload, 10001, b"x")
    with pytest.raises(TypeError, match="parts"):
        client.complete_multipart_upload(bucket, "mp", upload, ["nope"])
    client.abort_multipart_upload(bucket, "mp", upload)
    assert client.list_multipart_uploads(bucket).uploads == []
    with pytest.raises(granary.NoSuchUploadError) as e:
        client.abort_multipart_upload(bucket, "mp", upload)
    assert e.value.code == "no_such_upload"
    assert not client.exists(bucket, "mp")
