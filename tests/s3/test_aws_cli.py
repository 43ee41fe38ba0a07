"""Debian's `aws` CLI (v2) against a real `granary server`: aws s3 mb/cp/sync/ls/rm/rb over a
tree of files of mixed sizes (one above the CLI's 8 MiB multipart threshold), streaming from
stdin, presign, and a few aws s3api calls. The CLI's configuration is isolated through the
environment (no ~/.aws)."""
import filecmp
import hashlib
import json
import os
import subprocess
import urllib.request

import pytest

from s3_checks import payload, unique_bucket_name

AWS = "/usr/bin/aws"
MiB = 1024 * 1024

TREE = {
    "empty.txt": 0,
    "one.bin": 1,
    "small/4k.bin": 4096,
    "small/with space.txt": 1000,
    "small/ünïcödé.txt": 333,
    "nested/a/b/c/deep.bin": 70 * 1024,
    "nested/a/mid.bin": 1 * MiB + 3,
    "big/over-threshold.bin": 20 * MiB + 17,  # multipart: 8 MiB parts
    "big/just-over.bin": 8 * MiB + 1,
}

pytestmark = pytest.mark.skipif(not os.path.exists(AWS), reason="Debian's awscli is not installed")


@pytest.fixture(scope="module")
def aws(server, tmp_path_factory):
    env = server.aws_env()
    home = tmp_path_factory.mktemp("aws-home")
    env.update({"HOME": str(home), "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1",
                "AWS_RETRY_MODE": "standard"})

    def run(*args, input=None, check=True):
        cmd = [AWS, "--endpoint-url", server.endpoint, "--no-cli-pager", "--cli-read-timeout",
               "15", *args]
        if args[0] == "s3" and args[1] in ("cp", "sync", "mv"):
            cmd.append("--no-progress")
        proc = subprocess.run(cmd, env=env, input=input, capture_output=True, timeout=300)
        if check:
            out = proc.stdout.decode(errors="replace")[-2000:]
            assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n"
                                          f"stdout: {out}\n"
                                          f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc
    return run


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    for i, (rel, size) in enumerate(sorted(TREE.items())):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload(size, seed=1000 + i))
    return root


def ls_recursive(aws, url):
    """{key: size} from `aws s3 ls --recursive` ("date time size key" lines)."""
    out = aws("s3", "ls", "--recursive", url).stdout.decode()
    result = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        _date, _time, size, key = line.split(None, 3)
        result[key] = int(size)
    return result


def assert_same_tree(a, b):
    files_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    files_b = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


@pytest.fixture
def cli_bucket(aws, s3):
    name = unique_bucket_name("cli")
    proc = aws("s3", "mb", f"s3://{name}")
    assert f"make_bucket: {name}" in proc.stdout.decode()
    yield name
    aws("s3", "rb", "--force", f"s3://{name}", check=False)


def test_mb_ls_rb(aws, s3):
    name = unique_bucket_name("cli-mb")
    aws("s3", "mb", f"s3://{name}")
    listed = aws("s3", "ls").stdout.decode()
    assert name in [line.split()[-1] for line in listed.splitlines() if line.strip()]
    s3.head_bucket(Bucket=name)
    # mb of an invalid name fails with the server's error.
    proc = aws("s3", "mb", "s3://Invalid_Name", check=False)
    assert proc.returncode != 0
    assert b"InvalidBucketName" in proc.stderr
    aws("s3", "rb", f"s3://{name}")
    assert name not in aws("s3", "ls").stdout.decode()


def test_cp_single_files(aws, s3, cli_bucket, tree, tmp_path):
    for rel in ("one.bin", "big/over-threshold.bin", "empty.txt"):
        aws("s3", "cp", str(tree / rel), f"s3://{cli_bucket}/single/{rel}")
        got = s3.get_object(Bucket=cli_bucket, Key=f"single/{rel}")["Body"].read()
        assert got == (tree / rel).read_bytes(), rel
        out = tmp_path / rel.replace("/", "_")
        aws("s3", "cp", f"s3://{cli_bucket}/single/{rel}", str(out))
        assert out.read_bytes() == (tree / rel).read_bytes(), rel
    head = s3.head_object(Bucket=cli_bucket, Key="single/big/over-threshold.bin")
    assert head["ETag"].endswith('-3"'), head["ETag"]  # 8 + 8 + 4 MiB
    # Downloading a missing key fails.
    proc = aws("s3", "cp", f"s3://{cli_bucket}/missing", str(tmp_path / "missing"), check=False)
    assert proc.returncode != 0
    assert not (tmp_path / "missing").exists()


def test_cp_recursive_ls_and_download(aws, s3, cli_bucket, tree, tmp_path):
    aws("s3", "cp", "--recursive", str(tree), f"s3://{cli_bucket}/tree/")
    assert ls_recursive(aws, f"s3://{cli_bucket}/tree/") == {
        f"tree/{rel}": size for rel, size in TREE.items()}
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=cli_bucket)["Contents"]}
    assert listed == {f"tree/{rel}": size for rel, size in TREE.items()}
    # Non-recursive ls shows the first level with PRE lines.
    top = aws("s3", "ls", f"s3://{cli_bucket}/tree/").stdout.decode()
    assert "PRE big/" in top and "PRE small/" in top and "PRE nested/" in top
    assert "empty.txt" in top and "one.bin" in top
    down = tmp_path / "down"
    aws("s3", "cp", "--recursive", f"s3://{cli_bucket}/tree/", str(down))
    assert_same_tree(tree, down)


def test_sync_both_ways_with_delete(aws, s3, cli_bucket, tree, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(tree), str(work)], check=True)
    aws("s3", "sync", str(work), f"s3://{cli_bucket}/sync")
    assert ls_recursive(aws, f"s3://{cli_bucket}/sync/") == {
        f"sync/{rel}": size for rel, size in TREE.items()}
    # A second sync with nothing changed uploads nothing.
    out = aws("s3", "sync", str(work), f"s3://{cli_bucket}/sync").stdout.decode()
    assert "upload:" not in out, out
    # Change one file (size changes), add one, remove one; sync --delete.
    (work / "small/4k.bin").write_bytes(b"changed content")
    (work / "added/new file.txt").parent.mkdir()
    (work / "added/new file.txt").write_bytes(b"new")
    (work / "one.bin").unlink()
    out = aws("s3", "sync", "--delete", str(work), f"s3://{cli_bucket}/sync").stdout.decode()
    assert "delete: s3://" in out and "upload:" in out, out
    expected = {f"sync/{rel}": size for rel, size in TREE.items() if rel != "one.bin"}
    expected["sync/small/4k.bin"] = len(b"changed content")
    expected["sync/added/new file.txt"] = 3
    assert ls_recursive(aws, f"s3://{cli_bucket}/sync/") == expected
    assert s3.get_object(Bucket=cli_bucket, Key="sync/small/4k.bin")["Body"].read() == \
        b"changed content"
    # And back down into an empty directory.
    back = tmp_path / "back"
    aws("s3", "sync", f"s3://{cli_bucket}/sync", str(back))
    assert_same_tree(work, back)


def test_rm_single_and_recursive(aws, s3, cli_bucket, tree):
    aws("s3", "cp", "--recursive", str(tree), f"s3://{cli_bucket}/rm/")
    aws("s3", "rm", f"s3://{cli_bucket}/rm/one.bin")
    assert "rm/one.bin" not in ls_recursive(aws, f"s3://{cli_bucket}/rm/")
    out = aws("s3", "rm", "--recursive", f"s3://{cli_bucket}/rm/nested/").stdout.decode()
    assert out.count("delete:") == 2
    left = ls_recursive(aws, f"s3://{cli_bucket}/rm/")
    assert not [k for k in left if k.startswith("rm/nested/")]
    assert len(left) == len(TREE) - 3
    aws("s3", "rm", "--recursive", f"s3://{cli_bucket}/")
    assert s3.list_objects_v2(Bucket=cli_bucket)["KeyCount"] == 0
    # rb refuses a non-empty bucket without --force.
    aws("s3", "cp", str(tree / "one.bin"), f"s3://{cli_bucket}/x")
    proc = aws("s3", "rb", f"s3://{cli_bucket}", check=False)
    assert proc.returncode != 0 and b"BucketNotEmpty" in proc.stderr


def test_stream_from_stdin_and_to_stdout(aws, s3, cli_bucket):
    data = payload(12 * MiB + 5, seed=2000)
    aws("s3", "cp", "-", f"s3://{cli_bucket}/stdin.bin", input=data)
    assert s3.get_object(Bucket=cli_bucket, Key="stdin.bin")["Body"].read() == data
    out = aws("s3", "cp", f"s3://{cli_bucket}/stdin.bin", "-").stdout
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()


def test_presign(aws, s3, cli_bucket):
    s3.put_object(Bucket=cli_bucket, Key="p/signed file", Body=b"presigned by aws cli")
    url = aws("s3", "presign", f"s3://{cli_bucket}/p/signed file",
              "--expires-in", "300").stdout.decode().strip()
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"presigned by aws cli"


def test_s3api_calls(aws, s3, cli_bucket, tree):
    src = tree / "nested/a/b/c/deep.bin"
    out = json.loads(aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "api/deep",
                         "--body", str(src), "--content-type", "application/x-deep",
                         "--metadata", "owner=cli,purpose=test").stdout)
    expected_etag = '"%s"' % hashlib.md5(src.read_bytes()).hexdigest()
    assert out["ETag"] == expected_etag
    head = json.loads(aws("s3api", "head-object", "--bucket", cli_bucket,
                          "--key", "api/deep").stdout)
    assert head["ContentLength"] == src.stat().st_size
    assert head["ContentType"] == "application/x-deep"
    assert head["Metadata"] == {"owner": "cli", "purpose": "test"}
    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket,
                            "--prefix", "api/").stdout)
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed["Contents"]] == [
        ("api/deep", src.stat().st_size, expected_etag)]
    aws("s3api", "copy-object", "--bucket", cli_bucket, "--key", "api/copy",
        "--copy-source", f"{cli_bucket}/api/deep")
    assert s3.get_object(Bucket=cli_bucket, Key="api/copy")["Body"].read() == src.read_bytes()
    proc = aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "api/missing",
               "/dev/null", check=False)
    assert proc.returncode != 0 and b"NoSuchKey" in proc.stderr
    aws("s3api", "delete-objects", "--bucket", cli_bucket, "--delete",
        json.dumps({"Objects": [{"Key": "api/deep"}, {"Key": "api/copy"}]}))
    assert s3.list_objects_v2(Bucket=cli_bucket, Prefix="api/")["KeyCount"] == 0
