// Request addressing and decoding (request.h).
#include "s3/request.h"

#include "s3/errors.h"

namespace granary::s3 {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

const std::string* Request::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string_view Request::HeaderOr(std::string_view name, std::string_view fallback) const {
  const std::string* v = Header(name);
  return v ? std::string_view(*v) : fallback;
}

bool Request::HasQuery(std::string_view name) const { return Query(name) != nullptr; }

const std::string* Request::Query(std::string_view name) const {
  for (const auto& [n, v] : query) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string_view Request::QueryOr(std::string_view name, std::string_view fallback) const {
  const std::string* v = Query(name);
  return v ? std::string_view(*v) : fallback;
}

std::string Request::Resource() const {
  std::string r = "/";
  r += bucket;
  if (!key.empty()) {
    r += '/';
    r += key;
  }
  return r;
}

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  RETURN_IF_ERROR(PercentDecode(in, plus_is_space, &out));
  return out;
}

Status PercentDecode(std::string_view in, bool plus_is_space, std::string* out_ptr) {
  std::string& out = *out_ptr;
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return S3Status(Code::kInvalidArgument, "InvalidArgument",
                        "malformed percent-encoding at byte " + std::to_string(i) +
                            " of the request URI: '%' must be followed by two hex digits");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return Status::OK();
}

Status ResolveTarget(std::string_view host, const std::vector<std::string>& domains,
                     Request* request) {
  std::string_view target = request->target;
  // Absolute form ("http://host/path"), as proxies send it.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.starts_with(scheme)) {
      target.remove_prefix(scheme.size());
      size_t slash = target.find('/');
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.empty() || target.front() != '/') {
    return S3Status(Code::kInvalidArgument, "InvalidRequest",
                    "the request target must start with '/'");
  }
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  request->path = std::string(path);
  request->query.clear();
  if (qmark != std::string_view::npos) {
    std::string_view qs = target.substr(qmark + 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string_view param = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
      if (param.empty()) continue;
      size_t eq = param.find('=');
      ASSIGN_OR_RETURN(std::string name, PercentDecode(param.substr(0, eq), true));
      std::string value;
      if (eq != std::string_view::npos) {
        ASSIGN_OR_RETURN(value, PercentDecode(param.substr(eq + 1), true));
      }
      request->query.emplace_back(std::move(name), std::move(value));
    }
  }

  // Virtual-host style: "<bucket>.<domain>[:port]".
  std::string h = ToLower(host);
  if (!h.empty() && h.front() != '[') {
    size_t colon = h.rfind(':');
    if (colon != std::string::npos) h.resize(colon);
  }
  for (const std::string& domain : domains) {
    std::string d = ToLower(domain);
    if (d.empty() || h.size() <= d.size() + 1 || !h.ends_with(d) ||
        h[h.size() - d.size() - 1] != '.') {
      continue;
    }
    request->bucket = h.substr(0, h.size() - d.size() - 1);
    ASSIGN_OR_RETURN(request->key, PercentDecode(path.substr(1), false));
    return Status::OK();
  }

  // Path style: "/bucket/key".
  std::string_view rest = path.substr(1);
  size_t slash = rest.find('/');
  ASSIGN_OR_RETURN(request->bucket, PercentDecode(rest.substr(0, slash), false));
  request->key.clear();
  if (slash != std::string_view::npos) {
    ASSIGN_OR_RETURN(request->key, PercentDecode(rest.substr(slash + 1), false));
  }
  return Status::OK();
}

}  // namespace granary::s3
