"""Fixtures for the tests of the Python module `granary` against a real `granary server`.

One server per test module (started with tests/harness/granary_server.py), a client on it, a fresh
bucket per test, and a TCP proxy written in pure Python (TcpProxy) that the GIL tests put between
a client and the server: a call that kept the GIL while it waited for the server would starve the
proxy and never get its answer.
"""
import itertools
import os
import socket
import threading
import uuid

import pytest

import granary
from granary.kv import KVStore, create_pool, delete_pool
from granary_server import ACCESS_KEY, SECRET_KEY, GranaryServer

# A call must never wait this long in these tests; a hang fails with UnavailableError instead.
TEST_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server():
    with GranaryServer() as srv:
        yield srv


def make_client(address, **options):
    options.setdefault("timeout_ms", TEST_TIMEOUT_MS)
    return granary.Client(address, ACCESS_KEY, SECRET_KEY, **options)


@pytest.fixture(scope="module")
def client(server):
    with make_client(server.native_address) as c:
        yield c


_bucket_ids = itertools.count()


def empty_and_delete_bucket(client, bucket):
    """Deletes every object and upload of `bucket`, then the bucket."""
    for upload in client.list_multipart_uploads(bucket).uploads:
        client.abort_multipart_upload(bucket, upload.key, upload.upload_id)
    keys = [o.key for o in client.list_all(bucket)]
    if keys:
        client.delete_many(bucket, keys)
    client.delete_bucket(bucket)


@pytest.fixture
def bucket(client):
    """A new, empty bucket, deleted (with its objects) after the test."""
    name = f"test-{os.getpid()}-{next(_bucket_ids)}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(name)
    yield name
    empty_and_delete_bucket(client, name)


class TcpProxy:
    """Forwards TCP connections from 127.0.0.1:<port> to `upstream` ("host:port"), with Python
    threads only. `forwarded` counts the bytes it moved, both ways."""

    def __init__(self, upstream):
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.forwarded = 0
        self._sockets = []
        self._threads = []
        self._closed = False
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                up = socket.create_connection(self._upstream)
            except OSError:
                conn.close()
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    up.close()
                    return
                self._sockets += [conn, up]
                for src, dst in ((conn, up), (up, conn)):
                    t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                    self._threads.append(t)
                    t.start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                # Counted before sending, so a client that got the bytes sees them counted.
                with self._lock:
                    self.forwarded += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        # shutdown() wakes a thread blocked in accept() or recv() on Linux; close() alone may not.
        for s in [self._listener] + sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._accept_thread.join()
        for t in self._threads:
            t.join()


@pytest.fixture
def proxy(server):
    p = TcpProxy(server.native_address)
    yield p
    p.close()


# KV-cache pools (test_kv*.py) ---------------------------------------------------------------------

_kv_pool_ids = itertools.count()


@pytest.fixture
def new_pool(server):
    """new_pool(**config) creates a pool with a fresh name and returns the name; every pool it
    created is deleted after the test."""
    created = []

    def make(**config):
        config.setdefault("dram_budget_bytes", 64 << 20)
        config.setdefault("timeout_ms", TEST_TIMEOUT_MS)
        name = f"kv-{os.getpid()}-{next(_kv_pool_ids)}-{uuid.uuid4().hex[:8]}"
        create_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name, **config)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            delete_pool(server.native_address, ACCESS_KEY, SECRET_KEY, name)
        except granary.NoSuchPoolError:
            pass  # the test deleted it


@pytest.fixture
def pool(new_pool):
    return new_pool(pin_limit_bytes=15 << 10)


@pytest.fixture
def kv(server, pool):
    with KVStore(server.native_address, pool, ACCESS_KEY, SECRET_KEY,
                 timeout_ms=TEST_TIMEOUT_MS) as store:
        yield store
