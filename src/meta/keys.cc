#include "meta/keys.h"

namespace granary::meta {
namespace {

std::string Kind(char kind, std::string_view a) {
  std::string k;
  k.reserve(1 + a.size() + 1);
  k.push_back(kind);
  k.append(a);
  return k;
}

constexpr char kUrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kUrlAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kUrlAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::optional<std::string> FromBase64Url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBigEndian32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

uint32_t GetBigEndian32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string BucketKey(std::string_view bucket) { return Kind('B', bucket); }

std::string ObjectPrefix(std::string_view bucket) {
  std::string k = Kind('O', bucket);
  k.push_back('\0');
  return k;
}

std::string ObjectKey(std::string_view bucket, std::string_view key) {
  std::string k = ObjectPrefix(bucket);
  k.append(key);
  return k;
}

std::string UploadPrefix(std::string_view bucket) {
  std::string k = Kind('U', bucket);
  k.push_back('\0');
  return k;
}

std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id) {
  std::string k = UploadPrefix(bucket);
  k.append(key);
  k.push_back('\0');
  k.append(upload_id);
  return k;
}

std::string ShardPrefix(std::string_view bucket) {
  std::string k = Kind('D', bucket);
  k.push_back('\0');
  return k;
}

std::string ShardKey(std::string_view bucket, uint32_t chain) {
  std::string k = ShardPrefix(bucket);
  PutBigEndian32(&k, chain);
  return k;
}

std::string PartPrefix(std::string_view upload_id) {
  std::string k = Kind('P', upload_id);
  k.push_back('\0');
  return k;
}

std::string PartKey(std::string_view upload_id, uint32_t part_number) {
  std::string k = PartPrefix(upload_id);
  PutBigEndian32(&k, part_number);
  return k;
}

std::string GarbageKey(uint64_t seq) {
  std::string k(1, kGarbageKind);
  PutBigEndian64(&k, seq);
  return k;
}

std::string IntentKey(uint64_t version) {
  std::string k(1, kIntentKind);
  PutBigEndian64(&k, version);
  return k;
}

std::string PendingCommitKey(uint64_t version) {
  std::string k(1, kPendingCommitKind);
  PutBigEndian64(&k, version);
  return k;
}

std::string BlobKey(std::string_view prefix, uint64_t version, uint32_t chunk) {
  std::string k(prefix);
  k.push_back('d');
  PutBigEndian64(&k, version);
  PutBigEndian32(&k, chunk);
  return k;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    unsigned char last = static_cast<unsigned char>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

std::string EncodeContinuation(const ListPosition& position) {
  std::string raw(1, position.after_prefix ? 'p' : 'k');
  raw.append(position.name);
  return Base64Url(raw);
}

std::optional<ListPosition> DecodeContinuation(std::string_view token) {
  std::optional<std::string> raw = FromBase64Url(token);
  if (!raw || raw->empty() || ((*raw)[0] != 'p' && (*raw)[0] != 'k')) return std::nullopt;
  return ListPosition{(*raw)[0] == 'p', raw->substr(1)};
}

}  // namespace granary::meta
