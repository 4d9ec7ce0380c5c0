// write_file_atomic: writes, replaces, and fails cleanly (false + reason, no temp file left behind).
#include "dfm/common/paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_tmp.h"

namespace fs = std::filesystem;

namespace dfm {
namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(WriteFileAtomic, WritesNewFileAndLeavesNoTempFile) {
  const auto dir = testing::fresh_dir();
  const auto path = dir / "report.json";
  std::string error = "untouched";
  ASSERT_TRUE(write_file_atomic(path.string(), "{\"a\": 1}\n", &error)) << error;
  EXPECT_EQ(read_all(path), "{\"a\": 1}\n");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"report.json"});
}

TEST(CheckWritable, ProbesTheDirectoryAndLeavesNothingBehind) {
  const auto dir = testing::fresh_dir();
  std::string error;
  EXPECT_TRUE(check_writable((dir / "report.json").string(), &error)) << error;
  EXPECT_TRUE(entries(dir).empty());  // no probe file, no report yet

  EXPECT_FALSE(check_writable((dir / "missing" / "report.json").string(), &error));
  EXPECT_NE(error.find("missing/report.json: cannot write"), std::string::npos) << error;
  EXPECT_FALSE(check_writable(dir.string(), &error));  // a directory is not a report path
  EXPECT_NE(error.find("is a directory"), std::string::npos) << error;
  EXPECT_FALSE(check_writable("/proc/self/report.json", &error));
}

TEST(WriteFileAtomic, WritesBinaryDataExactly) {
  const auto dir = testing::fresh_dir();
  const auto path = dir / "blob.bin";
  std::string data;
  for (int i = 0; i < 70000; ++i) data.push_back(static_cast<char>(i * 31 % 256));
  data[10] = '\0';
  std::string error;
  ASSERT_TRUE(write_file_atomic(path.string(), data, &error)) << error;
  EXPECT_EQ(read_all(path), data);
}

TEST(WriteFileAtomic, ReplacesExistingFile) {
  const auto dir = testing::fresh_dir();
  const auto path = dir / "state.txt";
  std::string error;
  ASSERT_TRUE(write_file_atomic(path.string(), "first version, which is longer", &error)) << error;
  ASSERT_TRUE(write_file_atomic(path.string(), "second", &error)) << error;
  EXPECT_EQ(read_all(path), "second");  // replaced, not appended or partially overwritten
  ASSERT_TRUE(write_file_atomic(path.string(), "", &error)) << error;
  EXPECT_EQ(read_all(path), "");
  EXPECT_TRUE(fs::is_regular_file(path));
  EXPECT_EQ(entries(dir), std::vector<std::string>{"state.txt"});
}

TEST(WriteFileAtomic, NullErrorPointerIsAllowed) {
  const auto dir = testing::fresh_dir();
  EXPECT_TRUE(write_file_atomic((dir / "a").string(), "x", nullptr));
  EXPECT_FALSE(write_file_atomic((dir / "missing" / "a").string(), "x", nullptr));
}

// Calls write_file_atomic; as root, in a child process that has dropped to an unprivileged uid first
// (root ignores directory permissions). Returns {ok, error}.
std::pair<bool, std::string> write_unprivileged(const std::string& path, const std::string& data) {
  if (::geteuid() != 0) {
    std::string error;
    const bool ok = write_file_atomic(path, data, &error);
    return {ok, error};
  }
  int fds[2];
  if (::pipe(fds) != 0) return {true, "pipe failed"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(3);
    std::string error;
    const bool ok = write_file_atomic(path, data, &error);
    (void)!::write(fds[1], error.data(), error.size());
    _exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  std::string error;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) error.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 3) << "could not drop privileges";
  return {WIFEXITED(status) && WEXITSTATUS(status) == 0, error};
}

TEST(WriteFileAtomic, FailsCleanlyInNonWritableDir) {
  const auto dir = testing::fresh_dir();
  const auto ro = dir / "readonly";
  fs::create_directories(ro);
  { std::ofstream(ro / "existing.json") << "old"; }
  ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);
  ASSERT_EQ(::chmod((ro / "existing.json").c_str(), 0666), 0);
  for (const char* name : {"new.json", "existing.json"}) {
    const auto path = ro / name;
    auto [ok, error] = write_unprivileged(path.string(), "data");
    EXPECT_FALSE(ok) << name;
    EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  }
  EXPECT_EQ(read_all(ro / "existing.json"), "old");
  EXPECT_EQ(entries(ro), std::vector<std::string>{"existing.json"}) << "temp file left behind";
  ::chmod(ro.c_str(), 0755);
}

TEST(WriteFileAtomic, FailsCleanlyWhenDirectoryIsMissing) {
  const auto dir = testing::fresh_dir();
  const auto path = dir / "no" / "such" / "dir" / "out.json";
  std::string error;
  EXPECT_FALSE(write_file_atomic(path.string(), "data", &error));
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir / "no"));
  EXPECT_TRUE(entries(dir).empty());
}

TEST(WriteFileAtomic, FailsCleanlyWhenParentIsAFile) {
  const auto dir = testing::fresh_dir();
  { std::ofstream(dir / "plain") << "i am a file"; }
  const auto path = dir / "plain" / "out.json";
  std::string error;
  EXPECT_FALSE(write_file_atomic(path.string(), "data", &error));
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_EQ(read_all(dir / "plain"), "i am a file");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"plain"});
}

// The temp file is written, but the final rename fails (target is a non-empty directory): the temp file
// must be removed and the target untouched. Works as root too.
TEST(WriteFileAtomic, FailedRenameRemovesTempFile) {
  const auto dir = testing::fresh_dir();
  const auto target = dir / "target";
  fs::create_directories(target);
  { std::ofstream(target / "keep.txt") << "keep"; }
  std::string error;
  EXPECT_FALSE(write_file_atomic(target.string(), "data", &error));
  EXPECT_NE(error.find(target.string()), std::string::npos) << error;
  EXPECT_EQ(entries(dir), std::vector<std::string>{"target"});
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(read_all(target / "keep.txt"), "keep");
}

}  // namespace
}  // namespace dfm
