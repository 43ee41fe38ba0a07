"""Self-test of tests/harness/netns_hosts.py: hosts reach each other and the root namespace, cut()
and heal() partition a host, etcd runs in a host, and nothing is left behind after close() (nor
after a set-up that failed halfway). Needs root; skipped elsewhere."""
import base64
import os
import socket
import subprocess
import sys
import time

import pytest

import netns_hosts
from netns_hosts import Hosts, http_post_json, require_root_netns, start_etcd

PORT = 8000

# Run inside a host: GET / from http://ARGV1:ARGV2 with a timeout of ARGV3 seconds; exit 0 on a
# 200 answer, 3 when the connection fails or times out (a crash of the client exits 1).
CLIENT = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
except OSError as e:
    print("client:", e)
    sys.exit(3)
print(answer[:40])
sys.exit(0 if answer.startswith(b"HTTP/1.0 200") else 2)
"""


def get_from_root(addr, timeout):
    """True when GET / on addr:PORT answers 200, from the root namespace."""
    try:
        with socket.create_connection((addr, PORT), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def get_from_host(hosts, i, addr, timeout, log):
    """Exit status of CLIENT run inside host i against addr:PORT."""
    proc = hosts.start(i, [sys.executable, "-c", CLIENT, addr, str(PORT), str(timeout)],
                       stdout_path=log)
    return proc.wait(timeout=timeout + 10)


def eventually(check, timeout=10.0):
    """Polls `check` until it returns true or `timeout` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while not (ok := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ok


def leftovers(names):
    """The names among `names` that still exist as a network namespace or a link."""
    netns = {line.split()[0] for line in
             subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout.splitlines() if line.strip()}
    links = {line.split(":")[1].strip().split("@")[0] for line in
             subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                            check=True).stdout.splitlines()}
    return sorted(n for n in names if n in netns or n in links)


def test_hosts_reach_partition_heal_and_run_etcd(tmp_path):
    require_root_netns()
    log = str(tmp_path / "client.log")
    with Hosts(3) as hosts:
        addrs = [hosts.address(i) for i in range(3)]
        assert len(set(addrs)) == 3
        assert hosts.bridge_address.rsplit(".", 1)[0] == addrs[0].rsplit(".", 1)[0]
        assert all(len(n) <= 15 for n in [hosts.bridge] + hosts.veths)

        server = hosts.start(1, [sys.executable, "-m", "http.server", str(PORT),
                                 "--bind", addrs[1], "--directory", str(tmp_path)],
                             stdout_path=str(tmp_path / "server.log"))
        assert eventually(lambda: get_from_root(addrs[1], 1.0)), "http.server never answered"
        assert get_from_host(hosts, 2, addrs[1], 2.0, log) == 0, open(log).read()

        hosts.cut(1)
        start = time.monotonic()
        assert get_from_host(hosts, 2, addrs[1], 1.0, log) == 3, open(log).read()
        assert not get_from_root(addrs[1], 1.0)
        assert time.monotonic() - start < 8

        hosts.heal(1)
        assert eventually(lambda: get_from_root(addrs[1], 1.0)), "host 1 unreachable after heal"
        assert eventually(lambda: get_from_host(hosts, 2, addrs[1], 1.0, log) == 0), \
            open(log).read()

        etcd, endpoint = start_etcd(hosts, 0, str(tmp_path / "etcd"))
        assert endpoint == "http://%s:2379" % addrs[0]
        key, value = base64.b64encode(b"granary/netns").decode(), base64.b64encode(b"ok").decode()
        status, _ = http_post_json(endpoint + "/v3/kv/put", {"key": key, "value": value})
        assert status == 200
        status, body = http_post_json(endpoint + "/v3/kv/range", {"key": key})
        assert status == 200 and body["kvs"][0]["value"] == value

        procs = hosts.processes
        assert server in procs and etcd in procs
        names = [hosts.bridge] + hosts.namespaces + hosts.veths

    assert leftovers(names) == []
    for proc in procs:
        assert proc.returncode is not None
        assert not os.path.exists("/proc/%d" % proc.pid) or proc.pid == os.getpid()
    hosts.close()  # a second close does nothing


def test_failed_set_up_leaves_nothing(monkeypatch):
    require_root_netns()
    created = []
    real_ip = netns_hosts._ip

    def failing_ip(*args, check=True):
        if args[:2] in (("link", "add"), ("netns", "add")):
            created.append(args[2])
        if args[0] == "-n" and args[1].endswith("-1") and args[2:4] == ("addr", "add"):
            raise RuntimeError("injected failure while setting up host 1")
        return real_ip(*args, check=check)

    monkeypatch.setattr(netns_hosts, "_ip", failing_ip)
    with pytest.raises(RuntimeError, match="injected"):
        Hosts(3)
    assert len(created) >= 4  # the bridge and host 0 were built before the failure
    assert leftovers(created) == []

    with Hosts(1) as hosts:
        with pytest.raises(ValueError, match="already in use"):
            Hosts(1, prefix=hosts.prefix)
