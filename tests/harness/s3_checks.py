"""Assertions and data helpers shared by the S3 tests (tests/s3/)."""
import itertools
import os
import re
import uuid

import pytest

_counter = itertools.count()


def unique_bucket_name(hint="t"):
    hint = re.sub(r"[^a-z0-9-]", "-", hint.lower())[:30].strip("-") or "t"
    return f"{hint}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def empty_bucket(s3, name):
    """Deletes every object and multipart upload of `name` (best effort, for cleanup)."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def client_error(excinfo):
    """(Code, HTTP status) of a botocore ClientError."""
    err = excinfo.value.response
    return err["Error"].get("Code"), err["ResponseMetadata"]["HTTPStatusCode"]


def assert_client_error(fn, code, status, *args, **kwargs):
    """Calls fn and checks it fails with S3 error `code` (a string or a set) and `status`."""
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        fn(*args, **kwargs)
    got_code, got_status = client_error(excinfo)
    codes = {code} if isinstance(code, str) else set(code)
    assert (got_code, got_status) in {(c, status) for c in codes}, \
        f"expected {sorted(codes)} {status}, got {got_code} {got_status}: {excinfo.value.response}"
    return excinfo.value.response


def assert_raw_error(resp, code, status):
    """A raw response is an S3 <Error> document with `code` (a string or a set)."""
    codes = {code} if isinstance(code, str) else set(code)
    assert resp.status == status and resp.error_code in codes, \
        f"expected {sorted(codes)} {status}, got {resp!r}"


def object_exists(s3, bucket, key):
    import botocore.exceptions
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except botocore.exceptions.ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def payload(size, seed=0):
    """Deterministic, non-repeating-looking bytes of `size` (cheap for tens of MiB)."""
    block = os.urandom(1 << 16) if seed is None else _block(seed)
    reps = size // len(block) + 1
    data = (block * reps)[:size]
    # Stamp the position every 64 KiB so that misplaced blocks are noticed.
    if size >= 16:
        out = bytearray(data)
        for off in range(0, size - 16, 1 << 16):
            out[off:off + 16] = off.to_bytes(8, "big") + seed.to_bytes(8, "big", signed=False)
        data = bytes(out)
    return data


_blocks = {}


def _block(seed):
    if seed not in _blocks:
        import random
        rnd = random.Random(seed)
        _blocks[seed] = rnd.randbytes(1 << 16)
    return _blocks[seed]
