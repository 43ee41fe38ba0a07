#include "python/types.h"

#include <pybind11/stl.h>

#include <string>
#include <utility>

namespace granary::python {
namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string Repr(const std::string& s) { return py::repr(py::str(s)); }

py::object NoneIfEmpty(const std::string& s) {
  if (s.empty()) return py::none();
  return py::str(s);
}

py::tuple ObjectInfoState(const ObjectInfo& o) {
  return py::make_tuple(o.bucket, o.key, o.size, o.etag, o.content_type, o.mtime_ns, o.version,
                        o.parts, o.user_metadata, o.headers);
}

ObjectInfo ObjectInfoFromState(const py::tuple& t) {
  if (t.size() != 10) throw py::value_error("ObjectInfo: bad pickled state");
  ObjectInfo o;
  o.bucket = t[0].cast<std::string>();
  o.key = t[1].cast<std::string>();
  o.size = t[2].cast<uint64_t>();
  o.etag = t[3].cast<std::string>();
  o.content_type = t[4].cast<std::string>();
  o.mtime_ns = t[5].cast<int64_t>();
  o.version = t[6].cast<uint64_t>();
  o.parts = t[7].cast<uint32_t>();
  o.user_metadata = t[8].cast<std::map<std::string, std::string>>();
  o.headers = t[9].cast<std::map<std::string, std::string>>();
  return o;
}

void RegisterObjectInfo(py::module_& m) {
  py::class_<ObjectInfo>(m, "ObjectInfo",
                         "What the server knows of one object: returned by put, head, copy, "
                         "list and complete_multipart_upload.")
      .def_readonly("bucket", &ObjectInfo::bucket)
      .def_readonly("key", &ObjectInfo::key)
      .def_readonly("size", &ObjectInfo::size, "Size in bytes.")
      .def_readonly("etag", &ObjectInfo::etag,
                    "S3 ETag without quotes: the hex MD5 of the bytes, or '<md5>-<parts>' for an "
                    "object made by a multipart upload.")
      .def_property_readonly(
          "content_type", [](const ObjectInfo& o) { return NoneIfEmpty(o.content_type); },
          "The content type the writer gave, or None.")
      .def_property_readonly(
          "mtime", [](const ObjectInfo& o) { return Seconds(o.mtime_ns); },
          "Last modified, in seconds since the Unix epoch (float).")
      .def_readonly("mtime_ns", &ObjectInfo::mtime_ns,
                    "Last modified, in nanoseconds since the Unix epoch.")
      .def_readonly("version", &ObjectInfo::version,
                    "Differs for every write of any key; pass it as if_version to insist on "
                    "this object.")
      .def_readonly("parts", &ObjectInfo::parts,
                    "Parts of the multipart upload that made it; 0 for a plain put.")
      .def_property_readonly(
          "metadata", [](const ObjectInfo& o) { return py::cast(o.user_metadata); },
          "User metadata (x-amz-meta-*), lower-case name -> value.")
      .def_property_readonly(
          "headers", [](const ObjectInfo& o) { return py::cast(o.headers); },
          "Standard headers stored with the object (content-encoding, cache-control...).")
      .def("__eq__",
           [](const ObjectInfo& a, const ObjectInfo& b) {
             return a.bucket == b.bucket && a.key == b.key && a.size == b.size &&
                    a.etag == b.etag && a.content_type == b.content_type &&
                    a.mtime_ns == b.mtime_ns && a.version == b.version && a.parts == b.parts &&
                    a.user_metadata == b.user_metadata && a.headers == b.headers;
           })
      .def("__repr__",
           [](const ObjectInfo& o) {
             return "ObjectInfo(bucket=" + Repr(o.bucket) + ", key=" + Repr(o.key) +
                    ", size=" + std::to_string(o.size) + ", etag=" + Repr(o.etag) +
                    ", version=" + std::to_string(o.version) +
                    ", mtime_ns=" + std::to_string(o.mtime_ns) + ")";
           })
      .def(py::pickle(&ObjectInfoState, &ObjectInfoFromState));
}

void RegisterSmallTypes(py::module_& m) {
  py::class_<BucketInfo>(m, "BucketInfo", "A bucket: its name and when it was created.")
      .def_readonly("name", &BucketInfo::name)
      .def_property_readonly(
          "created", [](const BucketInfo& b) { return Seconds(b.created_ns); },
          "Creation time, in seconds since the Unix epoch (float).")
      .def_readonly("created_ns", &BucketInfo::created_ns)
      .def_readonly("replicas", &BucketInfo::replicas,
                    "Copies a cluster keeps of its data; 0: the cluster's default.")
      .def("__repr__", [](const BucketInfo& b) {
        return "BucketInfo(name=" + Repr(b.name) + ", created_ns=" + std::to_string(b.created_ns) +
               ", replicas=" + std::to_string(b.replicas) + ")";
      });

  py::class_<PartInfo>(m, "PartInfo",
                       "One uploaded part of a multipart upload; a list of them can be passed "
                       "to complete_multipart_upload.")
      .def_readonly("part_number", &PartInfo::part_number)
      .def_readonly("size", &PartInfo::size)
      .def_readonly("etag", &PartInfo::etag)
      .def_property_readonly("mtime", [](const PartInfo& p) { return Seconds(p.mtime_ns); })
      .def_readonly("mtime_ns", &PartInfo::mtime_ns)
      .def("__repr__", [](const PartInfo& p) {
        return "PartInfo(part_number=" + std::to_string(p.part_number) +
               ", size=" + std::to_string(p.size) + ", etag=" + Repr(p.etag) + ")";
      });

  py::class_<UploadInfo>(m, "UploadInfo", "A multipart upload in progress.")
      .def_readonly("key", &UploadInfo::key)
      .def_readonly("upload_id", &UploadInfo::upload_id)
      .def_property_readonly("initiated",
                             [](const UploadInfo& u) { return Seconds(u.initiated_ns); })
      .def_readonly("initiated_ns", &UploadInfo::initiated_ns)
      .def("__repr__", [](const UploadInfo& u) {
        return "UploadInfo(key=" + Repr(u.key) + ", upload_id=" + Repr(u.upload_id) + ")";
      });
}

void RegisterListTypes(py::module_& m) {
  py::class_<PyListResult>(m, "ListResult",
                           "One page of a listing. When truncated, pass "
                           "next_continuation_token back to list() for the next page.")
      .def_readonly("objects", &PyListResult::objects, "ObjectInfo of each key, in key order.")
      .def_readonly("common_prefixes", &PyListResult::common_prefixes,
                    "Keys rolled up by the delimiter, in order (str).")
      .def_readonly("truncated", &PyListResult::truncated)
      .def_readonly("next_continuation_token", &PyListResult::next_continuation_token)
      .def_readonly("next_marker", &PyListResult::next_marker)
      .def("__repr__", [](const PyListResult& r) {
        return "ListResult(objects=<" + std::to_string(r.objects.size()) + ">, common_prefixes=<" +
               std::to_string(r.common_prefixes.size()) +
               ">, truncated=" + (r.truncated ? "True" : "False") + ")";
      });

  py::class_<PyListPartsResult>(m, "ListPartsResult", "One page of the parts of an upload.")
      .def_readonly("parts", &PyListPartsResult::parts)
      .def_readonly("truncated", &PyListPartsResult::truncated)
      .def_readonly("next_part_number_marker", &PyListPartsResult::next_part_number_marker)
      .def("__repr__", [](const PyListPartsResult& r) {
        return "ListPartsResult(parts=<" + std::to_string(r.parts.size()) +
               ">, truncated=" + (r.truncated ? "True" : "False") + ")";
      });

  py::class_<PyListUploadsResult>(m, "ListUploadsResult",
                                  "One page of the multipart uploads in progress in a bucket.")
      .def_readonly("uploads", &PyListUploadsResult::uploads)
      .def_readonly("common_prefixes", &PyListUploadsResult::common_prefixes)
      .def_readonly("truncated", &PyListUploadsResult::truncated)
      .def_readonly("next_key_marker", &PyListUploadsResult::next_key_marker)
      .def_readonly("next_upload_id_marker", &PyListUploadsResult::next_upload_id_marker)
      .def("__repr__", [](const PyListUploadsResult& r) {
        return "ListUploadsResult(uploads=<" + std::to_string(r.uploads.size()) +
               ">, truncated=" + (r.truncated ? "True" : "False") + ")";
      });
}

}  // namespace

void RegisterTypes(py::module_& m) {
  RegisterObjectInfo(m);
  RegisterSmallTypes(m);
  RegisterListTypes(m);
}

PyListResult ToPython(ListResult&& result) {
  PyListResult out;
  for (ObjectInfo& o : result.objects) out.objects.append(py::cast(std::move(o)));
  for (const std::string& p : result.common_prefixes) out.common_prefixes.append(py::str(p));
  out.truncated = result.truncated;
  out.next_continuation_token = std::move(result.next_continuation_token);
  out.next_marker = std::move(result.next_marker);
  return out;
}

PyListPartsResult ToPython(ListPartsResult&& result) {
  PyListPartsResult out;
  for (PartInfo& p : result.parts) out.parts.append(py::cast(std::move(p)));
  out.truncated = result.truncated;
  out.next_part_number_marker = result.next_part_number_marker;
  return out;
}

PyListUploadsResult ToPython(ListUploadsResult&& result) {
  PyListUploadsResult out;
  for (UploadInfo& u : result.uploads) out.uploads.append(py::cast(std::move(u)));
  for (const std::string& p : result.common_prefixes) out.common_prefixes.append(py::str(p));
  out.truncated = result.truncated;
  out.next_key_marker = std::move(result.next_key_marker);
  out.next_upload_id_marker = std::move(result.next_upload_id_marker);
  return out;
}

}  // namespace granary::python
