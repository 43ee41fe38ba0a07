// granary._granary.SharedBuffer and Client.shared_buffer(): memory shared with a server on this
// host (include/granary/client.h, SharedBuffer). It exposes the buffer protocol, so memoryview,
// numpy.frombuffer and torch.frombuffer see it in place; put() of bytes inside it and get_into()
// it move no object byte over the socket.
#include <unistd.h>

#include "python/client_binding.h"

namespace granary::python {
namespace {

// Keeps the client alive as long as its buffer: the buffer goes first. In a forked child (a
// DataLoader worker) both are left alone, never destroyed, as PyClient leaves an inherited
// client: their locks and threads were the parent's. The child's own client sends such a
// buffer's bytes over its socket.
struct PySharedBuffer {
  pid_t pid = ::getpid();
  std::shared_ptr<ObjectApi> client;
  std::unique_ptr<SharedBuffer> buffer;

  ~PySharedBuffer() {
    if (::getpid() != pid) {
      (void)buffer.release();
      (void)new std::shared_ptr<ObjectApi>(std::move(client));
      return;
    }
    py::gil_scoped_release release;  // closing its connection may take a moment
    buffer.reset();
  }
};

std::unique_ptr<PySharedBuffer> Allocate(PyClient& self, int64_t nbytes, bool populate) {
  if (nbytes <= 0) throw py::value_error("nbytes must be positive, not " + std::to_string(nbytes));
  auto shared = std::make_unique<PySharedBuffer>();
  shared->client = self.client();
  auto* client = dynamic_cast<Client*>(shared->client.get());
  if (client == nullptr) {
    Check(Status::NotSupported(
        "shared buffers need a client of one server (granary.Client(address)), not a cluster's"));
  }
  shared->buffer = Unwrap(WithoutGil([&] { return client->AllocateShared(uint64_t(nbytes)); }));
  if (populate) Check(WithoutGil([&] { return shared->buffer->Populate(); }));
  return shared;
}

}  // namespace

void RegisterSharedBuffer(py::module_& m, py::class_<PyClient>& client) {
  py::class_<PySharedBuffer>(m, "SharedBuffer", py::buffer_protocol(), R"doc(
Memory shared with the server this client is connected to (made by Client.shared_buffer).
A writable buffer: memoryview(buf), numpy.frombuffer(buf, dtype) and torch.frombuffer(buf, ...)
use it in place. Client.put() of bytes inside it and Client.get_into() a range of it move no
object byte over the socket. Freed on both sides when the last reference to it goes.)doc")
      .def_buffer([](PySharedBuffer& b) {
        return py::buffer_info(b.buffer->data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.buffer->size())}, {py::ssize_t{1}},
                               /*readonly=*/false);
      })
      .def("__len__", [](const PySharedBuffer& b) { return b.buffer->size(); })
      .def("__repr__", [](const PySharedBuffer& b) {
        return "<granary.SharedBuffer of " + std::to_string(b.buffer->size()) + " bytes>";
      });
  client.def("shared_buffer", &Allocate, py::arg("nbytes"), py::arg("populate") = false,
             "A SharedBuffer of `nbytes` shared with the server, for zero-copy put() and "
             "get_into() on the server's host; `populate`: allocate every page now, so that the "
             "first writes take no page faults. UnavailableError when the server runs on another "
             "host, NotSupportedError when it offers none, InvalidArgumentError / NoSpaceError "
             "beyond its limits (4 GiB a buffer, 16 GiB per access key).");
}

}  // namespace granary::python
