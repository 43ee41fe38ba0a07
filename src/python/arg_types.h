// Argument types of the binding whose conversion and checks the binding does itself (buffers.h,
// kv.cc's keys), so that a bad argument gets a message naming it instead of pybind11's
// "incompatible function arguments". Each accepts any Python object and only names, in help() and
// the docstrings' signatures, what the argument should be ("int | None", "Buffer").
#pragma once

#include <pybind11/pybind11.h>

namespace granary::python {

inline int AcceptAnyObject(PyObject*) { return 1; }

#define GRANARY_PY_ARG_TYPE(Name, shown_as)                                   \
  class Name : public ::pybind11::object {                                    \
   public:                                                                    \
    PYBIND11_OBJECT_DEFAULT(Name, object, ::granary::python::AcceptAnyObject) \
  };                                                                          \
  }                                                                           \
  namespace pybind11::detail {                                                \
  template <>                                                                 \
  struct handle_type_name<::granary::python::Name> {                          \
    static constexpr auto name = const_name(shown_as);                        \
  };                                                                          \
  }                                                                           \
  namespace granary::python {

GRANARY_PY_ARG_TYPE(IntArg, "int")
GRANARY_PY_ARG_TYPE(OptionalIntArg, "int | None")
GRANARY_PY_ARG_TYPE(OptionalStrArg, "str | None")
GRANARY_PY_ARG_TYPE(OptionalStrMapArg, "dict[str, str] | None")
GRANARY_PY_ARG_TYPE(BufferArg, "Buffer")
GRANARY_PY_ARG_TYPE(WritableBufferArg, "WritableBuffer")
GRANARY_PY_ARG_TYPE(PutItemsArg, "dict[str, Buffer] | Iterable[tuple[str, Buffer]]")
GRANARY_PY_ARG_TYPE(KeysArg, "Iterable[str]")
GRANARY_PY_ARG_TYPE(WritableBuffersArg, "Iterable[WritableBuffer]")
GRANARY_PY_ARG_TYPE(PartsArg, "Iterable[PartInfo | tuple[int, str]]")
// granary.kv (kv.cc): keys are bytes or str.
GRANARY_PY_ARG_TYPE(KvKeyArg, "bytes | str")
GRANARY_PY_ARG_TYPE(KvKeysArg, "Iterable[bytes | str]")
GRANARY_PY_ARG_TYPE(KvItemsArg, "dict[bytes | str, Buffer] | Iterable[tuple[bytes | str, Buffer]]")
// granary._granary.Checkpointer (checkpoint.cc): the tensors of a save.
GRANARY_PY_ARG_TYPE(TensorsArg, "Iterable[tuple[str, str, Sequence[int], Buffer]]")

#undef GRANARY_PY_ARG_TYPE

}  // namespace granary::python
