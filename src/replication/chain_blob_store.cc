#include "replication/chain_blob_store.h"

#include <atomic>

#include "cluster/map_cache.h"
#include "common/hash.h"
#include "proto/chain.pb.h"
#include "replication/peer_call.h"

namespace granary::replication {
namespace {

using cluster::ClusterMap;

// A key whose set the map lacks: a map older than the caller's (the set was just added).
Result<const cluster::Chain*> ChainOf(const ClusterMap& map, std::string_view key) {
  if (cluster::PlacementOf(key) > static_cast<uint32_t>(cluster::kMaxChainReplicas)) {
    return Status::InvalidArgument(
        "blob keys starting with a zero byte are reserved for the cluster's placed blobs");
  }
  const cluster::Chain* chain = map.ChainOf(key);
  if (chain == nullptr) {
    return Status(Code::kStaleMap, "the cluster map has no chains of " +
                                       std::to_string(cluster::PlacementOf(key)) +
                                       " replicas yet");
  }
  return chain;
}

class ChainBlobStore final : public BlobStore {
 public:
  ChainBlobStore(ChainBlobStoreOptions options, std::unique_ptr<cluster::MapCache> maps)
      : options_(std::move(options)),
        maps_(std::move(maps)),
        peers_(options_.access_key, options_.secret_key, options_.connections_per_node) {}

  Status PutMany(std::span<const std::pair<std::string, std::string_view>> blobs) override {
    for (const auto& [key, value] : blobs) RETURN_IF_ERROR(Write(key, value, false));
    return Status::OK();
  }

  void PutAsync(std::string key, std::string value, std::function<void(Status)> done) override {
    done(Write(key, value, false));
  }

  Result<size_t> ReadInto(std::string_view key, uint64_t offset, std::span<char> dst) override {
    if (dst.empty()) return size_t{0};
    ASSIGN_OR_RETURN(PeerAnswer answer, Read(key, offset, dst.size(), dst));
    return answer.payload_size;
  }

  std::vector<Result<std::string>> GetMany(std::span<const std::string> keys) override {
    std::vector<Result<std::string>> out;
    for (const std::string& key : keys) {
      Result<PeerAnswer> answer = Read(key, 0, 0, {});
      if (answer.ok()) {
        out.emplace_back(std::move(answer->payload));
      } else {
        out.emplace_back(answer.status());
      }
    }
    return out;
  }

  Status DeleteMany(std::span<const std::string> keys) override {
    for (const std::string& key : keys) RETURN_IF_ERROR(Write(key, {}, true));
    return Status::OK();
  }

  bool Exists(std::string_view key) override {
    char byte;
    return Read(key, 0, 1, std::span<char>(&byte, 1)).ok();
  }

  Status Scan(const std::function<void(std::string_view, uint64_t)>&) override {
    return Status::NotSupported("a cluster's blobs are listed per chain by its nodes");
  }

  BlobStoreStats Stats() override { return {}; }  // held by the nodes, not by this process

  Status Close() override {
    closed_ = true;
    return Status::OK();
  }

 private:
  // Runs `attempt` with the current map until it succeeds, fails for good, or time runs out.
  template <typename T, typename F>
  Result<T> WithRetries(F attempt) {
    if (closed_) return Status::Unavailable("blob store is closed");
    return maps_->WithRetries(options_.retry_ms, attempt);
  }

  Status Write(std::string_view key, std::string_view value, bool remove) {
    return WithRetries<bool>([&](const ClusterMap& map) -> Result<bool> {
             ASSIGN_OR_RETURN(const cluster::Chain* found, ChainOf(map, key));
             const cluster::Chain& chain = *found;
             ASSIGN_OR_RETURN(const cluster::NodeInfo* head, cluster::LiveHead(map, chain));
             proto::ChainWriteRequest request;
             request.set_chain(chain.id);
             request.set_version(chain.version);
             request.set_key(std::string(key));
             request.set_remove(remove);
             ASSIGN_OR_RETURN(PeerAnswer answer,
                              CallPeer(peers_.Of(head->address), proto::CHAIN_WRITE, request,
                                       value, rpc::DeadlineAfterMs(options_.retry_ms)));
             RETURN_IF_ERROR(answer.status);
             return true;
           })
        .status();
  }

  // Reads from the chain's serving members, starting at one chosen by the key so reads spread.
  Result<PeerAnswer> Read(std::string_view key, uint64_t offset, uint64_t length,
                          std::span<char> into) {
    return WithRetries<PeerAnswer>([&](const ClusterMap& map) -> Result<PeerAnswer> {
      ASSIGN_OR_RETURN(const cluster::Chain* found, ChainOf(map, key));
      const cluster::Chain& chain = *found;
      proto::ChainReadRequest request;
      request.set_chain(chain.id);
      request.set_version(chain.version);
      request.set_key(std::string(key));
      request.set_offset(offset);
      request.set_length(length);
      Status failure = Status::Unavailable("chain " + std::to_string(chain.id) +
                                           " has no live member");
      int asked = 0, missing = 0;
      const size_t n = chain.members.size();
      const size_t first = n == 0 ? 0 : HashKey(key).lo % n;
      for (size_t i = 0; i < n; ++i) {
        const cluster::NodeInfo* node = map.FindNode(chain.members[(first + i) % n]);
        if (node == nullptr || node->state == cluster::NodeState::kDown) continue;
        Result<PeerAnswer> answer =
            CallPeer(peers_.Of(node->address), proto::CHAIN_READ, request, {},
                     rpc::DeadlineAfterMs(options_.retry_ms), into);
        if (answer.ok() && answer->status.ok()) return answer;
        ++asked;
        Status st = answer.ok() ? answer->status : answer.status();
        if (st.code() == Code::kInvalidArgument) return st;
        // Another member may have an intact copy, or (should one have lost it) a copy at all.
        if (st.code() == Code::kNotFound) {
          ++missing;
        } else {
          failure = st;
        }
      }
      // Absent only when every serving member says so; otherwise retry what failed.
      if (asked > 0 && missing == asked) {
        return Status::NotFound("blob not found in chain " + std::to_string(chain.id));
      }
      return failure;
    });
  }

  const ChainBlobStoreOptions options_;
  const std::unique_ptr<cluster::MapCache> maps_;
  PeerPools peers_;
  std::atomic<bool> closed_{false};
};

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenChainBlobStore(ChainBlobStoreOptions options) {
  ASSIGN_OR_RETURN(auto maps, cluster::MapCache::Open(options.etcd));
  return std::unique_ptr<BlobStore>(new ChainBlobStore(std::move(options), std::move(maps)));
}

}  // namespace granary::replication
