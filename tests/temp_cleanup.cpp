// Linked into every test binary. Each test process names its scratch files and folders
// <tmp>/aha_..._<pid>[_..|.ext]; once all of its tests have passed they are removed, so runs do
// not pile up thousands of them in /tmp. A failing process keeps them to be looked at.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace {

bool names_this_process(const std::string& name, const std::string& pid) {
  if (name.rfind("aha_", 0) != 0) return false;
  const std::string tag = "_" + pid;
  for (size_t at = name.find(tag); at != std::string::npos; at = name.find(tag, at + 1)) {
    size_t end = at + tag.size();
    if (end == name.size() || name[end] == '_' || name[end] == '.') return true;
  }
  return false;
}

class TempCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    namespace fs = std::filesystem;
    const std::string pid = std::to_string(::getpid());
    std::error_code ec;
    fs::path tmp = fs::temp_directory_path(ec);
    if (ec) return;
    for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
      if (names_this_process(it->path().filename().string(), pid)) {
        std::error_code ignored;  // best effort: a file we cannot remove stays
        fs::remove_all(it->path(), ignored);
      }
    }
  }
};

[[maybe_unused]] ::testing::Environment* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new TempCleanup);

}  // namespace
