#include "python/buffers.h"

#include <utility>

namespace granary::python {
namespace {

// Whether a struct-module format string has an 'O' (a PyObject*) item; field names, written
// between colons in structured formats ("T{<d:Open:}"), do not count.
bool HoldsObjects(const char* format) {
  if (format == nullptr) return false;
  bool in_name = false;
  for (const char* c = format; *c != '\0'; ++c) {
    if (*c == ':') {
      in_name = !in_name;
    } else if (*c == 'O' && !in_name) {
      return true;
    }
  }
  return false;
}

}  // namespace

BufferView::BufferView(py::handle obj, Access access, std::string_view what) {
  std::string name(what);
  if (PyUnicode_Check(obj.ptr())) {
    throw py::type_error(name +
                         " must be a bytes-like object (bytes, bytearray, memoryview, "
                         "numpy array), not str: encode it first, e.g. s.encode()");
  }
  if (!PyObject_CheckBuffer(obj.ptr())) {
    throw py::type_error(name +
                         " must be a bytes-like object (bytes, bytearray, memoryview, "
                         "numpy array...), not " +
                         std::string(Py_TYPE(obj.ptr())->tp_name));
  }
  // The format is asked for only to refuse buffers of Python objects (numpy's dtype=object),
  // whose bytes are pointers.
  int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (access == Access::kWrite ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj.ptr(), &view_, flags) == 0) {
    if (HoldsObjects(view_.format)) {
      std::string format = view_.format;
      PyBuffer_Release(&view_);  // the destructor does not run when the constructor throws
      throw py::type_error(name + " cannot be used as bytes: it holds Python objects (format '" +
                           format + "')");
    }
    held_ = true;
    return;
  }
  // Say why: read-only, not contiguous (a strided view or slice), or not bytes at all (the
  // exporter's own message, e.g. numpy's for an object array).
  std::string reason = py::error_already_set().what();
  Py_buffer probe{};
  if (PyObject_GetBuffer(obj.ptr(), &probe, PyBUF_FULL_RO) != 0) {
    PyErr_Clear();
    throw py::type_error(name + " cannot be used as bytes: " + reason);
  }
  bool readonly = probe.readonly;
  PyBuffer_Release(&probe);
  if (access == Access::kWrite && readonly) {
    throw py::type_error(name + " is read-only (a " + std::string(Py_TYPE(obj.ptr())->tp_name) +
                         "): pass a writable buffer such as a bytearray or a numpy array");
  }
  throw py::value_error(name +
                        " is not a C-contiguous buffer: pass a contiguous copy, e.g. "
                        "numpy.ascontiguousarray(x) or bytes(x)");
}

BufferView::~BufferView() {
  if (held_) PyBuffer_Release(&view_);
}

BufferView::BufferView(BufferView&& other) noexcept : view_(other.view_), held_(other.held_) {
  other.held_ = false;
  other.view_ = Py_buffer{};
}

std::optional<uint64_t> ToOptionalUnsigned(py::handle value, const char* name, uint64_t max) {
  if (value.is_none()) return std::nullopt;
  if (!PyIndex_Check(value.ptr()) || PyFloat_Check(value.ptr())) {
    throw py::type_error(std::string(name) + " must be an int, not " +
                         Py_TYPE(value.ptr())->tp_name);
  }
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();
  int negative = PyObject_RichCompareBool(index.ptr(), py::int_(0).ptr(), Py_LT);
  if (negative < 0) throw py::error_already_set();
  if (negative) {
    throw py::value_error(std::string(name) + " must be >= 0, got " + std::string(py::str(index)));
  }
  unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
  bool overflow = v == static_cast<unsigned long long>(-1) && PyErr_Occurred();
  if (overflow) PyErr_Clear();
  if (overflow || v > max) {
    throw py::value_error(std::string(name) + " must be <= " + std::to_string(max) + ", got " +
                          std::string(py::str(index)));
  }
  return v;
}

uint64_t ToUnsigned(py::handle value, const char* name, uint64_t max) {
  if (value.is_none()) throw py::type_error(std::string(name) + " must be an int, not None");
  return *ToOptionalUnsigned(value, name, max);
}

std::string ToOptionalString(py::handle value, const char* name) {
  if (value.is_none()) return {};
  if (!PyUnicode_Check(value.ptr())) {
    throw py::type_error(std::string(name) + " must be a str or None, not " +
                         Py_TYPE(value.ptr())->tp_name);
  }
  return value.cast<std::string>();
}

std::map<std::string, std::string> ToStringMap(py::handle value, const char* name) {
  std::map<std::string, std::string> out;
  if (value.is_none()) return out;
  if (!PyDict_Check(value.ptr())) {
    throw py::type_error(std::string(name) + " must be a dict of str to str, not " +
                         Py_TYPE(value.ptr())->tp_name);
  }
  for (auto [k, v] : py::reinterpret_borrow<py::dict>(value)) {
    if (!PyUnicode_Check(k.ptr()) || !PyUnicode_Check(v.ptr())) {
      throw py::type_error(std::string(name) + " must map str to str; the entry " +
                           std::string(py::repr(k)) + ": " + std::string(py::repr(v)) +
                           " does not");
    }
    out.emplace(k.cast<std::string>(), v.cast<std::string>());
  }
  return out;
}

}  // namespace granary::python
