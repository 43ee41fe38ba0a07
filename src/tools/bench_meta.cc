// `granary bench meta`: what one small object costs the namespace, in disk and in memory, measured
// by storing N objects through the ObjectStore (batches of PutMany, as a loader of small training
// files does) and reading RocksDB's table properties once everything is flushed and compacted.
// The baseline is the same objects as one file each on the same file system, measured by the
// space the file system reports used.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "meta/object_store.h"
#include "replication/local_blob_store.h"
#include "tools/bench_baselines.h"
#include "tools/bench_load.h"
#include "tools/bench_report.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

struct MetaBenchOptions {
  std::string dir;
  bool json = false;
  uint64_t objects = 1'000'000;
  uint64_t baseline_files = 100'000;
  size_t object_bytes = 200;  // inline: the namespace holds the data itself
  int batch = 256;
};

uint64_t UsedBytes(const std::string& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return 0;
  return static_cast<uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
}

std::string KeyOf(uint64_t i) {
  // Paths as a dataset has them: a few directory levels, then a file name.
  char buf[64];
  std::snprintf(buf, sizeof(buf), "train/shard-%04llu/sample-%09llu.bin",
                static_cast<unsigned long long>(i / 10000), static_cast<unsigned long long>(i));
  return buf;
}

int RunMetaBench(const MetaBenchOptions& o) {
  std::error_code ec;
  const std::string root = o.dir + "/granary-bench-meta-" + std::to_string(::getpid());
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "granary bench meta: cannot create " << root << ": " << ec.message() << std::endl;
    return 1;
  }
  BenchReport report("meta");
  report.SetMachine(DescribeMachine(o.dir));
  report.SetConfig({{"objects", o.objects},
                    {"object_bytes", o.object_bytes},
                    {"batch", o.batch},
                    {"baseline_files", o.baseline_files}});
  std::string value(o.object_bytes, '\0');
  FillRandom(value.data(), value.size(), 7);

  // Granary: N objects through the namespace.
  double granary_disk = 0, granary_memory = 0, granary_rate = 0;
  nlohmann::json details;
  Status status = [&]() -> Status {
    replication::LocalBlobStoreOptions bo;
    bo.disks = {root + "/disk0"};
    ASSIGN_OR_RETURN(std::shared_ptr<replication::BlobStore> blobs,
                     replication::OpenLocalBlobStore(bo));
    meta::ObjectStoreOptions mo;
    mo.dir = root + "/meta";
    mo.blobs = blobs;
    ASSIGN_OR_RETURN(std::unique_ptr<meta::ObjectStore> store, meta::ObjectStore::Open(mo));
    RETURN_IF_ERROR(store->CreateBucket("bench"));
    std::cerr << "meta: putting " << o.objects << " objects of " << o.object_bytes << " bytes"
              << std::endl;
    uint64_t start = BenchNowNanos();
    // Every object has its own random bytes, so that compression finds nothing to share.
    std::vector<std::string> keys;
    std::vector<std::string> values(static_cast<size_t>(o.batch), value);
    std::vector<PutItem> items;
    for (uint64_t i = 0; i < o.objects;) {
      keys.clear();
      items.clear();
      for (int b = 0; b < o.batch && i < o.objects; ++b, ++i) {
        keys.push_back(KeyOf(i));
        FillRandom(values[static_cast<size_t>(b)].data(), value.size(), i);
      }
      for (size_t b = 0; b < keys.size(); ++b) items.push_back({keys[b], values[b], {}});
      for (auto& r : store->PutMany("bench", items)) RETURN_IF_ERROR(r.status());
    }
    double seconds = static_cast<double>(BenchNowNanos() - start) / 1e9;
    granary_rate = static_cast<double>(o.objects) / seconds;
    // Every object must be there: a sample read back.
    for (uint64_t i = 0; i < o.objects; i += std::max<uint64_t>(1, o.objects / 100)) {
      ASSIGN_OR_RETURN(std::string got, store->Get("bench", KeyOf(i)));
      std::string expected(value.size(), '\0');
      FillRandom(expected.data(), expected.size(), i);
      if (got != expected) return Status::Corruption("object " + KeyOf(i) + " read back wrong");
    }
    // What a namespace at rest costs: after a flush and a full compaction.
    RETURN_IF_ERROR(store->CompactNamespace());
    const meta::ObjectStoreStats stats = store->Stats();
    const uint64_t sst = stats.meta_disk_bytes;
    const uint64_t index = stats.meta_index_bytes;
    const uint64_t filter = stats.meta_filter_bytes;
    const uint64_t raw_key = stats.meta_raw_key_bytes;
    const uint64_t raw_value = stats.meta_raw_value_bytes;
    const double n = static_cast<double>(o.objects);
    granary_disk = static_cast<double>(sst) / n;
    granary_memory = static_cast<double>(index + filter) / n;
    details = {{"sst_bytes", sst},
               {"index_bytes", index},
               {"filter_bytes", filter},
               {"raw_key_bytes_per_object", static_cast<double>(raw_key) / n},
               {"raw_record_bytes_per_object", static_cast<double>(raw_value) / n},
               {"puts_per_sec", granary_rate}};
    return store->Close();
  }();
  if (!status.ok()) {
    std::cerr << "error: " << status.ToString() << std::endl;
    report.AddError(status.ToString());
  }

  // Baseline: one file per object.
  double files_disk = 0, files_rate = 0;
  {
    std::string fdir = root + "/files";
    std::filesystem::create_directories(fdir, ec);
    ::sync();
    uint64_t before = UsedBytes(fdir);
    uint64_t start = BenchNowNanos();
    for (uint64_t i = 0; i < o.baseline_files; ++i) {
      std::string path = fdir + "/" + std::to_string(i % 256);
      if (i < 256) std::filesystem::create_directories(path, ec);
      path += "/" + std::to_string(i);
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || ::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
        report.AddError("files baseline: cannot write " + path);
        if (fd >= 0) ::close(fd);
        break;
      }
      ::close(fd);
    }
    ::sync();
    files_rate = static_cast<double>(o.baseline_files) /
                 (static_cast<double>(BenchNowNanos() - start) / 1e9);
    files_disk = static_cast<double>(UsedBytes(fdir) - before) / static_cast<double>(o.baseline_files);
  }
  RemoveTree(root).IgnoreError();

  BenchRow disk{"disk per object", "bytes", granary_disk, "files", files_disk, false, "",
                details};
  disk.note = "granary: the whole record with the " + std::to_string(o.object_bytes) +
              " data bytes inline; files: the file system's used space per file, inode tables "
              "excluded";
  report.Add(disk);
  BenchRow memory{"memory per object (index+filter)", "bytes", granary_memory, "", std::nullopt,
                  false, "what keeps every lookup at one disk read: RocksDB's index and Bloom "
                         "filter blocks; the rest of memory is bounded caches",
                  {}};
  report.Add(memory);
  BenchRow rate{"put (batches of " + std::to_string(o.batch) + ")", "objects/s", granary_rate,
                "files (no fsync)", files_rate, true, "", {}};
  report.Add(rate);
  return report.Finish(o.json);
}

}  // namespace

void AddMetaBenchCommand(CLI::App& bench) {
  auto o = std::make_shared<MetaBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "meta", "Disk and memory per small object in the namespace, against one file per object");
  cmd->add_option("--dir", o->dir, "Directory to run in (created if missing, left in place)")
      ->required();
  cmd->add_flag("--json", o->json, "Print a JSON document on stdout (the table goes to stderr)");
  cmd->add_option("--objects", o->objects, "Objects to store")->capture_default_str();
  cmd->add_option("--baseline-files", o->baseline_files, "Files of the baseline")
      ->capture_default_str();
  cmd->add_option("--object-bytes", o->object_bytes, "Bytes per object")->capture_default_str();
  cmd->callback([o] { ExitCode() = RunMetaBench(*o); });
}

}  // namespace granary::tools
