"""granary.kv against a real `granary server`: every call of KVStore and of the pool
administration, misses as None, errors as granary exceptions, the same-host shared-memory path
against the socket path, threads with an oracle, and the GIL released (test_kv_tiers.py: the disk
tier and restarts)."""
import threading
import uuid

import numpy as np
import pytest

import granary
from granary.kv import (KVStore, KvAdmin, PoolConfig, PoolInfo, create_pool, delete_pool,
                        list_pools, pool_info)
from fork_child import run_in_child
from granary_server import ACCESS_KEY, SECRET_KEY
from kv_support import MiB, STATS_FIELDS, open_store, random_bytes

from conftest import TEST_TIMEOUT_MS


# Data calls --------------------------------------------------------------------------------------

def test_put_get_round_trip(kv):
    kv.put(b"bytes-key", b"value")
    assert kv.get(b"bytes-key") == b"value"
    kv.put("str-k\u00e9y", bytearray(b"from a bytearray"))
    assert kv.get("str-k\u00e9y".encode()) == b"from a bytearray"  # a str is its UTF-8 bytes
    assert kv.get("str-k\u00e9y") == b"from a bytearray"
    kv.put(b"\x00\xff binary", memoryview(b"--a memoryview--")[2:-2])
    assert kv.get(b"\x00\xff binary") == b"a memoryview"
    arr = np.arange(1000, dtype=np.float32).reshape(10, 100)
    kv.put(b"numpy", arr)
    assert kv.get(b"numpy") == arr.tobytes()
    big = random_bytes(3 * MiB + 5, seed=1)
    kv.put(b"big", big)
    assert kv.get(b"big") == big
    # The header sets no minimum size: an empty value is stored, and read back as b"", not None.
    kv.put(b"empty", b"")
    assert kv.get(b"empty") == b""
    assert kv.exists(b"empty")


def test_misses_are_none(kv):
    assert kv.get(b"missing") is None
    buf = bytearray(b"untouched")
    assert kv.get_into(b"missing", buf) is None
    assert buf == b"untouched"
    assert kv.batch_get_into([b"missing"], [bytearray(4)]) == [None]
    assert kv.exists(b"missing") is False


def test_get_into_buffers(kv):
    value = random_bytes(1000, seed=2)
    kv.put(b"k", value)

    exact = bytearray(1000)
    assert kv.get_into(b"k", exact) == 1000 and exact == value

    larger = bytearray(b"\xee" * 1500)
    assert kv.get_into(b"k", larger) == 1000
    assert larger[:1000] == value and larger[1000:] == b"\xee" * 500

    backing = bytearray(2000)
    assert kv.get_into(b"k", memoryview(backing)[500:1500]) == 1000
    assert backing[500:1500] == value and backing[:500] == bytes(500) and backing[1500:] == bytes(500)

    arr = np.zeros(1000, dtype=np.uint8)
    assert kv.get_into(b"k", arr) == 1000 and arr.tobytes() == value

    floats = np.zeros(250, dtype=np.float32)  # any C-contiguous buffer, whatever its item type
    assert kv.get_into(b"k", floats) == 1000 and floats.tobytes() == value


def test_get_into_bad_buffers(kv):
    kv.put(b"k", b"x" * 100)
    with pytest.raises(granary.InvalidArgumentError) as e:
        kv.get_into(b"k", bytearray(99))
    assert isinstance(e.value, ValueError) and e.value.code == "invalid_argument"
    assert "100" in e.value.message  # the size needed
    with pytest.raises(TypeError):
        kv.get_into(b"k", b"read-only bytes" * 10)
    with pytest.raises(ValueError):
        kv.get_into(b"k", np.zeros((200, 2), dtype=np.uint8)[:, 0])  # not contiguous
    with pytest.raises(TypeError):
        kv.put(b"k2", "a str value")


def test_batch_put_and_batch_get_into(kv):
    chain = [b"chain-%d" % i for i in range(6)]
    values = [random_bytes(100 + 37 * i, seed=10 + i) for i in range(6)]
    assert kv.batch_put(list(zip(chain[:3], values[:3]))) is None
    assert kv.batch_put(dict(zip(chain[4:], values[4:]))) is None  # chain[3] left out
    assert kv.batch_put([]) is None

    keys = chain + [b"never-put"]
    buffers = [bytearray(len(v) + 10) for v in values] + [bytearray(10)]
    sizes = kv.batch_get_into(keys, buffers)
    assert sizes == [len(values[0]), len(values[1]), len(values[2]), None, len(values[4]),
                     len(values[5]), None]
    for i in (0, 1, 2, 4, 5):
        assert buffers[i][:len(values[i])] == values[i]
    assert buffers[3] == bytes(len(values[3]) + 10)
    assert kv.batch_get_into([], []) == []

    arrays = [np.zeros(len(v), dtype=np.uint8) for v in values[:3]]
    assert kv.batch_get_into(["chain-0", "chain-1", "chain-2"], arrays) == \
        [len(v) for v in values[:3]]
    assert [a.tobytes() for a in arrays] == values[:3]

    with pytest.raises(ValueError):
        kv.batch_get_into(chain[:2], [bytearray(10)])  # one buffer per key
    with pytest.raises(TypeError):
        kv.batch_get_into(b"chain-0", [bytearray(10)])  # a lone key, not a list


def test_batch_calls_report_item_failures(kv):
    kv.put(b"stored", b"12345")
    items = [(b"new-1", b"a"), (b"stored", b"different size"), ("new-2", b"b")]
    with pytest.raises(granary.AlreadyExistsError) as e:
        kv.batch_put(items)
    assert e.value.code == "already_exists"
    assert e.value.results[0] is None and e.value.results[2] is None
    assert isinstance(e.value.results[1], granary.AlreadyExistsError)
    assert e.value.failures == [(b"stored", e.value.results[1])]  # the key as given
    assert kv.get(b"new-1") == b"a" and kv.get("new-2") == b"b"  # the others are stored
    assert kv.get(b"stored") == b"12345"

    outcomes = kv.batch_put([(b"new-3", b"c"), (b"stored", b"x")], return_exceptions=True)
    assert outcomes[0] is None and isinstance(outcomes[1], granary.AlreadyExistsError)

    buffers = [bytearray(1), bytearray(4), bytearray(1)]  # "stored" has 5 bytes
    with pytest.raises(granary.InvalidArgumentError) as e:
        kv.batch_get_into([b"new-1", b"stored", b"absent"], buffers)
    assert e.value.results[0] == 1 and e.value.results[2] is None
    assert isinstance(e.value.results[1], granary.InvalidArgumentError)
    assert e.value.failures == [(b"stored", e.value.results[1])]
    assert buffers[0] == b"a"
    outcomes = kv.batch_get_into([b"stored", b"new-1"], [bytearray(4), bytearray(1)],
                                 return_exceptions=True)
    assert isinstance(outcomes[0], granary.InvalidArgumentError) and outcomes[1] == 1


def test_exists_and_batch_exists(kv):
    kv.batch_put([(b"e1", b"1"), (b"e3", b"3")])
    assert kv.exists(b"e1") is True and kv.exists("e1") is True
    assert kv.exists(b"e2") is False
    assert kv.batch_exists([b"e1", b"e2", "e3", b"e4"]) == [True, False, True, False]
    assert kv.batch_exists([]) == []


def test_longest_prefix(kv):
    chain = [b"lp-%d" % i for i in range(5)]
    assert kv.longest_prefix(chain) == 0
    kv.batch_put([(k, b"v" * 64) for k in chain[:3]])
    assert kv.longest_prefix(chain) == 3
    assert kv.longest_prefix(chain[:2]) == 2
    assert kv.longest_prefix([s.decode() for s in chain]) == 3
    kv.put(chain[4], b"v" * 64)  # a hole at 3: the prefix still stops there
    assert kv.longest_prefix(chain) == 3
    kv.remove(chain[0])
    assert kv.longest_prefix(chain) == 0
    assert kv.longest_prefix([]) == 0


def test_remove(kv):
    kv.put(b"r", b"value")
    kv.remove(b"r")
    assert kv.get(b"r") is None and not kv.exists(b"r")
    kv.remove(b"r")  # no error when absent
    kv.remove(b"never-there")
    kv.put(b"r", b"a value of another size")  # gone, so any size may be put again
    assert kv.get(b"r") == b"a value of another size"


def test_pin_and_unpin(kv):
    # The pool allows 15 KiB of pinned blocks: one 10 KB block (with its bookkeeping), not two.
    kv.put(b"p1", b"1" * 10_000)
    kv.put(b"p2", b"2" * 10_000)
    kv.pin(b"p1")
    kv.pin(b"p1")  # already pinned: no more bytes
    stats = kv.stats()
    assert stats["pinned_blocks"] == 1 and stats["pinned_bytes"] >= 10_000
    with pytest.raises(granary.NoSpaceError) as e:
        kv.pin(b"p2")
    assert e.value.code == "no_space"
    kv.unpin(b"p1")
    kv.unpin(b"p1")  # no error when not pinned
    kv.unpin(b"never-there")
    kv.pin(b"p2")
    assert kv.stats()["pinned_blocks"] == 1
    with pytest.raises(granary.NotFoundError) as e:
        kv.pin(b"not-cached")
    assert e.value.code == "not_found"
    kv.unpin(b"p2")
    assert kv.stats()["pinned_blocks"] == 0


@pytest.mark.parametrize("shared_memory", [True, False])
def test_stats_counters(server, new_pool, shared_memory):
    name = new_pool(dram_budget_bytes=2 * MiB)
    with open_store(server.native_address, name, shared_memory=shared_memory) as kv:
        s0 = kv.stats()
        assert set(s0) == STATS_FIELDS and all(isinstance(v, int) for v in s0.values())
        assert s0["puts"] == 0 and s0["dram_blocks"] == 0
        assert s0["dram_budget_bytes"] == 2 * MiB and s0["disk_budget_bytes"] == 0

        kv.batch_put([(b"s1", b"a" * 100), (b"s2", b"b" * 200)])
        kv.put(b"s3", b"c" * 300)
        kv.put(b"s3", b"d" * 300)  # a no-op put of a stored key: not counted
        with pytest.raises(granary.AlreadyExistsError):
            kv.put(b"s3", b"e")
        with pytest.raises(granary.InvalidArgumentError):
            kv.put(b"too-big", bytes(2 * MiB + 1))  # could never fit the DRAM budget
        s1 = kv.stats()
        assert s1["puts"] == 3 and s1["put_bytes"] == 600 and s1["put_failures"] == 1
        assert s1["dram_blocks"] == 3 and 600 < s1["dram_bytes"] <= 2 * MiB

        assert kv.get(b"s1") == b"a" * 100
        assert kv.get_into(b"s2", bytearray(200)) == 200
        assert kv.batch_get_into([b"s3", b"nope"], [bytearray(300), bytearray(1)]) == [300, None]
        assert kv.get(b"nope-2") is None
        s2 = kv.stats()
        assert s2["dram_hits"] - s1["dram_hits"] == 3
        assert s2["misses"] - s1["misses"] == 2
        assert s2["disk_hits"] == 0

        assert kv.longest_prefix([b"s1", b"s2", b"x", b"s3"]) == 2
        s3 = kv.stats()
        assert s3["prefix_lookups"] - s2["prefix_lookups"] == 1
        assert s3["prefix_keys"] - s2["prefix_keys"] == 4
        assert s3["prefix_hits"] - s2["prefix_hits"] == 2

        kv.remove(b"s1")
        assert kv.stats()["dram_blocks"] == 2


def test_put_of_a_stored_key(kv):
    kv.put(b"k", b"original")
    kv.put(b"k", b"replaced")  # same size: OK, and the stored bytes are kept
    assert kv.get(b"k") == b"original"
    with pytest.raises(granary.AlreadyExistsError) as e:
        kv.put(b"k", b"another size")
    assert e.value.code == "already_exists"
    assert kv.get(b"k") == b"original"


def test_bad_keys(kv):
    longest = b"k" * 1024
    kv.put(longest, b"ok")
    assert kv.get(longest) == b"ok"
    for bad in (b"", "", b"k" * 1025, "\u00e9" * 513):  # 0 and 1025+ bytes
        with pytest.raises(granary.InvalidArgumentError) as e:
            kv.put(bad, b"v")
        assert e.value.code == "invalid_argument"
        for call in (kv.get, kv.remove, kv.pin, kv.unpin, kv.exists,
                     lambda k: kv.batch_exists([b"good", k]),
                     lambda k: kv.longest_prefix([b"good", k])):
            with pytest.raises(granary.InvalidArgumentError):
                call(bad)
        with pytest.raises(granary.InvalidArgumentError):
            kv.get_into(bad, bytearray(4))
        with pytest.raises(granary.InvalidArgumentError) as e:
            kv.batch_put([(b"good", b"v"), (bad, b"v")])
        assert e.value.results[0] is None and e.value.failures == [(bad, e.value.results[1])]
        outcomes = kv.batch_get_into([b"good", bad], [bytearray(1), bytearray(1)],
                                     return_exceptions=True)
        assert outcomes[0] == 1 and isinstance(outcomes[1], granary.InvalidArgumentError)
    for not_a_key in (1, None, bytearray(b"k"), 1.5):
        with pytest.raises(TypeError):
            kv.put(not_a_key, b"v")
    with pytest.raises(TypeError):
        kv.batch_exists("a lone str")
    with pytest.raises(TypeError):
        kv.longest_prefix([b"ok", 3])


def test_a_store_of_a_deleted_pool_raises(server, new_pool):
    name = new_pool()
    kv = open_store(server.native_address, name)
    try:
        kv.put(b"k", b"v")
        delete_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name)
        for call in (lambda: kv.get(b"k"), lambda: kv.exists(b"k"),
                     lambda: kv.longest_prefix([b"k"]), lambda: kv.put(b"k2", b"v")):
            with pytest.raises(granary.NoSuchPoolError):
                call()
    finally:
        kv.close()


def test_missing_pool_and_bad_server(server):
    with pytest.raises(granary.NoSuchPoolError) as e:
        open_store(server.native_address, "no-such-pool")
    assert e.value.code == "no_such_pool"
    with pytest.raises(granary.UnauthenticatedError):
        KVStore(server.native_address, "any", ACCESS_KEY, "wrong-secret",
                timeout_ms=TEST_TIMEOUT_MS)
    with pytest.raises(ValueError):
        open_store(server.native_address, "any", max_connections=0)


def test_pool_administration(server):
    addr = server.native_address
    name = f"admin-{uuid.uuid4().hex[:8]}"
    create_pool(addr, ACCESS_KEY, SECRET_KEY, name, dram_budget_bytes=8 * MiB,
                disk_budget_bytes=16 * MiB, eviction="lru", pin_limit_bytes=1 * MiB,
                lease_ms=1234)
    try:
        with pytest.raises(granary.AlreadyExistsError) as e:
            create_pool(addr, ACCESS_KEY, SECRET_KEY, name)
        assert e.value.code == "already_exists"

        info = pool_info(addr, ACCESS_KEY, SECRET_KEY, name)
        assert isinstance(info, PoolInfo)
        assert (info.name, info.dram_budget_bytes, info.disk_budget_bytes, info.eviction,
                info.pin_limit_bytes, info.lease_ms) == (name, 8 * MiB, 16 * MiB, "lru", MiB, 1234)
        assert info.config == PoolConfig(name, dram_budget_bytes=8 * MiB,
                                         disk_budget_bytes=16 * MiB, eviction="lru",
                                         pin_limit_bytes=MiB, lease_ms=1234)
        assert set(info.stats) == STATS_FIELDS
        assert info.stats["dram_budget_bytes"] == 8 * MiB
        assert info.stats["disk_budget_bytes"] == 16 * MiB
        assert name in repr(info) and name in repr(info.config)

        with open_store(addr, name) as kv:
            kv.put(b"k", b"v" * 10)
        pools = {p.name: p for p in list_pools(addr, ACCESS_KEY, SECRET_KEY)}
        assert name in pools and pools[name].stats["puts"] == 1
        assert pools[name].config == info.config
    finally:
        delete_pool(addr, ACCESS_KEY, SECRET_KEY, name)
    assert name not in [p.name for p in list_pools(addr, ACCESS_KEY, SECRET_KEY)]
    with pytest.raises(granary.NoSuchPoolError):
        pool_info(addr, ACCESS_KEY, SECRET_KEY, name)
    with pytest.raises(granary.NoSuchPoolError):
        delete_pool(addr, ACCESS_KEY, SECRET_KEY, name)
    with pytest.raises(granary.NoSuchPoolError):
        open_store(addr, name)


def test_pool_administration_refuses_bad_settings(server):
    with KvAdmin(server.native_address, ACCESS_KEY, SECRET_KEY,
                 timeout_ms=TEST_TIMEOUT_MS) as admin:
        for bad_name in ("Bad_Name", "", "-starts-with-dash", "x" * 64):
            with pytest.raises(granary.InvalidArgumentError):
                admin.create_pool(bad_name)
        with pytest.raises(granary.InvalidArgumentError):
            admin.create_pool(f"evict-{uuid.uuid4().hex[:8]}", eviction="fifo")
        with pytest.raises(ValueError):
            admin.create_pool("negative", dram_budget_bytes=-1)
    assert admin.closed
    with pytest.raises(ValueError):
        admin.list_pools()


def test_a_deleted_pool_is_empty_when_created_again(server, new_pool):
    name = new_pool()
    with open_store(server.native_address, name) as kv:
        kv.put(b"k", b"old")
    delete_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name)
    create_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name, dram_budget_bytes=MiB)
    with open_store(server.native_address, name) as kv:
        assert kv.get(b"k") is None


# Shared memory, threads, the GIL ---------------------------------------------------------------

def test_shared_memory_reads_equal_socket_reads(server, pool):
    sizes = [1, 4095, 4096, 4097, 65536 + 3, 2 * MiB + 1]
    items = [(b"shm-%d" % n, random_bytes(n, seed=n)) for n in sizes]
    with open_store(server.native_address, pool) as shm, \
            open_store(server.native_address, pool, shared_memory=False) as sock:
        assert shm.shared_memory is True  # the server runs on this host
        assert sock.shared_memory is False
        assert shm.pool == pool and sock.pool == pool
        shm.batch_put(items[:4])
        for k, v in items[4:]:
            sock.put(k, v)
        for store in (shm, sock):
            for k, v in items:
                assert store.get(k) == v
                buf = np.full(len(v) + 8, 0xAB, dtype=np.uint8)
                assert store.get_into(k, buf) == len(v)
                assert buf[:len(v)].tobytes() == v and (buf[len(v):] == 0xAB).all()
            buffers = [bytearray(len(v)) for _, v in items]
            assert store.batch_get_into([k for k, _ in items], buffers) == sizes
            assert [bytes(b) for b in buffers] == [v for _, v in items]


def test_threads_share_one_store(kv):
    """8 threads, each on its own keys, put and read back through one KVStore; an oracle of
    what each acknowledged put stored is checked at the end."""
    oracle = {}
    errors = []
    start = threading.Barrier(8)

    def worker(t):
        try:
            start.wait()
            for i in range(60):
                key = b"t%d-%d" % (t, i)
                value = random_bytes(1 + (t * 997 + i * 131) % 20_000, seed=t * 1000 + i)
                kv.put(key, value)
                oracle[key] = value
                assert kv.get(key) == value
                buf = bytearray(len(value))
                assert kv.get_into(key, buf) == len(value) and buf == value
                if i % 10 == 9:
                    keys = [b"t%d-%d" % (t, j) for j in range(i - 9, i + 1)]
                    assert kv.longest_prefix(keys) == 10
                    buffers = [bytearray(len(oracle[k])) for k in keys]
                    assert kv.batch_get_into(keys, buffers) == [len(b) for b in buffers]
                    assert [bytes(b) for b in buffers] == [oracle[k] for k in keys]
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(oracle) == 8 * 60
    for key, value in oracle.items():
        assert kv.get(key) == value


def test_every_call_releases_the_gil(proxy, server, new_pool):
    """Through conftest's pure-Python proxy (see test_concurrency.py): a call that held the GIL
    while waiting would starve the proxy."""
    name = new_pool(pin_limit_bytes=MiB)
    admin_calls_before = proxy.forwarded
    create_pool(proxy.address, ACCESS_KEY, SECRET_KEY, name + "-gil", timeout_ms=TEST_TIMEOUT_MS)
    assert pool_info(proxy.address, ACCESS_KEY, SECRET_KEY, name + "-gil").name == name + "-gil"
    assert name in [p.name for p in list_pools(proxy.address, ACCESS_KEY, SECRET_KEY)]
    delete_pool(proxy.address, ACCESS_KEY, SECRET_KEY, name + "-gil")
    assert proxy.forwarded > admin_calls_before
    with open_store(proxy.address, name, shared_memory=False) as kv:
        value = random_bytes(4 * MiB, seed=3)
        kv.put(b"big", value)
        kv.batch_put([(b"a", b"1"), (b"b", b"2")])
        assert kv.get(b"big") == value
        out = np.empty(len(value), dtype=np.uint8)
        before = proxy.forwarded
        assert kv.get_into(b"big", out) == len(value) and out.tobytes() == value
        assert proxy.forwarded - before >= len(value)
        assert kv.batch_get_into([b"a", b"b"], [bytearray(1), bytearray(1)]) == [1, 1]
        assert kv.exists(b"a") and kv.batch_exists([b"a", b"c"]) == [True, False]
        assert kv.longest_prefix([b"a", b"b"]) == 2
        kv.pin(b"a")
        kv.unpin(b"a")
        kv.remove(b"b")
        assert kv.stats()["puts"] == 3


def test_close_and_context_manager(server, pool):
    kv = open_store(server.native_address, pool)
    assert not kv.closed and pool in repr(kv)
    kv.put(b"k", b"v")
    kv.close()
    kv.close()  # harmless
    assert kv.closed and "closed" in repr(kv)
    with pytest.raises(ValueError):
        kv.get(b"k")
    with open_store(server.native_address, pool) as kv2:
        assert kv2.get(b"k") == b"v"
    assert kv2.closed


def test_forked_child_reconnects(kv):
    """A child process uses the KVStore it inherited: it connects anew (its own shared-memory
    mapping included), and the parent's store goes on working."""
    kv.put(b"k", b"from parent")

    def child():
        data = kv.get(b"k")
        kv.put(b"child", b"from child")
        kv.close()
        return data

    assert run_in_child(child) == b"from parent"
    assert kv.get(b"child") == b"from child"
    assert kv.get(b"k") == b"from parent"
