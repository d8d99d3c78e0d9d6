// Signal handlers of the training commands: async-signal-safe (an atomic flag, write, _exit).
#include "aha/core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "aha/core/dist.h"

namespace aha {
namespace {

std::atomic<int> g_requests{0};

void on_signal(int sig) {
  if (g_requests.fetch_add(1) == 0) {
    static const char kMsg[] =
        "\naha: stopping after this step (checkpoint, run marked paused); "
        "press Ctrl-C again to quit now\n";
    [[maybe_unused]] ssize_t n = ::write(2, kMsg, sizeof(kMsg) - 1);
    return;
  }
  static const char kNow[] = "\naha: interrupted\n";
  [[maybe_unused]] ssize_t n = ::write(2, kNow, sizeof(kNow) - 1);
  ::_exit(128 + sig);
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_requests.load() > 0; }

bool stop_requested_all() {
  if (!dist::active()) return stop_requested();
  int64_t any = stop_requested() ? 1 : 0;
  dist::allreduce_sum(&any, 1, "stop request");
  return any > 0;
}

}  // namespace aha
