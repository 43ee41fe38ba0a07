"""Fixtures for the S3 tests: one real `granary server` per test module, boto3 and raw clients,
and a fresh bucket per test."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))

from granary_server import GranaryServer  # noqa: E402
from s3_checks import empty_bucket, unique_bucket_name  # noqa: E402


@pytest.fixture(scope="module")
def server():
    srv = GranaryServer()
    try:
        srv.start()
    except BaseException:
        shutil.rmtree(srv.data_dir, ignore_errors=True)
        raise
    try:
        yield srv
    finally:
        alive = srv.running
        code = srv.stop() if alive else None
        log = srv.log_text()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
        assert alive, "the server died during the tests; log tail:\n" + log[-4000:]
        assert code == 0, f"clean shutdown (SIGTERM) exited with {code}; log tail:\n{log[-4000:]}"


@pytest.fixture(scope="module")
def s3(server):
    # A short read timeout: a server that fails to answer costs 20 s, not botocore's 60 s.
    return server.boto3_client(read_timeout=20)


@pytest.fixture(scope="module")
def raw(server):
    return server.raw()


@pytest.fixture
def bucket(s3, request):
    name = unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    try:
        s3.delete_bucket(Bucket=name)
    except Exception:  # noqa: BLE001 - cleanup only
        pass
