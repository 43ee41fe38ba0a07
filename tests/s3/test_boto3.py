"""boto3 against a real `granary server`: buckets, single-request objects, DeleteObjects,
CopyObject, range and conditional GETs, Content-MD5.

Listing is in test_boto3_list.py, multipart in test_boto3_multipart.py, authentication,
presigned URLs, virtual hosts and aws-chunked uploads in test_boto3_auth.py."""
import datetime
import hashlib
import base64

import botocore.exceptions
import pytest

from s3_checks import (assert_client_error, assert_raw_error, object_exists, payload,
                       unique_bucket_name)
import s3_raw

KiB = 1024
MiB = 1024 * 1024


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def etag_of(data):
    return '"%s"' % md5_hex(data)


# ---- Buckets ------------------------------------------------------------------------------------
def test_list_buckets_shows_created_buckets(s3):
    names = [unique_bucket_name("lb") for _ in range(3)]
    for n in names:
        s3.create_bucket(Bucket=n)
    listed = s3.list_buckets()
    by_name = {b["Name"]: b for b in listed["Buckets"]}
    for n in names:
        assert n in by_name
        created = by_name[n]["CreationDate"]
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - created).total_seconds()) < 600
    assert "Owner" in listed
    for n in names:
        s3.delete_bucket(Bucket=n)
    listed = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not listed & set(names)


def test_create_head_delete_bucket(s3):
    name = unique_bucket_name("chd")
    assert_client_error(s3.head_bucket, "404", 404, Bucket=name)
    resp = s3.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    loc = s3.get_bucket_location(Bucket=name)
    assert loc.get("LocationConstraint") in (None, "", "us-east-1")
    s3.delete_bucket(Bucket=name)
    assert_client_error(s3.head_bucket, "404", 404, Bucket=name)
    assert_client_error(s3.delete_bucket, "NoSuchBucket", 404, Bucket=name)


def test_create_existing_bucket_keeps_its_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"kept")
    try:
        resp = s3.create_bucket(Bucket=bucket)
        # us-east-1 legacy behaviour: 200 for a bucket you own.
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"kept"


def test_single_server_keeps_one_copy_per_bucket(s3):
    """x-granary-replicas on CreateBucket: a cluster's copies of the bucket's data. A single
    server keeps one: it takes 1 (and HeadBucket says so) and refuses more, or nonsense."""
    def create(name, replicas):
        def add_header(request, **_):
            request.headers["x-granary-replicas"] = replicas
        s3.meta.events.register("before-sign.s3.CreateBucket", add_header)
        try:
            return s3.create_bucket(Bucket=name)
        finally:
            s3.meta.events.unregister("before-sign.s3.CreateBucket", add_header)

    one = unique_bucket_name("one")
    create(one, "1")
    headers = s3.head_bucket(Bucket=one)["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-granary-replicas") == "1"
    for bad in ("2", "0", "6", "x", ""):
        name = unique_bucket_name("many")
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            create(name, bad)
        assert refused.value.response["Error"]["Code"] == "InvalidArgument", bad
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    s3.delete_bucket(Bucket=one)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "UpperCase", "under_score", "-leading",
                                  "trailing-", "two..dots", "192.168.1.10", "xn--punycode"])
def test_invalid_bucket_names_refused(s3, name):
    assert_client_error(s3.create_bucket, "InvalidBucketName", 400, Bucket=name)
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_delete_non_empty_bucket_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x/y", Body=b"1")
    assert_client_error(s3.delete_bucket, "BucketNotEmpty", 409, Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="x/y")["Body"].read() == b"1"
    s3.delete_object(Bucket=bucket, Key="x/y")
    s3.delete_bucket(Bucket=bucket)
    assert_client_error(s3.head_bucket, "404", 404, Bucket=bucket)


def test_bucket_with_pending_multipart_upload_is_not_empty_or_upload_goes(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="pending")
    try:
        s3.delete_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "BucketNotEmpty"
        s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=up["UploadId"])
        return
    # Deleted: the upload must have gone with it.
    s3.create_bucket(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_requests_on_missing_bucket(s3):
    name = unique_bucket_name("missing")
    assert_client_error(s3.put_object, "NoSuchBucket", 404, Bucket=name, Key="k", Body=b"x")
    assert_client_error(s3.get_object, "NoSuchBucket", 404, Bucket=name, Key="k")
    assert_client_error(s3.list_objects_v2, "NoSuchBucket", 404, Bucket=name)
    assert_client_error(s3.list_objects, "NoSuchBucket", 404, Bucket=name)
    assert_client_error(s3.create_multipart_upload, "NoSuchBucket", 404, Bucket=name, Key="k")
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


# ---- Objects ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 4 * KiB, 100 * KiB, 5 * MiB, 20 * MiB],
                         ids=["0B", "1B", "4KiB", "100KiB", "5MiB", "20MiB"])
def test_put_get_head_delete_sizes(s3, bucket, size):
    data = payload(size, seed=size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == etag_of(data)
    head = s3.head_object(Bucket=bucket, Key=f"obj-{size}")
    assert head["ContentLength"] == size
    assert head["ETag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["ContentLength"] == size
    assert got["ETag"] == etag_of(data)
    body = got["Body"].read()
    assert len(body) == size and body == data
    delete = s3.delete_object(Bucket=bucket, Key=f"obj-{size}")
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_client_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key=f"obj-{size}")
    assert_client_error(s3.head_object, "404", 404, Bucket=bucket, Key=f"obj-{size}")


def test_put_after_empty_put_on_same_connection(s3, bucket):
    """boto3 sends Expect: 100-continue on PUT. botocore 1.29 keeps the status line of an answer
    that came without "100 Continue" and misreads the next answer on the same keep-alive
    connection, so a server must send 100 Continue for an empty body too (as S3 does)."""
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"seq/{i}", Body=b"" if i % 2 == 0 else b"x" * i)
    sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert sizes == {"seq/0": 0, "seq/1": 1, "seq/2": 0, "seq/3": 3}


def test_headers_and_user_metadata_round_trip(s3, bucket):
    expires = datetime.datetime(2031, 5, 17, 10, 30, tzinfo=datetime.timezone.utc)
    meta = {"color": "blue", "mixed-case": "Value With Spaces", "n": "42"}
    s3.put_object(Bucket=bucket, Key="meta", Body=b"<html/>",
                  ContentType="text/html; charset=utf-8", Metadata=meta, CacheControl="max-age=3600, public",
                  ContentDisposition='attachment; filename="a b.html"',
                  ContentEncoding="identity", ContentLanguage="de-CH", Expires=expires)
    for resp in (s3.head_object(Bucket=bucket, Key="meta"),
                 s3.get_object(Bucket=bucket, Key="meta")):
        assert resp["ContentType"] == "text/html; charset=utf-8"
        assert resp["Metadata"] == meta
        assert resp["CacheControl"] == "max-age=3600, public"
        assert resp["ContentDisposition"] == 'attachment; filename="a b.html"'
        assert resp["ContentEncoding"] == "identity"
        assert resp["ContentLanguage"] == "de-CH"
        assert resp["Expires"] == expires
        assert resp["ContentLength"] == 7
        modified = resp["LastModified"]
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - modified).total_seconds()) < 600
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
        assert headers.get("accept-ranges") == "bytes"


def test_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="untyped", Body=b"abc")
    assert s3.head_object(Bucket=bucket, Key="untyped")["ContentType"] in (
        "binary/octet-stream", "application/octet-stream")


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ovr", Body=b"data", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="ovr", ResponseContentType="application/json",
                        ResponseContentDisposition="inline", ResponseCacheControl="no-cache")
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["Body"].read() == b"data"


def test_overwrite_replaces_data_and_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second!"
    assert got["Metadata"] == {}
    assert got["ContentType"] == "text/plain"
    assert got["ETag"] == etag_of(b"second!")


@pytest.mark.parametrize("key", ["unicode/é中文🙂", "with space/and more spaces", "plus+sign+key",
                                 "q?mark&amp=x#hash", "percent%20literal", "tilde~star*(paren)",
                                 "trailing/", "a" * 1024, "semi;colon,comma=equals:colon@at$"])
def test_unusual_keys_round_trip(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert not object_exists(s3, bucket, key)


def test_key_too_long_refused(s3, bucket):
    assert_client_error(s3.put_object, "KeyTooLongError", 400, Bucket=bucket, Key="k" * 1025,
                        Body=b"x")


def test_delete_missing_object_is_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key="never-was")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_get_missing_object(s3, bucket):
    resp = assert_client_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="nope/x")
    assert resp["Error"].get("Message")


# ---- DeleteObjects ------------------------------------------------------------------------------
def test_delete_objects_verbose(s3, bucket):
    keys = [f"d/{i}" for i in range(10)] + ["d/ü ni+code"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    s3.put_object(Bucket=bucket, Key="survivor", Body=b"s")
    request = keys + ["d/missing-1", "d/missing-2"]
    resp = s3.delete_objects(Bucket=bucket,
                             Delete={"Objects": [{"Key": k} for k in request], "Quiet": False})
    assert sorted(d["Key"] for d in resp.get("Deleted", [])) == sorted(request)
    assert resp.get("Errors", []) == []
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == ["survivor"]


def test_delete_objects_quiet(s3, bucket):
    keys = [f"q/{i}" for i in range(5)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": k} for k in keys + ["q/missing"]], "Quiet": True})
    assert resp.get("Deleted", []) == []
    assert resp.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_many(s3, bucket):
    keys = [f"many/{i:04d}" for i in range(300)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(resp["Deleted"]) == 300
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_missing_bucket(s3):
    assert_client_error(s3.delete_objects, "NoSuchBucket", 404, Bucket=unique_bucket_name("nb"),
                        Delete={"Objects": [{"Key": "a"}]})


# ---- CopyObject ---------------------------------------------------------------------------------
def test_copy_object_copy_directive_keeps_metadata(s3, bucket):
    data = payload(300 * KiB, seed=7)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="image/png",
                  Metadata={"origin": "camera"}, CacheControl="no-store")
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["CopyObjectResult"]["ETag"] == etag_of(data)
    assert resp["CopyObjectResult"]["LastModified"]
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"origin": "camera"}
    assert got["CacheControl"] == "no-store"
    # The copy is independent of its source.
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


def test_copy_object_replace_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain",
                  Metadata={"old": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"new": "2"},
                   ContentType="application/x-new")
    got = s3.head_object(Bucket=bucket, Key="dst")
    assert got["Metadata"] == {"new": "2"}
    assert got["ContentType"] == "application/x-new"
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"old": "1"}


def test_copy_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"me", Metadata={"v": "1"})
    # Without REPLACE, S3 refuses a copy that changes nothing.
    assert_client_error(s3.copy_object, "InvalidRequest", 400, Bucket=bucket, Key="self",
                        CopySource={"Bucket": bucket, "Key": "self"})
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"v": "2"}
    assert got["Body"].read() == b"me"


def test_copy_across_buckets_and_odd_keys(s3, bucket):
    other = unique_bucket_name("copy-dst")
    s3.create_bucket(Bucket=other)
    try:
        data = payload(6 * MiB + 123, seed=11)  # more than one chunk
        src_key = "dir with space/ünïcode+plus"
        s3.put_object(Bucket=bucket, Key=src_key, Body=data)
        s3.copy_object(Bucket=other, Key="copied/" + src_key,
                       CopySource={"Bucket": bucket, "Key": src_key})
        got = s3.get_object(Bucket=other, Key="copied/" + src_key)
        assert got["Body"].read() == data
        assert got["ETag"] == etag_of(data)
        s3.delete_object(Bucket=other, Key="copied/" + src_key)
    finally:
        s3.delete_bucket(Bucket=other)


def test_copy_missing_source(s3, bucket):
    assert_client_error(s3.copy_object, "NoSuchKey", 404, Bucket=bucket, Key="dst",
                        CopySource={"Bucket": bucket, "Key": "missing"})
    assert_client_error(s3.copy_object, "NoSuchBucket", 404, Bucket=bucket, Key="dst",
                        CopySource={"Bucket": unique_bucket_name("none"), "Key": "missing"})
    assert not object_exists(s3, bucket, "dst")


def test_copy_source_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"conditional")
    head = s3.head_object(Bucket=bucket, Key="src")
    etag = head["ETag"]
    past = head["LastModified"] - datetime.timedelta(days=1)
    future = head["LastModified"] + datetime.timedelta(days=1)
    src = {"Bucket": bucket, "Key": "src"}
    fails = [dict(CopySourceIfMatch='"0123456789abcdef0123456789abcdef"'),
             dict(CopySourceIfNoneMatch=etag),
             dict(CopySourceIfModifiedSince=future),
             dict(CopySourceIfUnmodifiedSince=past)]
    for cond in fails:
        assert_client_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="dst",
                            CopySource=src, **cond)
        assert not object_exists(s3, bucket, "dst"), cond
    passes = [dict(CopySourceIfMatch=etag),
              dict(CopySourceIfNoneMatch='"0123456789abcdef0123456789abcdef"'),
              dict(CopySourceIfModifiedSince=past),
              dict(CopySourceIfUnmodifiedSince=future)]
    for i, cond in enumerate(passes):
        s3.copy_object(Bucket=bucket, Key=f"dst{i}", CopySource=src, **cond)
        assert s3.get_object(Bucket=bucket, Key=f"dst{i}")["Body"].read() == b"conditional"


# ---- Range GET ----------------------------------------------------------------------------------
def _range_get(s3, bucket, key, rng):
    resp = s3.get_object(Bucket=bucket, Key=key, Range=rng)
    return resp, resp["Body"].read()


def test_range_get(s3, bucket):
    data = payload(1000, seed=3)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    cases = {"bytes=0-9": (0, 9), "bytes=10-": (10, 999), "bytes=-5": (995, 999),
             "bytes=990-2000": (990, 999), "bytes=0-0": (0, 0), "bytes=999-999": (999, 999),
             "bytes=-2000": (0, 999)}
    for rng, (first, last) in cases.items():
        resp, body = _range_get(s3, bucket, "r", rng)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert body == data[first:last + 1], rng
        assert resp["ContentLength"] == last - first + 1, rng
        assert resp["ContentRange"] == f"bytes {first}-{last}/1000", rng
    for rng in ("bytes=1000-", "bytes=5000-6000"):
        resp = assert_client_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="r",
                                   Range=rng)
    resp = s3.head_object(Bucket=bucket, Key="r", Range="bytes=100-199")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert resp["ContentLength"] == 100


def test_range_get_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert_client_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="empty",
                        Range="bytes=0-0")


def test_range_get_across_chunks(s3, bucket):
    data = payload(13 * MiB + 17, seed=5)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    for first, last in [(4 * MiB - 100, 4 * MiB + 100), (MiB, 9 * MiB), (8 * MiB - 1, 8 * MiB),
                        (13 * MiB, 13 * MiB + 16), (0, 13 * MiB + 16)]:
        resp, body = _range_get(s3, bucket, "big", f"bytes={first}-{last}")
        assert body == data[first:last + 1], (first, last)
        assert resp["ContentRange"] == f"bytes {first}-{last}/{len(data)}"


# ---- Conditional requests -----------------------------------------------------------------------
def test_conditional_get_and_head(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional body")
    head = s3.head_object(Bucket=bucket, Key="c")
    etag = head["ETag"]
    past = head["LastModified"] - datetime.timedelta(days=1)
    future = head["LastModified"] + datetime.timedelta(days=1)
    other = '"ffffffffffffffffffffffffffffffff"'
    for name in ("get_object", "head_object"):
        op = getattr(s3, name)
        # A HEAD answer has no body, so boto3 names its error after the status.
        code412 = "PreconditionFailed" if name == "get_object" else "412"
        assert_client_error(op, code412, 412, Bucket=bucket, Key="c", IfMatch=other)
        assert_client_error(op, code412, 412, Bucket=bucket, Key="c", IfUnmodifiedSince=past)
        assert_client_error(op, "304", 304, Bucket=bucket, Key="c", IfNoneMatch=etag)
        assert_client_error(op, "304", 304, Bucket=bucket, Key="c", IfModifiedSince=future)
        assert_client_error(op, "304", 304, Bucket=bucket, Key="c", IfNoneMatch="*")
        for cond in (dict(IfMatch=etag), dict(IfMatch="*"), dict(IfNoneMatch=other),
                     dict(IfModifiedSince=past), dict(IfUnmodifiedSince=future),
                     # If-Match true wins over If-Unmodified-Since false (RFC 7232 / S3).
                     dict(IfMatch=etag, IfUnmodifiedSince=past),
                     # If-None-Match false wins over If-Modified-Since true -> 304 below;
                     # If-None-Match true and If-Modified-Since false -> 304 as well in S3,
                     # so only the all-true combination is checked here.
                     dict(IfNoneMatch=other, IfModifiedSince=past)):
            resp = op(Bucket=bucket, Key="c", **cond)
            assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200, cond
            if name == "get_object":
                assert resp["Body"].read() == b"conditional body"
    assert_client_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfNoneMatch=etag,
                        IfModifiedSince=past)
    # Conditions on a missing key: 404 first.
    assert_client_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="missing",
                        IfMatch=etag)


def test_put_if_none_match_star(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "inm")
    resp = raw.request("PUT", path, headers={"If-None-Match": "*"}, body=b"first")
    assert resp.status == 200, resp
    resp = raw.request("PUT", path, headers={"If-None-Match": "*"}, body=b"second")
    assert_raw_error(resp, "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"first"
    # Once deleted, the key can be created again under the same condition.
    s3.delete_object(Bucket=bucket, Key="inm")
    resp = raw.request("PUT", path, headers={"If-None-Match": "*"}, body=b"third")
    assert resp.status == 200, resp
    assert s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"third"


# ---- Content-MD5 --------------------------------------------------------------------------------
def test_content_md5_accepted(s3, bucket):
    data = payload(200 * KiB, seed=9)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=md5)
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == data


def test_content_md5_mismatch_stores_nothing(s3, bucket):
    data = payload(200 * KiB, seed=10)
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    assert_client_error(s3.put_object, "BadDigest", 400, Bucket=bucket, Key="md5", Body=data,
                        ContentMD5=wrong)
    assert not object_exists(s3, bucket, "md5")
    # An existing object is not replaced by a failed upload.
    s3.put_object(Bucket=bucket, Key="md5", Body=b"old")
    assert_client_error(s3.put_object, "BadDigest", 400, Bucket=bucket, Key="md5", Body=data,
                        ContentMD5=wrong)
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == b"old"


def test_content_md5_malformed(s3, bucket):
    assert_client_error(s3.put_object, "InvalidDigest", 400, Bucket=bucket, Key="md5bad",
                        Body=b"data", ContentMD5="not-base64!")
    assert not object_exists(s3, bucket, "md5bad")


def test_bad_payload_sha256_stores_nothing(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "sha")
    resp = raw.request("PUT", path, body=b"actual body",
                       payload_hash=hashlib.sha256(b"another body").hexdigest())
    assert_raw_error(resp, "XAmzContentSHA256Mismatch", 400)
    assert not object_exists(s3, bucket, "sha")
