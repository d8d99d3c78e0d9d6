// Products nested in another loop's task (internal to core; defined in tensor_lanes.cpp, used by
// the lanes kernel and gemm_bf16_weight).
#pragma once

#include <cstdint>

namespace aha {

// True when a product of `macs` multiply-adds is called from inside another parallel loop's task
// (a decode row block, a MoE expert) and is small enough to run on the calling thread: that loop
// already feeds the cores, and splitting a product of a few microseconds costs more than it saves.
bool nested_small(int64_t macs);

}  // namespace aha
