"""granary.cluster: the replicated blob layer of a Granary cluster.

    from granary.cluster import ClusterBlobs

    blobs = ClusterBlobs("http://10.0.0.1:2379", access_key, secret_key)
    blobs.put("model/shard-0001", data)     # returns once every replica has it
    data = blobs.get("model/shard-0001")

Each key belongs to one chain of the cluster; writes go to the chain's head and return once
its tail has the blob durably, reads go to any serving replica (a damaged copy is repaired from
another). Keys are immutable: write a key once, delete it when no longer needed. A node that
fails is replaced within seconds; calls retry meanwhile (up to `retry_ms`).
"""

from . import _granary

__all__ = ["ClusterBlobs"]

ClusterBlobs = _granary.ClusterBlobs
