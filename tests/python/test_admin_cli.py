"""`granary admin pool create|list|stats|delete` against a real `granary server`."""
import json
import os
import subprocess

import pytest

from granary_server import GranaryServer

BINARY = os.environ["GRANARY_BINARY"]


@pytest.fixture(scope="module")
def server():
    with GranaryServer() as srv:
        yield srv


def admin(server, *args, credentials=True):
    env = dict(os.environ)
    cmd = [BINARY, "admin", "--address", server.native_address]
    if credentials:
        env["GRANARY_ACCESS_KEY"] = server.access_key
        env["GRANARY_SECRET_KEY"] = server.secret_key
    else:
        env.pop("GRANARY_ACCESS_KEY", None)
        env.pop("GRANARY_SECRET_KEY", None)
    return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=60)


def test_pool_lifecycle(server):
    r = admin(server, "pool", "create", "cli-pool", "--dram", "64MiB", "--disk", "128MiB",
              "--eviction", "lru", "--pin-limit", "1MiB", "--lease-ms", "2000")
    assert r.returncode == 0, r.stderr
    assert "created KV pool cli-pool" in r.stdout

    r = admin(server, "pool", "create", "cli-pool")
    assert r.returncode == 1
    assert "already_exists" in r.stderr

    r = admin(server, "pool", "list")
    assert r.returncode == 0, r.stderr
    assert "cli-pool" in r.stdout and "lru" in r.stdout

    r = admin(server, "pool", "list", "--json")
    pools = {p["name"]: p for p in json.loads(r.stdout)}
    assert pools["cli-pool"]["dram_budget_bytes"] == 64 << 20
    assert pools["cli-pool"]["disk_budget_bytes"] == 128 << 20
    assert pools["cli-pool"]["pin_limit_bytes"] == 1 << 20
    assert pools["cli-pool"]["lease_ms"] == 2000

    r = admin(server, "pool", "stats", "cli-pool", "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["name"] == "cli-pool"
    assert stats["stats"]["dram_budget_bytes"] == 64 << 20
    assert stats["stats"]["puts"] == 0

    r = admin(server, "pool", "delete", "cli-pool")
    assert r.returncode == 0, r.stderr
    r = admin(server, "pool", "stats", "cli-pool")
    assert r.returncode == 1
    assert "no_such_pool" in r.stderr and "pool create cli-pool" in r.stderr
    r = admin(server, "pool", "delete", "cli-pool")
    assert r.returncode == 1
    assert "no_such_pool" in r.stderr and "pool create cli-pool" in r.stderr


def test_bad_input_is_explained(server):
    r = admin(server, "pool", "create", "Bad Name")
    assert r.returncode == 1
    assert "invalid_argument" in r.stderr and "pool name" in r.stderr

    r = admin(server, "pool", "create", "tiny", "--dram", "1000")
    assert r.returncode == 1
    assert "dram_budget_bytes" in r.stderr

    r = admin(server, "pool", "create", "x", "--eviction", "fifo")
    assert r.returncode != 0
    assert "eviction" in r.stderr

    r = admin(server, "pool", "list", credentials=False)
    assert r.returncode == 1
    assert "GRANARY_ACCESS_KEY" in r.stderr

    env = dict(os.environ, GRANARY_ACCESS_KEY=server.access_key,
               GRANARY_SECRET_KEY="not-the-secret-key")
    r = subprocess.run([BINARY, "admin", "--address", server.native_address, "pool", "list"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "unauthenticated" in r.stderr

    r = admin(server, "pool", "list", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == []
