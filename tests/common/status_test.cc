#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace granary {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.code(), Code::kOk);
  EXPECT_EQ(st.message(), "");
  EXPECT_EQ(st.ToString(), "ok");
  EXPECT_EQ(st, Status::OK());
}

TEST(StatusTest, FactoriesCarryCodeAndMessage) {
  EXPECT_EQ(Status::NotFound("x").code(), Code::kNotFound);
  EXPECT_EQ(Status::InvalidArgument("x").code(), Code::kInvalidArgument);
  EXPECT_EQ(Status::Corruption("x").code(), Code::kCorruption);
  EXPECT_EQ(Status::IOError("x").code(), Code::kIOError);
  EXPECT_EQ(Status::NoSpace("x").code(), Code::kNoSpace);
  EXPECT_EQ(Status::Unavailable("x").code(), Code::kUnavailable);
  EXPECT_EQ(Status::NotSupported("x").code(), Code::kNotSupported);
  EXPECT_EQ(Status::AlreadyExists("x").code(), Code::kAlreadyExists);
  EXPECT_EQ(Status::Internal("x").code(), Code::kInternal);

  Status st = Status::Corruption("record at 3:4096 failed its checksum");
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_FALSE(st.IsNotFound());
  EXPECT_EQ(st.message(), "record at 3:4096 failed its checksum");
  EXPECT_EQ(st.ToString(), "corruption: record at 3:4096 failed its checksum");
}

TEST(StatusTest, OkCodeWithMessageIsOk) {
  Status st(Code::kOk, "ignored");
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.message(), "");
}

TEST(StatusTest, CodeNamesAreStable) {
  EXPECT_EQ(CodeName(Code::kOk), "ok");
  EXPECT_EQ(CodeName(Code::kNotFound), "not_found");
  EXPECT_EQ(CodeName(Code::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(CodeName(Code::kCorruption), "corruption");
  EXPECT_EQ(CodeName(Code::kIOError), "io_error");
  EXPECT_EQ(CodeName(Code::kNoSpace), "no_space");
  EXPECT_EQ(CodeName(Code::kUnavailable), "unavailable");
  EXPECT_EQ(CodeName(Code::kNotSupported), "not_supported");
  EXPECT_EQ(CodeName(Code::kAlreadyExists), "already_exists");
  EXPECT_EQ(CodeName(Code::kInternal), "internal");
}

TEST(StatusTest, FromErrnoMapsCodes) {
  Status nospace = Status::FromErrno(ENOSPC, "write \"f\"");
  EXPECT_EQ(nospace.code(), Code::kNoSpace);
  EXPECT_NE(nospace.message().find("write \"f\""), std::string::npos);
  EXPECT_NE(nospace.message().find("free space"), std::string::npos);
  EXPECT_EQ(Status::FromErrno(EDQUOT, "w").code(), Code::kNoSpace);
  EXPECT_EQ(Status::FromErrno(ENOENT, "open").code(), Code::kNotFound);
  Status io = Status::FromErrno(EIO, "read \"f\"");
  EXPECT_EQ(io.code(), Code::kIOError);
  EXPECT_EQ(io.message().rfind("read \"f\": ", 0), 0u) << io.message();
}

TEST(StatusTest, WithContextPrepends) {
  Status st = Status::IOError("disk gone").WithContext("segment 3");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_EQ(st.message(), "segment 3: disk gone");
  EXPECT_TRUE(Status::OK().WithContext("ignored").ok());
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(Status::NotFound("a"), Status::NotFound("a"));
  EXPECT_FALSE(Status::NotFound("a") == Status::NotFound("b"));
  EXPECT_FALSE(Status::NotFound("a") == Status::IOError("a"));
  Status copy = Status::Internal("x");
  Status other = copy;
  EXPECT_EQ(copy, other);
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<std::string> good(std::string("value"));
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good.status().ok());
  EXPECT_EQ(*good, "value");
  EXPECT_EQ(good->size(), 5u);
  std::string moved = *std::move(good);
  EXPECT_EQ(moved, "value");

  Result<std::string> bad(Status::NotFound("no such key"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return Status::OK();
}

TEST(ResultTest, MacrosPropagateErrors) {
  Result<int> q = Quarter(12);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 3);
  Result<int> odd = Quarter(6);  // 6 / 2 = 3 is odd
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(odd.status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace granary
