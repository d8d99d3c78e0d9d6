// The aha version, shown by `aha --version` and stored with every run.
#pragma once

namespace aha {

// The project version of this build (CMake's PROJECT_VERSION).
const char* version();

}  // namespace aha
