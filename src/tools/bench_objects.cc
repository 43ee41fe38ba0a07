// `granary bench s3` and `granary bench client`: PUT and GET of 4 KiB, 64 KiB, 1 MiB and 64 MiB
// objects from many concurrent clients through one door of a server started in this process (S3
// over HTTP, or the native protocol), beside the blob engine's own figure for the same sizes and
// concurrency (the ceiling) and one file per object on the same disk. bench/README.md says how
// each figure is measured.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "common/crypto.h"
#include "granary/client.h"
#include "node/server.h"
#include "s3/auth.h"
#include "tools/bench_baselines.h"
#include "tools/bench_put_get.h"
#include "tools/bench_engine.h"
#include "tools/bench_load.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr char kBucket[] = "bench";

struct ObjectBenchOptions {
  std::string door;  // "s3" or "client"
  std::string dir;
  bool json = false;
  bool quick = false;
  double seconds = 4.0;
  int threads = 8;
  std::vector<int> sizes_kib = {4, 64, 1024, 65536};
  double max_gib = 2.0;
  int batch = 16;  // objects per call of the batch doors (bench client); 1: none
};

// The most object bytes one call of a batch door carries.
constexpr size_t kMaxBatchBytes = 16u << 20;

// A server of this process, with the bench bucket, behind one of its doors.
class DoorTarget : public BlobTarget {
 public:
  ~DoorTarget() override { Close().IgnoreError(); }
  Status Start(const std::string& dir) {
    dir_ = dir;
    node::ServerOptions o;
    o.data_dir = dir;
    o.s3_listen = "127.0.0.1:0";
    o.native_listen = "127.0.0.1:0";
    ASSIGN_OR_RETURN(server_, node::Server::Start(o));
    return server_->store().CreateBucket(kBucket);
  }
  Status DropCaches() override { return DropPageCache(dir_); }
  Status Close() override {
    if (!server_) return Status::OK();
    Status st = server_->Stop();
    server_.reset();
    return st;
  }

 protected:
  std::string dir_;
  std::unique_ptr<node::Server> server_;
};

// S3 over HTTP/1.1 keep-alive connections, SigV4-signed with an unsigned payload (what the aws
// CLI and boto3 send over TLS; over plain HTTP they hash the body, which costs the client, not
// the server, a SHA-256 pass).
class S3Target final : public DoorTarget {
 public:
  std::string name() const override { return "s3"; }

  Status Put(std::string_view key, std::string_view value) override {
    http::request<http::buffer_body> req{http::verb::put, "/" + std::string(kBucket) + "/" +
                                                              HexEncode(key), 11};
    req.body().data = const_cast<char*>(value.data());
    req.body().size = value.size();
    req.body().more = false;
    req.content_length(value.size());
    std::string answer;
    ASSIGN_OR_RETURN(unsigned status, Send(req, &answer));
    if (status != 200) return Status::IOError("PUT answered " + std::to_string(status) + ": " + answer);
    return Status::OK();
  }

  // The body is read straight into `value` (sized from Content-Length), as a client that reads
  // into its own buffers does.
  Status Get(std::string_view key, std::string* value) override {
    http::request<http::empty_body> req{http::verb::get, "/" + std::string(kBucket) + "/" +
                                                             HexEncode(key), 11};
    ASSIGN_OR_RETURN(unsigned status, Send(req, value));
    if (status != 200) return Status::IOError("GET answered " + std::to_string(status));
    return Status::OK();
  }

 private:
  // Signs and sends `req`, reads the answer's body into `*body`; returns the HTTP status.
  template <typename Body>
  Result<unsigned> Send(http::request<Body>& req, std::string* body) {
    std::string host = "127.0.0.1:" + std::to_string(server_->s3_port());
    std::vector<std::pair<std::string, std::string>> headers = {{"host", host}};
    s3::SignOptions sign;
    sign.access_key = server_->credentials().access_key;
    sign.secret_key = server_->credentials().secret_key;
    sign.now_unix_s = ::time(nullptr);
    ASSIGN_OR_RETURN(s3::SignedRequest signed_request,
                     s3::SignRequest(http::to_string(req.method()), req.target(), &headers, sign));
    for (const auto& [name, value] : headers) req.set(name, value);
    req.set(http::field::authorization, signed_request.authorization);
    std::unique_ptr<beast::tcp_stream> conn = Take();
    try {
      if (!conn) {
        conn = std::make_unique<beast::tcp_stream>(ioc_);
        conn->connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                    server_->s3_port()));
        conn->socket().set_option(tcp::no_delay(true));
      }
      http::write(*conn, req);
      beast::flat_buffer buffer;
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      http::read_header(*conn, buffer, parser);
      const size_t length = parser.content_length() ? *parser.content_length() : 0;
      body->resize(length);
      if (parser.content_length()) {
        // As S3 clients do: the body goes from the socket straight into the caller's buffer, in
        // large reads, after what came with the header.
        const size_t early = std::min(buffer.size(), length);
        boost::asio::buffer_copy(boost::asio::buffer(body->data(), early), buffer.data());
        buffer.consume(early);
        boost::asio::read(conn->socket(),
                          boost::asio::buffer(body->data() + early, length - early));
      } else {
        parser.get().body().data = body->data();
        parser.get().body().size = length;
        parser.get().body().more = true;
        while (!parser.is_done()) {
          beast::error_code ec;
          http::read(*conn, buffer, parser, ec);
          if (ec == http::error::need_buffer && !parser.is_done()) {
            return Status::IOError("the S3 answer is longer than its Content-Length");
          }
          if (ec && ec != http::error::need_buffer) throw beast::system_error(ec);
        }
      }
      const unsigned status = parser.get().result_int();
      if (parser.get().keep_alive()) Give(std::move(conn));
      return status;
    } catch (const std::exception& e) {
      return Status::IOError(std::string("S3 request failed: ") + e.what());
    }
  }

  std::unique_ptr<beast::tcp_stream> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void Give(std::unique_ptr<beast::tcp_stream> c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
  }

  boost::asio::io_context ioc_;
  std::mutex mu_;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle_;
};

// The native client; gets read straight into the caller's buffer once it has the right size.
// With `shared`, each client thread puts from and gets into a shared buffer of its own
// (Client::AllocateShared), so that no object byte crosses the socket; a put first copies its
// value into that buffer, as a program producing the bytes elsewhere would. With `batched`,
// batches are one PutMany or GetManyInto call each (into the shared buffer, or over the socket
// into the caller's memory).
class NativeTarget final : public DoorTarget {
 public:
  NativeTarget(bool shared, bool batched) : shared_(shared), batched_(batched) {}
  static std::string Name(bool shared, bool batched) {
    return std::string(shared ? "native-shm" : "native") + (batched ? "-batch" : "");
  }
  std::string name() const override { return Name(shared_, batched_); }
  Status Connect(int connections) {
    ClientOptions o;
    o.max_connections = connections;
    ASSIGN_OR_RETURN(client_, Client::Connect("127.0.0.1:" + std::to_string(server_->native_port()),
                                              {server_->credentials().access_key,
                                               server_->credentials().secret_key},
                                              o));
    return Status::OK();
  }
  Status Put(std::string_view key, std::string_view value) override {
    if (shared_) {
      ASSIGN_OR_RETURN(SharedBuffer * buffer, ThreadBuffer(value.size()));
      std::memcpy(buffer->data(), value.data(), value.size());
      value = std::string_view(buffer->data(), value.size());
    }
    return client_->Put(kBucket, HexEncode(key), value).status();
  }
  Result<std::string_view> Read(std::string_view key, std::string* scratch) override {
    if (!shared_) return BlobTarget::Read(key, scratch);
    Result<SharedBuffer*> buffer = ThreadBuffer(0);
    if (!buffer.ok()) return buffer.status();
    ASSIGN_OR_RETURN(size_t n, client_->GetInto(kBucket, HexEncode(key), (*buffer)->bytes()));
    return std::string_view((*buffer)->data(), n);
  }
  Status Get(std::string_view key, std::string* value) override {
    if (shared_) {
      ASSIGN_OR_RETURN(std::string_view got, Read(key, value));
      value->assign(got);
      return Status::OK();
    }
    if (!value->empty()) {
      auto n = client_->GetInto(kBucket, HexEncode(key), std::span<char>(value->data(), value->size()));
      if (n.ok() && *n == value->size()) return Status::OK();
      if (!n.ok() && n.status().code() != Code::kInvalidArgument) return n.status();
    }
    ASSIGN_OR_RETURN(*value, client_->Get(kBucket, HexEncode(key)));
    return Status::OK();
  }
  Status PutBatch(std::span<const std::string_view> keys,
                  std::span<const std::string_view> values) override {
    if (!batched_) return BlobTarget::PutBatch(keys, values);
    std::vector<PutItem> items(keys.size());
    char* shared = nullptr;
    if (shared_) {
      size_t bytes = 0;
      for (std::string_view v : values) bytes += v.size();
      ASSIGN_OR_RETURN(SharedBuffer * buffer, ThreadBuffer(bytes));
      shared = buffer->data();
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      items[i].key = HexEncode(keys[i]);
      items[i].data = values[i];
      if (shared) {
        std::memcpy(shared, values[i].data(), values[i].size());
        items[i].data = std::string_view(shared, values[i].size());
        shared += values[i].size();
      }
    }
    for (const Result<ObjectInfo>& r : client_->PutMany(kBucket, items)) {
      RETURN_IF_ERROR(r.status());
    }
    return Status::OK();
  }
  Status ReadBatch(std::span<const std::string_view> keys, size_t length,
                   std::string* scratch) override {
    if (!batched_) return BlobTarget::ReadBatch(keys, length, scratch);
    std::span<char> into;
    if (shared_) {
      ASSIGN_OR_RETURN(SharedBuffer * buffer, ThreadBuffer(0));
      into = buffer->bytes();
    } else {
      scratch->resize(keys.size() * length);
      into = std::span<char>(*scratch);
    }
    if (into.size() < keys.size() * length) return Status::Internal("batch buffer too small");
    std::vector<std::string> names(keys.size());
    std::vector<std::span<char>> buffers(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      names[i] = HexEncode(keys[i]);
      buffers[i] = into.subspan(i * length, length);
    }
    for (const Result<size_t>& r : client_->GetManyInto(kBucket, names, buffers)) {
      RETURN_IF_ERROR(r.status());
      if (*r != length) return Status::Corruption("a get returned the wrong size");
    }
    return Status::OK();
  }
  Status Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      buffers_.clear();
    }
    client_.reset();
    return DoorTarget::Close();
  }

 private:
  // The calling thread's shared buffer, made on its first call, of the size of a value (`bytes`,
  // or for a get the size of the values put: every value of a run has the same size).
  // The thread keeps the last buffer it used, so that an operation takes no lock (a lock per
  // operation would make the client threads contend); targets are told apart by an id, not an
  // address, which a later target may reuse.
  Result<SharedBuffer*> ThreadBuffer(size_t bytes) {
    thread_local uint64_t cached_target = 0;
    thread_local SharedBuffer* cached = nullptr;
    if (cached_target == id_ && bytes <= cached->size()) return cached;
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes != 0) value_bytes_ = bytes;
    std::unique_ptr<SharedBuffer>& buffer = buffers_[std::this_thread::get_id()];
    if (!buffer || buffer->size() < value_bytes_) {
      if (value_bytes_ == 0) return Status::Internal("a get before any put");
      buffer.reset();
      ASSIGN_OR_RETURN(buffer, client_->AllocateShared(value_bytes_));
    }
    cached_target = id_;
    cached = buffer.get();
    return cached;
  }

  static inline std::atomic<uint64_t> next_id_{1};
  const uint64_t id_ = next_id_++;
  const bool shared_;
  const bool batched_;
  std::unique_ptr<Client> client_;
  std::mutex mu_;
  std::map<std::thread::id, std::unique_ptr<SharedBuffer>> buffers_;  // GUARDED_BY(mu_)
  size_t value_bytes_ = 0;                                            // GUARDED_BY(mu_)
};

std::string SizeName(int kib) {
  return kib >= 1024 ? std::to_string(kib / 1024) + "m" : std::to_string(kib) + "k";
}

int RunObjectBench(ObjectBenchOptions o) {
  if (o.quick) o.seconds = 1.0;
  if (o.threads < 1 || o.seconds <= 0 || o.sizes_kib.empty()) {
    std::cerr << "granary bench " << o.door << ": --threads and --seconds must be positive"
              << std::endl;
    return 2;
  }
  std::error_code ec;
  const std::string root = o.dir + "/granary-bench-" + o.door + "-" + std::to_string(::getpid());
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "granary bench " << o.door << ": cannot create " << root << ": " << ec.message()
              << std::endl;
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  BenchReport report(o.door);
  EngineBenchOptions engine_options;
  BenchContext ctx(engine_options, root, &report);
  report.SetMachine(DescribeMachine(o.dir));
  report.SetConfig({{"threads", o.threads}, {"seconds", o.seconds}, {"sizes_kib", o.sizes_kib},
                    {"max_gib", o.max_gib}, {"batch", o.batch}});
  // The doors measured: S3, or the native client over its socket and through shared buffers,
  // one object per call and (for objects small enough) in batches.
  struct Door {
    std::string name;
    Opener open;
    size_t batch = 1;
  };
  std::vector<Door> doors;
  if (o.door == "s3") {
    doors.push_back({"s3", [](const std::string& dir) -> Result<std::unique_ptr<BlobTarget>> {
                       auto t = std::make_unique<S3Target>();
                       RETURN_IF_ERROR(t->Start(dir));
                       return std::unique_ptr<BlobTarget>(std::move(t));
                     }});
  } else {
    for (bool batched : {false, true}) {
      if (batched && o.batch < 2) continue;
      for (bool shared : {false, true}) {
        doors.push_back({NativeTarget::Name(shared, batched),
                         [&o, shared, batched](const std::string& dir) {
                           return OpenNativeTarget(dir, o.threads, shared, batched);
                         },
                         batched ? static_cast<size_t>(o.batch) : 1});
      }
    }
  }
  const uint64_t max_bytes = static_cast<uint64_t>(o.max_gib * double(1ull << 30));
  for (int kib : o.sizes_kib) {
    const size_t length = static_cast<size_t>(kib) * 1024;
    const std::string size = SizeName(kib);
    const KeySet keys(std::clamp<uint64_t>(max_bytes / length, 16, 1 << 20), 16, 0x0b + kib);
    const ValueSet values(std::clamp<size_t>((256u << 20) / length, 2, 256), length, 0x0c + kib);
    struct Measured {
      std::string door;
      Figures figures;
      size_t batch;
    };
    std::vector<Measured> measured;
    for (const Door& door : doors) {
      // Batches of large objects are no batches: a call would carry hundreds of MiB.
      if (door.batch > 1 && length * door.batch > kMaxBatchBytes) continue;
      auto granary = RunTarget(ctx, o.threads, o.seconds, size + "-" + door.name, door.open, keys,
                               values, door.batch);
      if (!granary.ok()) {
        std::cerr << "error: " << granary.status().ToString() << std::endl;
        report.AddError(granary.status().ToString());
        continue;
      }
      measured.push_back({door.name, std::move(*granary), door.batch});
    }
    if (measured.empty()) continue;
    // The engine one object at a time, and with the same batches as each batch door (its batch:
    // one atomic write, one MultiGet); a batch door is compared with the better of the two.
    std::map<size_t, Result<Figures>> engine;
    engine.emplace(1, RunTarget(ctx, o.threads, o.seconds, size + "-engine", OpenGranaryTarget,
                                keys, values));
    if (!engine.at(1).ok()) ctx.BaselineFailed(size + "-engine", engine.at(1).status());
    for (const Measured& m : measured) {
      if (engine.contains(m.batch)) continue;
      const std::string label =
          size + "-engine" + (m.batch > 1 ? "-batch" + std::to_string(m.batch) : "");
      auto figures =
          RunTarget(ctx, o.threads, o.seconds, label, OpenGranaryTarget, keys, values, m.batch);
      if (!figures.ok()) ctx.BaselineFailed(label, figures.status());
      engine.emplace(m.batch, std::move(figures));
    }
    auto files = RunTarget(ctx, o.threads, o.seconds, size + "-files", OpenFilesTarget, keys, values);
    if (!files.ok()) ctx.BaselineFailed(size + " files", files.status());
    const Figures none;
    for (int get = 0; get < 2; ++get) {
      for (const Measured& m : measured) {
        const Result<Figures>* ceiling = &engine.at(1);
        const Result<Figures>& batched = engine.at(m.batch);
        if (batched.ok() && (!ceiling->ok() || (get ? batched->get_mbps > (*ceiling)->get_mbps
                                                    : batched->put_mbps > (*ceiling)->put_mbps))) {
          ceiling = &batched;
        }
        const Result<Figures>* by_file = &files;
        for (const Result<Figures>* b : {ceiling, by_file}) {
          const Figures& base = b->ok() ? **b : none;
          BenchRow row;
          row.name = size + (get ? " get " : " put ") + m.door;
          row.unit = "MB/s";
          row.granary = get ? m.figures.get_mbps : m.figures.put_mbps;
          row.baseline = b == &files ? "files" : "engine";
          if (base.ok) row.baseline_value = get ? base.get_mbps : base.put_mbps;
          row.details = {{m.door, get ? m.figures.get_json : m.figures.put_json}};
          if (base.ok) row.details[row.baseline] = get ? base.get_json : base.put_json;
          report.Add(std::move(row));
        }
      }
    }
  }
  std::filesystem::remove_all(root, ec);
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;
  return report.Finish(o.json);
}

}  // namespace

Result<std::unique_ptr<BlobTarget>> OpenNativeTarget(const std::string& dir, int connections,
                                                     bool shared, bool batched) {
  auto t = std::make_unique<NativeTarget>(shared, batched);
  RETURN_IF_ERROR(t->Start(dir));
  RETURN_IF_ERROR(t->Connect(connections));
  return std::unique_ptr<BlobTarget>(std::move(t));
}

void AddObjectBenchCommands(CLI::App& bench) {
  for (std::string door : {"s3", "client"}) {
    auto o = std::make_shared<ObjectBenchOptions>();
    o->door = door;
    CLI::App* cmd = bench.add_subcommand(
        door, door == "s3"
                  ? "S3 PUT/GET of 4 KiB-64 MiB objects against the engine and file-per-object"
                  : "Native-client put/get of 4 KiB-64 MiB objects against the engine and "
                    "file-per-object");
    cmd->add_option("--dir", o->dir, "Directory to run in (created if missing, left in place)")
        ->required();
    cmd->add_flag("--json", o->json, "Print a JSON document on stdout (the table goes to stderr)");
    cmd->add_flag("--quick", o->quick, "Smoke run: 1 s per phase");
    cmd->add_option("--seconds", o->seconds, "Seconds per phase (puts, gets) of each store")
        ->capture_default_str();
    cmd->add_option("--threads", o->threads, "Concurrent clients")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd->add_option("--sizes", o->sizes_kib, "Object sizes in KiB")
        ->delimiter(',')
        ->check(CLI::Range(1, 4 << 20))
        ->capture_default_str();
    cmd->add_option("--max-gib", o->max_gib, "Data written per store and size, at most")
        ->capture_default_str();
    if (door == "client") {
      cmd->add_option("--batch", o->batch,
                      "Objects per call of the batch doors (PutMany, GetManyInto), for objects "
                      "of up to 16 MiB a batch; 1: no batch doors")
          ->check(CLI::Range(1, 4096))
          ->capture_default_str();
    }
    cmd->callback([o] { ExitCode() = RunObjectBench(*o); });
  }
}

}  // namespace granary::tools
