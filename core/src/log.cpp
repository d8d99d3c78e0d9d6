// spdlog setup shared by every command.
#include "aha/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "aha/core/error.h"

namespace aha {

void setup_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") fail("unknown log level '", level, "'");
  auto logger = spdlog::stderr_color_mt("aha");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

}  // namespace aha
