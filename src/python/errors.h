// Turns a granary Status into the Python exception of its code (python/granary/errors.py holds
// the one table from code to class).
//
// Every function here needs the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "granary/status.h"

namespace granary::python {

namespace py = pybind11;

// Loads the classes of granary.errors and checks that every Code has one. Called once, at import;
// raises ImportError if a code has no class.
void LoadErrorClasses(py::module_& m);

// An instance of the exception class for `status` (which must not be OK).
py::object MakeError(const Status& status);

// Raises `status` as a Python exception (throws py::error_already_set).
[[noreturn]] void ThrowStatus(const Status& status);

// Throws `result`'s error unless it is OK.
template <typename T>
T Unwrap(Result<T>&& result) {
  if (!result.ok()) ThrowStatus(result.status());
  return std::move(result).value();
}
inline void Check(const Status& status) {
  if (!status.ok()) ThrowStatus(status);
}

// The outcome of one item of a batch call.
struct ItemOutcome {
  std::string key;
  Status status;     // OK: `value` holds the item's result
  py::object value;  // what the item contributes to the returned list when OK
};

// The list a batch call returns: the values of `items` in order. If any item failed and
// `return_exceptions` is false, raises the class of the first failed item with `results` (every
// item's value or error instance) and `failures` ((key, error) pairs); with `return_exceptions`,
// failed items appear in the list as error instances instead.
py::list BatchResults(const char* call, std::vector<ItemOutcome>& items, bool return_exceptions);

}  // namespace granary::python
