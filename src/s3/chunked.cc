// ChunkDecoder: the aws-chunked body of the STREAMING-* payload modes, and PayloadHasher.
//
// Body grammar (signed modes carry ";chunk-signature=<64 hex>" on every chunk header):
//   chunk   = hex-size [";" extensions] CRLF data CRLF
//   final   = "0" [";" extensions] CRLF
//   trailer = *(name ":" value CRLF) CRLF       (x-amz-trailer-signature last in signed mode)
#include <algorithm>

#include "s3/auth.h"
#include "s3/auth_internal.h"

namespace granary::s3 {
namespace {

constexpr size_t kMaxLine = 4096;           // one chunk header or trailer line
constexpr size_t kMaxTrailerBytes = 16384;  // the whole trailer section
constexpr size_t kMaxTrailers = 16;

Status Invalid(std::string message) {
  return Status(Code::kInvalidArgument, "InvalidRequest: " + std::move(message));
}

Status Incomplete(std::string message) {
  return Status(Code::kInvalidArgument, "IncompleteBody: " + std::move(message));
}

Status Mismatch(std::string message) {
  return Status(Code::kUnauthenticated, "SignatureDoesNotMatch: " + std::move(message));
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsLowerHex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// What the line says, for messages: printable ASCII only and at most 64 bytes.
std::string Printable(std::string_view s) {
  std::string out(s.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace

ChunkDecoder::ChunkDecoder(const AuthContext& auth)
    : auth_(auth),
      signed_chunks_(auth.payload_mode == PayloadMode::kStreamingSigned ||
                     auth.payload_mode == PayloadMode::kStreamingSignedTrailer),
      previous_signature_(auth.seed_signature) {
  if (!IsStreaming(auth.payload_mode)) {
    state_ = State::kFailed;
    error_ = Status::Internal("ChunkDecoder used for a request whose payload is not aws-chunked");
    return;
  }
  if (!auth_.trailer.empty()) {
    auto checksum = PayloadChecksum::Create(auth_.trailer);
    if (!checksum.ok()) {
      state_ = State::kFailed;
      error_ = Invalid("x-amz-trailer: " + checksum.status().message());
      return;
    }
    checksum_ = std::move(*checksum);
  }
}

ChunkDecoder::~ChunkDecoder() = default;

Status ChunkDecoder::Fail(Status status) {
  state_ = State::kFailed;
  error_ = status;
  return status;
}

Result<bool> ChunkDecoder::TakeLine(std::string_view in, size_t* pos) {
  size_t nl = in.find('\n', *pos);
  size_t end = nl == std::string_view::npos ? in.size() : nl;
  if (line_.size() + (end - *pos) > kMaxLine) {
    return Invalid("an aws-chunked header or trailer line is longer than " +
                   std::to_string(kMaxLine) + " bytes");
  }
  line_.append(in.substr(*pos, end - *pos));
  if (nl == std::string_view::npos) {
    *pos = in.size();
    return false;
  }
  *pos = nl + 1;
  if (line_.empty() || line_.back() != '\r') {
    return Invalid("an aws-chunked line ends in a bare LF; lines must end in CRLF");
  }
  line_.pop_back();
  return true;
}

Status ChunkDecoder::ParseChunkHeader(std::string_view line) {
  size_t semi = line.find(';');
  std::string_view size_text = line.substr(0, semi);
  if (size_text.empty() || size_text.size() > 16 ||
      size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
    return Invalid("aws-chunked chunk header \"" + Printable(line) +
                   "\" does not start with a hex chunk size");
  }
  uint64_t size = 0;
  for (char c : size_text) {
    int d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    size = (size << 4) | static_cast<uint64_t>(d);
  }
  chunk_signature_.clear();
  std::string_view ext =
      semi == std::string_view::npos ? std::string_view() : line.substr(semi + 1);
  while (!ext.empty()) {
    size_t next = ext.find(';');
    std::string_view item = ext.substr(0, next);
    ext = next == std::string_view::npos ? std::string_view() : ext.substr(next + 1);
    if (!item.starts_with("chunk-signature=")) continue;  // other extensions carry nothing for us
    std::string_view sig = item.substr(16);
    if (!chunk_signature_.empty() || sig.size() != 64 || !IsLowerHex(sig)) {
      return Mismatch("chunk header \"" + Printable(line) +
                      "\" needs one chunk-signature of 64 lower-case hex digits");
    }
    chunk_signature_ = std::string(sig);
  }
  if (signed_chunks_ && chunk_signature_.empty()) {
    return Mismatch("chunk header \"" + Printable(line) +
                    "\" has no chunk-signature; the payload mode requires signed chunks");
  }
  if (auth_.decoded_length != UINT64_MAX && size > auth_.decoded_length - decoded_) {
    return Invalid("the aws-chunked body holds more than the " +
                   std::to_string(auth_.decoded_length) +
                   " bytes announced in x-amz-decoded-content-length");
  }
  chunk_size_ = size;
  chunk_remaining_ = size;
  if (size == 0) {
    RETURN_IF_ERROR(EndChunk());  // the final chunk is signed like the others
    state_ = State::kTrailer;
  } else {
    state_ = State::kData;
  }
  return Status::OK();
}

Status ChunkDecoder::EndChunk() {
  if (!signed_chunks_) return Status::OK();
  std::string to_sign = internal::ChunkStringToSign(auth_.amz_date, auth_.scope,
                                                    previous_signature_, chunk_hash_.HexDigest());
  std::string expected = HexEncode(HmacSha256(auth_.signing_key, to_sign));
  if (!internal::ConstantTimeEquals(expected, chunk_signature_)) {
    return Mismatch("the signature of the aws-chunked chunk ending at decoded byte " +
                    std::to_string(decoded_) + " does not match");
  }
  previous_signature_ = std::move(expected);
  return Status::OK();
}

Status ChunkDecoder::ParseTrailerLine(std::string_view line) {
  trailer_bytes_ += line.size() + 2;
  if (trailer_bytes_ > kMaxTrailerBytes || trailers_.size() >= kMaxTrailers) {
    return Invalid("the aws-chunked trailer is larger than " + std::to_string(kMaxTrailerBytes) +
                   " bytes or " + std::to_string(kMaxTrailers) + " headers");
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status(Code::kInvalidArgument, "MalformedTrailerError: trailer line \"" +
                                              Printable(line) + "\" is not name:value");
  }
  std::string name(TrimBlanks(line.substr(0, colon)));
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  std::string value(TrimBlanks(line.substr(colon + 1)));
  if (name == "x-amz-trailer-signature") {
    if (auth_.payload_mode != PayloadMode::kStreamingSignedTrailer) {
      return Invalid(
          "x-amz-trailer-signature is only valid with "
          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    }
    if (!trailer_signature_.empty() || value.size() != 64 || !IsLowerHex(value)) {
      return Mismatch("the trailer needs one x-amz-trailer-signature of 64 lower-case hex digits");
    }
    trailer_signature_ = std::move(value);
    return Status::OK();
  }
  if (!trailer_signature_.empty()) {
    return Status(Code::kInvalidArgument,
                  "MalformedTrailerError: x-amz-trailer-signature must be the last trailer");
  }
  if (auth_.payload_mode == PayloadMode::kStreamingSigned) {
    return Invalid("trailer \"" + Printable(name) +
                   "\" sent with STREAMING-AWS4-HMAC-SHA256-PAYLOAD; trailers need a -TRAILER "
                   "payload mode");
  }
  if (name != auth_.trailer) {
    return Invalid("trailer \"" + Printable(name) + "\" was not declared in x-amz-trailer");
  }
  for (const auto& [seen, unused] : trailers_) {
    if (seen == name) {
      return Status(Code::kInvalidArgument,
                    "MalformedTrailerError: trailer \"" + Printable(name) + "\" appears twice");
    }
  }
  trailers_.emplace_back(std::move(name), std::move(value));
  return Status::OK();
}

Status ChunkDecoder::FinishTrailers() {
  if (auth_.payload_mode == PayloadMode::kStreamingSignedTrailer) {
    if (trailer_signature_.empty()) {
      return Mismatch("the trailer has no x-amz-trailer-signature");
    }
    auto sorted = trailers_;
    std::sort(sorted.begin(), sorted.end());
    std::string canonical;
    for (const auto& [name, value] : sorted) canonical += name + ":" + value + "\n";
    std::string to_sign = internal::TrailerStringToSign(auth_.amz_date, auth_.scope,
                                                        previous_signature_, Sha256Hex(canonical));
    std::string expected = HexEncode(HmacSha256(auth_.signing_key, to_sign));
    if (!internal::ConstantTimeEquals(expected, trailer_signature_)) {
      return Mismatch("x-amz-trailer-signature does not match the trailer");
    }
  }
  if (auth_.decoded_length != UINT64_MAX && decoded_ != auth_.decoded_length) {
    return Incomplete("the aws-chunked body decoded to " + std::to_string(decoded_) +
                      " bytes but x-amz-decoded-content-length announced " +
                      std::to_string(auth_.decoded_length));
  }
  if (!auth_.trailer.empty()) {
    const std::string* received = nullptr;
    for (const auto& [name, value] : trailers_) {
      if (name == auth_.trailer) received = &value;
    }
    if (received == nullptr) {
      return Status(Code::kInvalidArgument, "MalformedTrailerError: the trailer " + auth_.trailer +
                                                " announced in x-amz-trailer did not arrive");
    }
    std::string computed = checksum_->Base64();
    if (computed != *received) {
      return Status(Code::kBadDigest, "BadDigest: the " + auth_.trailer + " trailer \"" +
                                          Printable(*received) +
                                          "\" does not match the body's checksum " + computed);
    }
  }
  state_ = State::kDone;
  return Status::OK();
}

Status ChunkDecoder::Feed(std::string_view in, std::string* out) {
  size_t pos = 0;
  while (pos < in.size()) {
    switch (state_) {
      case State::kFailed:
        return error_;
      case State::kDone:
        return Fail(Invalid("bytes follow the end of the aws-chunked body"));
      case State::kHeader:
      case State::kTrailer: {
        auto full = TakeLine(in, &pos);
        if (!full.ok()) return Fail(full.status());
        if (!*full) return Status::OK();
        std::string line = std::move(line_);
        line_.clear();
        Status st;
        if (state_ == State::kHeader) {
          st = ParseChunkHeader(line);
        } else {
          st = line.empty() ? FinishTrailers() : ParseTrailerLine(line);
        }
        if (!st.ok()) return Fail(st);
        break;
      }
      case State::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_remaining_, in.size() - pos));
        std::string_view piece = in.substr(pos, n);
        if (signed_chunks_) chunk_hash_.Update(piece);
        if (checksum_) checksum_->Update(piece);
        out->append(piece);
        pos += n;
        chunk_remaining_ -= n;
        decoded_ += n;
        if (chunk_remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        // The CRLF after the data, possibly split across calls.
        while (pos < in.size() && line_.size() < 2) line_ += in[pos++];
        if (line_.size() < 2) return Status::OK();
        if (line_ != "\r\n") {
          return Fail(Invalid("the data of an aws-chunked chunk of " + std::to_string(chunk_size_) +
                              " bytes is not followed by CRLF: the chunk size is wrong"));
        }
        line_.clear();
        Status st = EndChunk();
        if (!st.ok()) return Fail(st);
        state_ = State::kHeader;
        break;
      }
    }
  }
  return state_ == State::kFailed ? error_ : Status::OK();
}

Status ChunkDecoder::Finish() {
  switch (state_) {
    case State::kFailed:
      return error_;
    case State::kDone:
      return Status::OK();
    case State::kTrailer:
      // The body may end right after the last trailer line (or the final chunk) without the
      // closing empty line: everything before it is complete and verified below.
      if (line_.empty()) {
        Status st = FinishTrailers();
        return st.ok() ? st : Fail(st);
      }
      return Fail(Incomplete("the body ended inside the aws-chunked trailer"));
    case State::kHeader:
    case State::kData:
    case State::kDataEnd:
      break;
  }
  return Fail(Incomplete("the body ended before the final zero-length aws-chunked chunk (" +
                         std::to_string(decoded_) + " bytes decoded)"));
}

PayloadHasher::PayloadHasher(std::string expected_hex) : expected_hex_(std::move(expected_hex)) {
  for (char& c : expected_hex_) c = static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
}

PayloadHasher::~PayloadHasher() = default;

void PayloadHasher::Update(std::string_view data) { hash_.Update(data); }

Status PayloadHasher::Finish() {
  std::string computed = hash_.HexDigest();
  if (computed != expected_hex_) {
    return Status(Code::kBadDigest, "XAmzContentSHA256Mismatch: the x-amz-content-sha256 header " +
                                        Printable(expected_hex_) +
                                        " does not match the body's SHA-256 " + computed);
  }
  return Status::OK();
}

}  // namespace granary::s3
