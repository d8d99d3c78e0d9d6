// Compiled with the version as a private definition, so a version bump rebuilds one file.
#include "aha/core/version.h"

namespace aha {

const char* version() { return AHA_VERSION_STRING; }

}  // namespace aha
