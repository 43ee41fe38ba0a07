"""granary.kv across restarts and re-creations: the disk tier surviving a kill -9, reads counted
once whichever tier serves them, and a store whose pool's memory went away (the pool deleted and
created again, the server restarted) reading the new values, never stale bytes."""
import pytest

from granary.kv import create_pool, delete_pool, pool_info
from granary_server import ACCESS_KEY, SECRET_KEY, GranaryServer
from kv_support import KiB, MiB, open_store, random_bytes

from conftest import TEST_TIMEOUT_MS


def test_store_never_reads_a_deleted_pools_memory(server, new_pool):
    """A store opened before its pool was deleted and created again reads the new pool's values,
    never the old pool's bytes: the server refuses its stale mapping and it maps the new arena."""
    name = new_pool()
    old = open_store(server.native_address, name)
    assert old.shared_memory
    old.put(b"x", b"\x01" * 10_000)
    delete_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name)
    # The same settings, so that the new pool's arena has the old one's layout.
    create_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name, dram_budget_bytes=64 * MiB)
    with open_store(server.native_address, name) as new:
        new.put(b"y", b"\x07" * 10_000)
    try:
        assert old.get(b"y") == b"\x07" * 10_000
        assert old.get(b"x") is None  # the old pool's block went with it
        assert old.shared_memory
    finally:
        old.close()


# The disk tier ---------------------------------------------------------------------------------

@pytest.fixture
def own_server():
    """A server of this test's own, which the test may kill and restart."""
    with GranaryServer() as srv:
        yield srv


def test_disk_tier_survives_kill_9(own_server):
    """A pool whose DRAM holds a fraction of its data: the rest is read from the disk tier, and
    after a kill -9 and a restart every acknowledged put reads back byte for byte."""
    addr = own_server.native_address
    create_pool(addr, ACCESS_KEY, SECRET_KEY, "durable", dram_budget_bytes=1 * MiB,
                disk_budget_bytes=64 * MiB, timeout_ms=TEST_TIMEOUT_MS)
    items = {b"block-%03d" % i: random_bytes(64 * KiB + i, seed=100 + i) for i in range(40)}
    keys = list(items)
    with open_store(addr, "durable") as kv:
        kv.batch_put(list(items.items())[:20])
        for k in keys[20:]:
            kv.put(k, items[k])
        s = kv.stats()
        assert s["dram_bytes"] <= MiB and s["dram_blocks"] < 40
        assert s["disk_blocks"] == 40
        for k in keys:
            assert kv.get(k) == items[k]
        assert kv.stats()["disk_hits"] > 0  # some of them came from disk

    own_server.kill()
    own_server.start()  # same ports, same data directory

    with open_store(addr, "durable") as kv:
        assert kv.longest_prefix(keys) == 40
        for k in keys:
            assert kv.get(k) == items[k]
        buffers = [bytearray(len(items[k])) for k in keys[:10]]
        assert kv.batch_get_into(keys[:10], buffers) == [len(b) for b in buffers]
        assert [bytes(b) for b in buffers] == [items[k] for k in keys[:10]]
        assert kv.stats()["disk_hits"] >= 30
    info = pool_info(addr, ACCESS_KEY, SECRET_KEY, "durable")
    assert (info.dram_budget_bytes, info.disk_budget_bytes) == (MiB, 64 * MiB)


def test_store_reads_right_values_after_a_server_restart(own_server):
    """A store opened before a kill -9 and used after the restart returns each block's own
    value, never bytes of the dead server's arena."""
    addr = own_server.native_address
    create_pool(addr, ACCESS_KEY, SECRET_KEY, "restart", dram_budget_bytes=4 * MiB,
                disk_budget_bytes=64 * MiB, timeout_ms=TEST_TIMEOUT_MS)
    items = {b"r%d" % i: bytes([i + 1]) * (4096 * (i + 1)) for i in range(8)}
    with open_store(addr, "restart") as old:
        assert old.shared_memory
        old.batch_put(list(items.items()))
        own_server.kill()
        own_server.start()
        with open_store(addr, "restart") as new:  # other blocks where the old ones were
            new.batch_put([(b"o%d" % i, bytes([100 + i]) * (4096 * (8 - i))) for i in range(8)])
        for key, value in items.items():
            assert old.get(key) == value
        assert old.shared_memory


@pytest.mark.parametrize("shared_memory", [True, False])
def test_each_read_counts_once(server, new_pool, shared_memory):
    """Reads are counted per key (kv::PoolStats): one get, one hit, whichever tier serves it."""
    name = new_pool(dram_budget_bytes=MiB, disk_budget_bytes=64 * MiB)
    items = [(b"c%02d" % i, bytes([i]) * (64 * KiB)) for i in range(40)]
    with open_store(server.native_address, name, shared_memory=shared_memory) as kv:
        kv.batch_put(items)
        before = kv.stats()
        for key, value in items:
            assert kv.get(key) == value
        after = kv.stats()
        hits = (after["dram_hits"] - before["dram_hits"]) + \
            (after["disk_hits"] - before["disk_hits"])
        assert after["disk_hits"] > before["disk_hits"]  # DRAM holds a fraction of the data
        assert hits == len(items)
