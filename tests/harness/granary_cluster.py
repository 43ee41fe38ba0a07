"""A Granary cluster of real processes on hosts made of network namespaces (netns_hosts), and a
workload that records its history for a consistency checker.

    with Hosts(12) as hosts:
        cluster = Cluster(hosts, tmp_path, nodes=6, racks=3, managers=2)
        cluster.start()
        cluster.wait_healthy()
        with Workload(cluster.blobs()) as load:
            cluster.kill_node(3)
            ...
        load.check()

Host 0 runs etcd; hosts 1..nodes run the storage nodes (two per rack for 6 nodes on 3 racks);
the managers and any nodes added later take the hosts after them. Every process is stopped by
pid when the Hosts context ends.
"""
import hashlib
import json
import os
import random
import subprocess
import threading
import time

from netns_hosts import start_etcd

ACCESS_KEY = "cluster-root"
SECRET_KEY = "cluster-secret-key"
NODE_PORT = 9200
S3_PORT = 9000


def value_of(key, size=None):
    """The only value ever written under `key`: derived from it, so any read can be checked."""
    digest = hashlib.sha256(key.encode()).digest()
    if size is None:
        size = 512 + digest[0] * 16
    return (digest * (size // len(digest) + 1))[:size]


class Cluster:
    def __init__(self, hosts, tmp_path, nodes=6, racks=3, managers=2, chains=36, replicas=3):
        self.hosts = hosts
        self.dir = tmp_path
        self.binary = os.environ.get("GRANARY_BINARY", "build/granary")
        self.node_count = nodes
        self.racks = racks
        self.manager_count = managers
        self.chains = chains
        self.replicas = replicas
        self.env = dict(os.environ, GRANARY_ACCESS_KEY=ACCESS_KEY, GRANARY_SECRET_KEY=SECRET_KEY)
        self.etcd = None
        self.nodes = {}      # host index -> Popen
        self.rack = {}       # host index -> rack of the node there
        self.managers = {}   # manager name -> (host index, Popen)
        self.gateways = {}   # host index -> Popen
        self.next_host = 1 + nodes + managers

    # --- processes ---------------------------------------------------------------------------

    def start(self):
        _, self.etcd = start_etcd(self.hosts, 0, str(self.dir / "etcd"))
        for i in range(1, self.node_count + 1):
            self.start_node(i, rack=f"r{(i - 1) * self.racks // self.node_count}")
        for k in range(self.manager_count):
            self.start_manager(f"m{k}", 1 + self.node_count + k)

    def start_node(self, host, rack=None):
        """Starts (or restarts, with its data) the node of `host`."""
        rack = rack or self.rack[host]
        self.rack[host] = rack
        data = self.dir / f"node{host}"
        data.mkdir(exist_ok=True)
        argv = [self.binary, "node", "--etcd", self.etcd, "--data", str(data),
                "--listen", f"{self.hosts.address(host)}:{NODE_PORT}", "--rack", rack,
                "--host", f"host{host}", "--lease-ttl", "2", "--gc-delay-ms", "2000",
                "--scrub-interval-s", "2"]
        self.nodes[host] = self.hosts.start(host, argv, env=self.env,
                                            stdout_path=str(self.dir / f"node{host}.log"))
        return self.nodes[host]

    def add_host(self):
        host = self.next_host
        self.next_host += 1
        return host

    def start_manager(self, name, host):
        argv = [self.binary, "manager", "--etcd", self.etcd, "--id", name,
                "--chains", str(self.chains), "--replicas", str(self.replicas),
                "--lease-ttl", "2"]
        proc = self.hosts.start(host, argv, env=self.env,
                                stdout_path=str(self.dir / f"manager-{name}.log"))
        self.managers[name] = (host, proc)
        return proc

    def start_gateway(self, host):
        """Starts an S3 gateway on `host`; returns its endpoint URL."""
        argv = [self.binary, "gateway", "--etcd", self.etcd,
                "--s3", f"{self.hosts.address(host)}:{S3_PORT}"]
        self.gateways[host] = self.hosts.start(host, argv, env=self.env,
                                               stdout_path=str(self.dir / f"gateway{host}.log"))
        url = f"http://{self.hosts.address(host)}:{S3_PORT}"
        self.wait("the gateway to answer", lambda: _answers(url + "/health"), timeout=30)
        return url

    def s3(self, url):
        """A boto3 client of the gateway at `url`, retrying what a cluster in flux refuses."""
        import boto3
        import botocore.config
        return boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=botocore.config.Config(retries={"max_attempts": 10, "mode": "standard"},
                                          connect_timeout=5, read_timeout=30))

    def locate(self, bucket):
        """The ids of the nodes holding `bucket`'s namespace partition, head first."""
        return [m["id"] for m in self.admin_json("locate", bucket)["members"]]

    def host_of(self, node_id):
        return next(h for h in self.nodes if self.node_id(h) == node_id)

    def kill_node(self, host):
        self.hosts.kill(self.nodes.pop(host))

    def damage(self, value, copies, hosts=None):
        """Flips a byte of `value` in the first `copies` node directories holding it (hosts 1..6
        unless given); returns those hosts."""
        needle = value[1000:1064]
        damaged = []
        for host in hosts or range(1, 7):
            for root, _, files in os.walk(self.dir / f"node{host}"):
                for name in files:
                    path = os.path.join(root, name)
                    with open(path, "rb") as f:
                        data = f.read()
                    at = data.find(needle)
                    if at >= 0 and len(damaged) < copies and host not in damaged:
                        with open(path, "r+b") as f:
                            f.seek(at + 10)
                            f.write(bytes([data[at + 10] ^ 0xFF]))
                        damaged.append(host)
        return damaged

    def node_log(self, host):
        return (self.dir / f"node{host}.log").read_text(errors="replace")

    # --- what the cluster says ---------------------------------------------------------------

    def admin(self, *args):
        r = subprocess.run([self.binary, "admin", *args, "--etcd", self.etcd],
                           capture_output=True, text=True, timeout=30, env=self.env)
        return r

    def admin_json(self, *args):
        r = self.admin(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def status(self):
        return self.admin_json("status")

    def node_table(self):
        return self.admin_json("nodes")

    def node_id(self, host):
        return (self.dir / f"node{host}" / "NODE_ID").read_text().strip()

    def wait(self, what, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except (AssertionError, json.JSONDecodeError, subprocess.TimeoutExpired) as e:
                last = e
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last: {last}; "
                             f"status: {self.admin('status').stdout}")

    def healthy(self, up=None):
        s = self.status()
        chains = s.get("chains") or {}
        # The default set's chains, and as many again for each other replica count in use.
        ok = (chains.get("total", 0) >= self.chains and chains.get("healthy") == chains["total"]
              and chains.get("syncing") == 0)
        if up is not None:
            ok = ok and s["nodes"]["up"] == up
        return ok and s

    def wait_healthy(self, up=None, timeout=60):
        return self.wait("every chain to be whole", lambda: self.healthy(up), timeout)

    def blobs(self, retry_ms=20000):
        import granary.cluster
        return self.wait("a cluster map", lambda: granary.cluster.ClusterBlobs(
            self.etcd, ACCESS_KEY, SECRET_KEY, retry_ms=retry_ms), timeout=30)


def _answers(url):
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class S3Objects:
    """One bucket through S3, with the put/get/delete/exists of the cluster's blobs, so that a
    Workload runs on it: a refusal is a granary.Error, a missing key a granary.NotFoundError."""

    def __init__(self, s3, bucket):
        self.s3 = s3
        self.bucket = bucket

    def _call(self, fn, **kwargs):
        import botocore.exceptions
        import granary
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise granary.NotFoundError(code) from None
            raise granary.Error(code) from None
        except botocore.exceptions.BotoCoreError as e:
            raise granary.Error(str(e)) from None

    def put(self, key, value):
        self._call(self.s3.put_object, Key=key, Body=value)

    def get(self, key):
        return self._call(self.s3.get_object, Key=key)["Body"].read()

    def delete(self, key):
        self._call(self.s3.delete_object, Key=key)

    def exists(self, key):
        import granary
        try:
            self._call(self.s3.head_object, Key=key)
            return True
        except granary.NotFoundError:
            return False


class Workload:
    """Writers, deleters and readers on the cluster's blobs, recording every operation with its
    start and end times; check() finds any read that returned a value never written, missed an
    acknowledged write, or saw a blob after its deletion was acknowledged."""

    def __init__(self, blobs, writers=4, readers=4, prefix="w"):
        self.blobs = blobs
        self.prefix = prefix
        self.writers = writers
        self.readers = readers
        self.lock = threading.Lock()
        self.written = {}   # key -> (start, end) of the acknowledged write
        self.deleted = {}   # key -> (start, end) of the acknowledged delete
        self.reads = []     # (key, start, end, "value" | "missing" | "error")
        self.failed_writes = 0
        self.stop = threading.Event()
        self.threads = []
        self.errors = []

    def __enter__(self):
        for w in range(self.writers):
            self.threads.append(threading.Thread(target=self._write, args=(w,), daemon=True))
        for r in range(self.readers):
            self.threads.append(threading.Thread(target=self._read, args=(r,), daemon=True))
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def _write(self, w):
        import granary
        rng = random.Random(w)
        n = 0
        while not self.stop.is_set():
            # Writer 0's keys at the top of the bucket, the others' each in a top-level directory
            # of their own: through the namespace, a bucket's writes spread over its own
            # partition and those of its directories.
            key = f"{self.prefix}-{w}-{n}" if w == 0 else f"{self.prefix}-{w}/{n}"
            n += 1
            start = time.monotonic()
            try:
                self.blobs.put(key, value_of(key))
            except granary.Error:
                with self.lock:
                    self.failed_writes += 1
                continue
            with self.lock:
                self.written[key] = (start, time.monotonic())
                candidates = [k for k in self.written if k not in self.deleted]
            if rng.random() < 0.1 and candidates:
                victim = rng.choice(candidates)
                start = time.monotonic()
                try:
                    self.blobs.delete(victim)
                except granary.Error:
                    continue
                with self.lock:
                    self.deleted[victim] = (start, time.monotonic())

    def _read(self, r):
        import granary
        rng = random.Random(1000 + r)
        while not self.stop.is_set():
            with self.lock:
                keys = list(self.written)
            if not keys:
                time.sleep(0.01)
                continue
            key = rng.choice(keys)
            start = time.monotonic()
            try:
                got = self.blobs.get(key)
                outcome = "value" if got == value_of(key) else "wrong"
            except granary.NotFoundError:
                outcome = "missing"
            except granary.Error:
                outcome = "error"
            with self.lock:
                self.reads.append((key, start, time.monotonic(), outcome))

    def live_keys(self):
        return [k for k in self.written if k not in self.deleted]

    def check(self):
        """Raises AssertionError naming the first anomalies of the history."""
        anomalies = []
        for key, start, end, outcome in self.reads:
            w = self.written.get(key)
            d = self.deleted.get(key)
            if outcome == "wrong":
                anomalies.append(f"read of {key} returned a value never written")
            elif outcome == "missing" and w and start > w[1] and not (d and d[0] < end):
                anomalies.append(f"read of {key} found nothing after its write was acknowledged")
            elif outcome == "value" and d and start > d[1]:
                anomalies.append(f"read of {key} found it after its delete was acknowledged")
        assert self.reads, "the workload read nothing"
        assert not anomalies, f"{len(anomalies)} anomalies, first: {anomalies[:5]}"
        return {"writes": len(self.written), "deletes": len(self.deleted),
                "reads": len(self.reads), "failed_writes": self.failed_writes}

    def check_all_readable(self):
        """Every acknowledged, undeleted blob reads back exactly."""
        import granary
        lost = []
        for key in self.live_keys():
            try:
                if self.blobs.get(key) != value_of(key):
                    lost.append((key, "wrong"))
            except granary.Error as e:
                lost.append((key, repr(e)))
        assert not lost, f"{len(lost)} acknowledged blobs unreadable, first: {lost[:5]}"
        for key in self.deleted:
            assert not self.blobs.exists(key), f"{key} exists after its delete was acknowledged"
