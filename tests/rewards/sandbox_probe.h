// What the sandbox lifetime tests look for on the host: processes carrying a marker, temp dirs
// a sandbox left behind, and a bounded wait. Shared by the library and CLI sandbox tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>

namespace aha::rewards::sandbox_probe {

// Host processes whose command line contains `marker` (the sandboxed program's last argument,
// inherited by everything it forks).
inline int processes_with(const std::string& marker) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e :
       fs::directory_iterator("/proc", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(marker) != std::string::npos) ++n;
  }
  return n;
}

// Temp dirs of the previous sandbox's kind (/tmp/aha-sbx-*). Other builds' sandboxes on the same
// machine may make some for a moment: only ones that appeared since `before` and stay count.
inline std::set<std::string> host_sandbox_dirs() {
  namespace fs = std::filesystem;
  std::set<std::string> dirs;
  for (const auto& e :
       fs::directory_iterator("/tmp", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename().string();
    if (name.rfind("aha-sbx-", 0) == 0) dirs.insert(name);
  }
  return dirs;
}

inline int new_sandbox_dirs(const std::set<std::string>& before) {
  auto count = [&] {
    int n = 0;
    for (const auto& d : host_sandbox_dirs()) n += before.count(d) == 0;
    return n;
  };
  for (int i = 0; i < 150 && count() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return count();
}

template <typename Pred>
bool wait_until(Pred pred, double limit_s) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(limit_s * 1000));
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace aha::rewards::sandbox_probe
