#include "python/errors.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace granary::python {
namespace {

// Set once at import (under the GIL) and only read afterwards. The references are deliberately
// never released: exception classes live as long as the interpreter, and releasing them from a
// static destructor after the interpreter is gone would crash at exit.
struct ErrorClasses {
  PyObject* base = nullptr;              // granary.errors.Error
  std::array<PyObject*, 256> by_code{};  // indexed by Code; null for kOk
};
ErrorClasses g_classes;

PyObject* ClassFor(Code code) {
  PyObject* cls = g_classes.by_code[static_cast<uint8_t>(code)];
  return cls ? cls : g_classes.base;
}

// Keys and messages are UTF-8, but a message may quote bytes a caller sent that are not: those
// show as U+FFFD rather than failing the conversion.
py::str DecodeLenient(std::string_view s) {
  PyObject* str = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (str == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(str);
}

// A key as messages quote it: at most 100 bytes, cut at a character boundary.
std::string ShortKey(const std::string& key) {
  constexpr size_t kMax = 100;
  if (key.size() <= kMax) return key;
  size_t end = kMax;
  while (end > 0 && (static_cast<unsigned char>(key[end]) & 0xC0) == 0x80) --end;
  return key.substr(0, end) + "... (" + std::to_string(key.size()) + " bytes)";
}

}  // namespace

void LoadErrorClasses(py::module_& m) {
  py::module_ errors = py::module_::import("granary.errors");
  py::dict table = errors.attr("CLASSES_BY_CODE");
  py::object base = errors.attr("Error");
  for (int c = 1; c < 256; ++c) {
    Code code = static_cast<Code>(c);
    std::string_view name = CodeName(code);
    if (name == "unknown") continue;  // not a code of this build
    py::str key(name.data(), name.size());
    if (!table.contains(key)) {
      throw py::import_error("granary.errors.CLASSES_BY_CODE has no class for the code \"" +
                             std::string(name) + "\": add one next to the others");
    }
    g_classes.by_code[c] = py::object(table[key]).release().ptr();
  }
  g_classes.base = base.release().ptr();
  m.attr("Error") = py::handle(g_classes.base);
}

py::object MakeError(const Status& status) {
  if (g_classes.base == nullptr) {
    throw std::logic_error("granary: error classes used before the module was initialized");
  }
  std::string_view name = CodeName(status.code());
  py::handle cls = ClassFor(status.code());
  return cls(DecodeLenient(status.message()), py::str(name.data(), name.size()));
}

void ThrowStatus(const Status& status) {
  py::object error = MakeError(status);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

py::list BatchResults(const char* call, std::vector<ItemOutcome>& items, bool return_exceptions) {
  py::list results(items.size());
  py::list failures;
  const ItemOutcome* first_failed = nullptr;
  bool all_same = true;
  for (size_t i = 0; i < items.size(); ++i) {
    ItemOutcome& item = items[i];
    if (item.status.ok()) {
      results[i] = item.value;
      continue;
    }
    py::object error = MakeError(item.status);
    results[i] = error;
    failures.append(py::make_tuple(DecodeLenient(item.key), error));
    if (first_failed == nullptr) {
      first_failed = &item;
    } else if (!(item.status == first_failed->status)) {
      all_same = false;
    }
  }
  if (first_failed == nullptr || return_exceptions) return results;

  // A failure of the whole call (no such bucket, server unreachable) fails every item the same
  // way; say it once. Otherwise say how many failed and show the first.
  std::string message;
  if (all_same && failures.size() == items.size()) {
    message = first_failed->status.message();
  } else {
    message = std::string(call) + ": " + std::to_string(failures.size()) + " of " +
              std::to_string(items.size()) + " items failed; the first, key \"" +
              ShortKey(first_failed->key) + "\": " + first_failed->status.ToString();
  }
  py::object error = MakeError(Status(first_failed->status.code(), std::move(message)));
  error.attr("results") = results;
  error.attr("failures") = failures;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

}  // namespace granary::python
