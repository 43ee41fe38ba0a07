"""s3cmd (Debian) against a real `granary server`: mb, put, get, ls, la, info, cp, mv, del, sync,
multipart uploads (--multipart-chunk-size-mb=5), rb. s3cmd checks the MD5 of what it downloads
against the ETag (or its own stored attribute for multipart objects), so downloads are verified
twice."""
import filecmp
import hashlib
import os
import subprocess

import pytest

from s3_checks import payload, unique_bucket_name

S3CMD = "/usr/bin/s3cmd"
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(not os.path.exists(S3CMD), reason="s3cmd is not installed")


@pytest.fixture(scope="module")
def s3cmd(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("s3cmd-home")
    config = home / "s3cfg"
    config.write_text(f"""[default]
access_key = {server.access_key}
secret_key = {server.secret_key}
host_base = 127.0.0.1:{server.s3_port}
host_bucket = 127.0.0.1:{server.s3_port}
use_https = False
signature_v2 = False
bucket_location = us-east-1
check_ssl_certificate = False
guess_mime_type = True
progress_meter = False
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)

    def run(*args, check=True):
        cmd = [S3CMD, "-c", str(config), *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        if check:
            assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n"
                                          f"stdout: {proc.stdout.decode(errors='replace')}\n"
                                          f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc
    return run


@pytest.fixture
def cmd_bucket(s3cmd):
    name = unique_bucket_name("s3cmd")
    s3cmd("mb", f"s3://{name}")
    yield name
    s3cmd("del", "--recursive", "--force", f"s3://{name}", check=False)
    s3cmd("rb", f"s3://{name}", check=False)


def ls_objects(s3cmd, url, recursive=True):
    """{url: size} of the objects `s3cmd ls` prints (DIR lines left out)."""
    args = ["ls", "--recursive", url] if recursive else ["ls", url]
    out = s3cmd(*args).stdout.decode()
    result = {}
    for line in out.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[3].startswith("s3://"):
            result[fields[3]] = int(fields[2])
    return result


def test_mb_ls_rb(s3cmd, s3):
    name = unique_bucket_name("s3cmd-mb")
    s3cmd("mb", f"s3://{name}")
    assert f"s3://{name}" in s3cmd("ls").stdout.decode()
    s3.head_bucket(Bucket=name)
    s3cmd("rb", f"s3://{name}")
    assert f"s3://{name}" not in s3cmd("ls").stdout.decode()


def test_put_get_info_del(s3cmd, s3, cmd_bucket, tmp_path):
    files = {"empty": 0, "tiny.txt": 10, "mid.bin": 300 * 1024, "name with space.bin": 5000}
    for i, (name, size) in enumerate(files.items()):
        (tmp_path / name).write_bytes(payload(size, seed=3000 + i))
        s3cmd("put", str(tmp_path / name), f"s3://{cmd_bucket}/dir/{name}")
    assert ls_objects(s3cmd, f"s3://{cmd_bucket}/") == {
        f"s3://{cmd_bucket}/dir/{name}": size for name, size in files.items()}
    out = s3cmd("ls", f"s3://{cmd_bucket}/").stdout.decode()
    assert f"DIR  s3://{cmd_bucket}/dir/" in " ".join(out.split("  ")) or "DIR" in out
    for name in files:
        dest = tmp_path / ("got-" + name)
        s3cmd("get", f"s3://{cmd_bucket}/dir/{name}", str(dest))
        assert filecmp.cmp(tmp_path / name, dest, shallow=False), name
    info = s3cmd("info", f"s3://{cmd_bucket}/dir/mid.bin").stdout.decode()
    md5 = hashlib.md5((tmp_path / "mid.bin").read_bytes()).hexdigest()
    assert md5 in info
    assert "307200" in info
    s3cmd("del", f"s3://{cmd_bucket}/dir/tiny.txt")
    assert f"s3://{cmd_bucket}/dir/tiny.txt" not in ls_objects(s3cmd, f"s3://{cmd_bucket}/")
    proc = s3cmd("get", f"s3://{cmd_bucket}/dir/tiny.txt", str(tmp_path / "gone"), check=False)
    assert proc.returncode != 0
    assert s3.list_objects_v2(Bucket=cmd_bucket)["KeyCount"] == 3


def test_cp_and_mv(s3cmd, s3, cmd_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"copy me")
    s3cmd("put", str(tmp_path / "f"), f"s3://{cmd_bucket}/a")
    s3cmd("cp", f"s3://{cmd_bucket}/a", f"s3://{cmd_bucket}/b")
    s3cmd("mv", f"s3://{cmd_bucket}/a", f"s3://{cmd_bucket}/c")
    keys = {o["Key"]: s3.get_object(Bucket=cmd_bucket, Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket=cmd_bucket)["Contents"]}
    assert keys == {"b": b"copy me", "c": b"copy me"}


def test_multipart_put_and_get(s3cmd, s3, cmd_bucket, tmp_path):
    data = payload(12 * MiB + 3, seed=3100)
    (tmp_path / "big").write_bytes(data)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big"), f"s3://{cmd_bucket}/big")
    head = s3.head_object(Bucket=cmd_bucket, Key="big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"'), head["ETag"]
    assert s3.list_multipart_uploads(Bucket=cmd_bucket).get("Uploads", []) == []
    s3cmd("get", f"s3://{cmd_bucket}/big", str(tmp_path / "big-back"))
    assert (tmp_path / "big-back").read_bytes() == data


def test_sync_up_down_delete_removed(s3cmd, s3, cmd_bucket, tmp_path):
    src = tmp_path / "src"
    sizes = {"a.txt": 100, "sub/b.bin": 70000, "sub/deeper/c.bin": 6 * MiB + 1, "d e.txt": 1}
    for i, (rel, size) in enumerate(sizes.items()):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(payload(size, seed=3200 + i))
    s3cmd("sync", "--multipart-chunk-size-mb=5", str(src) + "/", f"s3://{cmd_bucket}/s/")
    assert ls_objects(s3cmd, f"s3://{cmd_bucket}/s/") == {
        f"s3://{cmd_bucket}/s/{rel}": size for rel, size in sizes.items()}
    (src / "a.txt").write_bytes(b"modified")
    (src / "sub/b.bin").unlink()
    s3cmd("sync", "--delete-removed", str(src) + "/", f"s3://{cmd_bucket}/s/")
    sizes["a.txt"] = len(b"modified")
    del sizes["sub/b.bin"]
    assert ls_objects(s3cmd, f"s3://{cmd_bucket}/s/") == {
        f"s3://{cmd_bucket}/s/{rel}": size for rel, size in sizes.items()}
    dest = tmp_path / "dest"
    dest.mkdir()
    s3cmd("sync", f"s3://{cmd_bucket}/s/", str(dest) + "/")
    for rel in sizes:
        assert filecmp.cmp(src / rel, dest / rel, shallow=False), rel
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == \
        sorted(sizes)


def test_del_recursive_and_rb(s3cmd, s3, tmp_path):
    name = unique_bucket_name("s3cmd-rb")
    s3cmd("mb", f"s3://{name}")
    (tmp_path / "x").write_bytes(b"x")
    for i in range(5):
        s3cmd("put", str(tmp_path / "x"), f"s3://{name}/p/{i}")
    proc = s3cmd("rb", f"s3://{name}", check=False)
    assert proc.returncode != 0 and b"BucketNotEmpty" in proc.stderr + proc.stdout
    s3cmd("del", "--recursive", "--force", f"s3://{name}/p/")
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    s3cmd("rb", f"s3://{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
