// XML for the S3 gateway: a small escaping writer for response documents and a small, strict,
// bounded parser for request bodies (CompleteMultipartUpload, DeleteObjects,
// CreateBucketConfiguration).
//
// The parser accepts the subset of XML 1.0 that S3 clients send: an optional declaration,
// comments, elements with attributes, text with the predefined and numeric character references,
// and CDATA sections. It rejects DOCTYPE (no entity expansion), bounds the depth, the number of
// elements and the input size, and never recurses, so hostile input costs at most linear time
// and bounded memory.
//
// Thread-safety: XmlWriter is a value owned by one thread; ParseXml is a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace granary::s3 {

// Escapes text for element content or attribute values: & < > " ' become references, and so do
// tab, LF and CR (which parsers would otherwise normalise). The result is always well-formed
// UTF-8 XML 1.0 character data: every other control character, every byte that is not part of a
// well-formed UTF-8 sequence, and U+FFFE / U+FFFF become U+FFFD, one per byte (or character).
std::string XmlEscape(std::string_view text);

// Builds a document. Every Open() must be matched by a Close() before Finish().
class XmlWriter {
 public:
  // Starts the document with the XML declaration.
  XmlWriter();

  // <name xmlns="...">; `xmlns` omitted when empty.
  void Open(std::string_view name, std::string_view xmlns = {});
  // Escaped character data inside the element opened last.
  void Text(std::string_view text) { out_ += XmlEscape(text); }
  // Closes the element opened last.
  void Close();
  // <name>escaped text</name>
  void Element(std::string_view name, std::string_view text);
  void Number(std::string_view name, uint64_t value);
  void Bool(std::string_view name, bool value);  // "true" / "false"

  // The finished document. REQUIRES: every Open() was closed.
  std::string Finish() &&;

 private:
  std::string out_;
  std::vector<std::string> open_;
};

// One parsed element. Attributes are not kept (S3 request bodies carry none that matter);
// namespace prefixes are stripped from names ("s3:Key" -> "Key").
struct XmlNode {
  std::string name;
  std::string text;  // the element's character data, concatenated (entities resolved)
  std::vector<XmlNode> children;

  // The first child named `name`, or null.
  const XmlNode* Child(std::string_view name) const;
  // The text of the first child named `name`, or "" when there is none.
  std::string_view ChildText(std::string_view name) const;
};

struct XmlLimits {
  size_t max_bytes = 1 << 20;
  size_t max_depth = 32;
  size_t max_elements = 20000;
};

// Parses one document. Errors are kInvalidArgument with a message starting "MalformedXML: "
// (or "MaxMessageLengthExceeded: " when the input is over max_bytes).
[[nodiscard]] Result<XmlNode> ParseXml(std::string_view doc, const XmlLimits& limits = {});

}  // namespace granary::s3
