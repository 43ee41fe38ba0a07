"""boto3 listing against a real `granary server`: ListObjectsV2 and V1 with prefix, delimiter,
max-keys, continuation tokens, start-after, markers, common prefixes, paginators over 2500 keys,
unusual keys and encoding-type=url."""
import concurrent.futures
import urllib.parse

import pytest

from s3_checks import assert_client_error, empty_bucket, unique_bucket_name
import s3_raw

KEYS = sorted([
    "a/1", "a/2", "a/b/3", "a/b/c/4", "a/x y/5", "b/6", "c", "d/e/f/g", "plus+key", "space key",
    "unicode/é", "unicode/中文/文件", "unicode/🙂", "z-last", "a-dash", "a.dot", "percent%41",
])


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


@pytest.fixture(scope="module")
def listing_bucket(s3):
    name = unique_bucket_name("listing")
    s3.create_bucket(Bucket=name)
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def big_bucket(s3):
    """2500 keys in two prefixes, put from a few threads."""
    name = unique_bucket_name("big")
    s3.create_bucket(Bucket=name)
    keys = [f"p{i % 2}/k{i:05d}" for i in range(2500)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k[-3:].encode()), keys))
    yield name, utf8_sorted(keys)
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def test_list_v2_all(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket)
    assert resp["KeyCount"] == len(KEYS)
    assert resp["IsTruncated"] is False
    assert [o["Key"] for o in resp["Contents"]] == utf8_sorted(KEYS)
    for o in resp["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"].startswith('"') and len(o["ETag"]) == 34
        assert o["LastModified"]
        assert o["StorageClass"] == "STANDARD"
    assert resp["Name"] == listing_bucket
    assert resp["MaxKeys"] == 1000


def test_list_empty_bucket(s3, bucket):
    resp = s3.list_objects_v2(Bucket=bucket)
    assert resp["KeyCount"] == 0
    assert "Contents" not in resp
    assert resp["IsTruncated"] is False
    resp = s3.list_objects(Bucket=bucket)
    assert "Contents" not in resp
    assert resp["IsTruncated"] is False


def test_list_v2_prefix(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="a/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/1", "a/2", "a/b/3", "a/b/c/4", "a/x y/5"]
    assert resp["Prefix"] == "a/"
    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="unicode/中")
    assert [o["Key"] for o in resp["Contents"]] == ["unicode/中文/文件"]
    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="nothing-here")
    assert resp["KeyCount"] == 0 and "Contents" not in resp


def test_list_v2_delimiter(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == utf8_sorted(
        ["a-dash", "a.dot", "c", "percent%41", "plus+key", "space key", "z-last"])
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/", "b/", "d/", "unicode/"]
    assert resp["KeyCount"] == 11
    assert resp["Delimiter"] == "/"

    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/b/", "a/x y/"]

    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="unicode/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["unicode/é", "unicode/🙂"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["unicode/中文/"]

    # A delimiter other than '/'.
    resp = s3.list_objects_v2(Bucket=listing_bucket, Prefix="a", Delimiter="-")
    assert "a-" in [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
    assert "a-dash" not in [o["Key"] for o in resp.get("Contents", [])]
    assert "a.dot" in [o["Key"] for o in resp.get("Contents", [])]


def test_list_v2_max_keys_and_continuation(s3, listing_bucket):
    seen = []
    token = None
    pages = 0
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        resp = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=4, **kwargs)
        pages += 1
        keys = [o["Key"] for o in resp.get("Contents", [])]
        assert resp["KeyCount"] == len(keys) <= 4
        assert resp["MaxKeys"] == 4
        seen += keys
        if not resp["IsTruncated"]:
            assert "NextContinuationToken" not in resp
            break
        assert len(keys) == 4
        token = resp["NextContinuationToken"]
        if kwargs:
            assert resp["ContinuationToken"] == kwargs["ContinuationToken"]
    assert seen == utf8_sorted(KEYS)
    assert pages == (len(KEYS) + 3) // 4


def test_list_v2_max_keys_with_common_prefixes(s3, listing_bucket):
    """Common prefixes count towards max-keys and continuation does not repeat them."""
    entries = []
    token = None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        resp = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/", MaxKeys=3, **kwargs)
        page = [o["Key"] for o in resp.get("Contents", [])] + \
               [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        assert len(page) <= 3 and resp["KeyCount"] == len(page)
        entries += page
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
    expected = ["a-dash", "a.dot", "c", "percent%41", "plus+key", "space key", "z-last",
                "a/", "b/", "d/", "unicode/"]
    assert sorted(entries) == sorted(expected)
    assert len(entries) == len(expected)


def test_list_v2_start_after(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="b/6")
    assert [o["Key"] for o in resp["Contents"]] == [k for k in utf8_sorted(KEYS) if
                                                    k.encode() > b"b/6"]
    assert resp["StartAfter"] == "b/6"
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="a/b", Prefix="a/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/b/3", "a/b/c/4", "a/x y/5"]
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="zzz")
    assert resp["KeyCount"] == 0


def test_list_v1_marker_and_next_marker(s3, listing_bucket):
    resp = s3.list_objects(Bucket=listing_bucket)
    assert [o["Key"] for o in resp["Contents"]] == utf8_sorted(KEYS)
    assert resp["IsTruncated"] is False

    seen = []
    marker = ""
    while True:
        resp = s3.list_objects(Bucket=listing_bucket, MaxKeys=5, Marker=marker)
        keys = [o["Key"] for o in resp.get("Contents", [])]
        seen += keys
        assert resp["Marker"] == marker
        if not resp["IsTruncated"]:
            break
        # Without a delimiter, NextMarker may be absent: the last key is the marker.
        marker = resp.get("NextMarker", keys[-1])
        assert marker == keys[-1]
    assert seen == utf8_sorted(KEYS)

    resp = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=3)
    assert resp["IsTruncated"] is True
    page = [o["Key"] for o in resp.get("Contents", [])] + \
           [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
    assert len(page) == 3
    assert resp["NextMarker"] == max(page, key=lambda k: k.encode())


def test_list_v1_prefix_delimiter(s3, listing_bucket):
    resp = s3.list_objects(Bucket=listing_bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/b/", "a/x y/"]
    resp = s3.list_objects(Bucket=listing_bucket, Marker="a/b/", Prefix="a/", Delimiter="/")
    # The marker is past "a/b/", so the prefix a/b/ is not repeated.
    assert [o["Key"] for o in resp.get("Contents", [])] == []
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/x y/"]


def test_list_v1_paginate_with_delimiter(s3, listing_bucket):
    """V1 pages whose NextMarker is a common prefix: the next page starts after that prefix."""
    for page_size in (1, 2, 3):
        entries = []
        for page in s3.get_paginator("list_objects").paginate(
                Bucket=listing_bucket, Delimiter="/", PaginationConfig={"PageSize": page_size}):
            entries += [o["Key"] for o in page.get("Contents", [])]
            entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert sorted(entries) == sorted(
            ["a-dash", "a.dot", "c", "percent%41", "plus+key", "space key", "z-last",
             "a/", "b/", "d/", "unicode/"]), page_size


def test_paginators_over_2500_keys(s3, big_bucket):
    name, keys = big_bucket
    for op in ("list_objects_v2", "list_objects"):
        pages = list(s3.get_paginator(op).paginate(Bucket=name))
        assert [len(p.get("Contents", [])) for p in pages] == [1000, 1000, 500], op
        assert [o["Key"] for p in pages for o in p["Contents"]] == keys, op
        pages = list(s3.get_paginator(op).paginate(Bucket=name, PaginationConfig={
            "PageSize": 300}))
        assert len(pages) == 9, op
        assert [o["Key"] for p in pages for o in p["Contents"]] == keys, op
    # Prefix, delimiter and a page size over the 1000 limit.
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix="p1/",
                                                               PaginationConfig={
                                                                   "PageSize": 5000}))
    assert [o["Key"] for p in pages for o in p["Contents"]] == [k for k in keys if
                                                                k.startswith("p1/")]
    assert all(len(p.get("Contents", [])) <= 1000 for p in pages)
    resp = s3.list_objects_v2(Bucket=name, Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["p0/", "p1/"]
    assert "Contents" not in resp


def test_encoding_type_url_raw(s3, raw, listing_bucket):
    """The raw XML with encoding-type=url has percent-encoded keys, prefixes and delimiters;
    decoded with unquote_plus (as the SDKs do) they give back the keys."""
    for query in ([("list-type", "2"), ("encoding-type", "url")], [("encoding-type", "url")]):
        resp = raw.request("GET", "/" + listing_bucket, query=query)
        assert resp.status == 200, resp
        root = resp.xml()
        assert s3_raw.find_text(root, "EncodingType") == "url"
        encoded = [e.text for e in s3_raw.find_all(root, "Key")]
        for k in encoded:
            assert " " not in k and all(ord(c) < 128 for c in k), k
        assert [urllib.parse.unquote_plus(k) for k in encoded] == utf8_sorted(KEYS)

    resp = raw.request("GET", "/" + listing_bucket, query=[
        ("list-type", "2"), ("encoding-type", "url"), ("delimiter", "/"), ("prefix", "a/")])
    root = resp.xml()
    prefixes = [e.text for p in s3_raw.find_all(root, "CommonPrefixes")
                for e in p if s3_raw.strip_ns(e.tag) == "Prefix"]
    assert [urllib.parse.unquote_plus(p) for p in prefixes] == ["a/b/", "a/x y/"]
    assert all(" " not in p for p in prefixes)


def test_no_encoding_type_raw_keys(raw, listing_bucket):
    resp = raw.request("GET", "/" + listing_bucket, query=[("list-type", "2")])
    assert resp.status == 200, resp
    root = resp.xml()
    assert s3_raw.find_text(root, "EncodingType") is None
    assert [e.text for e in s3_raw.find_all(root, "Key")] == utf8_sorted(KEYS)


def test_invalid_list_arguments(s3, raw, listing_bucket):
    resp = raw.request("GET", "/" + listing_bucket, query=[("list-type", "2"),
                                                           ("max-keys", "-1")])
    assert resp.status == 400 and resp.error_code == "InvalidArgument", resp
    resp = raw.request("GET", "/" + listing_bucket, query=[("list-type", "2"),
                                                           ("encoding-type", "base64")])
    assert resp.status == 400 and resp.error_code == "InvalidArgument", resp
    assert_client_error(s3.list_objects_v2, "InvalidArgument", 400, Bucket=listing_bucket,
                        ContinuationToken="not-a-token-%%%")


def test_list_after_deletes_and_overwrites(s3, bucket):
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"k{i:02d}", Body=b"x" * (i + 1))
    for i in range(0, 20, 3):
        s3.delete_object(Bucket=bucket, Key=f"k{i:02d}")
    s3.put_object(Bucket=bucket, Key="k01", Body=b"rewritten")
    resp = s3.list_objects_v2(Bucket=bucket)
    sizes = {o["Key"]: o["Size"] for o in resp["Contents"]}
    expected = {f"k{i:02d}": i + 1 for i in range(20) if i % 3}
    expected["k01"] = len(b"rewritten")
    assert sizes == expected
