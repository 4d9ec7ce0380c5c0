// Per-test scratch directories under DFM_TEST_TMP (removed and recreated on every call).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace dfm::testing {

inline std::filesystem::path fresh_dir(const std::string& suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("common_") + info->test_suite_name() + "_" + info->name() + suffix;
  std::filesystem::path dir = std::filesystem::path(DFM_TEST_TMP) / name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace dfm::testing
