#include "node/credentials.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/file_system.h"

namespace granary::node {
namespace {

constexpr char kFile[] = "credentials.json";

Result<std::string> RandomString(size_t n, std::string_view alphabet) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    return Status::Internal("no randomness available for credentials");
  }
  std::string out;
  for (unsigned char c : bytes) out.push_back(alphabet[c % alphabet.size()]);
  return out;
}

}  // namespace

Result<RootCredentials> EnvironmentCredentials() {
  const char* access = std::getenv("GRANARY_ACCESS_KEY");
  const char* secret = std::getenv("GRANARY_SECRET_KEY");
  if ((!access || !*access) && (!secret || !*secret)) {
    return Status::NotFound("GRANARY_ACCESS_KEY and GRANARY_SECRET_KEY are not set");
  }
  if (!access || !*access || !secret || !*secret) {
    return Status::InvalidArgument("set both GRANARY_ACCESS_KEY and GRANARY_SECRET_KEY, or "
                                   "neither");
  }
  if (std::string_view(secret).size() < 8) {
    return Status::InvalidArgument("GRANARY_SECRET_KEY must have at least 8 characters");
  }
  return RootCredentials{access, secret, ""};
}

Result<RootCredentials> ReadRootCredentials(const std::string& data_dir) {
  Result<RootCredentials> from_environment = EnvironmentCredentials();
  if (from_environment.ok() || !from_environment.status().IsNotFound()) return from_environment;
  std::string path = io::JoinPath(data_dir, kFile);
  auto fs = io::DefaultFileSystem();
  auto text = io::ReadFileToString(*fs, path);
  if (text.ok()) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return Status::InvalidArgument(path + " is readable by other users: chmod 600 it");
    }
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("access_key") || !j.contains("secret_key") ||
        !j["access_key"].is_string() || !j["secret_key"].is_string()) {
      return Status::InvalidArgument(path + " is malformed: it must hold access_key and "
                                            "secret_key; remove it to generate new ones");
    }
    return RootCredentials{j["access_key"].get<std::string>(), j["secret_key"].get<std::string>(),
                           path};
  }
  if (text.status().IsNotFound()) {
    return Status::NotFound("no credentials: GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY are unset and " +
                            path + " does not exist");
  }
  return text.status();
}

Result<RootCredentials> LoadRootCredentials(const std::string& data_dir) {
  Result<RootCredentials> existing = ReadRootCredentials(data_dir);
  if (existing.ok() || !existing.status().IsNotFound()) return existing;
  const std::string path = io::JoinPath(data_dir, kFile);
  auto fs = io::DefaultFileSystem();
  ASSIGN_OR_RETURN(std::string new_access, RandomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
  ASSIGN_OR_RETURN(std::string new_secret,
                   RandomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789+/"));
  nlohmann::json j = {{"access_key", new_access}, {"secret_key", new_secret}};
  std::string body = j.dump(2) + "\n";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return Status::FromErrno(err, "writing " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "renaming " + tmp);
  RETURN_IF_ERROR(fs->SyncDir(data_dir));
  return RootCredentials{new_access, new_secret, path};
}

SecretLookup RootSecretLookup(const RootCredentials& root) {
  return [access = root.access_key,
          secret = root.secret_key](std::string_view key) -> std::optional<std::string> {
    if (key == access) return secret;
    return std::nullopt;
  };
}

}  // namespace granary::node
