// SHA-256 against FIPS 180-4 / NIST vectors, padding boundaries and the file reader.
#include "dfm/common/sha256.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "test_tmp.h"

namespace dfm {
namespace {

TEST(Sha256, EmptyString) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockNistVector) {
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// Lengths around the 55/56/64-byte padding boundaries (reference values from Python's hashlib).
TEST(Sha256, PaddingBoundaries) {
  const std::pair<size_t, const char*> cases[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
  };
  for (const auto& [n, hex] : cases) EXPECT_EQ(sha256_hex(std::string(n, 'a')), hex) << "length " << n;
}

TEST(Sha256, BinaryDataWithNulBytes) {
  std::string data;
  for (int r = 0; r < 300; ++r) {
    for (int b = 0; b < 256; ++b) data.push_back(static_cast<char>(b));
  }
  EXPECT_EQ(sha256_hex(data), "f8b0585eb91f58c007a5634362c9f90d8543822c113f702523bc7b73408a9392");
}

TEST(Sha256, FileOfOneMillionAMatchesNistVector) {
  // 1,000,000 bytes: crosses the reader's 64 KiB buffer several times.
  const auto dir = testing::fresh_dir();
  const auto path = (dir / "million_a.bin").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(1000000, 'a');
  }
  auto r = sha256_file(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileMatchesBufferHash) {
  const auto dir = testing::fresh_dir();
  const auto path = (dir / "abc.txt").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  auto r = sha256_file(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, sha256_hex("abc"));
}

TEST(Sha256, EmptyFile) {
  const auto dir = testing::fresh_dir();
  const auto path = (dir / "empty").string();
  { std::ofstream out(path, std::ios::binary); }
  auto r = sha256_file(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, MissingFileIsNotFoundNamingPath) {
  const std::string path = "/nonexistent/dir/model.onnx";
  auto r = sha256_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace dfm

namespace dfm {
namespace {

TEST(Sha256, DirectoryIsAnError) {
  const auto dir = testing::fresh_dir();
  auto r = sha256_file(dir.string());
  EXPECT_FALSE(r.ok()) << "hashed a directory as " << (r.ok() ? *r : "");
}

}  // namespace
}  // namespace dfm
