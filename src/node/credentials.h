// The root credentials of a server: from GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY when set, else
// generated once and kept in the data directory (credentials.json, mode 0600).
#pragma once

#include <string>

#include "common/credentials.h"
#include "common/status.h"

namespace granary::node {

struct RootCredentials {
  std::string access_key;
  std::string secret_key;
  std::string path;  // where they are stored; empty when they came from the environment
};

// GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY; kNotFound when neither is set, kInvalidArgument when
// only one is or the secret is too short. A cluster's processes take their shared root
// credentials from here.
Result<RootCredentials> EnvironmentCredentials();

// Reads the environment, else DIR/credentials.json; kNotFound when neither has them.
// kInvalidArgument if only one of the two variables is set or the file is malformed or readable
// by others. For tools that talk to a server (`granary admin`).
Result<RootCredentials> ReadRootCredentials(const std::string& data_dir);

// ReadRootCredentials, else creates DIR/credentials.json with new random keys (the server).
Result<RootCredentials> LoadRootCredentials(const std::string& data_dir);

// A SecretLookup that knows the root key only.
SecretLookup RootSecretLookup(const RootCredentials& root);

}  // namespace granary::node
