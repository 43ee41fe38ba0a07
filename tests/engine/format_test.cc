#include "engine/format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace granary::engine {
namespace {

TEST(FormatTest, LayoutOfSmallAndDirectRecords) {
  RecordLayout small = LayoutFor(5, 100, false);
  EXPECT_EQ(small.value_offset, 48u + 5);
  EXPECT_EQ(small.crcs_offset, 48u + 5 + 100);
  EXPECT_EQ(small.size, AlignUp(48 + 5 + 100 + 4, 8));
  RecordLayout empty = LayoutFor(3, 0, false);
  EXPECT_EQ(empty.size, 56u);  // 48 + 3, no checksum for an empty value, padded to 8
  RecordLayout direct = LayoutFor(1024, 1 << 20, true);
  EXPECT_EQ(direct.value_offset, 4096u);
  EXPECT_EQ(direct.size % 4096, 0u);
  EXPECT_GE(direct.size, 4096u + (1 << 20) + 4 * 16);
}

TEST(FormatTest, HeaderRoundTripAndEveryBitIsChecked) {
  RecordHeader h;
  h.type = RecordType::kPut;
  h.flags = kFlagBatchContinues;
  h.value_len = 100;
  h.sequence = 42;
  h.group = 40;
  RecordLayout l = LayoutFor(3, 100, false);
  h.value_offset = l.value_offset;
  h.size8 = static_cast<uint32_t>(l.size / 8);
  std::string buf(kHeaderSize + 3, '\0');
  EncodeHeader(h, "key", buf.data());
  std::memcpy(buf.data() + kHeaderSize, "key", 3);
  auto d = DecodeHeader(buf.data(), "key");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->sequence, 42u);
  EXPECT_EQ(d->group, 40u);
  EXPECT_TRUE(d->continues_batch());
  EXPECT_EQ(d->value_len, 100u);
  // Any single flipped bit in the header or key is caught.
  for (size_t byte = 0; byte < buf.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[byte] ^= static_cast<char>(1 << bit);
      auto r = DecodeHeader(bad.data(), std::string_view(bad.data() + kHeaderSize, 3));
      EXPECT_FALSE(r.ok()) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(FormatTest, ValueBlockChecksums) {
  std::string value(3 * kValueBlockSize + 17, 'v');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 31);
  std::vector<uint32_t> crcs(ValueBlocks(value.size()));
  ASSERT_EQ(crcs.size(), 4u);
  ComputeValueCrcs(value, crcs.data());
  EXPECT_TRUE(VerifyValueBlocks(value.data(), value.size(), 0, 4, crcs.data()).ok());
  // Blocks 2..3 alone.
  EXPECT_TRUE(VerifyValueBlocks(value.data() + 2 * kValueBlockSize, value.size(), 2, 2,
                                crcs.data() + 2)
                  .ok());
  value[kValueBlockSize + 5] ^= 1;
  Status st = VerifyValueBlocks(value.data(), value.size(), 0, 4, crcs.data());
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("block 1"), std::string::npos);
}

}  // namespace
}  // namespace granary::engine
