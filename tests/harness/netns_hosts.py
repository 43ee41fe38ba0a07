"""Several hosts on one Linux machine, for multi-host tests: each host is a network namespace with
its own address on a private /24, joined by a bridge in the root namespace, so that tests can start
real processes "on" a host, cut a host off the network and heal it again. Needs root and iproute2;
call require_root_netns() first so the test is skipped elsewhere.

    with Hosts(3) as hosts:
        proc = hosts.start(1, ["/usr/bin/python3", "-m", "http.server", "--bind", hosts.address(1)])
        hosts.cut(1)    # host 1 is unreachable, from the root namespace and from the other hosts
        hosts.heal(1)
        etcd, endpoint = start_etcd(hosts, 0, data_dir)

Layout for Hosts(n) with token T (6 random hex digits) and subnet 10.A.B.0/24:
    root namespace: bridge grbrT at 10.A.B.1, veth grvT-<i> enslaved to it, one per host;
    namespace grT-<i>: lo and eth0 (the veth's peer) at 10.A.B.<i+2>, no default route,
so traffic never leaves the subnet. Everything is deleted on close(), on leaving the `with` block,
and at interpreter exit, after every process the hosts started has been stopped.
"""
import atexit
import base64
import ctypes
import fcntl
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

# Serializes picking a free /24 and putting the bridge's address on it, across test processes.
_SUBNET_LOCK = "/run/lock/granary-netns-hosts.lock"
# How long close() lets a process exit after SIGTERM before it sends SIGKILL.
STOP_GRACE_S = 5.0
ETCD_BINARY = "/usr/bin/etcd"
ETCD_READY_TIMEOUT_S = 20.0

_netns_usable = None  # None: not probed yet; else (usable, why not)


def _ip(*args, check=True):
    """Runs `ip ARGS...`; returns the CompletedProcess, or raises RuntimeError with ip's message
    when check is set and the command fails."""
    res = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError("`ip %s` failed (exit %d): %s" %
                           (" ".join(args), res.returncode, res.stderr.strip()))
    return res


def _probe_netns():
    """Returns (True, "") when this process can create namespaces, veth pairs and bridges, else
    (False, reason)."""
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces (run the test as root)"
    if shutil.which("ip") is None:
        return False, "needs the `ip` command (install iproute2)"
    token = "%06x" % random.SystemRandom().getrandbits(24)
    ns, bridge, veth = "grprobe" + token, "grpb" + token, "grpv" + token
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        return True, ""
    except (RuntimeError, OSError) as e:
        return False, "network namespaces are unusable here: %s" % e
    finally:
        _ip("link", "del", veth, check=False)
        _ip("link", "del", bridge, check=False)
        _ip("netns", "del", ns, check=False)


def require_root_netns():
    """Skips the calling test (pytest.skip) unless this process can build Hosts: it must be root,
    have iproute2, and be allowed to create network namespaces, veth pairs and bridges."""
    global _netns_usable
    if _netns_usable is None:
        _netns_usable = _probe_netns()
    usable, why = _netns_usable
    if not usable:
        import pytest
        pytest.skip("multi-host test skipped: " + why)


def _used_networks():
    """The IPv4 networks of every address and route in the root namespace."""
    nets = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.ip_network(fields[fields.index("inet") + 1], strict=False))
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        dest = line.split()[0]
        if dest[0].isdigit():
            nets.append(ipaddress.ip_network(dest if "/" in dest else dest + "/32",
                                             strict=False))
    return nets


def _die_with_parent():
    """In a started process before exec: SIGKILL it when the test process dies, so that a test
    process that crashes or is killed never leaves a process behind in a host."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class Hosts:
    """`count` hosts, each a network namespace with one address on a private /24 (see the module
    docstring). `prefix` picks the /24 ("10.77.3" for 10.77.3.0/24); by default a random free
    one in 10.0.0.0/8 is taken. Raises RuntimeError or ValueError, after undoing whatever it had
    built, when the hosts cannot be set up. Not thread-safe: use it from one thread."""

    def __init__(self, count, prefix=None):
        if not 1 <= count <= 253:
            raise ValueError("Hosts(count=%r): count must be 1 to 253, one address each in a /24"
                             % (count,))
        self.count = count
        self.token = "%06x" % random.SystemRandom().getrandbits(24)
        self.bridge = "grbr" + self.token
        self.namespaces = ["gr%s-%d" % (self.token, i) for i in range(count)]
        self.veths = ["grv%s-%d" % (self.token, i) for i in range(count)]
        self.prefix = None
        self._procs = []
        self._made_links = []  # what set-up created, so close() never deletes another run's
        self._made_netns = []
        self._closed = False
        atexit.register(self.close)
        try:
            self._set_up(prefix)
        except BaseException:
            self.close()
            raise

    # Set-up --------------------------------------------------------------------------------------
    def _set_up(self, prefix):
        os.makedirs(os.path.dirname(_SUBNET_LOCK), exist_ok=True)
        with open(_SUBNET_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.prefix = self._pick_prefix(prefix)
            _ip("link", "add", self.bridge, "type", "bridge")
            self._made_links.append(self.bridge)
            _ip("addr", "add", self.bridge_address + "/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.count):
            ns, veth = self.namespaces[i], self.veths[i]
            _ip("netns", "add", ns)
            self._made_netns.append(ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._made_links.insert(0, veth)  # veths go before the bridge
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", self.address(i) + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def _pick_prefix(self, prefix):
        used = _used_networks()

        def free(p):
            net = ipaddress.ip_network(p + ".0/24")
            return not any(net.overlaps(u) for u in used if u.prefixlen > 0)

        if prefix is not None:
            net = ipaddress.ip_network(prefix + ".0/24")  # ValueError when malformed
            if not net.subnet_of(ipaddress.ip_network("10.0.0.0/8")):
                raise ValueError("Hosts(prefix=%r): use a /24 inside 10.0.0.0/8, like '10.77.3'"
                                 % prefix)
            if not free(prefix):
                raise ValueError("Hosts(prefix=%r): %s.0/24 is already in use on this machine; "
                                 "pass another prefix or none to get a free one" % (prefix, prefix))
            return prefix
        rng = random.Random(int(self.token, 16) ^ os.getpid())
        for _ in range(1000):
            candidate = "10.%d.%d" % (rng.randrange(1, 255), rng.randrange(0, 256))
            if free(candidate):
                return candidate
        raise RuntimeError("no free /24 in 10.0.0.0/8 for Hosts: remove stale test bridges "
                           "(`ip link show type bridge`) and retry")

    # Addresses -----------------------------------------------------------------------------------
    def address(self, i):
        """The IPv4 address of host i, as a string."""
        self._check_host(i)
        return "%s.%d" % (self.prefix, i + 2)

    @property
    def bridge_address(self):
        """The root namespace's address on the hosts' subnet: processes started outside the hosts
        listen here to be reachable from them."""
        return self.prefix + ".1"

    def netns(self, i):
        """The name of host i's network namespace (for `ip netns exec`)."""
        self._check_host(i)
        return self.namespaces[i]

    def _check_host(self, i):
        if not 0 <= i < self.count:
            raise IndexError("host %r does not exist: these Hosts are 0 to %d"
                             % (i, self.count - 1))

    # Processes -----------------------------------------------------------------------------------
    def start(self, i, argv, *, env=None, stdout_path=None, cwd=None):
        """Starts `argv` inside host i and returns its subprocess.Popen, whose pid is the process's
        own (`ip netns exec` execs the command). stdout and stderr go to `stdout_path` (appended)
        when given, else to this process's. The process is stopped on close() and gets SIGKILL if
        the calling thread dies (so start processes from a thread that outlives them)."""
        self._check_host(i)
        if self._closed:
            raise RuntimeError("Hosts.start() after close(): start processes inside the `with`")
        out = open(stdout_path, "ab") if stdout_path is not None else None
        try:
            proc = subprocess.Popen(["ip", "netns", "exec", self.namespaces[i], *argv],
                                    env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT if out else None,
                                    preexec_fn=_die_with_parent)
        finally:
            if out is not None:
                out.close()
        self._procs.append(proc)
        return proc

    @property
    def processes(self):
        """Every process start() has started, running or not, oldest first."""
        return list(self._procs)

    def kill(self, proc, sig=signal.SIGKILL):
        """Sends `sig` to `proc` (a Popen from start()) unless it has exited. After SIGKILL it waits
        for the process and returns its exit status; after any other signal it returns at once,
        with the exit status if the process has already exited, else None."""
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            if sig == signal.SIGKILL:
                proc.wait()
        return proc.poll()

    # Partitions ----------------------------------------------------------------------------------
    def cut(self, i):
        """Cuts host i off the network: its port on the bridge goes down, so nothing reaches it
        from the root namespace or the other hosts, and nothing it sends gets out."""
        self._check_host(i)
        _ip("link", "set", self.veths[i], "down")

    def heal(self, i):
        """Undoes cut(i)."""
        self._check_host(i)
        _ip("link", "set", self.veths[i], "up")

    # Tear-down -----------------------------------------------------------------------------------
    def close(self):
        """Stops every process started in the hosts (SIGTERM, then SIGKILL after STOP_GRACE_S) and
        waits for them, then deletes the namespaces, veths and bridge. Never raises for objects
        already gone; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._stop_processes()
        for ns in self._made_netns:
            self._kill_stragglers(ns)
        for link in self._made_links:  # deleting a veth deletes its peer, eth0 in the namespace
            _ip("link", "del", link, check=False)
        for ns in self._made_netns:
            _ip("netns", "del", ns, check=False)

    def _stop_processes(self):
        running = [p for p in self._procs if p.poll() is None]
        for p in running:
            self.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for p in running:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(p, signal.SIGKILL)

    @staticmethod
    def _kill_stragglers(ns):
        """SIGKILLs what is left in namespace `ns` (children of the started processes, which
        survive their parents), and waits up to two seconds for them to go."""
        res = _ip("netns", "pids", ns, check=False)
        pids = [int(p) for p in res.stdout.split()] if res.returncode == 0 else []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2.0
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# etcd ------------------------------------------------------------------------------------------

# urllib without proxies: the hosts' addresses are reachable directly, never through a proxy.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_post_json(url, body, timeout=2.0):
    """POSTs `body` as JSON to `url`, without any proxy; returns (status, decoded JSON or None).
    Raises urllib.error.URLError (or OSError) when nothing answers."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _direct.open(req, timeout=timeout) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


def _tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace")
    except OSError as e:
        return "(no log: %s)" % e


def start_etcd(hosts, i, data_dir):
    """Starts a single-member etcd inside host i, serving clients on http://<address>:2379 and
    peers on :2380, with its data and its log (etcd.log) in `data_dir`. Waits until it answers a
    range request and returns (proc, client URL). Raises RuntimeError with the log's tail when it
    does not answer within ETCD_READY_TIMEOUT_S."""
    addr = hosts.address(i)
    client_url, peer_url = "http://%s:2379" % addr, "http://%s:2380" % addr
    os.makedirs(data_dir, exist_ok=True)
    log = os.path.join(data_dir, "etcd.log")  # etcd warns about this file and carries on
    argv = [ETCD_BINARY, "--name", "default", "--data-dir", str(data_dir),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", "default=" + peer_url, "--initial-cluster-state", "new",
            "--logger", "zap", "--log-outputs", "stderr"]
    proc = hosts.start(i, argv, stdout_path=log)
    deadline = time.monotonic() + ETCD_READY_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("etcd on host %d exited with status %d before it was ready; "
                               "log %s ends with:\n%s" % (i, proc.returncode, log, _tail(log)))
        try:
            status, _ = http_post_json(client_url + "/v3/kv/range",
                                       {"key": base64.b64encode(b"x").decode()}, timeout=1.0)
            if status == 200:
                return proc, client_url
            last_error = "HTTP status %d" % status
        except OSError as e:  # URLError is an OSError
            last_error = str(e)
        time.sleep(0.05)
    hosts.kill(proc)
    raise RuntimeError("etcd on host %d did not answer at %s within %.0f s (last: %s); log %s "
                       "ends with:\n%s" % (i, client_url, ETCD_READY_TIMEOUT_S, last_error, log,
                                           _tail(log)))
