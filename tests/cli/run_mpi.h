// Running aha under mpirun in tests (2 ranks on loopback, as root in a container) and comparing
// the weights two runs end with.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "aha/core/safetensors.h"
#include "run_aha.h"

namespace aha::testing {

// mpirun with what a container needs (root, no high-speed network), or "" when unavailable.
inline std::string mpirun() {
  if (run_aha("version").out.find("mpi: yes") == std::string::npos) return "";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) return "";
  // single_copy_mechanism none: containers often forbid the cross-memory attach vader uses.
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
         "OMPI_MCA_btl_vader_single_copy_mechanism=none "
         "OMPI_MCA_rmaps_base_oversubscribe=1 timeout 300 mpirun -np 2 ";
}

// Runs `aha ARGS` under mpirun; env holds NAME=VALUE pairs for every rank.
inline CmdResult run_mpi(const std::string& args, const std::vector<std::string>& env = {}) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_mpi_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string xs;
  for (const std::string& e : env) xs += "-x " + e + " ";
  const std::string cmd = mpirun() + xs + AHA_BINARY + " " + args + " > " + (dir / "out").string() +
                          " 2> " + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::stringstream ss;
    ss << std::ifstream(p).rdbuf();
    return ss.str();
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "out"), slurp(dir / "err")};
}

// Why the MPI tests cannot run here ("" when they can): aha without MPI, no mpirun, or a sandbox
// that forbids what the launcher needs (aha's own failures under a working launcher still fail).
// The probe tries three times, a second apart: under ctest -j2 a probe that ran beside another
// test's mpirun failed once and skipped a test that then passed alone.
inline std::string mpi_unavailable() {
  if (mpirun().empty()) return "aha built without MPI, or no mpirun: skipping the MPI tests";
  static const bool launcher_ok = [] {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) ::sleep(1);
      if (std::system((mpirun() + "true > /dev/null 2>&1").c_str()) == 0) return true;
    }
    return false;
  }();
  if (!launcher_ok)
    return "mpirun cannot start 2 processes on this machine: skipping the MPI tests";
  return "";
}

// The largest difference of any weight between two safetensors files with the same tensors.
inline double max_weight_diff(const std::filesystem::path& a, const std::filesystem::path& b) {
  TensorArchive x(a.string()), y(b.string());
  double worst = 0;
  for (const std::string& name : x.names()) {
    const TensorInfo& info = x.info(name);
    std::vector<float> u(info.numel()), v(info.numel());
    x.read(name, info.shape, u.data());
    y.read(name, info.shape, v.data());
    for (size_t i = 0; i < u.size(); ++i) worst = std::max(worst, double(std::abs(u[i] - v[i])));
  }
  return worst;
}

}  // namespace aha::testing
