// Logging: spdlog to stderr (stdout belongs to JSONL output), level from --log-level.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace aha {

// level: trace|debug|info|warn|error|off. Throws aha::Error on an unknown level.
void setup_logging(const std::string& level = "info");

}  // namespace aha
