// Data-parallel communication over MPI (OpenMPI through the MPI C API). Without AHA_WITH_MPI, or
// when the binary is not started by mpirun, the process is rank 0 of 1 and every collective is
// a no-op, so callers need no special case. Every collective has a time limit: when another rank
// died or hangs, the job ends with one `error:` line instead of waiting forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aha::dist {

// MPI_Init when the build has MPI (idempotent); call once from main before any collective.
void init(int* argc, char*** argv);
void finalize();
bool built_with_mpi();

int rank();
int size();
inline bool active() { return size() > 1; }

// Seconds a collective may take before the job is aborted (default 600, env AHA_MPI_TIMEOUT).
void set_timeout(double seconds);
double timeout();

// In-place sums over all ranks. Large buffers go in buckets of `bucket_bytes`, all in flight
// at once. Every rank ends with the same bits (one reduction order for all).
void allreduce_sum(float* data, size_t n, const char* what);
void allreduce_sum(double* data, size_t n, const char* what);
void allreduce_sum(int64_t* data, size_t n, const char* what);
void allreduce_max(double* data, size_t n, const char* what);
// Sums of float ranges started one after another (e.g. as backward finishes each layer) and
// waited for together: the communication overlaps whatever runs between start() and wait().
// Every rank must start the same sizes in the same order.
class AsyncSum {
 public:
  AsyncSum() = default;
  AsyncSum(const AsyncSum&) = delete;
  AsyncSum& operator=(const AsyncSum&) = delete;
  ~AsyncSum();
  void start(float* data, size_t n);
  void wait(const char* what);

 private:
  std::vector<void*> reqs_;  // MPI_Request handles (opaque here)
};

// Every rank's vector, concatenated in rank order, on every rank.
std::vector<double> allgather(const std::vector<double>& mine, const char* what);
// Where this rank's n items start in that concatenation, and how many there are in all.
struct Span {
  int64_t first = 0, total = 0;
};
Span span_in_all(int64_t n, const char* what);
// All-to-all (expert parallelism): send[q] goes to rank q. alltoall_counts exchanges `per` counts
// with every rank (recv[s * per + i] is what rank s sent here); alltoallv moves values whose
// per-rank counts (in values) both sides already know, packed in rank order.
std::vector<int64_t> alltoall_counts(const std::vector<int64_t>& send, int per, const char* what);
void alltoallv(const float* send, const std::vector<int64_t>& send_counts, float* recv,
               const std::vector<int64_t>& recv_counts, const char* what);
void alltoallv(const double* send, const std::vector<int64_t>& send_counts, double* recv,
               const std::vector<int64_t>& recv_counts, const char* what);
// Bytes this rank has sent to other ranks so far, by kind of collective (for benchmarks):
// all-to-all payloads to other ranks and allreduce buffers (each counted once, as given).
struct Traffic {
  int64_t alltoall_bytes = 0, allreduce_bytes = 0;
};
Traffic traffic();

// Every rank's string on rank 0 (in rank order); other ranks get an empty vector.
std::vector<std::string> gather_to_root(const std::string& mine, const char* what);
void barrier(const char* what);

// Prints `error: <message>` (with the rank) and ends every rank of the job, exit code 1.
[[noreturn]] void abort_job(const std::string& message);

// The [begin, end) share of `n` items that this rank takes: contiguous, in rank order.
inline std::pair<int64_t, int64_t> share(int64_t n, int r = rank(), int s = size()) {
  return {n * r / s, n * (r + 1) / s};
}

}  // namespace aha::dist
