// NamespacePartitions, filling members: the sources' side (META_PULL, META_COPY) and the
// joining member's (Fill, CopyAll, RefillDiverged). docs/design/cluster.md, "The namespace".
#include <rocksdb/db.h>

#include "common/logging.h"
#include "node/namespace_partition.h"
#include "proto/chain.pb.h"

namespace granary::node {

using cluster::Chain;
using cluster::ClusterMap;

Result<std::shared_ptr<NamespacePartitions::Partition>> NamespacePartitions::Source(
    uint32_t chain) {
  auto m = map();
  if (m == nullptr || chain >= m->chains.size() ||
      IndexOf(m->chains[chain].members, options_.node_id) < 0) {
    return Status(Code::kStaleMap, "node " + options_.node_id + " does not serve chain " +
                                       std::to_string(chain));
  }
  if (!m->IsPartition(chain)) {
    return Status::InvalidArgument("chain " + std::to_string(chain) +
                                   " holds data alone, no namespace partition");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Partition> p, Get(chain));
  if (p->filling || p->diverged) {
    return Status::Unavailable("namespace partition " + std::to_string(chain) +
                               " is being filled on node " + options_.node_id);
  }
  return p;
}

Status NamespacePartitions::PullCall(rpc::ServerCall& call) {
  proto::MetaPullRequest request;
  if (!rpc::ParseBody(call, &request)) {
    return call.Respond(Status::InvalidArgument("unreadable namespace pull"));
  }
  Result<std::shared_ptr<Partition>> p = Source(request.chain());
  if (!p.ok()) return call.Respond(p.status());
  proto::MetaPullResponse response;
  Result<std::vector<meta::LogEntry>> entries = (*p)->db->Pull(
      request.after(), request.after_term(),
      std::min<uint64_t>(request.max_bytes() == 0 ? kPageBytes : request.max_bytes(), kPageBytes));
  if (!entries.ok()) {
    if (entries.status().code() != Code::kNotFound) return call.Respond(entries.status());
    response.set_copy_needed(true);
    return call.Respond(response);
  }
  std::vector<std::string_view> payload;
  for (const meta::LogEntry& entry : *entries) {
    response.add_seq(entry.seq);
    response.add_term(entry.term);
    response.add_size(entry.data.size());
    payload.push_back(entry.data);
  }
  return call.Respond(response, payload);
}

Status NamespacePartitions::CopyCall(rpc::ServerCall& call) {
  proto::MetaCopyRequest request;
  if (!rpc::ParseBody(call, &request)) {
    return call.Respond(Status::InvalidArgument("unreadable namespace copy"));
  }
  Result<std::shared_ptr<Partition>> p = Source(request.chain());
  if (!p.ok()) return call.Respond(p.status());
  Result<meta::ReplicatedDb::CopyPage> page = (*p)->db->Scan(
      request.after(),
      std::min<uint64_t>(request.max_bytes() == 0 ? kPageBytes : request.max_bytes(), kPageBytes));
  if (!page.ok()) return call.Respond(page.status());
  proto::MetaCopyResponse response;
  response.set_applied(page->applied);
  response.set_applied_term(page->applied_term);
  response.set_done(page->done);
  std::vector<std::string_view> payload;
  for (const auto& [key, value] : page->items) {
    response.add_key_size(key.size());
    response.add_value_size(value.size());
    payload.push_back(key);
    payload.push_back(value);
  }
  return call.Respond(response, payload);
}

Result<std::string> NamespacePartitions::FillSource(const Chain& chain) const {
  // The head first: it has every entry any member has.
  auto m = map();
  for (const std::string& id : chain.members) {
    if (id == options_.node_id) continue;
    const cluster::NodeInfo* node = m->FindNode(id);
    if (node != nullptr) return node->address;
  }
  return Status::Unavailable("chain " + std::to_string(chain.id) +
                             " has no other serving member to fill from");
}

Status NamespacePartitions::Fill(uint32_t chain_id) {
  auto m = map();
  if (m == nullptr || chain_id >= m->chains.size()) {
    return Status::Unavailable("this node has no map with chain " + std::to_string(chain_id));
  }
  if (!m->IsPartition(chain_id)) return Status::OK();  // a chain of data alone
  const Chain chain = m->chains[chain_id];
  ASSIGN_OR_RETURN(std::string source_address, FillSource(chain));
  rpc::ConnectionPool& source = peers_.Of(source_address);
  ASSIGN_OR_RETURN(std::shared_ptr<Partition> partition, Get(chain_id));
  Partition* p = partition.get();
  p->filling = true;
  struct Done {
    Partition* p;
    ~Done() { p->filling = false; }
  } done{p};
  {
    std::lock_guard<std::mutex> lock(p->mu);
    Retire(p);
  }
  if (p->diverged) {
    RETURN_IF_ERROR(CopyAll(p, source, chain_id));
    p->diverged = false;
  }
  for (;;) {
    const auto [after, after_term] = p->db->Applied();
    proto::MetaPullRequest request;
    request.set_chain(chain_id);
    request.set_after(after);
    request.set_after_term(after_term);
    request.set_max_bytes(kPageBytes);
    ASSIGN_OR_RETURN(replication::PeerAnswer answer,
                     replication::CallPeer(source, proto::META_PULL, request, {},
                                           rpc::DeadlineAfterMs(options_.peer_timeout_ms)));
    RETURN_IF_ERROR(answer.status);
    proto::MetaPullResponse response;
    if (!response.ParseFromString(answer.body) || response.seq_size() != response.term_size() ||
        response.seq_size() != response.size_size()) {
      return Status::Corruption("unreadable answer to a namespace pull");
    }
    if (response.copy_needed()) {
      RETURN_IF_ERROR(CopyAll(p, source, chain_id));
      continue;
    }
    std::vector<meta::LogEntry> entries(response.seq_size());
    size_t at = 0;
    for (int i = 0; i < response.seq_size(); ++i) {
      if (at + response.size(i) > answer.payload.size()) {
        return Status::Corruption("namespace pull answer cut short");
      }
      entries[i].seq = response.seq(i);
      entries[i].term = response.term(i);
      entries[i].data = answer.payload.substr(at, response.size(i));
      at += response.size(i);
    }
    RETURN_IF_ERROR(p->db->ApplyPulled(entries));
    // Close enough: what comes after reaches this member down the chain, the rest of the gap
    // from its predecessor's log.
    if (at < kPageBytes / 2) return Status::OK();
  }
}

Status NamespacePartitions::CopyAll(Partition* p, rpc::ConnectionPool& source, uint32_t chain) {
  GLOG_INFO("copying namespace partition {} from {}", chain, source.address());
  RETURN_IF_ERROR(p->db->Reset());
  std::string after;
  bool first = true;
  std::pair<uint64_t, uint64_t> start;
  for (;;) {
    proto::MetaCopyRequest request;
    request.set_chain(chain);
    request.set_after(after);
    request.set_max_bytes(kPageBytes);
    ASSIGN_OR_RETURN(replication::PeerAnswer answer,
                     replication::CallPeer(source, proto::META_COPY, request, {},
                                           rpc::DeadlineAfterMs(options_.peer_timeout_ms)));
    RETURN_IF_ERROR(answer.status);
    proto::MetaCopyResponse response;
    if (!response.ParseFromString(answer.body) ||
        response.key_size_size() != response.value_size_size()) {
      return Status::Corruption("unreadable answer to a namespace copy");
    }
    if (first) {
      // Entries after this one are pulled once the copy is complete.
      start = {response.applied(), response.applied_term()};
      first = false;
    }
    std::vector<std::pair<std::string, std::string>> items(response.key_size_size());
    size_t at = 0;
    for (int i = 0; i < response.key_size_size(); ++i) {
      const size_t k = response.key_size(i), v = response.value_size(i);
      if (at + k + v > answer.payload.size()) {
        return Status::Corruption("namespace copy answer cut short");
      }
      items[i] = {answer.payload.substr(at, k), answer.payload.substr(at + k, v)};
      at += k + v;
    }
    if (!items.empty()) after = items.back().first;
    RETURN_IF_ERROR(p->db->InstallCopy(
        items, response.done() ? std::optional(start) : std::nullopt));
    if (response.done()) return Status::OK();
  }
}

bool NamespacePartitions::RefillDiverged() {
  std::vector<uint32_t> diverged;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [chain, p] : partitions_) {
      if (p->diverged) diverged.push_back(chain);
    }
  }
  for (uint32_t chain : diverged) {
    Status filled = Fill(chain);
    if (!filled.ok()) {
      GLOG_WARN("refilling namespace partition {} failed, will retry: {}", chain,
                filled.ToString());
    }
  }
  return !diverged.empty();
}

}  // namespace granary::node
