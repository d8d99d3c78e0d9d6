// `aha version`: the version of this build.
#include <iostream>

#include "aha/core/dist.h"
#include "aha/core/version.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_version(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha version")) return 0;
  std::cout << "aha " << version() << "\n" << "mpi: " << (dist::built_with_mpi() ? "yes" : "no") << "\n";
  return 0;
}

}  // namespace aha::cli
