"""Hostile and broken input to a real `granary server`, over raw HTTP (http.client and sockets)
and hand-signed requests: malformed and oversized XML, an entity-expansion bomb, bad signatures,
invalid bucket names, keys with ".." segments, NUL, control characters and invalid UTF-8, huge
headers, broken framing, truncated bodies, wrong Content-MD5, and 10,000 idle connections held
open while a boto3 client keeps working. Every error must be a clear 4xx with an S3 <Error>
document (never a 500), and after every case the server must still answer."""
import hashlib
import resource
import selectors
import socket
import time

import pytest

from s3_checks import assert_raw_error, object_exists, payload
import s3_raw

MiB = 1024 * 1024

# 10,000 client sockets and as many on the server side: raise the soft limit before the module's
# server starts, so that it inherits the same limit.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_wanted = 30000 if _hard == resource.RLIM_INFINITY else min(_hard, 30000)
if _soft < _wanted:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_wanted, _hard))
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@pytest.fixture(autouse=True)
def still_serving(server, raw, s3):
    """After every case the server still answers, unauthenticated and signed."""
    yield
    assert server.running, "the server died; log:\n" + server.log_text()[-4000:]
    resp = raw.request("GET", "/health", sign=False)
    assert resp.status == 200, resp
    assert s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def assert_4xx_error(resp, codes=None):
    assert 400 <= resp.status < 500, resp
    assert resp.error_code, f"no S3 <Error> document: {resp!r}"
    if codes:
        assert resp.error_code in codes, resp


def delete_objects_request(raw, bucket, body, md5=True):
    headers = {"Content-Type": "application/xml"}
    if md5:
        headers["Content-MD5"] = s3_raw.md5_b64(body)
    return raw.request("POST", "/" + bucket, query=[("delete", "")], headers=headers, body=body)


# ---- Malformed XML ------------------------------------------------------------------------------
MALFORMED = [
    b"this is not xml",
    b"<Delete><Object><Key>a</Key></Object>",            # truncated
    b"<Delete><Object><Key>a</Key></Object></Wrong>",     # mismatched tag
    b"",                                                  # empty
    b"<?xml version='1.0'?>",                             # no root element
    b"<Delete><Object><Key>a</Key></Object></Delete>trailing garbage",
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_delete_objects_malformed_xml(s3, raw, bucket, body):
    s3.put_object(Bucket=bucket, Key="a", Body=b"keep")
    resp = delete_objects_request(raw, bucket, body)
    assert_raw_error(resp, {"MalformedXML", "MissingRequestBodyError"}, 400)
    assert object_exists(s3, bucket, "a")


def test_delete_objects_wrong_structure(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"keep")
    for body in (b"<Delete></Delete>",                              # no objects
                 b"<Delete><Object></Object></Delete>",             # object without a key
                 b"<NotDelete><Object><Key>a</Key></Object></NotDelete>",
                 b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"):
        resp = delete_objects_request(raw, bucket, body)
        assert_raw_error(resp, "MalformedXML", 400)
        assert object_exists(s3, bucket, "a")


def test_delete_objects_needs_content_md5(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"keep")
    body = b"<Delete><Object><Key>a</Key></Object></Delete>"
    resp = delete_objects_request(raw, bucket, body, md5=False)
    assert_raw_error(resp, {"InvalidRequest", "MissingContentMD5"}, 400)
    assert object_exists(s3, bucket, "a")
    resp = raw.request("POST", "/" + bucket, query=[("delete", "")], body=body,
                       headers={"Content-MD5": s3_raw.md5_b64(b"other")})
    assert_raw_error(resp, "BadDigest", 400)
    assert object_exists(s3, bucket, "a")
    resp = delete_objects_request(raw, bucket, body)
    assert resp.status == 200, resp
    assert not object_exists(s3, bucket, "a")


def test_xml_entity_expansion_refused(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="lol", Body=b"keep")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "lollollollollollollollollol">'
            + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">'
                       % ((98 + i,) + (97 + i,) * 10) for i in range(9))
            + b"]><Delete><Object><Key>&j;</Key></Object></Delete>")
    start = time.monotonic()
    resp = delete_objects_request(raw, bucket, bomb)
    assert time.monotonic() - start < 10
    assert_raw_error(resp, "MalformedXML", 400)
    # An external entity is not fetched either.
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b"<Delete><Object><Key>&x;</Key></Object></Delete>")
    resp = delete_objects_request(raw, bucket, xxe)
    assert_raw_error(resp, "MalformedXML", 400)
    assert b"root:" not in resp.body
    assert object_exists(s3, bucket, "lol")


def complete_request(raw, bucket, key, upload_id, body):
    return raw.request("POST", s3_raw.key_path(bucket, key), query=[("uploadId", upload_id)],
                       body=body, headers={"Content-Type": "application/xml"})


@pytest.mark.parametrize("body", MALFORMED[:5] + [
    b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>",
], ids=range(8))
def test_complete_multipart_malformed_xml(s3, raw, bucket, body):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1,
                          Body=b"part")
    resp = complete_request(raw, bucket, "mp", up["UploadId"], body)
    codes = {"MalformedXML"}
    if b"PartNumber>one" in body:
        codes.add("InvalidPart")
    if not body:
        codes.add("MissingRequestBodyError")
    assert_raw_error(resp, codes, 400)
    assert not object_exists(s3, bucket, "mp")
    # The upload survives a bad request and can still be completed.
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part"


def test_oversized_xml_body(s3, raw, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="big-xml")
    body = (b"<CompleteMultipartUpload>" + b" " * (20 * MiB) + b"</CompleteMultipartUpload>")
    try:
        resp = complete_request(raw, bucket, "big-xml", up["UploadId"], body)
    except (ConnectionResetError, BrokenPipeError):
        resp = None  # refused before the body was read: acceptable
    if resp is not None:
        assert_4xx_error(resp, {"MalformedXML", "MaxMessageLengthExceeded", "EntityTooLarge",
                                "InvalidRequest"})
    assert not object_exists(s3, bucket, "big-xml")
    s3.abort_multipart_upload(Bucket=bucket, Key="big-xml", UploadId=up["UploadId"])


# ---- Signatures ---------------------------------------------------------------------------------
def test_wrong_and_expired_signatures(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "sig")
    resp = raw.request("PUT", path, body=b"x", secret_key="wrong-secret")
    assert_raw_error(resp, "SignatureDoesNotMatch", 403)
    resp = raw.request("PUT", path, body=b"x", access_key="NOSUCHACCESSKEY")
    assert_raw_error(resp, "InvalidAccessKeyId", 403)
    resp = raw.request("PUT", path, body=b"x", amz_date=s3_raw.amz_now(-24 * 3600))
    assert_raw_error(resp, "RequestTimeTooSkewed", 403)
    url = raw.presigned_url("PUT", path, expires=1, amz_date=s3_raw.amz_now(-60))
    resp = raw.send("PUT", url.split(raw.netloc, 1)[1], {"Host": raw.netloc}, b"x")
    assert_raw_error(resp, "AccessDenied", 403)
    # A signature that is not hex, one of the wrong length.
    sig = raw.signed_headers("PUT", path, body=b"x")
    for bad in ("zz" * 32, "ab"):
        headers = dict(sig.headers)
        headers["Authorization"] = headers["Authorization"].rsplit("=", 1)[0] + "=" + bad
        resp = raw.send("PUT", path, headers, b"x")
        assert resp.status in (400, 403), resp
        assert resp.error_code in ("SignatureDoesNotMatch", "AuthorizationHeaderMalformed"), resp
    # Missing x-amz-content-sha256 on a signed request.
    headers = dict(sig.headers)
    del headers["x-amz-content-sha256"]
    resp = raw.send("PUT", path, headers, b"x")
    assert_4xx_error(resp)
    assert not object_exists(s3, bucket, "sig")


# ---- Names and keys -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Bad_Bucket", "ab", "bad!name", "-dash", "a" * 64, "a..b",
                                  "bucket%20space"])
def test_invalid_bucket_names_raw(s3, raw, name):
    resp = raw.request("PUT", "/" + name)
    assert_raw_error(resp, "InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


BAD_KEY_PATHS = {
    "dotdot-literal": "a/../b",
    "dotdot-encoded": "a/%2E%2E/b",
    "dotdot-only": "..",
    "dotdot-leading": "../escape",
    "dotdot-trailing": "a/..",
    "dot-segment": "a/./b",
    "nul": "a%00b",
    "nul-end": "key%00",
    "control": "a%01b",
    "newline": "a%0Ab",
    "invalid-utf8": "a%FFb",
    "overlong-utf8": "a%C0%AFb",
}


@pytest.mark.parametrize("raw_key", BAD_KEY_PATHS.values(), ids=BAD_KEY_PATHS.keys())
def test_bad_object_keys(s3, raw, bucket, raw_key):
    path = f"/{bucket}/{raw_key}"
    for method, body in (("PUT", b"data"), ("GET", b""), ("HEAD", b""), ("DELETE", b"")):
        resp = raw.request(method, path, body=body)
        assert resp.status == 400, (method, resp)
        if method != "HEAD":
            assert resp.error_code in ("InvalidArgument", "InvalidRequest", "InvalidObjectName",
                                       "KeyTooLongError", "InvalidURI"), (method, resp)
    resp = raw.request("POST", path, query=[("uploads", "")])
    assert resp.status == 400, resp
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # A copy from such a key is refused too.
    resp = raw.request("PUT", s3_raw.key_path(bucket, "dst"),
                       headers={"x-amz-copy-source": f"/{bucket}/{raw_key}"})
    assert resp.status in (400, 404), resp
    assert resp.error_code, resp
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_dotdot_is_not_resolved_against_the_bucket(s3, raw, bucket):
    """/bucket/x/../../other-bucket/key must not reach another bucket."""
    s3.put_object(Bucket=bucket, Key="target", Body=b"t")
    resp = raw.request("GET", f"/{bucket}/x/../target")
    assert resp.status == 400, resp
    resp = raw.request("PUT", f"/{bucket}/../{bucket}/written", body=b"w")
    assert resp.status in (400, 403, 404), resp
    assert not object_exists(s3, bucket, "written")


def test_metadata_too_large(s3, raw, bucket):
    resp = raw.request("PUT", s3_raw.key_path(bucket, "meta"), body=b"x",
                       headers={"x-amz-meta-big": "v" * 3000})
    assert_raw_error(resp, "MetadataTooLarge", 400)
    assert not object_exists(s3, bucket, "meta")


# ---- HTTP framing -------------------------------------------------------------------------------
def raw_exchange(raw, data, timeout=30):
    return s3_raw.parse_raw_response(s3_raw.raw_http(raw.host, raw.port, data, timeout=timeout))


def assert_raw_exchange_error(status_headers_body, code, status):
    got_status, _, body = status_headers_body
    assert (got_status, s3_raw.error_code(body)) == (status, code), (got_status, body)


# Every case below gets an answer. The server reads a request's header whole before it acts, so
# it can always answer a bad one; only a body that stops short while the client keeps the
# connection open gets none, until the idle timeout (120 s): the server cannot tell a slow client
# from a broken one sooner. The test_truncated_* cases close their side instead.
def test_huge_header(raw, bucket):
    sig = raw.signed_headers("GET", "/" + bucket, headers={"x-amz-meta-huge": "h" * 65536})
    head = f"GET /{bucket} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                                   sig.headers.items()) + "\r\n"
    assert_raw_exchange_error(raw_exchange(raw, head.encode()), "RequestHeaderSectionTooLarge",
                              431)
    # Many headers adding up to 64 KiB.
    head = f"GET /{bucket} HTTP/1.1\r\nHost: {raw.netloc}\r\n" + "".join(
        f"x-filler-{i}: {'f' * 50}\r\n" for i in range(1200)) + "\r\n"
    assert_raw_exchange_error(raw_exchange(raw, head.encode()), "RequestHeaderSectionTooLarge",
                              431)
    # A 64 KiB request line: the header limit counts it too.
    assert_raw_exchange_error(raw_exchange(raw, f"GET /{bucket}/{'k' * 65536} HTTP/1.1\r\n"
                                                f"Host: {raw.netloc}\r\n\r\n".encode()),
                              "RequestHeaderSectionTooLarge", 431)


BROKEN_FRAMING = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", BROKEN_FRAMING, ids=range(len(BROKEN_FRAMING)))
def test_broken_framing(raw, request_bytes):
    """A header that is not HTTP/1.1 (or whose framing headers contradict each other)."""
    assert_raw_exchange_error(raw_exchange(raw, request_bytes, timeout=15), "BadRequest", 400)


def test_broken_chunked_body(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "chunks")
    # Unsigned: refused on its header, before the body is read.
    assert_raw_exchange_error(raw_exchange(raw, (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\nabc\r\n0\r\n\r\n").encode(), timeout=15), "AccessDenied", 403)
    # Signed: the chunk framing breaks in the body.
    for body in (b"zz\r\nabc\r\n0\r\n\r\n",           # a chunk size that is not hex
                 b"3\r\nabcdef\r\n0\r\n\r\n",         # a chunk longer than its size
                 b"3\r\nabc" + b"\x00" * 100000):      # no CRLF after a chunk
        sig = raw.signed_headers("PUT", path, headers={"Transfer-Encoding": "chunked"},
                                 payload_hash=s3_raw.UNSIGNED)
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                                     sig.headers.items()) + "\r\n"
        assert_raw_exchange_error(raw_exchange(raw, head.encode() + body, timeout=15),
                                  "IncompleteBody", 400)
        assert not object_exists(s3, bucket, "chunks")


def test_unknown_method_and_subresource(raw, bucket):
    resp = raw.request("BREW", "/" + bucket)
    assert resp.status in (400, 405, 501), resp
    resp = raw.request("GET", "/" + bucket, query=[("torrent", "")])
    assert_raw_error(resp, "NotImplemented", 501)


def test_missing_content_length(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "nolength")
    sig = raw.signed_headers("PUT", path, payload_hash=s3_raw.UNSIGNED)
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                               sig.headers.items()) + "\r\n"
    status, _, body = raw_exchange(raw, head.encode(), timeout=15)
    assert status in (400, 411), (status, body)
    assert s3_raw.error_code(body) in ("MissingContentLength", "InvalidRequest"), body
    assert not object_exists(s3, bucket, "nolength")


def send_truncated(raw, method, path, query, declared, sent, extra_headers=None):
    """Declares `declared` bytes, sends `sent` bytes, then closes the connection."""
    headers = {"Content-Length": str(declared)}
    headers.update(extra_headers or {})
    sig = raw.signed_headers(method, path, query, headers, payload_hash=s3_raw.UNSIGNED)
    target = path + ("?" + s3_raw.encode_query(query) if query else "")
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                                      sig.headers.items()) + "\r\n"
    with socket.create_connection((raw.host, raw.port), timeout=30) as sock:
        sock.sendall(head.encode() + payload(sent, seed=1))
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass


def test_truncated_body_stores_nothing(s3, raw, bucket):
    path = s3_raw.key_path(bucket, "truncated")
    send_truncated(raw, "PUT", path, [], MiB, 100 * 1024)
    assert not object_exists(s3, bucket, "truncated")
    # Over an existing object: the old one stays.
    s3.put_object(Bucket=bucket, Key="truncated", Body=b"old")
    send_truncated(raw, "PUT", path, [], 8 * MiB, 5 * MiB)
    assert s3.get_object(Bucket=bucket, Key="truncated")["Body"].read() == b"old"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["truncated"]
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Size"] == 3


def test_truncated_part_stores_nothing(s3, raw, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="tp")
    send_truncated(raw, "PUT", s3_raw.key_path(bucket, "tp"),
                   [("partNumber", "1"), ("uploadId", up["UploadId"])], MiB, 1000)
    assert s3.list_parts(Bucket=bucket, Key="tp", UploadId=up["UploadId"]).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="tp", UploadId=up["UploadId"])


def test_truncated_aws_chunked_body_stores_nothing(s3, raw, bucket):
    data = payload(300 * 1024, seed=5)
    path = s3_raw.key_path(bucket, "chunk-trunc")
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    probe = raw.signed_headers("PUT", path, headers=headers,
                               payload_hash=s3_raw.STREAMING_SIGNED)
    full_len = len(s3_raw.signed_chunked_body(probe, data))
    headers["Content-Length"] = str(full_len)
    sig = raw.signed_headers("PUT", path, headers=headers, payload_hash=s3_raw.STREAMING_SIGNED,
                             amz_date=probe.amz_date)
    body = s3_raw.signed_chunked_body(sig, data)
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                               sig.headers.items()) + "\r\n"
    # Everything but the final zero-length chunk, then close.
    cut = body.rindex(b"0;chunk-signature=")
    with socket.create_connection((raw.host, raw.port), timeout=30) as sock:
        sock.sendall(head.encode() + body[:cut])
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
    assert not object_exists(s3, bucket, "chunk-trunc")


def test_wrong_content_md5(s3, raw, bucket):
    data = b"content whose digest is checked"
    resp = raw.request("PUT", s3_raw.key_path(bucket, "md5"), body=data,
                       headers={"Content-MD5": s3_raw.md5_b64(data + b"!")})
    assert_raw_error(resp, "BadDigest", 400)
    resp = raw.request("PUT", s3_raw.key_path(bucket, "md5"), body=data,
                       headers={"Content-MD5": "AAAA"})  # valid base64, not 16 bytes
    assert_raw_error(resp, "InvalidDigest", 400)
    assert not object_exists(s3, bucket, "md5")
    resp = raw.request("PUT", s3_raw.key_path(bucket, "md5"), body=data,
                       headers={"Content-MD5": s3_raw.md5_b64(data)})
    assert resp.status == 200, resp
    assert resp.header("etag") == '"%s"' % hashlib.md5(data).hexdigest()


# ---- Many connections ---------------------------------------------------------------------------
def test_ten_thousand_idle_connections(server, s3, bucket):
    count = 10000
    assert NOFILE >= count + 500, f"RLIMIT_NOFILE is {NOFILE}; the test needs {count + 500}"
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(("127.0.0.1", server.s3_port))
            assert err in (0, 115), f"connect #{i}: errno {err}"  # 115: EINPROGRESS
            socks.append(sock)
            sel.register(sock, selectors.EVENT_WRITE)
        pending = set(socks)
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                if key.fileobj in pending:
                    pending.discard(key.fileobj)
                    sel.unregister(key.fileobj)
        assert not pending, f"{len(pending)} of {count} connections not established"
        failed = [s for s in socks if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]
        assert not failed, f"{len(failed)} connections failed"
        # Some of them start a request and stall (slowloris).
        for sock in socks[:500]:
            sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")

        start = time.monotonic()
        ops = 0
        while ops < 60 or time.monotonic() - start < 3:
            data = payload(1000 + ops * 997, seed=ops)
            s3.put_object(Bucket=bucket, Key=f"busy/{ops % 10}", Body=data)
            assert s3.get_object(Bucket=bucket, Key=f"busy/{ops % 10}")["Body"].read() == data
            ops += 1
            assert time.monotonic() - start < 120, "requests too slow with idle connections open"
        big = payload(6 * MiB, seed=99)
        s3.put_object(Bucket=bucket, Key="busy/big", Body=big)
        assert s3.get_object(Bucket=bucket, Key="busy/big")["Body"].read() == big
    finally:
        sel.close()
        for sock in socks:
            sock.close()
    assert server.running
