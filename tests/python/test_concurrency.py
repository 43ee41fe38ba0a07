"""Threads sharing one granary.Client, and proof that every call releases the GIL.

The GIL tests route the client through conftest.TcpProxy, a proxy made of Python threads. A call
that held the GIL while waiting for the server would keep the proxy from forwarding its request
and answer, and could only end by its deadline (UnavailableError); that every call succeeds, and
that the proxy forwarded the bytes, shows that pure-Python threads ran during each call.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fork_child import run_in_child

from conftest import make_client

MiB = 1 << 20


def test_every_call_releases_the_gil(proxy, bucket):
    with make_client(proxy.address) as c:
        c.create_bucket(bucket + "-gil")
        c.delete_bucket(bucket + "-gil")
        c.head_bucket(bucket)
        c.list_buckets()
        info = c.put(bucket, "k", b"value", metadata={"a": "b"})
        assert c.head(bucket, "k") == info
        assert c.get(bucket, "k") == b"value"
        buf = bytearray(5)
        assert c.get_into(bucket, "k", buf) == 5 and buf == b"value"
        c.copy(bucket, "k", bucket, "k2")
        assert [o.key for o in c.list(bucket).objects] == ["k", "k2"]
        assert len(list(c.list_all(bucket, page_size=1))) == 2
        assert len(c.put_many(bucket, {"a": b"1", "b": b"2"})) == 2
        assert c.get_many(bucket, ["a", "b"]) == [b"1", b"2"]
        assert c.get_many_into(bucket, ["a"], [bytearray(1)]) == [1]
        assert c.delete_many(bucket, ["a", "b"]) == [True, True]
        c.delete(bucket, "k2")
        upload = c.create_multipart_upload(bucket, "mp")
        part = c.upload_part(bucket, "mp", upload, 1, b"only part")
        assert len(c.list_parts(bucket, "mp", upload).parts) == 1
        assert len(c.list_multipart_uploads(bucket).uploads) == 1
        c.complete_multipart_upload(bucket, "mp", upload, [part])
        assert c.get(bucket, "mp") == b"only part"
    assert proxy.forwarded > 0


def test_python_thread_runs_during_a_long_call(proxy, bucket):
    """64 MiB up and down through the Python proxy: the proxy's threads moved every byte while
    the main thread was inside put() and get_into()."""
    data = np.random.default_rng(5).integers(0, 256, 64 * MiB, dtype=np.uint8)
    with make_client(proxy.address) as c:
        before = proxy.forwarded
        c.put(bucket, "big", data)
        during_put = proxy.forwarded - before
        assert during_put >= data.nbytes
        out = np.empty_like(data)
        before = proxy.forwarded
        assert c.get_into(bucket, "big", out) == data.nbytes
        assert proxy.forwarded - before >= data.nbytes
        assert np.array_equal(out, data)


def test_threads_share_one_client(client, bucket):
    threads, rounds = 8, 25
    rng = np.random.default_rng(11)
    payloads = {f"t{t}/r{r}": rng.integers(0, 256, int(rng.integers(0, 300_000)),
                                           dtype=np.uint8).tobytes()
                for t in range(threads) for r in range(rounds)}

    def work(t):
        for r in range(rounds):
            key = f"t{t}/r{r}"
            data = payloads[key]
            assert client.put(bucket, key, data).size == len(data)
            assert client.get(bucket, key) == data
            buf = np.empty(len(data), dtype=np.uint8)
            assert client.get_into(bucket, key, buf) == len(data)
            assert buf.tobytes() == data
            if r % 5 == 0:
                batch = {f"{key}/b{i}": data[:100] for i in range(10)}
                client.put_many(bucket, batch)
                assert client.get_many(bucket, list(batch)) == [data[:100]] * 10
        return t

    with ThreadPoolExecutor(threads) as pool:
        assert sorted(pool.map(work, range(threads))) == list(range(threads))
    assert client.get_many(bucket, list(payloads)) == list(payloads.values())


def test_large_objects_in_parallel(client, bucket):
    size = 16 * MiB
    arrays = [np.full(size, i, dtype=np.uint8) for i in range(4)]

    def roundtrip(i):
        client.put(bucket, f"big{i}", arrays[i])
        out = np.empty(size, dtype=np.uint8)
        client.get_into(bucket, f"big{i}", out)
        return bool(np.array_equal(out, arrays[i]))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(roundtrip, range(4))) == [True] * 4


def test_close_while_other_threads_call(server, bucket):
    """close() on one thread while others are mid-call: their calls finish or raise ValueError;
    nothing crashes or hangs."""
    c = make_client(server.native_address)
    c.put(bucket, "k", b"x" * 100_000)
    started = threading.Barrier(5)
    outcomes = []

    def reader():
        started.wait()
        n = 0
        while True:
            try:
                assert c.get(bucket, "k") == b"x" * 100_000
                n += 1
            except ValueError as e:
                assert "closed" in str(e)
                outcomes.append(n)
                return

    workers = [threading.Thread(target=reader) for _ in range(4)]
    for w in workers:
        w.start()
    started.wait()
    c.close()
    for w in workers:
        w.join()
    assert len(outcomes) == 4


def test_forked_child_reconnects(client, bucket):
    """A child process (a DataLoader worker) uses the client it inherited: it connects anew, and
    the parent's connections are left alone."""
    client.put(bucket, "k", b"from parent")

    def child():
        data = client.get(bucket, "k")
        client.put(bucket, "child", b"from child")
        client.close()
        return data

    assert run_in_child(child) == b"from parent"
    assert client.get(bucket, "child") == b"from child"
    assert client.get(bucket, "k") == b"from parent"
