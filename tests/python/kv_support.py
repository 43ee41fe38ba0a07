"""What the granary.kv test files share: constants and helpers (conftest.py has the pool
fixtures: new_pool, pool, kv)."""
import numpy as np
from granary.kv import KVStore
from granary_server import ACCESS_KEY, SECRET_KEY

from conftest import TEST_TIMEOUT_MS

KiB = 1 << 10
MiB = 1 << 20

STATS_FIELDS = {
    "dram_hits", "disk_hits", "misses", "prefix_lookups", "prefix_keys", "prefix_hits", "puts",
    "put_bytes", "put_failures", "dram_blocks", "dram_bytes", "dram_budget_bytes",
    "dram_evictions", "promotions", "spills", "pinned_blocks", "pinned_bytes", "disk_blocks",
    "disk_bytes", "disk_budget_bytes", "disk_evictions", "disk_corruptions",
}

def random_bytes(n, seed):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def open_store(address, pool, **options):
    options.setdefault("timeout_ms", TEST_TIMEOUT_MS)
    return KVStore(address, pool, ACCESS_KEY, SECRET_KEY, **options)
