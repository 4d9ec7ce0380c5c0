// Status / Result: codes, formatting, context prefixes and the early-return macros.
#include "dfm/common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace dfm {
namespace {

TEST(Status, DefaultIsOkWithEmptyMessage) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.code(), Code::kOk);
  EXPECT_EQ(st.message(), "");
  EXPECT_EQ(st.to_string(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Status, HelpersSetCodeAndMessage) {
  EXPECT_EQ(InvalidArgument("a").code(), Code::kInvalidArgument);
  EXPECT_EQ(NotFound("a").code(), Code::kNotFound);
  EXPECT_EQ(IoError("a").code(), Code::kIo);
  EXPECT_EQ(Unsupported("a").code(), Code::kUnsupported);
  EXPECT_EQ(Timeout("a").code(), Code::kTimeout);
  EXPECT_EQ(Cancelled("a").code(), Code::kCancelled);
  EXPECT_EQ(Internal("a").code(), Code::kInternal);
  Status st = NotFound("model.onnx: missing");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "model.onnx: missing");
}

TEST(Status, ToStringPrefixesCodeName) {
  EXPECT_EQ(InvalidArgument("bad key").to_string(), "invalid_argument: bad key");
  EXPECT_EQ(NotFound("x").to_string(), "not_found: x");
  EXPECT_EQ(IoError("x").to_string(), "io_error: x");
}

TEST(Status, CodeNamesAreDistinct) {
  const Code codes[] = {Code::kOk,      Code::kInvalidArgument, Code::kNotFound,  Code::kIo,
                        Code::kUnsupported, Code::kTimeout,     Code::kCancelled, Code::kInternal};
  for (size_t i = 0; i < std::size(codes); ++i) {
    for (size_t j = i + 1; j < std::size(codes); ++j) {
      EXPECT_STRNE(code_name(codes[i]), code_name(codes[j]));
    }
  }
}

TEST(Status, WithContextPrefixesMessageAndKeepsCode) {
  Status st = IoError("read failed").with_context("stream \"cam-1\": ");
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_EQ(st.message(), "stream \"cam-1\": read failed");
  // Chained contexts nest outermost-first.
  Status nested = st.with_context("watch: ");
  EXPECT_EQ(nested.message(), "watch: stream \"cam-1\": read failed");
}

TEST(Status, WithContextOnOkIsNoOp) {
  Status st = Status::Ok().with_context("ignored: ");
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.message(), "");
}

TEST(Result, HoldsValue) {
  Result<int> r(42);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  Result<std::string> s(std::string("abc"));
  EXPECT_EQ(s->size(), 3u);
}

TEST(Result, HoldsError) {
  Result<int> r(NotFound("nope"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "nope");
}

TEST(Result, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

TEST(Result, MoveOnlyValueCanBeMovedOut) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

Status fails_if(bool fail) { return fail ? InvalidArgument("inner") : Status::Ok(); }

Status uses_return_if_error(bool fail, int* reached) {
  DFM_RETURN_IF_ERROR(fails_if(fail));
  ++*reached;
  return Status::Ok();
}

Result<int> half(int v) {
  if (v % 2) return InvalidArgument("odd " + std::to_string(v));
  return v / 2;
}

Result<int> quarter(int v) {
  DFM_ASSIGN_OR_RETURN(int h, half(v));
  DFM_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

TEST(StatusMacros, ReturnIfErrorStopsOnError) {
  int reached = 0;
  EXPECT_TRUE(uses_return_if_error(false, &reached).ok());
  EXPECT_EQ(reached, 1);
  Status st = uses_return_if_error(true, &reached);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(st.message(), "inner");
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturnPropagatesFirstError) {
  auto ok = quarter(12);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  auto bad = quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd 3");
}

}  // namespace
}  // namespace dfm
