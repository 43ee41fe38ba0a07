// The XML writer and the bounded request-body parser (see xml.h).
#include "s3/xml.h"

#include <cstdint>

namespace granary::s3 {
namespace {

Status Malformed(std::string_view what, size_t pos) {
  return Status::InvalidArgument("MalformedXML: " + std::string(what) + " at byte " +
                                 std::to_string(pos) +
                                 "; the body must be well-formed XML as the S3 API describes");
}

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsNameChar(char c) {
  return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Strips a namespace prefix: "s3:Key" -> "Key".
std::string_view LocalName(std::string_view name) {
  size_t colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

class Parser {
 public:
  Parser(std::string_view doc, const XmlLimits& limits) : in_(doc), limits_(limits) {}

  Result<XmlNode> Run() {
    XmlNode document;
    std::vector<XmlNode*> stack{&document};
    bool seen_root = false;
    // An optional byte order mark.
    if (in_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    while (pos_ < in_.size()) {
      if (in_[pos_] != '<') {
        size_t start = pos_;
        std::string text;
        RETURN_IF_ERROR(ReadText(&text));
        if (stack.size() == 1) {
          for (char c : text) {
            if (!IsSpace(c)) return Malformed("text outside the root element", start);
          }
        } else {
          stack.back()->text += text;
        }
        continue;
      }
      std::string_view rest = in_.substr(pos_);
      if (rest.starts_with("<?")) {
        size_t end = in_.find("?>", pos_ + 2);
        if (end == std::string_view::npos) return Malformed("unterminated declaration", pos_);
        if (seen_root || stack.size() > 1) {
          // Processing instructions inside the document are allowed and ignored.
        }
        pos_ = end + 2;
      } else if (rest.starts_with("<!--")) {
        size_t end = in_.find("-->", pos_ + 4);
        if (end == std::string_view::npos) return Malformed("unterminated comment", pos_);
        pos_ = end + 3;
      } else if (rest.starts_with("<![CDATA[")) {
        if (stack.size() == 1) return Malformed("CDATA outside the root element", pos_);
        size_t end = in_.find("]]>", pos_ + 9);
        if (end == std::string_view::npos) return Malformed("unterminated CDATA section", pos_);
        stack.back()->text.append(in_.substr(pos_ + 9, end - pos_ - 9));
        pos_ = end + 3;
      } else if (rest.starts_with("<!")) {
        return Malformed("DOCTYPE and other declarations are not accepted", pos_);
      } else if (rest.starts_with("</")) {
        size_t start = pos_;
        pos_ += 2;
        std::string_view name = ReadName();
        if (name.empty()) return Malformed("missing name in end tag", start);
        SkipSpace();
        if (pos_ >= in_.size() || in_[pos_] != '>') return Malformed("unterminated end tag", start);
        ++pos_;
        if (stack.size() == 1) return Malformed("end tag without a start tag", start);
        if (LocalName(name) != stack.back()->name) {
          return Malformed("end tag </" + std::string(name) + "> does not match <" +
                               stack.back()->name + ">",
                           start);
        }
        stack.pop_back();
      } else {
        size_t start = pos_;
        ++pos_;
        std::string_view name = ReadName();
        if (name.empty()) return Malformed("invalid element name", start);
        if (stack.size() == 1 && seen_root) return Malformed("more than one root element", start);
        if (++elements_ > limits_.max_elements) {
          return Malformed("too many elements (at most " + std::to_string(limits_.max_elements) +
                               ")",
                           start);
        }
        if (stack.size() > limits_.max_depth) {
          return Malformed("elements nested deeper than " + std::to_string(limits_.max_depth),
                           start);
        }
        bool self_closing = false;
        RETURN_IF_ERROR(SkipAttributes(&self_closing));
        XmlNode& parent = *stack.back();
        parent.children.emplace_back();
        XmlNode* node = &parent.children.back();
        node->name = std::string(LocalName(name));
        if (stack.size() == 1) seen_root = true;
        if (!self_closing) stack.push_back(node);
      }
    }
    if (stack.size() != 1) return Malformed("unclosed element <" + stack.back()->name + ">", pos_);
    if (!seen_root) return Malformed("no root element", pos_);
    return std::move(document.children.front());
  }

 private:
  void SkipSpace() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
  }

  std::string_view ReadName() {
    size_t start = pos_;
    if (pos_ >= in_.size() || !IsNameStart(in_[pos_])) return {};
    while (pos_ < in_.size() && IsNameChar(in_[pos_])) ++pos_;
    return in_.substr(start, pos_ - start);
  }

  // After an element name: attributes, then '>' or '/>'. Values are checked, not kept.
  Status SkipAttributes(bool* self_closing) {
    for (;;) {
      size_t before = pos_;
      SkipSpace();
      if (pos_ >= in_.size()) return Malformed("unterminated start tag", pos_);
      if (in_[pos_] == '>') {
        ++pos_;
        return Status::OK();
      }
      if (in_[pos_] == '/') {
        if (pos_ + 1 >= in_.size() || in_[pos_ + 1] != '>') return Malformed("stray '/'", pos_);
        pos_ += 2;
        *self_closing = true;
        return Status::OK();
      }
      if (pos_ == before) return Malformed("attributes must be separated by space", pos_);
      if (ReadName().empty()) return Malformed("invalid attribute name", pos_);
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != '=') return Malformed("attribute without '='", pos_);
      ++pos_;
      SkipSpace();
      if (pos_ >= in_.size() || (in_[pos_] != '"' && in_[pos_] != '\'')) {
        return Malformed("attribute value must be quoted", pos_);
      }
      char quote = in_[pos_++];
      size_t end = in_.find(quote, pos_);
      if (end == std::string_view::npos) return Malformed("unterminated attribute value", pos_);
      if (in_.substr(pos_, end - pos_).find('<') != std::string_view::npos) {
        return Malformed("'<' in an attribute value", pos_);
      }
      pos_ = end + 1;
    }
  }

  // Character data up to the next '<', with references resolved.
  Status ReadText(std::string* out) {
    while (pos_ < in_.size() && in_[pos_] != '<') {
      char c = in_[pos_];
      if (c != '&') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      size_t semi = in_.find(';', pos_);
      if (semi == std::string_view::npos || semi - pos_ > 12) {
        return Malformed("unterminated character reference", pos_);
      }
      std::string_view ref = in_.substr(pos_ + 1, semi - pos_ - 1);
      if (ref == "amp") {
        out->push_back('&');
      } else if (ref == "lt") {
        out->push_back('<');
      } else if (ref == "gt") {
        out->push_back('>');
      } else if (ref == "quot") {
        out->push_back('"');
      } else if (ref == "apos") {
        out->push_back('\'');
      } else if (ref.size() >= 2 && ref[0] == '#') {
        bool hex = ref[1] == 'x';
        std::string_view digits = ref.substr(hex ? 2 : 1);
        if (digits.empty()) return Malformed("empty character reference", pos_);
        uint32_t cp = 0;
        for (char d : digits) {
          int v;
          if (d >= '0' && d <= '9') {
            v = d - '0';
          } else if (hex && d >= 'a' && d <= 'f') {
            v = d - 'a' + 10;
          } else if (hex && d >= 'A' && d <= 'F') {
            v = d - 'A' + 10;
          } else {
            return Malformed("invalid character reference", pos_);
          }
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          if (cp > 0x10FFFF) return Malformed("character reference out of range", pos_);
        }
        if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
          return Malformed("character reference to an invalid character", pos_);
        }
        AppendUtf8(cp, out);
      } else {
        return Malformed("unknown entity &" + std::string(ref) + ";", pos_);
      }
      pos_ = semi + 1;
    }
    return Status::OK();
  }

  std::string_view in_;
  const XmlLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

}  // namespace

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (Unicode Table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF) and its code point; 0 when the bytes
// there are not one.
size_t DecodeUtf8(std::string_view s, uint32_t* cp) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(0);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    *cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    *cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    *cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i) & 0x3F);
  }
  return n;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      uint32_t cp = 0;
      size_t n = DecodeUtf8(text.substr(i), &cp);
      if (n == 0 || cp == 0xFFFE || cp == 0xFFFF) {
        // Not UTF-8, or not a character XML 1.0 allows: one replacement per bad byte (or
        // character), so the document stays well-formed and lengths stay recognisable.
        out += kReplacement;
        i += n == 0 ? 1 : n;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      // Allowed, but a parser would normalise them (CR in text, all three in attributes).
      case '\t': out += "&#9;"; break;
      case '\n': out += "&#10;"; break;
      case '\r': out += "&#13;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          // XML 1.0 allows no other C0 control, not even as a character reference.
          out += kReplacement;
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

XmlWriter::XmlWriter() { out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"; }

void XmlWriter::Open(std::string_view name, std::string_view xmlns) {
  out_ += '<';
  out_ += name;
  if (!xmlns.empty()) {
    out_ += " xmlns=\"";
    out_ += XmlEscape(xmlns);
    out_ += '"';
  }
  out_ += '>';
  open_.emplace_back(name);
}

void XmlWriter::Close() {
  out_ += "</";
  out_ += open_.back();
  out_ += '>';
  open_.pop_back();
}

void XmlWriter::Element(std::string_view name, std::string_view text) {
  out_ += '<';
  out_ += name;
  out_ += '>';
  out_ += XmlEscape(text);
  out_ += "</";
  out_ += name;
  out_ += '>';
}

void XmlWriter::Number(std::string_view name, uint64_t value) {
  Element(name, std::string_view(std::to_string(value)));
}

void XmlWriter::Bool(std::string_view name, bool value) {
  Element(name, std::string_view(value ? "true" : "false"));
}

std::string XmlWriter::Finish() && { return std::move(out_); }

const XmlNode* XmlNode::Child(std::string_view child_name) const {
  for (const XmlNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string_view XmlNode::ChildText(std::string_view child_name) const {
  const XmlNode* c = Child(child_name);
  return c ? std::string_view(c->text) : std::string_view();
}

Result<XmlNode> ParseXml(std::string_view doc, const XmlLimits& limits) {
  if (doc.size() > limits.max_bytes) {
    return Status::InvalidArgument("MaxMessageLengthExceeded: the XML body of " +
                                   std::to_string(doc.size()) + " bytes is over the limit of " +
                                   std::to_string(limits.max_bytes));
  }
  return Parser(doc, limits).Run();
}

}  // namespace granary::s3
