"""Authentication and addressing against a real `granary server`: presigned GET and PUT URLs,
expired and tampered URLs, anonymous requests, wrong secrets and keys, clock skew, virtual-host
style addressing, and aws-chunked streaming uploads (signed chunks, unsigned with trailers,
signed with trailers) from boto3 and from hand-signed requests."""
import hashlib
import urllib.error
import urllib.parse
import urllib.request

import botocore
import botocore.exceptions
import pytest

from s3_checks import assert_client_error, assert_raw_error, object_exists, payload
import s3_raw

KiB = 1024
MiB = 1024 * 1024


def urlopen(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_health_needs_no_credentials(server):
    status, _ = urlopen(server.endpoint + "/health")
    assert status == 200


# ---- Presigned URLs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3v4(server):
    """Debian's botocore presigns S3 URLs with Signature Version 2 unless told otherwise; Granary
    accepts only Version 4."""
    return server.boto3_client(signature_version="s3v4")


def test_presigned_get_and_put(s3v4, bucket):
    s3 = s3v4
    key = "presigned/ü and space+plus"
    data = payload(300 * KiB, seed=1)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=300)
    status, body = urlopen(put_url, method="PUT", data=data)
    assert status == 200, body
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=300)
    status, body = urlopen(get_url)
    assert status == 200 and body == data
    # A presigned GET carries its own Range header unsigned.
    status, body = urlopen(get_url, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    head_url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": key})
    status, _ = urlopen(head_url, method="HEAD")
    assert status == 200


def test_presigned_url_from_independent_signer(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="indep", Body=b"independent")
    status, body = urlopen(raw.presigned_url("GET", s3_raw.key_path(bucket, "indep")))
    assert status == 200 and body == b"independent"


def test_presigned_url_expired(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"x")
    url = raw.presigned_url("GET", s3_raw.key_path(bucket, "old"), expires=60,
                            amz_date=s3_raw.amz_now(-7200))
    status, body = urlopen(url)
    assert status == 403 and s3_raw.error_code(body) == "AccessDenied", body
    url = raw.presigned_url("PUT", s3_raw.key_path(bucket, "new"), expires=60,
                            amz_date=s3_raw.amz_now(-7200))
    status, body = urlopen(url, method="PUT", data=b"late")
    assert status == 403 and s3_raw.error_code(body) == "AccessDenied", body
    assert not object_exists(s3, bucket, "new")


def test_presigned_url_tampered(s3v4, bucket):
    s3 = s3v4
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
    tampered = url.replace(f"/{bucket}/a?", f"/{bucket}/b?")
    assert tampered != url
    status, body = urlopen(tampered)
    assert status == 403 and s3_raw.error_code(body) == "SignatureDoesNotMatch", body
    # Changing the expiry invalidates the signature as well.
    tampered = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601")
    assert tampered != url
    status, body = urlopen(tampered)
    assert status == 403 and s3_raw.error_code(body) == "SignatureDoesNotMatch", body


def test_presigned_url_signature_v2_refused_clearly(s3, bucket):
    s3.put_object(Bucket=bucket, Key="v2", Body=b"v2")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2"})
    assert "AWSAccessKeyId=" in url  # botocore's default for S3: Signature Version 2
    status, body = urlopen(url)
    assert status in (400, 403), body
    assert s3_raw.error_code(body) in ("InvalidRequest", "AccessDenied", "NotImplemented"), body


def test_presigned_url_expiry_too_long(raw, bucket):
    url = raw.presigned_url("GET", s3_raw.key_path(bucket, "x"), expires=604801)
    status, body = urlopen(url)
    assert status == 400 and s3_raw.error_code(body) == "AuthorizationQueryParametersError", body


# ---- Refused credentials ------------------------------------------------------------------------
def test_anonymous_requests_refused(server, s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    anonymous = server.boto3_client(signature_version=botocore.UNSIGNED)
    assert_client_error(anonymous.list_buckets, "AccessDenied", 403)
    assert_client_error(anonymous.get_object, "AccessDenied", 403, Bucket=bucket, Key="private")
    assert_client_error(anonymous.list_objects_v2, "AccessDenied", 403, Bucket=bucket)
    assert_client_error(anonymous.put_object, "AccessDenied", 403, Bucket=bucket, Key="anon",
                        Body=b"x")
    assert_client_error(anonymous.delete_object, "AccessDenied", 403, Bucket=bucket,
                        Key="private")
    assert_client_error(anonymous.create_bucket, "AccessDenied", 403, Bucket=bucket + "-anon")
    resp = raw.request("GET", s3_raw.key_path(bucket, "private"), sign=False)
    assert_raw_error(resp, "AccessDenied", 403)
    assert b"secret" not in resp.body
    assert not object_exists(s3, bucket, "anon")
    assert s3.get_object(Bucket=bucket, Key="private")["Body"].read() == b"secret"


def test_wrong_secret_refused(server, s3, bucket):
    bad = server.boto3_client(secret_key="not-the-secret-key-at-all-0123456789")
    assert_client_error(bad.list_buckets, "SignatureDoesNotMatch", 403)
    assert_client_error(bad.put_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="w",
                        Body=b"x")
    assert_client_error(bad.get_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="w")
    assert not object_exists(s3, bucket, "w")


def test_unknown_access_key_refused(server, s3, bucket):
    bad = server.boto3_client(access_key="AKIANOSUCHKEY0000000")
    assert_client_error(bad.list_buckets, "InvalidAccessKeyId", 403)
    assert_client_error(bad.put_object, "InvalidAccessKeyId", 403, Bucket=bucket, Key="u",
                        Body=b"x")
    assert not object_exists(s3, bucket, "u")


def test_clock_skew_refused(raw, bucket):
    resp = raw.request("GET", "/" + bucket, amz_date=s3_raw.amz_now(-3600))
    assert_raw_error(resp, "RequestTimeTooSkewed", 403)
    resp = raw.request("GET", "/" + bucket, amz_date=s3_raw.amz_now(+3600))
    assert_raw_error(resp, "RequestTimeTooSkewed", 403)
    # Within 15 minutes is fine.
    assert raw.request("GET", "/" + bucket, amz_date=s3_raw.amz_now(-300)).status == 200


def test_malformed_authorization_header(raw, bucket):
    for value in ("AWS4-HMAC-SHA256 garbage",
                  "AWS4-HMAC-SHA256 Credential=GRANARYTESTACCESSKEY/20240101/us-east-1/s3,"
                  " SignedHeaders=host, Signature=abc",
                  "AWS4-HMAC-SHA256 Credential=x/y, Signature=00"):
        resp = raw.request("GET", "/" + bucket, sign=False, headers={
            "Authorization": value, "x-amz-date": s3_raw.amz_now(),
            "x-amz-content-sha256": s3_raw.EMPTY_SHA256})
        assert resp.status in (400, 403), resp
        assert resp.error_code in ("AuthorizationHeaderMalformed", "InvalidArgument",
                                   "SignatureDoesNotMatch", "AccessDenied",
                                   "InvalidAccessKeyId"), resp


def test_signature_v2_not_accepted(raw, bucket):
    resp = raw.request("GET", "/" + bucket, sign=False, headers={
        "Authorization": "AWS GRANARYTESTACCESSKEY:c2lnbmF0dXJlCg==",
        "Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert resp.status in (400, 403, 501), resp
    assert resp.error_code, resp


def test_unsigned_header_change_detected(raw, bucket):
    """A signed header altered after signing (Content-Type here) is refused."""
    sig = raw.signed_headers("PUT", s3_raw.key_path(bucket, "h"),
                             headers={"Content-Type": "text/plain"}, body=b"x")
    headers = dict(sig.headers)
    headers["Content-Type"] = "text/html"
    resp = raw.send("PUT", s3_raw.key_path(bucket, "h"), headers, b"x")
    assert_raw_error(resp, "SignatureDoesNotMatch", 403)


# ---- Virtual-host style -------------------------------------------------------------------------
def virtual_client(server):
    """boto3 with virtual-host addressing on http://localhost:PORT. <bucket>.localhost does not
    resolve on every machine, so each request is sent to 127.0.0.1 with the Host header boto3
    signed ("<bucket>.localhost:PORT")."""
    s3 = server.boto3_client(endpoint=f"http://localhost:{server.s3_port}",
                             addressing_style="virtual")
    hosts = []

    def redirect(request, **kwargs):
        parts = urllib.parse.urlsplit(request.url)
        hosts.append(parts.netloc)
        request.headers["Host"] = parts.netloc
        request.url = urllib.parse.urlunsplit(parts._replace(
            netloc=f"127.0.0.1:{server.s3_port}"))

    s3.meta.events.register("before-send.s3", redirect)
    return s3, hosts


def test_virtual_host_boto3(server, s3, bucket):
    vs3, hosts = virtual_client(server)
    data = payload(2 * MiB + 5, seed=2)
    vs3.put_object(Bucket=bucket, Key="v/key ü", Body=data, Metadata={"via": "virtual"})
    assert hosts[-1] == f"{bucket}.localhost:{server.s3_port}"
    got = vs3.get_object(Bucket=bucket, Key="v/key ü")
    assert got["Body"].read() == data and got["Metadata"] == {"via": "virtual"}
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket=bucket)["Contents"]] == ["v/key ü"]
    # The same object through path style.
    assert s3.get_object(Bucket=bucket, Key="v/key ü")["Body"].read() == data
    up = vs3.create_multipart_upload(Bucket=bucket, Key="v/mp")
    part = vs3.upload_part(Bucket=bucket, Key="v/mp", UploadId=up["UploadId"], PartNumber=1,
                           Body=b"virtual part")
    vs3.complete_multipart_upload(Bucket=bucket, Key="v/mp", UploadId=up["UploadId"],
                                  MultipartUpload={"Parts": [{"PartNumber": 1,
                                                              "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="v/mp")["Body"].read() == b"virtual part"
    vs3.delete_object(Bucket=bucket, Key="v/key ü")
    assert not object_exists(s3, bucket, "v/key ü")
    vs3.head_bucket(Bucket=bucket)
    assert all(h.startswith(bucket + ".localhost") for h in hosts)


def test_virtual_host_create_and_delete_bucket(server, s3):
    from s3_checks import unique_bucket_name
    vs3, hosts = virtual_client(server)
    name = unique_bucket_name("vhost")
    vs3.create_bucket(Bucket=name)
    assert hosts[-1].startswith(name + ".localhost")
    s3.head_bucket(Bucket=name)
    vs3.delete_bucket(Bucket=name)
    assert_client_error(s3.head_bucket, "404", 404, Bucket=name)


def test_virtual_host_raw(server, s3, raw, bucket):
    for host in (f"{bucket}.localhost:{server.s3_port}", f"{bucket}.localhost"):
        resp = raw.request("PUT", "/raw/key", body=b"raw-vhost", host_header=host)
        assert resp.status == 200, (host, resp)
        assert s3.get_object(Bucket=bucket, Key="raw/key")["Body"].read() == b"raw-vhost"
        resp = raw.request("GET", "/", query=[("list-type", "2")], host_header=host)
        assert resp.status == 200, resp
        assert [e.text for e in s3_raw.find_all(resp.xml(), "Key")] == ["raw/key"]
        assert raw.request("DELETE", "/raw/key", host_header=host).status == 204
        assert not object_exists(s3, bucket, "raw/key")
    # Path style still works with Host "localhost:PORT" and "127.0.0.1:PORT".
    for host in (f"localhost:{server.s3_port}", f"127.0.0.1:{server.s3_port}"):
        resp = raw.request("PUT", s3_raw.key_path(bucket, "p"), body=b"p", host_header=host)
        assert resp.status == 200, (host, resp)


def test_virtual_host_missing_bucket(server, raw):
    resp = raw.request("GET", "/", host_header=f"no-such-bucket-vh.localhost:{server.s3_port}")
    assert_raw_error(resp, "NoSuchBucket", 404)


# ---- aws-chunked streaming uploads --------------------------------------------------------------
def force_trailer_checksum(s3):
    """Debian's botocore sends flexible checksums in a trailer (aws-chunked,
    STREAMING-UNSIGNED-PAYLOAD-TRAILER, Transfer-Encoding: chunked) only over https; this hook
    makes it do so over http too, the way newer SDKs do by default."""
    def to_trailer(params, **kwargs):
        algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"
    s3.meta.events.register("before-call.s3.PutObject", to_trailer)
    s3.meta.events.register("before-call.s3.UploadPart", to_trailer)
    sent = []
    s3.meta.events.register("before-send.s3", lambda request, **kw: sent.append(
        dict(request.headers)))
    return sent


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256", "SHA1"])
def test_boto3_streaming_trailer_checksum(server, s3, bucket, algorithm):
    client = server.boto3_client()
    sent = force_trailer_checksum(client)
    for size in (0, 100 * KiB, 3 * MiB + 1):
        data = payload(size, seed=size + 1)
        key = f"trailer-{algorithm}-{size}"
        client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algorithm)
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v
                   for k, v in sent[-1].items()}
        assert headers["x-amz-content-sha256"] == s3_raw.STREAMING_UNSIGNED_TRAILER
        assert headers["content-encoding"] == "aws-chunked"
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == data
        assert got["ContentLength"] == size
        assert "aws-chunked" not in got.get("ContentEncoding", "")
        assert got["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()


def test_boto3_streaming_upload_part(server, s3, bucket):
    client = server.boto3_client()
    force_trailer_checksum(client)
    parts = [payload(5 * MiB, seed=41), payload(1000, seed=42)]
    up = client.create_multipart_upload(Bucket=bucket, Key="mp-trailer", ChecksumAlgorithm="CRC32")
    done = []
    for i, data in enumerate(parts, start=1):
        r = client.upload_part(Bucket=bucket, Key="mp-trailer", UploadId=up["UploadId"],
                               PartNumber=i, Body=data, ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    client.complete_multipart_upload(Bucket=bucket, Key="mp-trailer", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="mp-trailer")["Body"].read() == b"".join(parts)


def chunked_put(raw, bucket, key, data, mode, chunk_size=64 * KiB, trailers=None,
                tamper=None, decoded_length=None, extra_headers=None):
    """A hand-made aws-chunked PUT. `tamper(body) -> body` breaks it after signing."""
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data) if decoded_length is None
                                                   else decoded_length)}
    if trailers is not None:
        headers["x-amz-trailer"] = ",".join(n for n, _ in trailers)
    headers.update(extra_headers or {})
    path = s3_raw.key_path(bucket, key)
    # Signed modes need the seed signature before the body is built; Content-Length is part of
    # the signature, so the body length is computed from a dry run with the same framing.
    probe = raw.signed_headers("PUT", path, headers=headers, payload_hash=mode)
    if mode == s3_raw.STREAMING_UNSIGNED_TRAILER:
        body = s3_raw.unsigned_chunked_body(data, chunk_size, trailers or ())
    else:
        body = s3_raw.signed_chunked_body(probe, data, chunk_size, trailers)
    headers["Content-Length"] = str(len(body))
    sig = raw.signed_headers("PUT", path, headers=headers, payload_hash=mode,
                             amz_date=probe.amz_date)
    if mode != s3_raw.STREAMING_UNSIGNED_TRAILER:
        body = s3_raw.signed_chunked_body(sig, data, chunk_size, trailers)
    if tamper:
        body = tamper(body)
    return raw.send("PUT", path, sig.headers, body)


@pytest.mark.parametrize("size", [0, 1, 64 * KiB, 200 * KiB + 3, 5 * MiB + 7])
def test_raw_streaming_signed(s3, raw, bucket, size):
    data = payload(size, seed=size + 5)
    resp = chunked_put(raw, bucket, f"signed-{size}", data, s3_raw.STREAMING_SIGNED)
    assert resp.status == 200, resp
    got = s3.get_object(Bucket=bucket, Key=f"signed-{size}")
    assert got["Body"].read() == data
    assert "aws-chunked" not in got.get("ContentEncoding", "")


def test_raw_streaming_signed_with_content_encoding(s3, raw, bucket):
    data = b"gzipped bytes, supposedly"
    resp = chunked_put(raw, bucket, "enc", data, s3_raw.STREAMING_SIGNED,
                       extra_headers={"Content-Encoding": "aws-chunked,gzip"})
    assert resp.status == 200, resp
    got = s3.get_object(Bucket=bucket, Key="enc")
    assert got["Body"].read() == data
    assert got["ContentEncoding"] == "gzip"


def test_raw_streaming_signed_trailer(s3, raw, bucket):
    data = payload(300 * KiB + 11, seed=77)
    resp = chunked_put(raw, bucket, "signed-trailer", data, s3_raw.STREAMING_SIGNED_TRAILER,
                       trailers=[("x-amz-checksum-crc32", s3_raw.crc32_b64(data))])
    assert resp.status == 200, resp
    assert s3.get_object(Bucket=bucket, Key="signed-trailer")["Body"].read() == data


@pytest.mark.parametrize("name,func", [("x-amz-checksum-crc32", s3_raw.crc32_b64),
                                       ("x-amz-checksum-sha256", s3_raw.sha256_b64)])
def test_raw_streaming_unsigned_trailer(s3, raw, bucket, name, func):
    data = payload(150 * KiB + 1, seed=78)
    resp = chunked_put(raw, bucket, "unsigned-trailer", data, s3_raw.STREAMING_UNSIGNED_TRAILER,
                       trailers=[(name, func(data))])
    assert resp.status == 200, resp
    assert s3.get_object(Bucket=bucket, Key="unsigned-trailer")["Body"].read() == data


def test_raw_streaming_bad_chunk_signature_stores_nothing(s3, raw, bucket):
    data = payload(200 * KiB, seed=79)

    def flip_byte_in_second_chunk(body):
        at = body.index(b"\r\n", 64 * KiB + 100) + 2 + 1000  # inside chunk 2's data
        return body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]

    resp = chunked_put(raw, bucket, "tampered", data, s3_raw.STREAMING_SIGNED,
                       tamper=flip_byte_in_second_chunk)
    assert_raw_error(resp, "SignatureDoesNotMatch", 403)
    assert not object_exists(s3, bucket, "tampered")

    def bad_first_signature(body):
        at = body.index(b"chunk-signature=") + len(b"chunk-signature=")
        digit = b"0" if body[at:at + 1] != b"0" else b"1"
        return body[:at] + digit + body[at + 1:]

    resp = chunked_put(raw, bucket, "tampered", data, s3_raw.STREAMING_SIGNED,
                       tamper=bad_first_signature)
    assert_raw_error(resp, "SignatureDoesNotMatch", 403)
    assert not object_exists(s3, bucket, "tampered")


def test_raw_streaming_bad_trailer_checksum_stores_nothing(s3, raw, bucket):
    data = payload(100 * KiB, seed=80)
    wrong = s3_raw.crc32_b64(data + b"!")
    for mode in (s3_raw.STREAMING_UNSIGNED_TRAILER, s3_raw.STREAMING_SIGNED_TRAILER):
        resp = chunked_put(raw, bucket, "bad-trailer", data, mode,
                           trailers=[("x-amz-checksum-crc32", wrong)])
        assert_raw_error(resp, "BadDigest", 400)
        assert not object_exists(s3, bucket, "bad-trailer")


def test_raw_streaming_decoded_length_mismatch(s3, raw, bucket):
    data = payload(10 * KiB, seed=81)
    resp = chunked_put(raw, bucket, "short", data, s3_raw.STREAMING_SIGNED,
                       decoded_length=len(data) + 1)
    assert resp.status == 400, resp
    assert resp.error_code in ("IncompleteBody", "InvalidRequest", "InvalidArgument"), resp
    assert not object_exists(s3, bucket, "short")


def test_raw_streaming_upload_part(s3, raw, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="chunked-mp")
    parts = [payload(5 * MiB, seed=82), payload(77, seed=83)]
    done = []
    for i, data in enumerate(parts, start=1):
        path = s3_raw.key_path(bucket, "chunked-mp")
        query = [("partNumber", str(i)), ("uploadId", up["UploadId"])]
        headers = {"Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(data))}
        probe = raw.signed_headers("PUT", path, query, headers,
                                   payload_hash=s3_raw.STREAMING_SIGNED)
        headers["Content-Length"] = str(len(s3_raw.signed_chunked_body(probe, data)))
        sig = raw.signed_headers("PUT", path, query, headers, payload_hash=s3_raw.STREAMING_SIGNED,
                                 amz_date=probe.amz_date)
        resp = raw.send("PUT", path + "?" + s3_raw.encode_query(query), sig.headers,
                        s3_raw.signed_chunked_body(sig, data))
        assert resp.status == 200, resp
        assert resp.header("etag") == '"%s"' % hashlib.md5(data).hexdigest()
        done.append({"PartNumber": i, "ETag": resp.header("etag")})
    s3.complete_multipart_upload(Bucket=bucket, Key="chunked-mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="chunked-mp")["Body"].read() == b"".join(parts)
