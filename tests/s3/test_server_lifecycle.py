"""`granary server` across its life: generated root credentials and their file, a stop by SIGINT,
several data disks (--disks) and what a restart with other disks does, one namespace seen through
both doors (S3 and the native protocol), and S3 continuation tokens that outlive the process.

Each test runs its own servers on free 127.0.0.1 ports in a temporary directory, except the
two-doors test, which uses the module's server (conftest.py)."""
import hashlib
import json
import os
import signal
import stat
import subprocess

import botocore.exceptions
import pytest

from granary_server import ACCESS_KEY, BINARY, SECRET_KEY, GranaryServer, _die_with_parent
from s3_checks import assert_client_error, payload, unique_bucket_name

KiB = 1024
MiB = 1024 * KiB
try:  # the native client's module is not built under the sanitizers (CMakeLists.txt)
    import granary  # noqa: F401
    NATIVE = True
except ImportError:
    NATIVE = False
CREDENTIALS_FILE = "credentials.json"  # src/node/credentials.cc


def refused_start(data_dir, *args, env_keys=True, timeout=60):
    """Runs `granary server` that is expected to refuse to start: (exit code, stderr). A server
    that starts anyway is killed at `timeout` (subprocess.run kills it) and the test fails."""
    env = dict(os.environ)
    if env_keys:
        env.update({"GRANARY_ACCESS_KEY": ACCESS_KEY, "GRANARY_SECRET_KEY": SECRET_KEY})
    else:
        env.pop("GRANARY_ACCESS_KEY", None)
        env.pop("GRANARY_SECRET_KEY", None)
    try:
        proc = subprocess.run([BINARY, "server", "--data", data_dir, "--s3", "127.0.0.1:0",
                               "--listen", "127.0.0.1:0", *args],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the server started (ran for {timeout}s) instead of refusing; stdout: "
                    f"{e.stdout!r}")
    return proc.returncode, proc.stderr.decode(errors="replace")


def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


def read_all(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def list_keys(s3, bucket):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# ---- Generated root credentials -----------------------------------------------------------------
def test_generated_root_credentials(tmp_path):
    data = data_dir(tmp_path)
    path = os.path.join(data, CREDENTIALS_FILE)
    with GranaryServer(data_dir=data, env_keys=False) as srv:
        # Where the keys are is reported: in the ready line and in the log.
        assert srv.ready_event["credentials"] == path, srv.ready_event
        assert f"root credentials: stored in {path}" in srv.log_text()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as f:
            keys = json.load(f)
        assert len(keys["access_key"]) >= 16 and len(keys["secret_key"]) >= 32, keys
        assert (srv.access_key, srv.secret_key) == (keys["access_key"], keys["secret_key"])

        s3 = srv.boto3_client()
        s3.create_bucket(Bucket="generated-keys")
        s3.put_object(Bucket="generated-keys", Key="k", Body=b"with generated keys")
        assert read_all(s3, "generated-keys", "k") == b"with generated keys"
        # The test keys the environment would have given are not valid here.
        other = srv.boto3_client(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        assert_client_error(other.list_buckets, "InvalidAccessKeyId", 403)
        wrong_secret = srv.boto3_client(secret_key=SECRET_KEY)
        assert_client_error(wrong_secret.list_buckets, "SignatureDoesNotMatch", 403)

        # A restart reads the same keys back; a client made before it still works.
        assert srv.stop() == 0
        srv.start()
        assert srv.ready_event["credentials"] == path
        assert (srv.access_key, srv.secret_key) == (keys["access_key"], keys["secret_key"])
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert read_all(srv.boto3_client(), "generated-keys", "k") == b"with generated keys"

    # Keys in the environment win over the file, which stays as it was.
    with GranaryServer(data_dir=data) as srv:
        assert srv.ready_event["credentials"] == "environment"
        assert read_all(srv.boto3_client(), "generated-keys", "k") == b"with generated keys"
    with open(path) as f:
        assert json.load(f) == keys


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=oct)
def test_credentials_file_readable_by_others_is_refused(tmp_path, mode):
    data = data_dir(tmp_path)
    path = os.path.join(data, CREDENTIALS_FILE)
    with GranaryServer(data_dir=data, env_keys=False) as srv:
        keys = (srv.access_key, srv.secret_key)
    os.chmod(path, mode)
    code, err = refused_start(data, env_keys=False)
    assert code != 0, err
    assert path in err and "readable by other users" in err and "chmod 600" in err, err
    # Fixed as the message says, the server starts with the same keys.
    os.chmod(path, 0o600)
    with GranaryServer(data_dir=data, env_keys=False) as srv:
        assert (srv.access_key, srv.secret_key) == keys
        srv.boto3_client().list_buckets()


# ---- SIGINT -------------------------------------------------------------------------------------
def test_sigint_stops_cleanly_and_keeps_acknowledged_writes(tmp_path):
    with GranaryServer(data_dir=data_dir(tmp_path)) as srv:
        s3 = srv.boto3_client()
        client = srv.native_client() if NATIVE else None  # else S3 writes those keys too
        s3.create_bucket(Bucket="sigint")
        # Inline (<= 4 KiB), blob, and chunked (> 4 MiB) objects, through both doors.
        expected = {}
        for i, size in enumerate([0, 100, 4 * KiB, 4 * KiB + 1, 300 * KiB, 9 * MiB + 7]):
            expected[f"s3/{i}"] = payload(size, seed=i)
            s3.put_object(Bucket="sigint", Key=f"s3/{i}", Body=expected[f"s3/{i}"])
            expected[f"native/{i}"] = payload(size, seed=100 + i)
            if client:
                client.put("sigint", f"native/{i}", expected[f"native/{i}"])
            else:
                s3.put_object(Bucket="sigint", Key=f"native/{i}", Body=expected[f"native/{i}"])
        s3.put_object(Bucket="sigint", Key="s3/1", Body=b"overwritten")
        expected["s3/1"] = b"overwritten"
        s3.delete_object(Bucket="sigint", Key="native/2")
        del expected["native/2"]
        if client:
            client.close()

        code = srv.stop(sig=signal.SIGINT)
        log = srv.log_text()
        assert code == 0, log[-4000:]
        assert "signal 2: shutting down" in log and "stopped cleanly" in log, log[-4000:]

        srv.start()
        s3 = srv.boto3_client()
        assert list_keys(s3, "sigint") == sorted(expected)
        for key, data in expected.items():
            got = read_all(s3, "sigint", key)
            assert got == data, f"{key}: {len(got)} bytes, expected {len(data)}"
        assert srv.stop(sig=signal.SIGINT) == 0


# ---- Several disks ------------------------------------------------------------------------------
def blob_bytes(disk):
    """Bytes in the files of a disk's blob engine (DISK/blobs). Its log is zeroed ahead of the
    writes while the server runs and cut to its end on a clean stop: measure stopped servers."""
    total = 0
    for root, _, files in os.walk(os.path.join(disk, "blobs")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def two_disk_server(tmp_path):
    data = data_dir(tmp_path)
    disks = [str(tmp_path / "disk-a"), str(tmp_path / "disk-b")]
    return GranaryServer(data_dir=data, disks=disks), data, disks


def test_two_disks_hold_data_and_survive_restart(tmp_path):
    srv, data, disks = two_disk_server(tmp_path)
    objects = {f"obj-{i:02d}": payload(64 * KiB, seed=i) for i in range(64)}  # > 4 KiB inline
    with srv:
        srv.boto3_client().create_bucket(Bucket="two-disks")
        assert srv.stop() == 0
        before = [blob_bytes(d) for d in disks]
        srv.start()
        s3 = srv.boto3_client()
        for key, body in objects.items():
            s3.put_object(Bucket="two-disks", Key=key, Body=body)
        assert srv.stop() == 0
        grown = [blob_bytes(d) - b for d, b in zip(disks, before)]
        # Blobs are placed by a hash of their key: each disk holds about half of the 4 MiB.
        for disk, g in zip(disks, grown):
            assert g >= 8 * 64 * KiB, f"{disk} grew by {g} bytes only ({grown})"
        assert sum(grown) >= len(objects) * 64 * KiB, grown
        for disk in disks:
            assert os.path.exists(os.path.join(disk, "DISK")), disk
        # With --disks, the data directory holds no disk of its own.
        assert not os.path.exists(os.path.join(data, "disk0"))

        srv.start()
        s3 = srv.boto3_client()
        assert list_keys(s3, "two-disks") == sorted(objects)
        for key, body in objects.items():
            assert read_all(s3, "two-disks", key) == body, key
        srv.restart(crash=True)
        s3 = srv.boto3_client()
        for key, body in objects.items():
            assert read_all(s3, "two-disks", key) == body, key


def test_restart_with_other_disks_is_refused(tmp_path):
    srv, data, (disk_a, disk_b) = two_disk_server(tmp_path)
    objects = {f"obj-{i:02d}": payload(64 * KiB, seed=i) for i in range(16)}
    with srv:
        s3 = srv.boto3_client()
        s3.create_bucket(Bucket="disk-order")
        for key, body in objects.items():
            s3.put_object(Bucket="disk-order", Key=key, Body=body)

    # Blobs are placed by disk index, so the order matters: a swapped order is refused
    # (src/replication/local_blob_store.cc, CheckDisks).
    code, err = refused_start(data, "--disks", f"{disk_b},{disk_a}")
    assert code != 0, err
    assert f"disk {disk_b} is not disk 1 of 2" in err, err
    assert "same --disks, in the same order" in err, err

    # One disk left out: the other no longer is "disk 1 of 1".
    code, err = refused_start(data, "--disks", disk_a)
    assert code != 0, err
    assert f"disk {disk_a} is not disk 1 of 1" in err and "same --disks" in err, err

    # One disk gone (not mounted: an empty directory in its place).
    os.rename(disk_b, disk_b + "-away")
    code, err = refused_start(data, "--disks", f"{disk_a},{disk_b}")
    assert code != 0, err
    assert f"disk {disk_b} is not disk 2 of 2" in err and "says: nothing" in err, err
    os.rmdir(disk_b)
    os.rename(disk_b + "-away", disk_b)

    # None of that harmed the data: the right disks, in their order, serve every object.
    with srv:
        s3 = srv.boto3_client()
        for key, body in objects.items():
            assert read_all(s3, "disk-order", key) == body, key


def test_restart_without_the_disks_is_refused(tmp_path):
    # DATA/STORE names the store of the server's disks: a start with none given (a fresh
    # DATA/disk0) or with only new, empty directories is refused and creates nothing.
    srv, data, disks = two_disk_server(tmp_path)
    body = payload(64 * KiB, seed=3)
    with srv:
        s3 = srv.boto3_client()
        s3.create_bucket(Bucket="no-disks")
        s3.put_object(Bucket="no-disks", Key="k", Body=body)
    code, err = refused_start(data, timeout=10)
    assert code != 0 and "--disks" in err and "hold no data" in err, err
    assert not os.path.exists(os.path.join(data, "disk0", "DISK")), "the refused start wrote a disk"
    fresh = [str(tmp_path / "fresh-a"), str(tmp_path / "fresh-b")]
    code, err = refused_start(data, "--disks", ",".join(fresh), timeout=10)
    assert code != 0 and "--disks" in err, err
    # Disks of another server are refused as well.
    (tmp_path / "other").mkdir()
    other = GranaryServer(data_dir=data_dir(tmp_path / "other"),
                          disks=[str(tmp_path / "other-a"), str(tmp_path / "other-b")])
    with other:
        pass
    code, err = refused_start(data, "--disks", ",".join(other.disks), timeout=10)
    assert code != 0 and "not this server's store" in err, err
    # The right disks still serve everything.
    with srv:
        assert srv.boto3_client().get_object(Bucket="no-disks", Key="k")["Body"].read() == body


# ---- One namespace, two doors -------------------------------------------------------------------
def s3_etag(resp):
    return resp["ETag"].strip('"')


@pytest.mark.skipif(not NATIVE, reason="the native client's module is not built (sanitizers)")
def test_one_namespace_two_doors(server, s3, bucket):
    native = server.native_client()
    sizes = {"small": 100, "blob": 64 * KiB + 1, "chunked": 9 * MiB + 3}

    # boto3 writes, the native client reads.
    for name, size in sizes.items():
        body = payload(size, seed=size)
        put = s3.put_object(Bucket=bucket, Key=f"via-s3/{name}", Body=body,
                            ContentType="application/x-test", Metadata={"door": "s3"})
        assert native.get(bucket, f"via-s3/{name}") == body, name
        info = native.head(bucket, f"via-s3/{name}")
        assert (info.size, info.etag) == (size, s3_etag(put)), name
        assert info.etag == hashlib.md5(body).hexdigest()
        assert info.content_type == "application/x-test" and info.metadata == {"door": "s3"}
    parts = [payload(5 * MiB, seed=71), payload(MiB, seed=72)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="via-s3/multipart")
    etags = [s3.upload_part(Bucket=bucket, Key="via-s3/multipart", UploadId=up["UploadId"],
                            PartNumber=n + 1, Body=p)["ETag"] for n, p in enumerate(parts)]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="via-s3/multipart", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    info = native.head(bucket, "via-s3/multipart")
    assert (info.size, info.etag, info.parts) == (6 * MiB, s3_etag(done), 2)
    assert native.get(bucket, "via-s3/multipart") == b"".join(parts)

    # The native client writes, boto3 reads.
    for name, size in sizes.items():
        body = payload(size, seed=size + 1)
        info = native.put(bucket, f"via-native/{name}", body, content_type="text/x-native",
                          metadata={"door": "native"})
        got = s3.get_object(Bucket=bucket, Key=f"via-native/{name}")
        assert got["Body"].read() == body, name
        assert (got["ContentLength"], s3_etag(got)) == (size, info.etag), name
        assert info.etag == hashlib.md5(body).hexdigest()
        head = s3.head_object(Bucket=bucket, Key=f"via-native/{name}")
        assert (head["ContentLength"], s3_etag(head)) == (size, info.etag)
        assert head["ContentType"] == "text/x-native" and head["Metadata"] == {"door": "native"}

    # Each door lists the other's objects, with the same sizes and ETags.
    via_s3 = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                               PaginationConfig={"PageSize": 3}):
        via_s3 += [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in page.get("Contents", [])]
    via_native = [(o.key, o.size, o.etag) for o in native.list_all(bucket, page_size=3)]
    assert via_s3 == via_native
    assert [k for k, _, _ in via_s3] == sorted(
        [f"via-s3/{n}" for n in list(sizes) + ["multipart"]] +
        [f"via-native/{n}" for n in sizes])

    # Buckets, too: made through one door, seen and removed through the other.
    other = unique_bucket_name("native-made")
    native.create_bucket(other)
    assert other in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket=other, Key="k", Body=b"v")
    assert native.get(other, "k") == b"v"
    native.delete(other, "k")
    s3.delete_bucket(Bucket=other)
    assert other not in [b.name for b in native.list_buckets()]
    native.close()


# ---- Continuation tokens ------------------------------------------------------------------------
def test_continuation_token_survives_restart_and_deletes(tmp_path):
    keys = [f"key-{i:03d}" for i in range(37)]
    with GranaryServer(data_dir=data_dir(tmp_path)) as srv:
        s3 = srv.boto3_client()
        s3.create_bucket(Bucket="tokens")
        for k in keys:
            s3.put_object(Bucket="tokens", Key=k, Body=k.encode())
        first = s3.list_objects_v2(Bucket="tokens", MaxKeys=10)
        assert [o["Key"] for o in first["Contents"]] == keys[:10] and first["IsTruncated"]
        token = first["NextContinuationToken"]

        def rest_from(client, token):
            got = []
            while token:
                page = client.list_objects_v2(Bucket="tokens", MaxKeys=10,
                                              ContinuationToken=token)
                got += [o["Key"] for o in page.get("Contents", [])]
                assert page["IsTruncated"] == bool(page.get("NextContinuationToken")), page
                token = page.get("NextContinuationToken")
            return got

        # A token handed out before a restart is still good after it.
        srv.restart()
        s3 = srv.boto3_client()
        assert rest_from(s3, token) == keys[10:]
        srv.restart(crash=True)
        s3 = srv.boto3_client()
        assert rest_from(s3, token) == keys[10:]

        # The key the token resumes after is deleted: the listing goes on from the next one.
        s3.delete_object(Bucket="tokens", Key=keys[9])
        assert rest_from(s3, token) == keys[10:]
        # So is the key it would have returned first.
        s3.delete_object(Bucket="tokens", Key=keys[10])
        assert rest_from(s3, token) == keys[11:]
        # A token that is not one the server made is refused, not taken as a key.
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            s3.list_objects_v2(Bucket="tokens", MaxKeys=10, ContinuationToken="not a token!")
        assert excinfo.value.response["Error"]["Code"] == "InvalidArgument"
