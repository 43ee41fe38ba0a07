"""Raw S3 requests for tests: AWS Signature Version 4 written out with hmac/hashlib (header
signing, presigned URLs and aws-chunked streaming bodies), sent over http.client so that a test
controls every byte: the Host header, the exact path (".." segments, %00), broken bodies.

    raw = RawS3("127.0.0.1", port, access_key, secret_key)
    resp = raw.request("PUT", "/bucket/key", body=b"data")
    assert resp.status == 200
    assert raw.request("GET", "/bucket/nokey").error_code == "NoSuchKey"

This is an independent implementation of the signing rules (the server has its own), so a test
that passes here and with botocore checks the server against two clients.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import socket
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

REGION = "us-east-1"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# ---- Encodings ----------------------------------------------------------------------------------
def uri_encode(text, keep_slash):
    """AWS's encoding of a URI component: unreserved characters as they are, every other byte
    %XY in upper-case hex; '/' kept when keep_slash."""
    if isinstance(text, str):
        text = text.encode()
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    if keep_slash:
        safe += b"/"
    return "".join(chr(b) if b in safe else "%%%02X" % b for b in text)


def key_path(bucket, key=None):
    """'/bucket/encoded-key' for path-style requests."""
    if key is None:
        return "/" + bucket
    return "/" + bucket + "/" + uri_encode(key, keep_slash=True)


def canonical_query(query):
    """query: list of (name, value) pairs, decoded."""
    pairs = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def encode_query(query):
    return canonical_query(query)


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def amz_now(offset_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y%m%dT%H%M%SZ")


def _hmac(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


def signing_key(secret, date, region=REGION, service="s3"):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


# ---- Signing ------------------------------------------------------------------------------------
class Signature:
    """What a signed request produced: headers to send and the pieces a streaming body needs."""

    def __init__(self, headers, signature, amz_date, scope, key):
        self.headers = headers
        self.signature = signature
        self.amz_date = amz_date
        self.scope = scope
        self.key = key


def sign(method, path, query, headers, access_key, secret_key, payload_hash=UNSIGNED,
         amz_date=None, region=REGION):
    """Signs a request for the Authorization header. `path` is the encoded path as sent,
    `query` a list of decoded (name, value) pairs, `headers` a dict (must contain Host).
    Returns a Signature whose .headers are the headers to send."""
    amz_date = amz_date or amz_now()
    date = amz_date[:8]
    out = dict(headers)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    lowered = {}
    for name, value in out.items():
        lowered[name.lower().strip()] = " ".join(str(value).split())
    signed_names = sorted(n for n in lowered if n not in ("authorization", "user-agent",
                                                           "expect"))
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in signed_names)
    signed_headers = ";".join(signed_names)
    canonical = "\n".join([method, path, canonical_query(query), canonical_headers,
                           signed_headers, payload_hash])
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret_key, date, region)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={signed_headers}, Signature={signature}")
    return Signature(out, signature, amz_date, scope, key)


def presign(method, host, path, access_key, secret_key, expires=3600, amz_date=None,
            query=(), region=REGION):
    """A presigned path+query (to append to http://host) signed for `host`."""
    amz_date = amz_date or amz_now()
    date = amz_date[:8]
    scope = f"{date}/{region}/s3/aws4_request"
    params = list(query) + [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical = "\n".join([method, path, canonical_query(params), f"host:{host}\n", "host",
                           UNSIGNED])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, date, region), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    params.append(("X-Amz-Signature", signature))
    return path + "?" + encode_query(params)


class ChunkSigner:
    """Frames a body as aws-chunked with the chunk-signature chain that starts at the seed
    signature of the request's headers (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])."""

    def __init__(self, sig):
        self.sig = sig
        self.previous = sig.signature

    def chunk(self, data):
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.sig.amz_date, self.sig.scope,
                             self.previous, EMPTY_SHA256, hashlib.sha256(data).hexdigest()])
        signature = hmac.new(self.sig.key, to_sign.encode(), hashlib.sha256).hexdigest()
        self.previous = signature
        out = f"{len(data):x};chunk-signature={signature}\r\n".encode() + data
        return out + b"\r\n" if data else out

    def trailer(self, trailers):
        """After the final chunk: "name:value\\n" lines signed with x-amz-trailer-signature."""
        text = "".join(f"{n}:{v}\n" for n, v in trailers)
        to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", self.sig.amz_date, self.sig.scope,
                             self.previous, hashlib.sha256(text.encode()).hexdigest()])
        signature = hmac.new(self.sig.key, to_sign.encode(), hashlib.sha256).hexdigest()
        lines = "".join(f"{n}:{v}\r\n" for n, v in trailers)
        return (lines + f"x-amz-trailer-signature:{signature}\r\n\r\n").encode()


def signed_chunked_body(sig, data, chunk_size=64 * 1024, trailers=None):
    """The whole aws-chunked body for `data` (signed chunks, then the final chunk and the
    trailer section or CRLF)."""
    signer = ChunkSigner(sig)
    parts = [signer.chunk(data[i:i + chunk_size]) for i in range(0, len(data), chunk_size)]
    parts.append(signer.chunk(b""))
    parts.append(signer.trailer(trailers) if trailers is not None else b"\r\n")
    return b"".join(parts)


def unsigned_chunked_body(data, chunk_size=64 * 1024, trailers=()):
    """aws-chunked without chunk signatures (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    parts = [f"{len(data[i:i + chunk_size]):x}\r\n".encode() + data[i:i + chunk_size] + b"\r\n"
             for i in range(0, len(data), chunk_size)]
    parts.append(b"0\r\n")
    parts.append("".join(f"{n}:{v}\r\n" for n, v in trailers).encode() + b"\r\n")
    return b"".join(parts)


# ---- Responses ----------------------------------------------------------------------------------
class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def xml(self):
        return ET.fromstring(self.body)

    @property
    def error_code(self):
        """The <Code> of an S3 <Error> body; None if the body is not one."""
        return error_code(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.headers!r}, {self.body[:500]!r})"


def strip_ns(tag):
    return tag.rsplit("}", 1)[-1]


def error_code(body):
    if not body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    if strip_ns(root.tag) != "Error":
        return None
    for child in root:
        if strip_ns(child.tag) == "Code":
            return child.text
    return None


def find_all(root, name):
    """Elements named `name` anywhere under root, whatever the namespace."""
    return [e for e in root.iter() if strip_ns(e.tag) == name]


def find_text(root, name):
    for e in root.iter():
        if strip_ns(e.tag) == name:
            return e.text or ""
    return None


# ---- Client -------------------------------------------------------------------------------------
class RawS3:
    def __init__(self, host, port, access_key, secret_key, timeout=60):
        self.host = host
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.timeout = timeout

    @property
    def netloc(self):
        return f"{self.host}:{self.port}"

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def signed_headers(self, method, path, query=(), headers=None, body=b"",
                       payload_hash=None, host_header=None, secret_key=None, amz_date=None,
                       access_key=None):
        headers = dict(headers or {})
        headers.setdefault("Host", host_header or self.netloc)
        if payload_hash is None:
            payload_hash = hashlib.sha256(body).hexdigest()
        return sign(method, path, list(query), headers, access_key or self.access_key,
                    secret_key or self.secret_key, payload_hash=payload_hash, amz_date=amz_date)

    def request(self, method, path, query=(), headers=None, body=b"", sign=True,
                payload_hash=None, host_header=None, secret_key=None, amz_date=None,
                access_key=None):
        """Sends one request and reads the whole response. `path` is sent as is (encoded);
        `query` is a list of decoded pairs (or a dict)."""
        if isinstance(query, dict):
            query = list(query.items())
        query = list(query)
        if sign:
            send_headers = self.signed_headers(method, path, query, headers, body, payload_hash,
                                               host_header, secret_key, amz_date,
                                               access_key).headers
        else:
            send_headers = dict(headers or {})
            send_headers.setdefault("Host", host_header or self.netloc)
        target = path + ("?" + encode_query(query) if query else "")
        return self.send(method, target, send_headers, body)

    def send(self, method, target, headers, body=b""):
        conn = self.connection()
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            has_length = any(k.lower() in ("content-length", "transfer-encoding")
                             for k in headers)
            for name, value in headers.items():
                conn.putheader(name, value)
            if not has_length and (body or method in ("PUT", "POST")):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def presigned_url(self, method, path, expires=3600, amz_date=None, query=(),
                      secret_key=None):
        target = presign(method, self.netloc, path, self.access_key,
                         secret_key or self.secret_key, expires=expires, amz_date=amz_date,
                         query=query)
        return f"http://{self.netloc}{target}"


def raw_http(host, port, data, timeout=30):
    """Sends raw bytes on a fresh TCP connection and returns the first response that came back
    (b"" if the server closed without answering). For requests http.client refuses to build.
    Reads until the response's Content-Length is complete, EOF, or `timeout`."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while True:
                if _response_complete(received):
                    break
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return received


def _response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.split(b"\r\n")
    parts = lines[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status in (204, 304) or 100 <= status < 200:
        return True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return False  # no length: the body ends when the connection closes


def parse_raw_response(data):
    """(status, headers, body) of a raw HTTP/1.1 response; status 0 if there is none."""
    if not data.startswith(b"HTTP/"):
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode().strip().lower()] = value.decode().strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def quote_key(key):
    return urllib.parse.quote(key, safe="/~")
