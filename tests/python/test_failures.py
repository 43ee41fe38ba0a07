"""A client whose server crashes, stops and comes back: UnavailableError while it is down, the
same client working again once it is up, and acknowledged writes still there."""
import threading

import pytest

import granary
from granary_server import GranaryServer

from conftest import make_client


@pytest.fixture
def own_server():
    """A server of this test's own, which the test may kill and restart."""
    with GranaryServer() as srv:
        yield srv


def test_killed_server_is_unavailable_then_recovers(own_server):
    with make_client(own_server.native_address, timeout_ms=10_000) as c:
        c.create_bucket("crash")
        info = c.put("crash", "k", b"acknowledged")

        own_server.kill()
        with pytest.raises(granary.UnavailableError) as e:
            c.get("crash", "k")
        assert isinstance(e.value, ConnectionError) and e.value.code == "unavailable"
        with pytest.raises(granary.UnavailableError):
            c.put("crash", "k2", b"x")
        with pytest.raises(granary.UnavailableError):
            c.list_buckets()
        with pytest.raises(granary.UnavailableError):
            c.get_many("crash", ["k", "k2"])

        own_server.start()  # same ports
        assert c.get("crash", "k") == b"acknowledged"
        assert c.head("crash", "k").etag == info.etag
        c.put("crash", "k2", b"after restart")
        assert c.get_many("crash", ["k", "k2"]) == [b"acknowledged", b"after restart"]


def test_clean_restart_keeps_data_and_client(own_server):
    with make_client(own_server.native_address) as c:
        c.create_bucket("restart")
        c.put_many("restart", {f"k{i}": bytes([i]) * 100 for i in range(20)})
        assert own_server.stop() == 0
        own_server.start()
        assert c.get_many("restart", [f"k{i}" for i in range(20)]) == \
            [bytes([i]) * 100 for i in range(20)]
        assert len(c.list("restart").objects) == 20


def test_calls_in_flight_when_the_server_dies(own_server):
    """Threads busy with the server when it is killed all end, with data or UnavailableError."""
    c = make_client(own_server.native_address, timeout_ms=10_000)
    c.create_bucket("inflight")
    payload = b"p" * (1 << 20)
    c.put("inflight", "k", payload)
    errors, done = [], threading.Event()
    running = threading.Barrier(5)

    def worker():
        running.wait()
        while not done.is_set():
            try:
                assert c.get("inflight", "k") == payload
            except granary.UnavailableError as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    running.wait()
    own_server.kill()
    for t in threads:
        t.join()
    assert len(errors) == 4
    c.close()


def test_new_client_while_server_down(own_server):
    address = own_server.native_address
    own_server.kill()
    with pytest.raises(granary.UnavailableError):
        c = make_client(address, timeout_ms=5_000)
        c.list_buckets()
    own_server.start()
    with make_client(address) as c:
        assert c.list_buckets() == []
