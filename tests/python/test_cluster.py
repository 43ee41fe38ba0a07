"""A cluster of real processes, each storage node on its own host (a network namespace with its
own address): etcd, 6 nodes on 3 racks, 2 managers. Each scenario runs writers, deleters and
readers on the replicated blobs and checks the recorded history (granary_cluster.Workload):
no acknowledged write lost, no read of a value never written, no read older than an
acknowledged change. Needs root (skipped elsewhere)."""
import os
import time

import pytest

from granary_cluster import Cluster, S3Objects, Workload, value_of
from netns_hosts import Hosts, require_root_netns


@pytest.fixture
def cluster(tmp_path):
    require_root_netns()
    with Hosts(13) as hosts:
        c = Cluster(hosts, tmp_path)
        c.start()
        c.wait_healthy(up=6)
        yield c


def run_load(cluster, seconds, prefix="w"):
    load = Workload(cluster.blobs(), prefix=prefix)
    load.__enter__()
    time.sleep(seconds)
    return load


def test_kill_one_node(cluster):
    load = run_load(cluster, 2)
    cluster.kill_node(3)
    cluster.wait("the dead node to be noticed", lambda: cluster.status()["nodes"]["down"] == 1,
                 timeout=15)
    before = len(load.written)
    time.sleep(2)
    assert len(load.written) > before, "writes stopped after a node died"
    cluster.wait_healthy(up=5)  # every chain has 3 replicas again
    # The repair is reported: chains filled and bytes copied by the survivors.
    work = cluster.wait("the repair to be reported",
                        lambda: cluster.status()["work"].get("bytes_copied", 0) > 0 and
                        cluster.status()["work"], timeout=10)
    assert work["chains_filled"] > 0 and work["blobs_copied"] > 0
    text = cluster.admin("status").stdout
    assert "chains filled" in text and "damaged found" in text
    load.__exit__()
    stats = load.check()
    load.check_all_readable()
    assert stats["writes"] > 0 and stats["reads"] > 0


def test_kill_a_whole_rack(cluster):
    load = run_load(cluster, 2)
    # Hosts 5 and 6 are rack r2.
    assert cluster.rack[5] == cluster.rack[6] == "r2"
    cluster.kill_node(5)
    cluster.kill_node(6)
    cluster.wait("the rack to be noticed", lambda: cluster.status()["nodes"]["down"] == 2,
                 timeout=15)
    time.sleep(2)
    load.__exit__()
    load.check()
    load.check_all_readable()
    # Only two racks are left: chains are made whole again on other hosts of those racks.
    cluster.wait_healthy(up=4)


def test_partitioned_node_stops_then_resyncs(cluster):
    load = run_load(cluster, 2)
    cluster.hosts.cut(2)
    cluster.wait("the cut-off node to be declared down",
                 lambda: cluster.status()["nodes"]["down"] == 1, timeout=15)
    time.sleep(2)
    assert "cannot renew etcd lease" in cluster.node_log(2)
    cluster.hosts.heal(2)
    cluster.wait("the node to come back", lambda: cluster.healthy(up=6), timeout=60)
    # It rejoined: it holds chains again and filled them from their tails.
    node = cluster.node_id(2)
    cluster.wait("the node to hold chains",
                 lambda: [n for n in cluster.node_table() if n["id"] == node][0]["chains"] > 0,
                 timeout=60)
    load.__exit__()
    load.check()
    load.check_all_readable()
    assert "filled" in cluster.node_log(2)


def test_leader_manager_dies(cluster):
    leader = cluster.status()["leader"]
    host, proc = cluster.managers[leader]
    cluster.hosts.kill(proc)
    new = cluster.wait("a standby to lead",
                       lambda: (cluster.status()["leader"] or leader) != leader and
                       cluster.status()["leader"], timeout=15)
    assert new in cluster.managers and new != leader
    # The new leader does the leader's work: a node lost now is replaced.
    load = run_load(cluster, 1)
    cluster.kill_node(1)
    cluster.wait_healthy(up=5)
    load.__exit__()
    load.check()
    load.check_all_readable()


def test_scrub_repairs_damage_nobody_read(cluster):
    blobs = cluster.blobs()
    value = os.urandom(64 << 10)
    blobs.put("scrub-me", value)
    damaged = cluster.damage(value, copies=1)
    assert len(damaged) == 1
    # Nobody reads the blob: the node's background scrub (a pass every 2 s here) finds it.
    cluster.wait("the scrub to repair the damaged copy",
                 lambda: "repaired from node" in cluster.node_log(damaged[0]), timeout=30)
    assert blobs.get("scrub-me") == value
    cluster.wait("the scrub's find to be reported",
                 lambda: cluster.status()["work"].get("scrub_damaged", 0) >= 1, timeout=10)


def test_corrupt_replicas_are_never_returned_and_are_repaired(cluster):
    blobs = cluster.blobs()
    values = {f"corrupt-{i}": os.urandom(64 << 10) for i in range(12)}
    for key, value in values.items():
        blobs.put(key, value)
    # Damage two of the three copies of each: a read that lands on a damaged copy gets the
    # good one from another member, which also repairs the damaged one.
    damaged = set()
    for value in values.values():
        hosts = cluster.damage(value, copies=2)
        assert len(hosts) == 2, hosts
        damaged.update(hosts)
    for _ in range(3):
        for key, value in values.items():
            assert blobs.get(key) == value
    assert any("repaired from node" in cluster.node_log(h) for h in damaged)


def test_add_nodes_rebalances_and_drain_empties(cluster):
    blobs = cluster.blobs()
    keys = [f"bal-{i}" for i in range(3000)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: blobs.put(k, value_of(k, 2048)), keys))
    added = []
    for rack in ("r0", "r1", "r2"):
        host = cluster.add_host()
        cluster.start_node(host, rack=rack)
        added.append(host)

    def balanced():
        if not cluster.healthy(up=9):
            return False
        used = [n["used_bytes"] for n in cluster.node_table() if n["state"] == "up"]
        mean = sum(used) / len(used)
        return len(used) == 9 and all(abs(u - mean) <= 0.10 * mean for u in used) and used

    used = cluster.wait("disk usage within 10 % across nodes", balanced, timeout=120)
    assert min(used) > 0
    for k in keys[::50]:
        assert blobs.get(k) == value_of(k, 2048)

    drained = cluster.node_id(added[0])
    r = cluster.admin("drain", drained)
    assert r.returncode == 0, r.stderr

    def empty():
        row = [n for n in cluster.node_table() if n["id"] == drained][0]
        return row["chains"] == 0 and row["syncing"] == 0 and row["used_bytes"] == 0
    cluster.wait("the drained node to empty", empty, timeout=120)
    for k in keys[::25]:
        assert blobs.get(k) == value_of(k, 2048)
    r = cluster.admin("drain", "no-such-node")
    assert r.returncode == 1 and "admin nodes" in r.stderr


def test_s3_through_gateways_survives_the_partition_head_dying(cluster):
    """S3 clients through two stateless gateways: the node heading the bucket's namespace
    partition is killed -9 under load. No acknowledged write is lost, service goes on under the
    next head, and either gateway serves the same namespace."""
    gateway_hosts = [cluster.add_host(), cluster.add_host()]
    urls = [cluster.start_gateway(h) for h in gateway_hosts]
    s3 = cluster.s3(urls[0])
    s3.create_bucket(Bucket="train")
    load = Workload(S3Objects(s3, "train"), prefix="s3")
    load.__enter__()
    time.sleep(3)
    head = cluster.locate("train")[0]
    cluster.kill_node(cluster.host_of(head))
    cluster.wait("another node to head the partition",
                 lambda: cluster.locate("train")[0] != head, timeout=20)
    before = len(load.written)
    time.sleep(3)
    assert len(load.written) > before, "S3 writes stopped after the partition's head died"
    load.__exit__()
    stats = load.check()
    assert stats["writes"] > 0 and stats["reads"] > 0
    # The first gateway goes; the second has the same namespace.
    cluster.hosts.kill(cluster.gateways.pop(gateway_hosts[0]))
    other = cluster.s3(urls[1])
    load.blobs = S3Objects(other, "train")
    load.check_all_readable()
    listed = set()
    for page in other.get_paginator("list_objects_v2").paginate(Bucket="train"):
        listed |= {o["Key"] for o in page.get("Contents", [])}
    assert listed == set(load.live_keys())
    assert "train" in {b["Name"] for b in other.list_buckets()["Buckets"]}
    cluster.wait_healthy(up=5)


def test_s3_partition_head_cut_off(cluster):
    """The node heading the bucket's namespace partition is cut off the network under S3 load:
    it stops acknowledging once its lease may have run out, another member heads the partition
    with everything acknowledged, and no write it took alone is ever read."""
    url = cluster.start_gateway(cluster.add_host())
    s3 = cluster.s3(url)
    s3.create_bucket(Bucket="cut")
    load = Workload(S3Objects(s3, "cut"), prefix="cut")
    load.__enter__()
    time.sleep(2)
    head = cluster.locate("cut")[0]
    host = cluster.host_of(head)
    cluster.hosts.cut(host)
    cluster.wait("another node to head the partition",
                 lambda: cluster.locate("cut")[0] != head, timeout=20)
    # Requests caught on their way to the cut-off node fail once its connections are found
    # dead (keepalives, about 6 s); S3 clients retry them under the new head.
    before = len(load.written)
    cluster.wait("S3 writes to go on under the new head",
                 lambda: len(load.written) > before + 20, timeout=30)
    cluster.hosts.heal(host)
    cluster.wait("the node to come back", lambda: cluster.healthy(up=6), timeout=60)
    load.__exit__()
    load.check()
    load.check_all_readable()
    listed = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cut"):
        listed |= {o["Key"] for o in page.get("Contents", [])}
    assert listed == set(load.live_keys())


def test_s3_bucket_replica_counts(cluster):
    """Buckets created through S3 with x-granary-replicas keep that many copies of their data.
    The manager adds chains of each count when the first such bucket is made. A bucket of two
    copies (on two racks) loses nothing with a whole rack, and gets its two copies back."""
    import botocore.exceptions
    url = cluster.start_gateway(cluster.add_host())

    def client_asking_for(replicas):
        s3 = cluster.s3(url)

        def add_header(request, **_):
            request.headers["x-granary-replicas"] = str(replicas)
        s3.meta.events.register("before-sign.s3.CreateBucket", add_header)
        return s3

    client_asking_for(2).create_bucket(Bucket="two")
    client_asking_for(1).create_bucket(Bucket="one")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client_asking_for(9).create_bucket(Bucket="nine")
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    s3 = cluster.s3(url)
    headers = s3.head_bucket(Bucket="two")["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-granary-replicas") == "2"
    sets = {s["replicas"]: s["chains"] for s in cluster.status()["sets"]}
    assert sets == {3: cluster.chains, 2: cluster.chains, 1: cluster.chains}

    values = {f"k{i}": value_of(f"two/{i}", 20000 + i) for i in range(40)}
    for key, value in values.items():
        s3.put_object(Bucket="two", Key=key, Body=value)
        s3.put_object(Bucket="one", Key=key, Body=value)
    # Rack r2 (hosts 5 and 6) goes: every chain of two copies keeps one on another rack.
    cluster.kill_node(5)
    cluster.kill_node(6)
    cluster.wait("the rack to be noticed", lambda: cluster.status()["nodes"]["down"] == 2,
                 timeout=15)
    for key, value in values.items():
        assert s3.get_object(Bucket="two", Key=key)["Body"].read() == value, key
    # Chains of one copy whose node is down hold no namespace: every bucket is still listed.
    assert {"one", "two"} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    # Buckets of one copy lose what the rack held until it returns: chains of one member keep
    # their dead member rather than forget the data.
    def whole_but_single_copies():
        chains = cluster.status()["chains"]
        return chains["degraded"] == 0 and chains["syncing"] == 0
    cluster.wait("chains of two and three copies to be whole again", whole_but_single_copies,
                 timeout=60)
    for key, value in values.items():
        assert s3.get_object(Bucket="two", Key=key)["Body"].read() == value, key


def test_python_client_of_the_cluster_namespace(cluster):
    """granary.Client(etcd=...) talks straight to the node heading each bucket's namespace
    partition, with no gateway: buckets, objects inline, in one blob and in chunks, listings,
    batches and multipart; and it goes on under the next head when that node is killed."""
    import granary
    from granary_cluster import ACCESS_KEY, SECRET_KEY
    client = granary.Client(etcd=cluster.etcd, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    assert client.address == cluster.etcd
    client.create_bucket("pyb", replicas=2)
    assert client.head_bucket("pyb").replicas == 2
    assert "pyb" in {b.name for b in client.list_buckets()}
    values = {f"d/{i}": value_of(f"py/{i}", size) for i, size in enumerate([100, 20000, 9 << 20])}
    for key, value in values.items():
        client.put("pyb", key, value)
    client.put_many("pyb", {f"many/{i}": value_of(f"many/{i}") for i in range(20)})
    assert [o.key for o in client.list_all("pyb", prefix="d/")] == sorted(values)
    assert len(client.list("pyb", prefix="many/").objects) == 20
    buffer = bytearray(20000)
    assert client.get_many_into("pyb", ["d/1"], [buffer]) == [20000]
    assert bytes(buffer) == values["d/1"]
    upload = client.create_multipart_upload("pyb", "parts")
    part = client.upload_part("pyb", "parts", upload, 1, values["d/2"])
    client.complete_multipart_upload("pyb", "parts", upload, [(1, part.etag)])
    with pytest.raises(granary.NotFoundError):
        client.get("pyb", "missing")

    head = cluster.locate("pyb")[0]
    cluster.kill_node(cluster.host_of(head))
    for key, value in values.items():
        assert client.get("pyb", key) == value, key  # retried until the next head serves
    assert client.get("pyb", "parts") == values["d/2"]
    client.put("pyb", "after", b"x" * 5000)
    assert client.get("pyb", "after") == b"x" * 5000
    assert client.delete_many("pyb", [f"many/{i}" for i in range(20)]) == [True] * 20

    # Training checkpoints over the cluster: saved and loaded through the same client.
    torch = pytest.importorskip("torch")
    from granary.torch import Checkpointer
    torch.manual_seed(0)
    state = {"w": torch.randn(256, 128), "step": 7, "nested": [torch.arange(10)]}
    Checkpointer(client, "pyb/run", chunk_bytes=16 << 10).save(7, state).wait()
    loaded = Checkpointer(client, "pyb/run").load()
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 7
    assert torch.equal(loaded["nested"][0], state["nested"][0])
    cluster.wait_healthy(up=5)
