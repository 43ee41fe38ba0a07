// Python buffers (bytes, bytearray, memoryview, numpy arrays...) seen as C++ byte spans, and the
// conversions of Python arguments that the binding checks itself to give clear errors.
//
// Every function and every constructor/destructor here needs the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace granary::python {

namespace py = pybind11;

// A contiguous buffer exported by a Python object, held until destruction. While held, the
// object cannot be resized (a bytearray refuses), so the bytes may be used with the GIL
// released; destroy it only with the GIL held.
class BufferView {
 public:
  enum class Access { kRead, kWrite };
  // Raises TypeError if `obj` does not support the buffer protocol (or is a str), if `access` is
  // kWrite and the buffer is read-only, or if it is not C-contiguous. `what` names the argument
  // in messages ("data", "buffer 3").
  BufferView(py::handle obj, Access access, std::string_view what);
  ~BufferView();
  BufferView(BufferView&& other) noexcept;
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;
  BufferView& operator=(BufferView&&) = delete;

  std::string_view bytes() const {
    return {static_cast<const char*>(view_.buf), static_cast<size_t>(view_.len)};
  }
  std::span<char> writable() const {
    return {static_cast<char*>(view_.buf), static_cast<size_t>(view_.len)};
  }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

// A non-negative integer argument, or `absent` for None when `allow_none`. TypeError for a
// non-integer, ValueError for a negative one or one above `max`.
uint64_t ToUnsigned(py::handle value, const char* name, uint64_t max = UINT64_MAX);
std::optional<uint64_t> ToOptionalUnsigned(py::handle value, const char* name,
                                           uint64_t max = UINT64_MAX);

// A str argument (or None -> ""). TypeError otherwise.
std::string ToOptionalString(py::handle value, const char* name);

// A dict of str -> str (or None -> empty). TypeError naming the offending entry otherwise.
std::map<std::string, std::string> ToStringMap(py::handle value, const char* name);

}  // namespace granary::python
