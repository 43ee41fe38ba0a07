// The FileSystem helpers declared at the end of file_system.h, and File's default ReadBatch.
#include "io/file_system.h"

#include <string>
#include <utility>

namespace granary::io {

Status File::ReadBatch(std::span<ReadOp> ops) {
  for (ReadOp& op : ops) {
    op.bytes_read = 0;
    Result<size_t> n = Read(op.offset, op.n, op.dst);
    if (n.ok()) {
      op.bytes_read = *n;
      op.status = Status::OK();
    } else {
      op.status = n.status();
    }
  }
  return Status::OK();
}

Result<size_t> File::ReadV(uint64_t offset, std::span<const std::span<char>> pieces) {
  size_t total = 0;
  for (std::span<char> piece : pieces) {
    ASSIGN_OR_RETURN(size_t n, Read(offset + total, piece.size(), piece.data()));
    total += n;
    if (n < piece.size()) break;  // end of file
  }
  return total;
}

namespace {

// The directory holding `path` ("." for a bare name, "/" for a child of the root).
std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status File::WriteDirectV(uint64_t offset, std::span<const std::span<const char>> pieces) {
  for (std::span<const char> piece : pieces) {
    RETURN_IF_ERROR(WriteDirect(offset, piece.data(), piece.size()));
    offset += piece.size();
  }
  return Status::OK();
}

Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path) {
  OpenOptions options;
  options.read_only = true;
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(path, options));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string out;
  // The size is a hint: read until a read comes back empty, so a file that grows meanwhile is
  // still read whole.
  out.resize(size + 1);
  size_t pos = 0;
  while (true) {
    if (pos == out.size()) out.resize(out.size() * 2 + 4096);
    ASSIGN_OR_RETURN(size_t n, file->Read(pos, out.size() - pos, out.data() + pos));
    if (n == 0) break;
    pos += n;
  }
  out.resize(pos);
  return out;
}

// The temporary is `path + ".tmp"`: the caller serialises WriteFileAtomic calls for one path,
// and a temporary left by a crash is simply overwritten by the next call.
Status WriteFileAtomic(FileSystem& fs, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  Status st = [&]() -> Status {
    OpenOptions options;
    options.create = true;
    ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(tmp, options));
    RETURN_IF_ERROR(file->Truncate(0));
    RETURN_IF_ERROR(file->Write(0, data.data(), data.size()));
    RETURN_IF_ERROR(file->Sync());
    file.reset();
    RETURN_IF_ERROR(fs.Rename(tmp, path));
    return fs.SyncDir(DirName(path));
  }();
  if (!st.ok()) {
    // Best effort: do not leave the temporary file behind (it may already be renamed).
    fs.Remove(tmp).IgnoreError();
    return st.WithContext("writing \"" + path + "\" atomically");
  }
  return Status::OK();
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  if (out.back() != '/') out += '/';
  out += name;
  return out;
}

}  // namespace granary::io
