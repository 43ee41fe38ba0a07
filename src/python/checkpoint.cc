// The Python class granary._granary.Checkpointer over granary::Checkpointer
// (include/granary/checkpoint.h), with CheckpointManifest and SavedTensor as result types.
// python/granary/torch/ builds PyTorch's checkpoints on it; the binding itself knows only named
// byte buffers, so that chunking, hashing and uploads run in C++ threads without the GIL.
//
// Threads: every call releases the GIL for the whole exchange, with its Python buffers exported
// (BufferView) until it returns. The Checkpointer serializes its own calls (loads run in
// parallel with them).
//
// Fork: a Checkpointer is opened over its Client's connection. When the Client reconnects (the
// first call in a forked child, see client_binding.h), the Checkpointer is opened again over the
// new connection; the inherited one is left untouched, never destroyed.
#include "granary/checkpoint.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "python/arg_types.h"
#include "python/buffers.h"
#include "python/client_binding.h"
#include "python/errors.h"

namespace granary::python {
namespace {

class PyCheckpointer {
 public:
  PyCheckpointer(py::object client, std::string run, CheckpointOptions options)
      : client_obj_(std::move(client)), run_(std::move(run)), options_(options) {
    if (!py::isinstance<PyClient>(client_obj_)) {
      throw py::type_error("client must be a granary.Client, not " +
                           std::string(Py_TYPE(client_obj_.ptr())->tp_name));
    }
    get();
  }
  ~PyCheckpointer() {
    if (getpid() != pid_) Leak();
  }
  PyCheckpointer(const PyCheckpointer&) = delete;
  PyCheckpointer& operator=(const PyCheckpointer&) = delete;

  // The Checkpointer over the Client's current connection (opened anew after a reconnection).
  // Needs the GIL; returns a reference that keeps it alive with the GIL released.
  std::shared_ptr<Checkpointer> get() {
    std::shared_ptr<ObjectApi> client = client_obj_.cast<PyClient&>().client();
    if (ckpt_ != nullptr && client == client_) return ckpt_;
    if (getpid() != pid_) Leak();  // inherited over fork(): its client is the parent's
    std::unique_ptr<Checkpointer> opened = Unwrap(
        WithoutGil([&] { return Checkpointer::Open(*client, run_, options_); }));
    // The Checkpointer refers to the client: one reference keeps both alive.
    ckpt_ = std::shared_ptr<Checkpointer>(opened.release(),
                                          [client](Checkpointer* c) { delete c; });
    client_ = std::move(client);
    pid_ = getpid();
    return ckpt_;
  }
  const std::string& run() const { return run_; }

 private:
  void Leak() {
    new std::shared_ptr<Checkpointer>(std::move(ckpt_));
    new std::shared_ptr<ObjectApi>(std::move(client_));
    ckpt_ = nullptr;
    client_ = nullptr;
  }

  py::object client_obj_;
  const std::string run_;
  const CheckpointOptions options_;
  std::shared_ptr<ObjectApi> client_;  // the connection ckpt_ was opened over
  std::shared_ptr<Checkpointer> ckpt_;
  pid_t pid_ = getpid();  // the process that opened ckpt_
};

// The tensors of a save: (name, dtype, shape, buffer) tuples, their buffers exported in `views`.
std::vector<TensorToSave> ToTensors(py::handle tensors, std::vector<BufferView>& views) {
  std::vector<TensorToSave> out;
  for (py::handle item : py::iter(tensors)) {
    const std::string what = "tensor " + std::to_string(out.size());
    if (!PyTuple_Check(item.ptr()) || PyTuple_Size(item.ptr()) != 4) {
      throw py::type_error(what + " must be a tuple (name, dtype, shape, buffer)");
    }
    py::tuple t = py::reinterpret_borrow<py::tuple>(item);
    if (!PyUnicode_Check(t[0].ptr()) || !PyUnicode_Check(t[1].ptr())) {
      throw py::type_error("the name and dtype of " + what + " must be str");
    }
    TensorToSave s;
    s.name = t[0].cast<std::string>();
    s.dtype = t[1].cast<std::string>();
    for (py::handle d : py::iter(t[2])) {
      if (!PyLong_Check(d.ptr())) throw py::type_error("the shape of " + what + " must be ints");
      s.shape.push_back(d.cast<int64_t>());
    }
    views.emplace_back(t[3], BufferView::Access::kRead, "the buffer of " + what);
    const std::string_view bytes = views.back().bytes();
    s.bytes = std::span<const char>(bytes.data(), bytes.size());
    out.push_back(std::move(s));
  }
  return out;
}

py::dict StatsToDict(const SaveStats& s) {
  py::dict d;
  d["bytes"] = s.bytes;
  d["chunks"] = s.chunks;
  d["written_bytes"] = s.written_bytes;
  d["written_chunks"] = s.written_chunks;
  d["manifest_bytes"] = s.manifest_bytes;
  return d;
}

void Load(PyCheckpointer& self, const CheckpointManifest& manifest, py::handle buffers) {
  std::shared_ptr<Checkpointer> ckpt = self.get();
  // The tensors with a buffer (None skips one), in the manifest's order.
  CheckpointManifest wanted;
  wanted.step = manifest.step;
  std::vector<BufferView> views;
  size_t i = 0;
  for (py::handle buffer : py::iter(buffers)) {
    if (i >= manifest.tensors.size()) {
      throw py::value_error("load got more buffers than the checkpoint's " +
                            std::to_string(manifest.tensors.size()) + " tensors");
    }
    if (!buffer.is_none()) {
      views.emplace_back(buffer, BufferView::Access::kWrite,
                         "the buffer of tensor \"" + manifest.tensors[i].name + "\"");
      wanted.tensors.push_back(manifest.tensors[i]);
    }
    ++i;
  }
  if (i != manifest.tensors.size()) {
    throw py::value_error("load needs one buffer (or None) per tensor of the checkpoint: got " +
                          std::to_string(i) + " for " + std::to_string(manifest.tensors.size()));
  }
  Check(WithoutGil([&] {
    return ckpt->Load(wanted, [&](size_t index, const SavedTensor&) -> Result<std::span<char>> {
      return views[index].writable();
    });
  }));
}

py::tuple ChunksToTuple(const SavedTensor& t) {
  py::list chunks;
  for (const CheckpointChunkRef& c : t.chunks) {
    chunks.append(py::make_tuple(c.hash_lo, c.hash_hi, c.size));
  }
  return py::make_tuple(t.name, t.dtype, py::tuple(py::cast(t.shape)), t.size, chunks);
}

SavedTensor TupleToSaved(const py::tuple& state) {
  if (state.size() != 5) throw py::value_error("not the state of a SavedTensor");
  SavedTensor t;
  t.name = state[0].cast<std::string>();
  t.dtype = state[1].cast<std::string>();
  t.shape = state[2].cast<std::vector<int64_t>>();
  t.size = state[3].cast<uint64_t>();
  for (py::handle c : state[4]) {
    auto [lo, hi, size] = c.cast<std::tuple<uint64_t, uint64_t, uint64_t>>();
    t.chunks.push_back({lo, hi, size});
  }
  return t;
}

void RegisterResultTypes(py::module_& m) {
  py::class_<SavedTensor>(m, "SavedTensor",
                          "A tensor of a checkpoint: its name, dtype, shape and size in bytes, "
                          "and the chunks that hold its bytes. Picklable, so that the processes "
                          "of a distributed save can hand it to the one that commits.")
      .def_readonly("name", &SavedTensor::name)
      .def_readonly("dtype", &SavedTensor::dtype)
      .def_property_readonly("shape",
                             [](const SavedTensor& t) { return py::tuple(py::cast(t.shape)); })
      .def_readonly("size", &SavedTensor::size)
      .def_property_readonly("chunks", [](const SavedTensor& t) { return t.chunks.size(); })
      .def(py::pickle([](const SavedTensor& t) { return ChunksToTuple(t); },
                      [](const py::tuple& state) { return TupleToSaved(state); }))
      .def("__repr__", [](const SavedTensor& t) {
        return "SavedTensor(" + std::string(py::repr(py::str(t.name))) + ", " + t.dtype + ", " +
               std::string(py::repr(py::tuple(py::cast(t.shape)))) + ", " +
               std::to_string(t.size) + " bytes)";
      });
  py::class_<CheckpointManifest>(m, "CheckpointManifest",
                                 "A complete checkpoint: its step, creation time (ms since the "
                                 "epoch), tensors and the caller's extra bytes.")
      .def_readonly("step", &CheckpointManifest::step)
      .def_readonly("created_unix_ms", &CheckpointManifest::created_unix_ms)
      .def_property_readonly("extra",
                             [](const CheckpointManifest& c) { return py::bytes(c.extra); })
      .def_readonly("tensors", &CheckpointManifest::tensors)
      .def_property_readonly("bytes", &CheckpointManifest::bytes)
      .def("__repr__", [](const CheckpointManifest& c) {
        return "CheckpointManifest(step=" + std::to_string(c.step) + ", " +
               std::to_string(c.tensors.size()) + " tensors, " + std::to_string(c.bytes()) +
               " bytes)";
      });
}

}  // namespace

void RegisterCheckpoint(py::module_& m) {
  RegisterResultTypes(m);
  py::class_<PyCheckpointer> cls(m, "Checkpointer", R"doc(
Checkpoints of a training run in a bucket, as named byte buffers (granary.torch.Checkpointer
builds PyTorch's checkpoints on it).

    ckpt = granary._granary.Checkpointer(client, "bucket/run-42")
    ckpt.save(100, [("w", "float32", (4, 4), array)], b"extra")
    m = ckpt.describe()                  # the latest
    ckpt.load(m, [bytearray(t.size) for t in m.tensors])

A checkpoint is visible only once every byte of it is durable; chunks the run already holds are
not written again; every chunk is checked against its hash on load.)doc");
  cls.def(py::init([](py::object client, const std::string& run, uint64_t chunk_bytes,
                      int parallel, double dead_saver_grace) {
            if (chunk_bytes == 0) throw py::value_error("chunk_bytes must be > 0");
            if (parallel < 1) throw py::value_error("parallel must be >= 1");
            if (!(dead_saver_grace >= 0)) throw py::value_error("dead_saver_grace must be >= 0");
            CheckpointOptions o;
            o.chunk_bytes = chunk_bytes;
            o.parallel = parallel;
            o.dead_saver_grace_ms = static_cast<int64_t>(dead_saver_grace * 1000);
            return std::make_unique<PyCheckpointer>(std::move(client), run, o);
          }),
          py::arg("client"), py::arg("run"), py::kw_only(), py::arg("chunk_bytes") = 16ull << 20,
          py::arg("parallel") = 8, py::arg("dead_saver_grace") = 60.0,
          "Opens the run \"bucket/prefix\" over `client`. InvalidArgumentError for a malformed "
          "run, NoSuchBucketError when the bucket does not exist. `dead_saver_grace`: seconds "
          "a killed saver's chunks are spared by reclamation, for its requests still landing.");
  cls.def(
      "save",
      [](PyCheckpointer& self, IntArg step_obj, TensorsArg tensors_obj, BufferArg extra_obj) {
        const uint64_t step = ToUnsigned(step_obj, "step");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        std::vector<BufferView> views;
        std::vector<TensorToSave> tensors = ToTensors(tensors_obj, views);
        BufferView extra(extra_obj, BufferView::Access::kRead, "extra");
        const std::string_view extra_bytes = extra.bytes();
        return StatsToDict(
            Unwrap(WithoutGil([&] { return ckpt->Save(step, tensors, extra_bytes); })));
      },
      py::arg("step"), py::arg("tensors"), py::arg("extra") = py::bytes(),
      "Saves checkpoint `step` from (name, dtype, shape, buffer) tuples and returns when it is "
      "durable and listed, with counters: bytes, chunks, written_bytes, written_chunks (what "
      "was uploaded; the rest the run held already), manifest_bytes. AlreadyExistsError when the step exists.");
  cls.def(
      "store_tensors",
      [](PyCheckpointer& self, IntArg step_obj, TensorsArg tensors_obj) {
        const uint64_t step = ToUnsigned(step_obj, "step");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        std::vector<BufferView> views;
        std::vector<TensorToSave> tensors = ToTensors(tensors_obj, views);
        SaveStats stats;
        std::vector<SavedTensor> saved =
            Unwrap(WithoutGil([&] { return ckpt->StoreTensors(step, tensors, &stats); }));
        return py::make_tuple(saved, StatsToDict(stats));
      },
      py::arg("step"), py::arg("tensors"),
      "The first half of a save of checkpoint `step` whose tensors several processes store: "
      "uploads the chunks the run lacks and returns (list of SavedTensor, counters). Nothing "
      "is listed until commit(step, ...).");
  cls.def(
      "commit",
      [](PyCheckpointer& self, IntArg step_obj, std::vector<SavedTensor> tensors,
         BufferArg extra_obj) {
        const uint64_t step = ToUnsigned(step_obj, "step");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        BufferView extra(extra_obj, BufferView::Access::kRead, "extra");
        const std::string_view extra_bytes = extra.bytes();
        return Unwrap(
            WithoutGil([&] { return ckpt->Commit(step, std::move(tensors), extra_bytes); }));
      },
      py::arg("step"), py::arg("tensors"), py::arg("extra") = py::bytes(),
      "Writes the manifest of checkpoint `step` over SavedTensors from store_tensors() (of any "
      "process), making it visible, and returns the manifest's size. AlreadyExistsError, "
      "InvalidArgumentError as for save().");
  cls.def(
      "list",
      [](PyCheckpointer& self) {
        std::shared_ptr<Checkpointer> ckpt = self.get();
        return Unwrap(WithoutGil([&] { return ckpt->List(); }));
      },
      "The steps of the complete checkpoints, ascending.");
  cls.def(
      "describe",
      [](PyCheckpointer& self, OptionalIntArg step_obj) {
        std::optional<uint64_t> step = ToOptionalUnsigned(step_obj, "step");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        return Unwrap(WithoutGil([&] { return ckpt->Describe(step); }));
      },
      py::arg("step") = py::none(),
      "The CheckpointManifest of checkpoint `step`, or of the latest. NotFoundError when there "
      "is none, CorruptionError when its manifest is damaged.");
  cls.def("load", &Load, py::arg("manifest"), py::arg("buffers"),
          "Reads the tensors of `manifest` into `buffers` (one writable, C-contiguous buffer of "
          "exactly the tensor's size per tensor, in order; None skips a tensor), chunks in "
          "parallel. CorruptionError naming the chunk, tensor and step for a chunk that is "
          "missing or damaged.");
  cls.def(
      "delete",
      [](PyCheckpointer& self, IntArg step_obj) {
        const uint64_t step = ToUnsigned(step_obj, "step");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        Check(WithoutGil([&] { return ckpt->Delete(step); }));
      },
      py::arg("step"),
      "Removes checkpoint `step` (NotFoundError if there is none) and the chunks no other "
      "checkpoint uses.");
  cls.def(
      "keep_last",
      [](PyCheckpointer& self, IntArg n_obj) {
        const uint64_t n = ToUnsigned(n_obj, "n");
        std::shared_ptr<Checkpointer> ckpt = self.get();
        Check(WithoutGil([&] { return ckpt->KeepLast(n); }));
      },
      py::arg("n"), "Deletes all but the `n` latest checkpoints, and reclaims their chunks.");
  cls.def_property_readonly("run", &PyCheckpointer::run);
  cls.def("__repr__", [](PyCheckpointer& self) {
    return "granary.Checkpointer(" + std::string(py::repr(py::str(self.run()))) + ")";
  });
}

}  // namespace granary::python
