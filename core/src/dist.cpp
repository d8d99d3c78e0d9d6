// MPI collectives with a time limit: non-blocking operations polled against a deadline.
#include "aha/core/dist.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "aha/core/error.h"

#ifdef AHA_WITH_MPI
#include <mpi.h>
#endif

namespace aha::dist {

namespace {

double g_timeout = 600.0;
Traffic g_traffic;
int g_rank = 0, g_size = 1;
bool g_inited = false;

#ifdef AHA_WITH_MPI
constexpr size_t kBucketBytes = size_t{8} << 20;

// Waits for all requests, aborting the job when the deadline passes.
void wait_all(std::vector<MPI_Request>& reqs, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  int spins = 0;
  while (true) {
    int done = 0;
    MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
    if (done) return;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > g_timeout) {
      abort_job(std::string(what) + " timed out after " + std::to_string(static_cast<int>(waited)) +
                " s: another rank died or hangs (AHA_MPI_TIMEOUT sets the limit)");
    }
    // Spin briefly (collectives are usually quick), then yield the core to the other rank.
    if (++spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

template <typename T>
void allreduce(T* data, size_t n, MPI_Datatype type, MPI_Op op, const char* what) {
  if (g_size == 1 || n == 0) return;
  g_traffic.allreduce_bytes += static_cast<int64_t>(n * sizeof(T));
  const size_t per = std::max<size_t>(1, kBucketBytes / sizeof(T));
  std::vector<MPI_Request> reqs;
  for (size_t a = 0; a < n; a += per) {
    reqs.emplace_back();
    MPI_Iallreduce(MPI_IN_PLACE, data + a, static_cast<int>(std::min(per, n - a)), type, op,
                   MPI_COMM_WORLD, &reqs.back());
  }
  wait_all(reqs, what);
}
#endif

}  // namespace

bool built_with_mpi() {
#ifdef AHA_WITH_MPI
  return true;
#else
  return false;
#endif
}

void init(int* argc, char*** argv) {
  if (g_inited) return;
  g_inited = true;
  if (const char* t = std::getenv("AHA_MPI_TIMEOUT")) g_timeout = std::atof(t) > 0 ? std::atof(t) : g_timeout;
#ifdef AHA_WITH_MPI
  // Only under a launcher: a plain `aha` run never touches MPI (no daemons, no network probes).
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && std::getenv("PMI_SIZE") == nullptr &&
      std::getenv("PMIX_RANK") == nullptr) {
    return;
  }
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
#else
  (void)argc;
  (void)argv;
#endif
}

void finalize() {
#ifdef AHA_WITH_MPI
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) MPI_Finalize();
#endif
}

int rank() { return g_rank; }
int size() { return g_size; }
void set_timeout(double seconds) { g_timeout = seconds; }
double timeout() { return g_timeout; }

AsyncSum::~AsyncSum() {
#ifdef AHA_WITH_MPI
  // Requests left in flight by an exception: complete them rather than leak MPI state.
  for (void* r : reqs_) {
    MPI_Request* req = static_cast<MPI_Request*>(r);
    MPI_Wait(req, MPI_STATUS_IGNORE);
    delete req;
  }
#endif
}

void AsyncSum::start(float* data, size_t n) {
#ifdef AHA_WITH_MPI
  if (g_size == 1 || n == 0) return;
  g_traffic.allreduce_bytes += static_cast<int64_t>(n * sizeof(float));
  const size_t per = kBucketBytes / sizeof(float);
  for (size_t a = 0; a < n; a += per) {
    auto* req = new MPI_Request;
    MPI_Iallreduce(MPI_IN_PLACE, data + a, static_cast<int>(std::min(per, n - a)), MPI_FLOAT,
                   MPI_SUM, MPI_COMM_WORLD, req);
    reqs_.push_back(req);
  }
  // MPI progresses non-blocking collectives inside MPI calls: poke the ones in flight.
  for (void* r : reqs_) {
    int done = 0;
    MPI_Test(static_cast<MPI_Request*>(r), &done, MPI_STATUS_IGNORE);
  }
#else
  (void)data;
  (void)n;
#endif
}

void AsyncSum::wait(const char* what) {
#ifdef AHA_WITH_MPI
  std::vector<MPI_Request> reqs;
  for (void* r : reqs_) {
    reqs.push_back(*static_cast<MPI_Request*>(r));
    delete static_cast<MPI_Request*>(r);
  }
  reqs_.clear();
  if (!reqs.empty()) wait_all(reqs, what);
#else
  (void)what;
#endif
}

void allreduce_sum(float* data, size_t n, const char* what) {
#ifdef AHA_WITH_MPI
  allreduce(data, n, MPI_FLOAT, MPI_SUM, what);
#endif
}
void allreduce_sum(double* data, size_t n, const char* what) {
#ifdef AHA_WITH_MPI
  allreduce(data, n, MPI_DOUBLE, MPI_SUM, what);
#endif
}
void allreduce_sum(int64_t* data, size_t n, const char* what) {
#ifdef AHA_WITH_MPI
  allreduce(data, n, MPI_INT64_T, MPI_SUM, what);
#endif
}
void allreduce_max(double* data, size_t n, const char* what) {
#ifdef AHA_WITH_MPI
  allreduce(data, n, MPI_DOUBLE, MPI_MAX, what);
#endif
}

std::vector<double> allgather(const std::vector<double>& mine, const char* what) {
  if (g_size == 1) return mine;
#ifdef AHA_WITH_MPI
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(g_size), offs(g_size, 0);
  std::vector<MPI_Request> req(1);
  MPI_Iallgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
  for (int r = 1; r < g_size; ++r) offs[r] = offs[r - 1] + counts[r - 1];
  std::vector<double> all(static_cast<size_t>(offs.back() + counts.back()));
  MPI_Iallgatherv(mine.data(), n, MPI_DOUBLE, all.data(), counts.data(), offs.data(), MPI_DOUBLE,
                  MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
  return all;
#else
  return mine;
#endif
}

Span span_in_all(int64_t n, const char* what) {
  const std::vector<double> counts = allgather({double(n)}, what);
  Span s;
  for (int r = 0; r < static_cast<int>(counts.size()); ++r) {
    if (r < g_rank) s.first += static_cast<int64_t>(counts[r]);
    s.total += static_cast<int64_t>(counts[r]);
  }
  return s;
}

std::vector<std::string> gather_to_root(const std::string& mine, const char* what) {
  if (g_size == 1) return {mine};
#ifdef AHA_WITH_MPI
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(g_size), offs(g_size, 0);
  std::vector<MPI_Request> req(1);
  MPI_Igather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
  std::vector<char> all;
  if (g_rank == 0) {
    for (int r = 1; r < g_size; ++r) offs[r] = offs[r - 1] + counts[r - 1];
    all.resize(static_cast<size_t>(offs.back() + counts.back()));
  }
  MPI_Igatherv(mine.data(), n, MPI_CHAR, all.data(), counts.data(), offs.data(), MPI_CHAR, 0,
               MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
  std::vector<std::string> out;
  if (g_rank == 0) {
    for (int r = 0; r < g_size; ++r) out.emplace_back(all.data() + offs[r], static_cast<size_t>(counts[r]));
  }
  return out;
#else
  return {mine};
#endif
}

Traffic traffic() { return g_traffic; }

std::vector<int64_t> alltoall_counts(const std::vector<int64_t>& send, int per, const char* what) {
  AHA_CHECK(static_cast<int>(send.size()) == per * g_size, "alltoall_counts: ", send.size(),
            " counts for ", g_size, " ranks of ", per);
  if (g_size == 1) return send;
  std::vector<int64_t> recv(send.size());
#ifdef AHA_WITH_MPI
  std::vector<MPI_Request> req(1);
  MPI_Ialltoall(send.data(), per, MPI_INT64_T, recv.data(), per, MPI_INT64_T, MPI_COMM_WORLD,
                &req[0]);
  wait_all(req, what);
#else
  (void)what;
#endif
  return recv;
}

namespace {

template <typename T>
void alltoallv_impl(const T* send, const std::vector<int64_t>& send_counts, T* recv,
                    const std::vector<int64_t>& recv_counts, const char* what) {
  AHA_CHECK(static_cast<int>(send_counts.size()) == g_size &&
                static_cast<int>(recv_counts.size()) == g_size,
            "alltoallv: counts for ", send_counts.size(), " and ", recv_counts.size(), " ranks");
  if (g_size == 1) {
    std::copy_n(send, send_counts[0], recv);
    return;
  }
#ifdef AHA_WITH_MPI
  std::vector<int> sc(g_size), so(g_size), rc(g_size), ro(g_size);
  int64_t s_off = 0, r_off = 0;
  for (int q = 0; q < g_size; ++q) {
    constexpr int64_t kMax = int64_t{1} << 31;  // MPI's int counts and displacements
    AHA_CHECK(s_off + send_counts[q] < kMax && r_off + recv_counts[q] < kMax,
              "alltoallv: more than 2^31 values");
    sc[q] = static_cast<int>(send_counts[q]);
    so[q] = static_cast<int>(s_off);
    rc[q] = static_cast<int>(recv_counts[q]);
    ro[q] = static_cast<int>(r_off);
    s_off += send_counts[q];
    r_off += recv_counts[q];
    if (q != g_rank) g_traffic.alltoall_bytes += send_counts[q] * static_cast<int64_t>(sizeof(T));
  }
  const MPI_Datatype type = sizeof(T) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE;
  std::vector<MPI_Request> req(1);
  MPI_Ialltoallv(send, sc.data(), so.data(), type, recv, rc.data(), ro.data(), type,
                 MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
#else
  (void)what;
#endif
}

}  // namespace

void alltoallv(const float* send, const std::vector<int64_t>& send_counts, float* recv,
               const std::vector<int64_t>& recv_counts, const char* what) {
  alltoallv_impl(send, send_counts, recv, recv_counts, what);
}
void alltoallv(const double* send, const std::vector<int64_t>& send_counts, double* recv,
               const std::vector<int64_t>& recv_counts, const char* what) {
  alltoallv_impl(send, send_counts, recv, recv_counts, what);
}

void barrier(const char* what) {
  if (g_size == 1) return;
#ifdef AHA_WITH_MPI
  std::vector<MPI_Request> req(1);
  MPI_Ibarrier(MPI_COMM_WORLD, &req[0]);
  wait_all(req, what);
#endif
}

void abort_job(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: rank %d of %d: %s\n", g_rank, g_size, message.c_str());
  std::fflush(stderr);
#ifdef AHA_WITH_MPI
  if (g_size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  std::_Exit(1);
}

}  // namespace aha::dist
