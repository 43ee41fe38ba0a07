"""rclone (Debian) against a real `granary server` through an S3 remote (provider Other,
path style): mkdir, copy, copyto, ls, lsl, lsjson, cat, check, md5sum, sync, delete, deletefile,
purge, rmdir, and a file large enough for a multipart upload."""
import hashlib
import json
import os
import subprocess

import pytest

from s3_checks import payload, unique_bucket_name

RCLONE = "/usr/bin/rclone"
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(not os.path.exists(RCLONE), reason="rclone is not installed")


@pytest.fixture(scope="module")
def rclone(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("rclone-home")
    config = home / "rclone.conf"
    config.write_text(f"""[granary]
type = s3
provider = Other
env_auth = false
access_key_id = {server.access_key}
secret_access_key = {server.secret_key}
endpoint = {server.endpoint}
region = us-east-1
force_path_style = true
""")
    # No AWS_* from the caller: rclone's SDK would pick up AWS_CA_BUNDLE and friends.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(HOME=str(home), RCLONE_CONFIG=str(config))

    def run(*args, check=True):
        cmd = [RCLONE, "--config", str(config), "--retries", "1", "--low-level-retries", "1",
               "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        if check:
            assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n"
                                          f"stdout: {proc.stdout.decode(errors='replace')}\n"
                                          f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc
    return run


@pytest.fixture
def remote(rclone):
    name = unique_bucket_name("rclone")
    rclone("mkdir", f"granary:{name}")
    yield name
    rclone("purge", f"granary:{name}", check=False)


def ls(rclone, path):
    """{relative path: size} from `rclone ls`."""
    out = rclone("ls", path).stdout.decode()
    result = {}
    for line in out.splitlines():
        size, name = line.strip().split(" ", 1)
        result[name] = int(size)
    return result


def make_tree(root, sizes, seed):
    for i, (rel, size) in enumerate(sorted(sizes.items())):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(payload(size, seed=seed + i))


SIZES = {"a.txt": 11, "empty": 0, "dir/b.bin": 250 * 1024, "dir/sub dir/ü.txt": 4096,
         "large/multipart.bin": 17 * MiB + 9}


def test_mkdir_and_rmdir(rclone, s3):
    name = unique_bucket_name("rclone-mk")
    rclone("mkdir", f"granary:{name}")
    s3.head_bucket(Bucket=name)
    assert name in rclone("lsd", "granary:").stdout.decode()
    rclone("rmdir", f"granary:{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_copy_ls_lsl_check(rclone, s3, remote, tmp_path):
    src = tmp_path / "src"
    make_tree(src, SIZES, seed=4000)
    rclone("copy", str(src), f"granary:{remote}/copy")
    assert ls(rclone, f"granary:{remote}/copy") == SIZES
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=remote)["Contents"]}
    assert listed == {f"copy/{k}": v for k, v in SIZES.items()}
    head = s3.head_object(Bucket=remote, Key="copy/large/multipart.bin")
    assert head["ETag"].endswith('-4"'), head["ETag"]  # 5 + 5 + 5 + 2 MiB
    lsl = rclone("lsl", f"granary:{remote}/copy").stdout.decode()
    assert len(lsl.splitlines()) == len(SIZES)
    for line in lsl.splitlines():
        size, _date, _time, name = line.strip().split(None, 3)
        assert SIZES[name] == int(size)
    entries = json.loads(rclone("lsjson", "--recursive", "--files-only",
                                f"granary:{remote}/copy").stdout)
    assert {e["Path"]: e["Size"] for e in entries} == SIZES
    # check compares sizes and hashes (MD5: the ETag, or rclone's own metadata for multipart).
    rclone("check", str(src), f"granary:{remote}/copy")
    sums = rclone("md5sum", f"granary:{remote}/copy").stdout.decode()
    for line in sums.splitlines():
        digest, name = line.split("  ", 1)
        assert digest == hashlib.md5((src / name).read_bytes()).hexdigest(), name
    # check notices a difference.
    (src / "a.txt").write_bytes(b"different!!")
    proc = rclone("check", str(src), f"granary:{remote}/copy", check=False)
    assert proc.returncode != 0


def test_cat_copyto_and_download(rclone, remote, tmp_path):
    data = payload(3 * MiB + 1, seed=4100)
    (tmp_path / "one").write_bytes(data)
    rclone("copyto", str(tmp_path / "one"), f"granary:{remote}/renamed/one.bin")
    assert rclone("cat", f"granary:{remote}/renamed/one.bin").stdout == data
    assert rclone("cat", "--offset", "100", "--count", "50",
                  f"granary:{remote}/renamed/one.bin").stdout == data[100:150]
    rclone("copy", f"granary:{remote}/renamed", str(tmp_path / "down"))
    assert (tmp_path / "down" / "one.bin").read_bytes() == data


def test_large_file_multipart_round_trip(rclone, s3, remote, tmp_path):
    data = payload(23 * MiB + 1, seed=4200)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "big.bin").write_bytes(data)
    rclone("copy", str(tmp_path / "up"), f"granary:{remote}/big")
    assert s3.list_multipart_uploads(Bucket=remote).get("Uploads", []) == []
    got = s3.get_object(Bucket=remote, Key="big/big.bin")
    assert got["ContentLength"] == len(data)
    assert got["ETag"].endswith('-5"'), got["ETag"]
    assert got["Body"].read() == data
    rclone("copy", f"granary:{remote}/big", str(tmp_path / "down"))
    assert (tmp_path / "down" / "big.bin").read_bytes() == data
    rclone("check", str(tmp_path / "up"), f"granary:{remote}/big")


def test_sync_and_delete(rclone, s3, remote, tmp_path):
    src = tmp_path / "src"
    sizes = {k: v for k, v in SIZES.items() if not k.startswith("large/")}
    make_tree(src, sizes, seed=4300)
    rclone("sync", str(src), f"granary:{remote}/sync")
    assert ls(rclone, f"granary:{remote}/sync") == sizes
    (src / "dir/b.bin").unlink()
    (src / "new.txt").write_bytes(b"brand new")
    (src / "a.txt").write_bytes(b"changed a")
    rclone("sync", str(src), f"granary:{remote}/sync")
    expected = dict(sizes)
    del expected["dir/b.bin"]
    expected["new.txt"] = 9
    expected["a.txt"] = 9
    assert ls(rclone, f"granary:{remote}/sync") == expected
    rclone("check", str(src), f"granary:{remote}/sync")
    # delete with a filter, then deletefile, then purge a prefix.
    rclone("delete", "--include", "*.txt", f"granary:{remote}/sync")
    assert ls(rclone, f"granary:{remote}/sync") == {"empty": 0}
    rclone("deletefile", f"granary:{remote}/sync/empty")
    assert ls(rclone, f"granary:{remote}/sync") == {}
    assert s3.list_objects_v2(Bucket=remote, Prefix="sync/")["KeyCount"] == 0
