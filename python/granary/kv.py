"""granary.kv: KV-cache pools, for LLM inference engines that store the attention KV of
prompt-prefix blocks on a granary server and share it across inference nodes.

    from granary.kv import KVStore, create_pool

    create_pool("127.0.0.1:9100", access_key, secret_key, "llama", dram_budget_bytes=8 << 30)
    with KVStore("127.0.0.1:9100", "llama", access_key, secret_key) as kv:
        kv.put(block_hash, block_bytes)                 # any bytes-like value
        cached = kv.longest_prefix(chain_of_hashes)     # leading blocks all cached
        sizes = kv.batch_get_into(chain_of_hashes[:cached], buffers)

Keys are bytes or str (UTF-8) of 1..1024 bytes; values are immutable blobs. A missing key is a
miss (None), never an exception; other failures raise granary.Error subclasses, batch calls as
described in granary.errors. When the server runs on this host, reads copy values straight from
the pool's memory (KVStore.shared_memory says whether they do); the results are the same.

The classes are the compiled ones (C++); every call releases the GIL while it waits.
"""

from . import _granary

__all__ = [
    "KVStore", "KvAdmin", "PoolConfig", "PoolInfo",
    "create_pool", "list_pools", "pool_info", "delete_pool",
]

KVStore = _granary.KVStore
KvAdmin = _granary.KvAdmin
PoolConfig = _granary.PoolConfig
PoolInfo = _granary.PoolInfo

# Shown as granary.kv.KVStore, not granary._granary.KVStore.
for _cls in (KVStore, KvAdmin, PoolConfig, PoolInfo):
    _cls.__module__ = "granary.kv"
del _cls


def _admin(address, access_key, secret_key, timeout_ms):
    return KvAdmin(address, access_key, secret_key, timeout_ms=timeout_ms)


def create_pool(address, access_key, secret_key, name, *, dram_budget_bytes=1 << 30,
                disk_budget_bytes=0, eviction="prefix", pin_limit_bytes=0, lease_ms=5000,
                timeout_ms=60000):
    """Creates the pool `name` on the server at `address`. AlreadyExistsError if it exists,
    InvalidArgumentError for a bad name or settings (see KvAdmin.create_pool)."""
    with _admin(address, access_key, secret_key, timeout_ms) as admin:
        admin.create_pool(name, dram_budget_bytes=dram_budget_bytes,
                          disk_budget_bytes=disk_budget_bytes, eviction=eviction,
                          pin_limit_bytes=pin_limit_bytes, lease_ms=lease_ms)


def list_pools(address, access_key, secret_key, *, timeout_ms=60000):
    """Every pool of the server, as a list of PoolInfo (settings and counters)."""
    with _admin(address, access_key, secret_key, timeout_ms) as admin:
        return admin.list_pools()


def pool_info(address, access_key, secret_key, name, *, timeout_ms=60000):
    """The PoolInfo of the pool `name`. NotFoundError if there is none."""
    with _admin(address, access_key, secret_key, timeout_ms) as admin:
        return admin.pool_info(name)


def delete_pool(address, access_key, secret_key, name, *, timeout_ms=60000):
    """Drops the pool `name` and everything in it. NotFoundError if there is none."""
    with _admin(address, access_key, secret_key, timeout_ms) as admin:
        admin.delete_pool(name)
