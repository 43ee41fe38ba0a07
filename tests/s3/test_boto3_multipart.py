"""boto3 multipart uploads against a real `granary server`: create, upload parts, list parts and
uploads, complete, abort, the error cases S3 defines, UploadPartCopy and boto3's managed
transfers."""
import hashlib
import io

import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from s3_checks import assert_client_error, object_exists, payload

MiB = 1024 * 1024


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload_parts(s3, bucket, key, upload_id, parts, first=1):
    done = []
    for i, data in enumerate(parts, start=first):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=i, Body=data)
        assert resp["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        done.append({"PartNumber": i, "ETag": resp["ETag"]})
    return done


@pytest.fixture(scope="module")
def five_mib_parts():
    return [payload(5 * MiB, seed=100), payload(5 * MiB, seed=101), payload(MiB + 7, seed=102)]


def test_multipart_full_cycle(s3, bucket, five_mib_parts):
    key = "mp/obj ü"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-tar",
                                    Metadata={"kind": "archive"}, CacheControl="max-age=60")
    upload_id = up["UploadId"]
    assert up["Bucket"] == bucket and up["Key"] == key and upload_id
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]
    assert uploads[0]["Initiated"]

    done = upload_parts(s3, bucket, key, upload_id, five_mib_parts)
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == \
        [(d["PartNumber"], d["ETag"], len(b)) for d, b in zip(done, five_mib_parts)]
    assert listed["IsTruncated"] is False
    assert all(p["LastModified"] for p in listed["Parts"])
    # Nothing is visible before completion.
    assert not object_exists(s3, bucket, key)

    resp = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": done})
    assert resp["ETag"] == multipart_etag(five_mib_parts)
    assert resp["ETag"].endswith('-3"')
    assert resp["Key"] == key and resp["Bucket"] == bucket
    data = b"".join(five_mib_parts)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ETag"] == resp["ETag"]
    assert got["ContentLength"] == len(data)
    assert got["ContentType"] == "application/x-tar"
    assert got["Metadata"] == {"kind": "archive"}
    assert got["CacheControl"] == "max-age=60"
    assert got["Body"].read() == data
    # A range across the part boundary.
    rng = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert rng["Body"].read() == data[5 * MiB - 10:5 * MiB + 10]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [(key, len(data), resp["ETag"])]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert_client_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key=key,
                        UploadId=upload_id)


def test_multipart_reupload_part_and_gaps(s3, bucket, five_mib_parts):
    key = "gaps"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1,
                        Body=b"stale" * 1000)
    p1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1,
                        Body=five_mib_parts[0])
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2,
                   Body=five_mib_parts[1])
    p7 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=7,
                        Body=five_mib_parts[2])
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2, 7]
    assert parts[0]["Size"] == 5 * MiB
    # Part numbers need not be contiguous and unused parts are dropped.
    resp = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]},
                                   {"PartNumber": 7, "ETag": p7["ETag"]}]})
    assert resp["ETag"] == multipart_etag([five_mib_parts[0], five_mib_parts[2]])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == \
        five_mib_parts[0] + five_mib_parts[2]


def test_list_parts_pagination(s3, bucket):
    key = "many-parts"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for i in range(1, 8):
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=i, Body=b"p%d" % i)
    page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=3)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2, 3]
    assert page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 3
    page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=3,
                         PartNumberMarker=3)
    assert [p["PartNumber"] for p in page["Parts"]] == [4, 5, 6]
    pages = list(s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key=key, UploadId=upload_id, PaginationConfig={"PageSize": 2}))
    assert [p["PartNumber"] for pg in pages for p in pg["Parts"]] == list(range(1, 8))
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_wrong_part_order(s3, bucket, five_mib_parts):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="order")["UploadId"]
    done = upload_parts(s3, bucket, "order", upload_id, five_mib_parts[:2])
    assert_client_error(s3.complete_multipart_upload, {"InvalidPartOrder", "InvalidPart"}, 400,
                        Bucket=bucket, Key="order", UploadId=upload_id,
                        MultipartUpload={"Parts": [done[1], done[0]]})
    assert not object_exists(s3, bucket, "order")
    # The upload is still there and can be completed correctly.
    resp = s3.complete_multipart_upload(Bucket=bucket, Key="order", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})
    assert resp["ETag"] == multipart_etag(five_mib_parts[:2])


def test_invalid_part(s3, bucket, five_mib_parts):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="invalid")["UploadId"]
    done = upload_parts(s3, bucket, "invalid", upload_id, five_mib_parts[:2])
    bad_etag = [done[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]
    missing = [done[0], done[1], {"PartNumber": 3, "ETag": done[1]["ETag"]}]
    for parts in (bad_etag, missing):
        assert_client_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket,
                            Key="invalid", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert not object_exists(s3, bucket, "invalid")
    s3.abort_multipart_upload(Bucket=bucket, Key="invalid", UploadId=upload_id)


def test_part_too_small(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    done = upload_parts(s3, bucket, "small", upload_id, [b"a" * MiB, b"b" * MiB])
    assert_client_error(s3.complete_multipart_upload, "EntityTooSmall", 400, Bucket=bucket,
                        Key="small", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert not object_exists(s3, bucket, "small")
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload_id)


def test_single_small_part_is_fine(s3, bucket):
    """The last part may be small, so a one-part upload of 1 byte completes."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="one")["UploadId"]
    done = upload_parts(s3, bucket, "one", upload_id, [b"x"])
    resp = s3.complete_multipart_upload(Bucket=bucket, Key="one", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})
    assert resp["ETag"] == multipart_etag([b"x"])
    assert s3.get_object(Bucket=bucket, Key="one")["Body"].read() == b"x"


def test_invalid_part_numbers(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    for number in (0, 10001):
        assert_client_error(s3.upload_part, "InvalidArgument", 400, Bucket=bucket, Key="pn",
                            UploadId=upload_id, PartNumber=number, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="pn", UploadId=upload_id)


def test_abort(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    done = upload_parts(s3, bucket, "aborted", upload_id, [b"x" * 1000])
    resp = s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert_client_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="aborted",
                        UploadId=upload_id, PartNumber=2, Body=b"y")
    assert_client_error(s3.complete_multipart_upload, "NoSuchUpload", 404, Bucket=bucket,
                        Key="aborted", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert_client_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key="aborted",
                        UploadId=upload_id)
    assert_client_error(s3.abort_multipart_upload, "NoSuchUpload", 404, Bucket=bucket,
                        Key="aborted", UploadId=upload_id)
    assert not object_exists(s3, bucket, "aborted")


def test_unknown_upload_id(s3, bucket):
    assert_client_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="k",
                        UploadId="no-such-upload-id", PartNumber=1, Body=b"x")
    # An upload id is bound to its key.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="bound")["UploadId"]
    assert_client_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="other-key",
                        UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="bound", UploadId=upload_id)


def test_list_multipart_uploads(s3, bucket):
    ids = {}
    for key in ("u/a", "u/a", "u/b", "v/c", "w"):
        ids.setdefault(key, []).append(
            s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    resp = s3.list_multipart_uploads(Bucket=bucket)
    listed = [(u["Key"], u["UploadId"]) for u in resp["Uploads"]]
    assert sorted(listed) == sorted((k, i) for k, v in ids.items() for i in v)
    assert [k for k, _ in listed] == ["u/a", "u/a", "u/b", "v/c", "w"]
    assert len(set(i for _, i in listed)) == 5
    resp = s3.list_multipart_uploads(Bucket=bucket, Prefix="u/")
    assert sorted(u["Key"] for u in resp["Uploads"]) == ["u/a", "u/a", "u/b"]
    resp = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in resp.get("Uploads", [])] == ["w"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["u/", "v/"]
    resp = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert len(resp["Uploads"]) == 2 and resp["IsTruncated"] is True
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=resp["NextKeyMarker"],
                                     UploadIdMarker=resp["NextUploadIdMarker"])
    assert [(u["Key"], u["UploadId"]) for u in resp["Uploads"] + rest["Uploads"]] == listed
    for key, upload_ids in ids.items():
        for upload_id in upload_ids:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_two_uploads_same_key_last_complete_wins(s3, bucket, five_mib_parts):
    first = s3.create_multipart_upload(Bucket=bucket, Key="race")["UploadId"]
    second = s3.create_multipart_upload(Bucket=bucket, Key="race")["UploadId"]
    d2 = upload_parts(s3, bucket, "race", second, [b"second"])
    d1 = upload_parts(s3, bucket, "race", first, [b"first"])
    s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=second,
                                 MultipartUpload={"Parts": d2})
    s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=first,
                                 MultipartUpload={"Parts": d1})
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == b"first"


def test_upload_part_copy(s3, bucket):
    source = payload(12 * MiB, seed=200)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "source"},
                             CopySourceRange=f"bytes=0-{6 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "source"},
                             CopySourceRange=f"bytes={5 * MiB}-{12 * MiB - 1}")
    r3 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=3,
                        Body=b"tail")
    parts = [{"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]},
             {"PartNumber": 3, "ETag": r3["ETag"]}]
    assert parts[0]["ETag"] == '"%s"' % hashlib.md5(source[:6 * MiB]).hexdigest()
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    expected = source[:6 * MiB] + source[5 * MiB:] + b"tail"
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == expected
    # A range past the end of the source.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="bad-range")["UploadId"]
    assert_client_error(s3.upload_part_copy, "InvalidRange", 416, Bucket=bucket, Key="bad-range",
                        UploadId=upload_id, PartNumber=1,
                        CopySource={"Bucket": bucket, "Key": "source"},
                        CopySourceRange=f"bytes={12 * MiB}-{13 * MiB}")
    s3.abort_multipart_upload(Bucket=bucket, Key="bad-range", UploadId=upload_id)


def test_content_md5_on_part(s3, bucket):
    import base64
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="md5part")["UploadId"]
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert_client_error(s3.upload_part, "BadDigest", 400, Bucket=bucket, Key="md5part",
                        UploadId=upload_id, PartNumber=1, Body=b"data", ContentMD5=wrong)
    assert s3.list_parts(Bucket=bucket, Key="md5part", UploadId=upload_id).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="md5part", UploadId=upload_id)


def test_managed_transfer_upload_download(s3, bucket, tmp_path):
    data = payload(18 * MiB + 5, seed=300)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                            max_concurrency=3)
    s3.upload_fileobj(io.BytesIO(data), bucket, "managed", Config=config)
    head = s3.head_object(Bucket=bucket, Key="managed")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-4"')
    out = tmp_path / "downloaded"
    s3.download_file(bucket, "managed", str(out), Config=config)
    assert out.read_bytes() == data


def test_complete_with_no_parts(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="none")["UploadId"]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        s3.complete_multipart_upload(Bucket=bucket, Key="none", UploadId=upload_id,
                                     MultipartUpload={"Parts": []})
    assert excinfo.value.response["Error"]["Code"] in ("MalformedXML", "InvalidRequest")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not object_exists(s3, bucket, "none")
    s3.abort_multipart_upload(Bucket=bucket, Key="none", UploadId=upload_id)
