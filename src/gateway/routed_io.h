// The gateway's readers and writers. Each holds the NodeClient it uses, so a node's Client lives
// as long as any of its readers and writers even after the gateway dropped it, and tells the
// Router of its failures, so that the next request is routed anew.
//
// The Router must outlive them. Each belongs to one thread at a time (as ObjectApi says).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gateway/router.h"

namespace granary::gateway {

// `reader`, which `node`'s client returned, holding that client.
std::unique_ptr<ObjectReader> RoutedReader(Router& router, NodeClient node,
                                           std::unique_ptr<ObjectReader> reader);

// Opens an upload (BeginPut, UploadPart) on the client of the bucket's head.
using WriterOpener = std::function<Result<std::unique_ptr<ObjectWriter>>(Client& head)>;

// An upload to the head of the partition holding `key` of `bucket`, opened by its first Append() (or by Commit()
// when it is empty). Opening and that first Append() are retried together with fresh maps
// (Router::OnHead): nothing of the upload was accepted before them. Later failures, Commit()'s
// included, are returned as they are: the bytes appended cannot be sent again, and a client
// retries the whole upload (S3 clients do on a 503).
std::unique_ptr<ObjectWriter> RoutedWriter(Router& router, std::string bucket, std::string key,
                                           WriterOpener open);

}  // namespace granary::gateway
