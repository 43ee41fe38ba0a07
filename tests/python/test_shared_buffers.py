"""granary.Client.shared_buffer against a real server on this host: put() of bytes inside a
SharedBuffer and get_into() one move no object byte over the socket (counted by a TCP proxy put
between the client and the server), numpy sees the buffer in place, and errors are the usual."""
import gc
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import granary
from conftest import make_client

MiB = 1 << 20


def test_put_and_get_into_move_no_bytes_over_the_socket(proxy, bucket):
    size = 24 * MiB + 123  # several 4 MiB chunks: the rest of a get goes in parallel requests
    data = np.random.default_rng(3).integers(0, 256, size, dtype=np.uint8)
    with make_client(proxy.address) as client:
        out = client.shared_buffer(size)
        inp = client.shared_buffer(size + 10)
        assert len(out) == size and "SharedBuffer" in repr(out)
        np.frombuffer(out, dtype=np.uint8)[:] = data  # numpy writes into it in place
        before = proxy.forwarded
        info = client.put(bucket, "shm", out)
        assert info.size == size
        assert client.get_into(bucket, "shm", memoryview(inp)[10:]) == size
        moved = proxy.forwarded - before
        assert moved < 64 * 1024, f"{moved} bytes crossed the socket"
        assert np.array_equal(np.frombuffer(inp, dtype=np.uint8)[10:], data)
        # The same object read over the socket is the same bytes.
        assert client.get(bucket, "shm", 5 * MiB, 100) == data[5 * MiB:5 * MiB + 100].tobytes()
        # A range into a slice of the buffer.
        view = memoryview(inp)[:1000]
        assert client.get_into(bucket, "shm", view, 7, 1000) == 1000
        assert bytes(view) == data[7:1007].tobytes()
        # A slice of a buffer puts just that slice.
        client.put(bucket, "part", memoryview(out)[100:200])
        assert client.get(bucket, "part") == data[100:200].tobytes()


def test_batches_move_no_bytes_over_the_socket(proxy, bucket):
    # A data loader's batch: 32 samples of 64 KiB put from and read into slices of shared
    # buffers, one request each way; a missing key and a slice too small are the items' own.
    n, size = 32, 64 * 1024
    data = np.random.default_rng(5).integers(0, 256, n * size, dtype=np.uint8)
    with make_client(proxy.address) as client:
        out = client.shared_buffer(n * size)
        inp = client.shared_buffer(n * size + 100)
        np.frombuffer(out, dtype=np.uint8)[:] = data
        keys = [f"batch/{i:02d}" for i in range(n)]
        before = proxy.forwarded
        infos = client.put_many(bucket, [(k, memoryview(out)[i * size:(i + 1) * size])
                                         for i, k in enumerate(keys)])
        assert [info.size for info in infos] == [size] * n
        views = [memoryview(inp)[i * size:(i + 1) * size] for i in range(n)]
        assert client.get_many_into(bucket, keys, views) == [size] * n
        moved = proxy.forwarded - before
        assert moved < 64 * 1024, f"{moved} bytes crossed the socket"
        assert np.array_equal(np.frombuffer(inp, dtype=np.uint8)[:n * size], data)
        tail = memoryview(inp)[n * size:]
        got = client.get_many_into(bucket, ["batch/none", keys[0]], [tail[:10], tail[10:100]],
                                   return_exceptions=True)
        assert got[0] is None
        assert isinstance(got[1], granary.InvalidArgumentError)
        # The same objects over the socket are the same bytes.
        assert client.get(bucket, keys[7]) == data[7 * size:8 * size].tobytes()


def test_errors_are_the_usual(client, bucket):
    buf = client.shared_buffer(MiB)
    with pytest.raises(granary.NotFoundError):
        client.get_into(bucket, "missing", buf)
    client.put(bucket, "two", b"x" * (2 * MiB))
    with pytest.raises(granary.InvalidArgumentError, match="too small"):
        client.get_into(bucket, "two", buf)
    with pytest.raises(granary.NoSuchBucketError):
        client.put("no-such-bucket-here", "k", memoryview(buf)[:10])
    with pytest.raises(ValueError, match="positive"):
        client.shared_buffer(0)
    with pytest.raises(granary.InvalidArgumentError, match="shared buffer"):
        client.shared_buffer(1 << 40)


def test_buffer_outlives_a_closed_client(server, bucket):
    client = make_client(server.native_address)
    buf = client.shared_buffer(4096)
    client.put(bucket, "k", memoryview(buf)[:3])
    client.close()
    # The memory stays usable while referenced; it is freed on both sides when it goes.
    memoryview(buf)[:3] = b"abc"
    assert bytes(memoryview(buf)[:3]) == b"abc"
    del buf
    gc.collect()


def test_a_killed_process_leaves_the_server_serving(server, bucket):
    # A process holding shared buffers dies without closing anything; the server drops them
    # (their connections close) and serves others on as before.
    code = f"""
import os, signal, granary
c = granary.Client({server.native_address!r}, {server.access_key!r}, {server.secret_key!r})
bufs = [c.shared_buffer(8 << 20) for _ in range(4)]
memoryview(bufs[0])[:5] = b"hello"
c.put({bucket!r}, "from-child", memoryview(bufs[0])[:5])
print("ready", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    env = dict(os.environ)
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == -9, child.stderr
    assert "ready" in child.stdout
    with make_client(server.native_address) as client:
        assert client.get(bucket, "from-child") == b"hello"
        buf = client.shared_buffer(MiB)
        memoryview(buf)[:4] = b"next"
        client.put(bucket, "after", memoryview(buf)[:4])
        assert client.get(bucket, "after") == b"next"


def test_buffers_survive_a_server_killed_and_restarted(tmp_path):
    # kill -9 of the server: what was acknowledged through a shared buffer is there after the
    # restart, and the buffers go on working (as plain memory, over the socket).
    from granary_server import GranaryServer
    with GranaryServer(data_dir=str(tmp_path)) as srv:
        with make_client(srv.native_address) as client:
            client.create_bucket("restart")
            buf = client.shared_buffer(2 * MiB)
            data = np.random.default_rng(4).integers(0, 256, 2 * MiB, dtype=np.uint8)
            np.frombuffer(buf, dtype=np.uint8)[:] = data
            client.put("restart", "acked", buf)
            srv.restart(crash=True)
            np.frombuffer(buf, dtype=np.uint8)[:] = 0
            assert client.get_into("restart", "acked", buf) == 2 * MiB
            assert np.array_equal(np.frombuffer(buf, dtype=np.uint8), data)
            client.put("restart", "again", memoryview(buf)[:MiB])
            assert client.get("restart", "again") == data[:MiB].tobytes()


def test_a_forked_child_uses_and_drops_an_inherited_buffer(client, bucket):
    # A DataLoader worker forks with the parent's buffer: the child's own client sends its bytes
    # over the socket, and dropping the buffer in the child leaves the parent's alone.
    buf = client.shared_buffer(MiB)
    memoryview(buf)[:6] = b"parent"
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            memoryview(buf)[:5] = b"child"
            client.put(bucket, "from-fork", memoryview(buf)[:5])
            del buf
            gc.collect()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert client.get(bucket, "from-fork") == b"child"
    memoryview(buf)[:6] = b"parent"
    client.put(bucket, "after-fork", memoryview(buf)[:6])
    assert client.get_into(bucket, "after-fork", buf) == 6
    assert bytes(memoryview(buf)[:6]) == b"parent"
