// granary.Client: batches of many objects and multipart uploads.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "python/arg_types.h"
#include "python/buffers.h"
#include "python/client_binding.h"
#include "python/types.h"

namespace granary::python {
namespace {

// A list of keys from any iterable of str; a lone str (whose characters would be taken as keys)
// is refused.
std::vector<std::string> ToKeys(py::handle keys) {
  if (PyUnicode_Check(keys.ptr()) || PyBytes_Check(keys.ptr())) {
    throw py::type_error("keys must be an iterable of str (e.g. a list), not a single " +
                         std::string(Py_TYPE(keys.ptr())->tp_name));
  }
  std::vector<std::string> out;
  for (py::handle key : py::iter(keys)) {
    if (!PyUnicode_Check(key.ptr())) {
      throw py::type_error("keys must be str, got " + std::string(Py_TYPE(key.ptr())->tp_name) +
                           " at position " + std::to_string(out.size()));
    }
    out.push_back(key.cast<std::string>());
  }
  return out;
}

std::string Position(const char* what, size_t i) { return what + std::to_string(i); }

py::list PutMany(PyClient& self, const std::string& bucket, PutItemsArg items,
                 OptionalStrArg content_type, bool return_exceptions) {
  std::shared_ptr<ObjectApi> client = self.client();
  std::string type = ToOptionalString(content_type, "content_type");
  if (PyUnicode_Check(items.ptr()) || PyBytes_Check(items.ptr())) {
    throw py::type_error("items must be a dict {key: data} or an iterable of (key, data) pairs");
  }
  // (key, data) pairs from a dict or an iterable of pairs.
  py::object pairs =
      PyDict_Check(items.ptr()) ? items.attr("items")() : py::reinterpret_borrow<py::object>(items);
  std::vector<BufferView> views;
  std::vector<PutItem> batch;
  for (py::handle pair : py::iter(pairs)) {
    size_t i = batch.size();
    if (!PyTuple_Check(pair.ptr()) && !PyList_Check(pair.ptr())) {
      throw py::type_error("items must be (key, data) pairs; item " + std::to_string(i) + " is a " +
                           Py_TYPE(pair.ptr())->tp_name);
    }
    py::sequence seq = py::reinterpret_borrow<py::sequence>(pair);
    if (seq.size() != 2) {
      throw py::value_error("items must be (key, data) pairs; item " + std::to_string(i) + " has " +
                            std::to_string(seq.size()) + " elements");
    }
    py::object key = seq[0];
    if (!PyUnicode_Check(key.ptr())) {
      throw py::type_error("item " + std::to_string(i) + ": the key must be a str, not " +
                           Py_TYPE(key.ptr())->tp_name);
    }
    views.emplace_back(seq[1], BufferView::Access::kRead, Position("data of item ", i));
    PutItem item;
    item.key = key.cast<std::string>();
    item.data = views.back().bytes();
    item.options.content_type = type;
    item.options.expected_size = item.data.size();
    batch.push_back(std::move(item));
  }
  if (batch.empty()) return py::list();
  std::vector<Result<ObjectInfo>> results =
      WithoutGil([&] { return client->PutMany(bucket, batch); });
  if (results.size() != batch.size()) {
    ThrowStatus(Status::Internal("put_many: the client returned " + std::to_string(results.size()) +
                                 " results for " + std::to_string(batch.size()) + " items"));
  }
  std::vector<ItemOutcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    outcomes[i].key = batch[i].key;
    if (results[i].ok()) {
      outcomes[i].value = py::cast(std::move(results[i]).value());
    } else {
      outcomes[i].status = results[i].status();
    }
  }
  return BatchResults("put_many", outcomes, return_exceptions);
}

py::list GetMany(PyClient& self, const std::string& bucket, KeysArg keys_obj,
                 bool return_exceptions) {
  std::shared_ptr<ObjectApi> client = self.client();
  std::vector<std::string> keys = ToKeys(keys_obj);
  if (keys.empty()) return py::list();
  std::vector<Result<std::string>> results =
      WithoutGil([&] { return client->GetMany(bucket, keys); });
  if (results.size() != keys.size()) {
    ThrowStatus(Status::Internal("get_many: wrong number of results from the client"));
  }
  std::vector<ItemOutcome> outcomes(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    outcomes[i].key = keys[i];
    if (results[i].ok()) {
      outcomes[i].value = py::bytes(*results[i]);
      // Free each string as soon as it is copied; a batch can be large.
      results[i] = Result<std::string>(std::string());
    } else if (results[i].status().IsNotFound()) {
      outcomes[i].value = py::none();
    } else {
      outcomes[i].status = results[i].status();
    }
  }
  return BatchResults("get_many", outcomes, return_exceptions);
}

py::list GetManyInto(PyClient& self, const std::string& bucket, KeysArg keys_obj,
                     WritableBuffersArg buffers_obj, bool return_exceptions) {
  std::shared_ptr<ObjectApi> client = self.client();
  std::vector<std::string> keys = ToKeys(keys_obj);
  std::vector<BufferView> views;
  std::vector<std::span<char>> spans;
  for (py::handle buffer : py::iter(buffers_obj)) {
    views.emplace_back(buffer, BufferView::Access::kWrite, Position("buffer ", views.size()));
    spans.push_back(views.back().writable());
  }
  if (views.size() != keys.size()) {
    throw py::value_error("get_many_into needs one buffer per key: got " +
                          std::to_string(keys.size()) + " keys and " +
                          std::to_string(views.size()) + " buffers");
  }
  if (keys.empty()) return py::list();
  std::vector<Result<size_t>> results = WithoutGil([&] {
    if (auto* server = dynamic_cast<Client*>(client.get())) {
      return server->GetManyInto(bucket, keys, spans);  // one round trip
    }
    std::vector<Result<size_t>> each;  // a cluster: each key from its bucket's head
    for (size_t i = 0; i < keys.size(); ++i) each.push_back(client->GetInto(bucket, keys[i], spans[i]));
    return each;
  });
  if (results.size() != keys.size()) {
    ThrowStatus(Status::Internal("get_many_into: wrong number of results from the client"));
  }
  std::vector<ItemOutcome> outcomes(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    outcomes[i].key = keys[i];
    if (results[i].ok()) {
      outcomes[i].value = py::int_(*results[i]);
    } else if (results[i].status().IsNotFound()) {
      outcomes[i].value = py::none();
    } else {
      outcomes[i].status = results[i].status();
    }
  }
  return BatchResults("get_many_into", outcomes, return_exceptions);
}

py::list DeleteMany(PyClient& self, const std::string& bucket, KeysArg keys_obj,
                    bool return_exceptions) {
  std::shared_ptr<ObjectApi> client = self.client();
  std::vector<std::string> keys = ToKeys(keys_obj);
  if (keys.empty()) return py::list();
  std::vector<Status> results = WithoutGil([&] { return client->DeleteMany(bucket, keys); });
  if (results.size() != keys.size()) {
    ThrowStatus(Status::Internal("delete_many: wrong number of results from the client"));
  }
  std::vector<ItemOutcome> outcomes(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    outcomes[i].key = keys[i];
    if (results[i].ok()) {
      outcomes[i].value = py::bool_(true);
    } else if (results[i].IsNotFound()) {
      outcomes[i].value = py::bool_(false);
    } else {
      outcomes[i].status = results[i];
    }
  }
  return BatchResults("delete_many", outcomes, return_exceptions);
}

// Parts for complete_multipart_upload: PartInfo objects or (part_number, etag) pairs.
std::vector<CompletedPart> ToCompletedParts(py::handle parts) {
  std::vector<CompletedPart> out;
  for (py::handle p : py::iter(parts)) {
    CompletedPart part;
    if (py::isinstance<PartInfo>(p)) {
      const PartInfo& info = p.cast<const PartInfo&>();
      part.part_number = info.part_number;
      part.etag = info.etag;
    } else if ((PyTuple_Check(p.ptr()) || PyList_Check(p.ptr())) && py::len(p) == 2) {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(p);
      part.part_number = static_cast<int>(
          ToUnsigned(seq[0], "part_number", static_cast<uint64_t>(kMaxPartNumber)));
      py::object etag = seq[1];
      if (!PyUnicode_Check(etag.ptr())) throw py::type_error("a part's etag must be a str");
      part.etag = etag.cast<std::string>();
    } else {
      throw py::type_error("parts must be PartInfo objects or (part_number, etag) pairs; got " +
                           std::string(py::repr(p)));
    }
    out.push_back(std::move(part));
  }
  return out;
}

}  // namespace

void RegisterBatchMethods(py::class_<PyClient>& cls) {
  cls.def("put_many", &PutMany, py::arg("bucket"), py::arg("items"), py::kw_only(),
          py::arg("content_type") = py::none(), py::arg("return_exceptions") = false,
          "Stores many objects in as few round trips as possible. items: a dict {key: data} or "
          "an iterable of (key, data) pairs. Returns one ObjectInfo per item, in order. Items "
          "are independent: if some fail, the others are stored, and the call raises the error "
          "of the first failed item with .results and .failures attached (or, with "
          "return_exceptions=True, returns the error instances in place).");
  cls.def("get_many", &GetMany, py::arg("bucket"), py::arg("keys"), py::kw_only(),
          py::arg("return_exceptions") = false,
          "The bytes of each key, in order, with None for a key that does not exist. Other "
          "per-item failures behave as in put_many.");
  cls.def("get_many_into", &GetManyInto, py::arg("bucket"), py::arg("keys"), py::arg("buffers"),
          py::kw_only(), py::arg("return_exceptions") = false,
          "Reads each object whole into its buffer (one writable, C-contiguous buffer per key) "
          "and returns the sizes, with None for a key that does not exist. A buffer too small "
          "for its object is an InvalidArgumentError item failure (see put_many).");
  cls.def("delete_many", &DeleteMany, py::arg("bucket"), py::arg("keys"), py::kw_only(),
          py::arg("return_exceptions") = false,
          "Deletes the keys; returns, per key, True if it was deleted and False if it did not "
          "exist. Other per-item failures behave as in put_many.");
}

void RegisterMultipartMethods(py::class_<PyClient>& cls) {
  cls.def(
      "create_multipart_upload",
      [](PyClient& self, const std::string& bucket, const std::string& key,
         OptionalStrArg content_type, OptionalStrMapArg metadata, OptionalStrMapArg headers) {
        std::shared_ptr<ObjectApi> client = self.client();
        PutOptions options;
        options.content_type = ToOptionalString(content_type, "content_type");
        options.user_metadata = ToStringMap(metadata, "metadata");
        options.headers = ToStringMap(headers, "headers");
        return Unwrap(WithoutGil(
            [&] { return client->CreateMultipartUpload(bucket, key, std::move(options)); }));
      },
      py::arg("bucket"), py::arg("key"), py::arg("content_type") = py::none(),
      py::arg("metadata") = py::none(), py::kw_only(), py::arg("headers") = py::none(),
      "Starts a multipart upload and returns its upload id.");
  cls.def(
      "upload_part",
      [](PyClient& self, const std::string& bucket, const std::string& key,
         const std::string& upload_id, IntArg part_number, BufferArg data,
         OptionalStrArg content_md5) {
        std::shared_ptr<ObjectApi> client = self.client();
        int number = static_cast<int>(ToUnsigned(part_number, "part_number", kMaxPartNumber));
        if (number < 1) throw py::value_error("part_number must be between 1 and 10000");
        std::string md5 = ToOptionalString(content_md5, "content_md5");
        BufferView view(data, BufferView::Access::kRead, "data");
        std::string_view bytes = view.bytes();
        ObjectInfo info = Unwrap(WithoutGil([&]() -> Result<ObjectInfo> {
          Result<std::unique_ptr<ObjectWriter>> writer =
              client->UploadPart(bucket, key, upload_id, number, md5, bytes.size());
          if (!writer.ok()) return writer.status();
          Status st = (*writer)->Append(bytes);
          if (!st.ok()) return st;
          return (*writer)->Commit();
        }));
        PartInfo part;
        part.part_number = number;
        part.size = info.size;
        part.etag = std::move(info.etag);
        part.mtime_ns = info.mtime_ns;
        return part;
      },
      py::arg("bucket"), py::arg("key"), py::arg("upload_id"), py::arg("part_number"),
      py::arg("data"), py::kw_only(), py::arg("content_md5") = py::none(),
      "Uploads one part (1-10000; every part but the last at least 5 MiB) and returns its "
      "PartInfo. Uploading a part number again replaces it.");
  cls.def(
      "complete_multipart_upload",
      [](PyClient& self, const std::string& bucket, const std::string& key,
         const std::string& upload_id, PartsArg parts_obj, OptionalStrArg if_match,
         OptionalStrArg if_none_match) {
        std::shared_ptr<ObjectApi> client = self.client();
        std::vector<CompletedPart> parts = ToCompletedParts(parts_obj);
        Conditions conditions = ToConditions(if_match, if_none_match, py::none());
        return Unwrap(WithoutGil([&] {
          return client->CompleteMultipartUpload(bucket, key, upload_id, parts, conditions);
        }));
      },
      py::arg("bucket"), py::arg("key"), py::arg("upload_id"), py::arg("parts"), py::kw_only(),
      py::arg("if_match") = py::none(), py::arg("if_none_match") = py::none(),
      "Assembles the parts (PartInfo objects or (part_number, etag) pairs, in increasing "
      "order) into the object and returns its ObjectInfo.");
  cls.def(
      "abort_multipart_upload",
      [](PyClient& self, const std::string& bucket, const std::string& key,
         const std::string& upload_id) {
        std::shared_ptr<ObjectApi> client = self.client();
        Check(WithoutGil([&] { return client->AbortMultipartUpload(bucket, key, upload_id); }));
      },
      py::arg("bucket"), py::arg("key"), py::arg("upload_id"),
      "Abandons the upload and frees its parts.");
  cls.def(
      "list_parts",
      [](PyClient& self, const std::string& bucket, const std::string& key,
         const std::string& upload_id, IntArg marker, IntArg max_parts) {
        std::shared_ptr<ObjectApi> client = self.client();
        int from = static_cast<int>(ToUnsigned(marker, "part_number_marker", kMaxPartNumber));
        int max = static_cast<int>(ToUnsigned(max_parts, "max_parts", INT32_MAX));
        return ToPython(Unwrap(
            WithoutGil([&] { return client->ListParts(bucket, key, upload_id, from, max); })));
      },
      py::arg("bucket"), py::arg("key"), py::arg("upload_id"), py::arg("part_number_marker") = 0,
      py::arg("max_parts") = 1000,
      "The parts uploaded so far (after part_number_marker), as a ListPartsResult.");
  cls.def(
      "list_multipart_uploads",
      [](PyClient& self, const std::string& bucket, std::string prefix, std::string delimiter,
         std::string key_marker, std::string upload_id_marker, IntArg max_uploads) {
        std::shared_ptr<ObjectApi> client = self.client();
        ListUploadsOptions options;
        options.prefix = std::move(prefix);
        options.delimiter = std::move(delimiter);
        options.key_marker = std::move(key_marker);
        options.upload_id_marker = std::move(upload_id_marker);
        options.max_uploads =
            static_cast<uint32_t>(ToUnsigned(max_uploads, "max_uploads", UINT32_MAX));
        return ToPython(
            Unwrap(WithoutGil([&] { return client->ListMultipartUploads(bucket, options); })));
      },
      py::arg("bucket"), py::arg("prefix") = "", py::arg("delimiter") = "",
      py::arg("key_marker") = "", py::arg("upload_id_marker") = "", py::arg("max_uploads") = 1000,
      "The multipart uploads in progress in the bucket, as a ListUploadsResult.");
}

}  // namespace granary::python
