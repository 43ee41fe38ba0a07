// The result classes of the Python module: ObjectInfo, BucketInfo, PartInfo, UploadInfo (the C++
// structs of object_api.h, read-only from Python) and ListResult, ListPartsResult,
// ListUploadsResult (whose lists are built once, as Python lists).
//
// Every function here needs the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "granary/object_api.h"

namespace granary::python {

namespace py = pybind11;

// The list results hold Python lists built once, so that `r.objects[i]` does not convert the
// whole vector on every access.
struct PyListResult {
  py::list objects;
  py::list common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;
  std::string next_marker;
};

struct PyListPartsResult {
  py::list parts;
  bool truncated = false;
  int next_part_number_marker = 0;
};

struct PyListUploadsResult {
  py::list uploads;
  py::list common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

void RegisterTypes(py::module_& m);

PyListResult ToPython(ListResult&& result);
PyListPartsResult ToPython(ListPartsResult&& result);
PyListUploadsResult ToPython(ListUploadsResult&& result);

}  // namespace granary::python
