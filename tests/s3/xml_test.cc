// The XML writer and the bounded request-body parser, including hostile input.
#include "s3/xml.h"

#include <gtest/gtest.h>

#include <random>

namespace granary::s3 {
namespace {

TEST(XmlWriterTest, EscapesText) {
  XmlWriter w;
  w.Open("Root", "http://x/");
  w.Element("Key", "a<b>&\"'\t");
  w.Number("Size", 42);
  w.Bool("Flag", true);
  w.Close();
  std::string xml = std::move(w).Finish();
  EXPECT_EQ(xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Root xmlns=\"http://x/\"><Key>a&lt;b&gt;"
            "&amp;&quot;&apos;&#9;</Key><Size>42</Size><Flag>true</Flag></Root>");
}

// Every document must be well-formed UTF-8 XML 1.0, whatever bytes a key or message holds.
TEST(XmlWriterTest, ReplacesWhatXmlCannotHold) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(XmlEscape(std::string_view("a\0b", 3)), "a" + r + "b");
  EXPECT_EQ(XmlEscape("a\x01\x1F\x7F"), "a" + r + r + "\x7F");  // DEL is a character of XML
  EXPECT_EQ(XmlEscape("\n\r"), "&#10;&#13;");
  // Invalid UTF-8: a stray byte, an overlong '/', a surrogate, past U+10FFFF, a cut sequence.
  EXPECT_EQ(XmlEscape("a\xFF"), "a" + r);
  EXPECT_EQ(XmlEscape("\xC0\xAF"), r + r);
  EXPECT_EQ(XmlEscape("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(XmlEscape("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(XmlEscape("ab\xE2\x98"), "ab" + r + r);
  // Noncharacters XML excludes.
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBE\xEF\xBF\xBF"), r + r);
  // Valid UTF-8 of every length passes untouched.
  std::string ok = "\xC3\xA9\xE2\x98\xBA\xF0\x9F\x98\x80\xF4\x8F\xBF\xBD" + r;
  EXPECT_EQ(XmlEscape(ok), ok);
  // And what the writer produces parses back.
  XmlWriter w;
  w.Element("Key", std::string_view("k\0\xFF\t", 4));
  Result<XmlNode> doc = ParseXml(std::move(w).Finish());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->text, "k" + r + r + "\t");
}

TEST(XmlParserTest, ParsesCompleteMultipartUpload) {
  Result<XmlNode> doc = ParseXml(
      "<?xml version=\"1.0\"?>\n<!-- c --><CompleteMultipartUpload xmlns=\"http://s3/\">\n"
      "  <Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part>\n"
      "  <Part><PartNumber>2</PartNumber><ETag><![CDATA[\"d<e\"]]></ETag></Part>\n"
      "</CompleteMultipartUpload>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "CompleteMultipartUpload");
  ASSERT_EQ(doc->children.size(), 2u);
  EXPECT_EQ(doc->children[0].ChildText("ETag"), "\"abc\"");
  EXPECT_EQ(doc->children[1].ChildText("ETag"), "\"d<e\"");
  EXPECT_EQ(doc->children[1].ChildText("PartNumber"), "2");
}

TEST(XmlParserTest, ResolvesReferencesAndPrefixes) {
  Result<XmlNode> doc = ParseXml("<s3:Delete><s3:Key>a&#32;b&#x263A;&lt;</s3:Key><E/></s3:Delete>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Delete");
  EXPECT_EQ(doc->ChildText("Key"), "a b\xE2\x98\xBA<");
  EXPECT_NE(doc->Child("E"), nullptr);
  EXPECT_EQ(doc->Child("Missing"), nullptr);
}

TEST(XmlParserTest, RejectsMalformedDocuments) {
  for (const char* bad :
       {"", "   ", "<a>", "<a></b>", "<a><b></a></b>", "</a>", "<a/><b/>", "text<a/>",
        "<a>&unknown;</a>", "<a>&#0;</a>", "<a>&#xD800;</a>", "<a>&#x110000;</a>", "<a x=1/>",
        "<a x=\"1\"y=\"2\"/>", "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "<a><!-- x</a>",
        "<a><![CDATA[x</a>", "<?xml", "<1a/>", "<a>&amp</a>"}) {
    Result<XmlNode> doc = ParseXml(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), Code::kInvalidArgument);
      EXPECT_TRUE(doc.status().message().starts_with("MalformedXML: ")) << bad;
    }
  }
}

TEST(XmlParserTest, BoundsDepthElementsAndSize) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  EXPECT_FALSE(ParseXml(deep).ok());  // no recursion: fails fast at the depth limit

  std::string wide = "<r>";
  for (int i = 0; i < 30000; ++i) wide += "<x/>";
  wide += "</r>";
  EXPECT_FALSE(ParseXml(wide).ok());

  XmlLimits limits;
  limits.max_bytes = 10;
  Result<XmlNode> big = ParseXml("<a>0123456789</a>", limits);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(big.status().message().starts_with("MaxMessageLengthExceeded"));
}

TEST(XmlParserTest, FuzzedInputNeverCrashes) {
  const std::string seed =
      "<?xml version=\"1.0\"?><Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key>"
      "</Object><![CDATA[x]]><!-- c --></Delete>";
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % (s.size() + 1);
      switch (rng() % 4) {
        case 0: if (pos < s.size()) s.erase(pos, 1 + rng() % 4); break;
        case 1: s.insert(pos, 1, "<>/&;![]\"'=x\xff"[rng() % 14]); break;
        case 2: if (pos < s.size()) s[pos] = static_cast<char>(rng()); break;
        default: s = s.substr(0, pos); break;
      }
    }
    Result<XmlNode> doc = ParseXml(s);
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), Code::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace granary::s3
