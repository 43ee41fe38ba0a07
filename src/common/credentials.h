// Access keys and their secrets, as the doors that authenticate requests (S3, the native
// protocol) look them up.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace granary {

// Returns the secret key of `access_key`, or nullopt if no such key exists.
// Must be thread-safe: called from every connection's thread.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key)>;

}  // namespace granary
