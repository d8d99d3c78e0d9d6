// AdamW / SGD, gradient clipping and LR schedules.
#include "aha/policy/optimizer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>

#include "aha/core/error.h"
#include "aha/core/safetensors.h"
#include "optimizer_values.h"

namespace aha::policy {

namespace fs = std::filesystem;

OptimizerConfig OptimizerConfig::from_json(const Json& j) {
  StrictReader r(j, "optimizer");
  OptimizerConfig c;
  c.kind = r.get<std::string>("kind", c.kind);
  c.beta1 = r.get<double>("beta1", c.beta1);
  c.beta2 = r.get<double>("beta2", c.beta2);
  c.eps = r.get<double>("eps", c.eps);
  c.weight_decay = r.get<double>("weight_decay", c.weight_decay);
  c.max_grad_norm = r.get<double>("max_grad_norm", c.max_grad_norm);
  r.finish();
  if (c.kind != "adamw" && c.kind != "sgd") fail("optimizer.kind must be adamw or sgd");
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) {
    fail("optimizer betas must be in [0, 1)");
  }
  if (!(c.eps > 0)) fail("optimizer.eps must be > 0");
  return c;
}

LrSchedule LrSchedule::from_json(const Json& j) {
  StrictReader r(j, "schedule");
  LrSchedule s;
  s.kind = r.get<std::string>("kind", s.kind);
  s.lr = r.get<double>("lr", s.lr);
  s.warmup_steps = r.get<int>("warmup_steps", s.warmup_steps);
  s.total_steps = r.get<int>("total_steps", s.total_steps);
  s.min_lr_ratio = r.get<double>("min_lr_ratio", s.min_lr_ratio);
  r.finish();
  if (s.kind != "constant" && s.kind != "cosine" && s.kind != "linear") {
    fail("schedule.kind must be constant, cosine or linear");
  }
  if (!(s.lr >= 0)) fail("schedule.lr must be >= 0");
  if (s.warmup_steps < 0) fail("schedule.warmup_steps must be >= 0");
  return s;
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * double(step + 1) / double(warmup_steps);
  if (kind == "constant" || total_steps <= warmup_steps) return lr;
  double progress = std::min(1.0, double(step - warmup_steps) / double(total_steps - warmup_steps));
  double shape = kind == "cosine" ? 0.5 * (1 + std::cos(std::numbers::pi * progress))
                                  : 1.0 - progress;
  return lr * (min_lr_ratio + (1 - min_lr_ratio) * shape);
}

namespace {

// Fixed-size pieces of a tensor are the unit of parallel work: one tensor (a 150k-token
// embedding) can be a quarter of the model, and per-tensor tasks left one core idle on it. The
// pieces depend on the sizes alone, so the gradient norm sums in the same order for any thread
// count.
constexpr size_t kPiece = size_t{1} << 15;

struct Piece {
  size_t entry, begin, end;  // values [begin, end) of the entry
};

// Pieces of the entries that keep(k) admits, in entry order; whole rows of a lookup table.
template <typename Keep>
std::vector<Piece> pieces(const std::vector<ParamEntry>& entries, Keep keep) {
  std::vector<Piece> out;
  for (size_t k = 0; k < entries.size(); ++k) {
    if (!keep(k)) continue;
    const ParamEntry& e = entries[k];
    const size_t row = e.sparse_rows ? static_cast<size_t>(e.shape[1]) : 1;
    const size_t step = std::max(row, kPiece / row * row);
    for (size_t b = 0; b < e.numel; b += step) out.push_back({k, b, std::min(e.numel, b + step)});
  }
  return out;
}

// Eight interleaved partial sums in double: independent chains the compiler can vectorise,
// combined in a fixed order.
template <typename T>
double sum_squares(const T* g, size_t n) {
  double acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) acc[j] += double(g[i + j]) * double(g[i + j]);
  }
  for (; i < n; ++i) acc[i % 8] += double(g[i]) * double(g[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

template <typename T>
double clip_grad_norm(const ParamTable& table, T* grads, double max_norm) {
  const auto& entries = table.entries();
  const bool lora = table.base_total() < table.total();  // then only the adapters learn
  const std::vector<Piece> counted = pieces(entries, [&](size_t k) {
    return entries[k].trainable && (!lora || entries[k].adapter);
  });
  std::vector<double> partial(counted.size());
  tbb::parallel_for(size_t{0}, counted.size(), [&](size_t i) {
    const Piece& c = counted[i];
    partial[i] = sum_squares(grads + entries[c.entry].offset + c.begin, c.end - c.begin);
  });
  double ss = 0;
  for (double x : partial) ss += x;
  double norm = std::sqrt(ss);
  if (!std::isfinite(norm) || max_norm <= 0 || norm <= max_norm) return norm;
  T scale = static_cast<T>(max_norm / (norm + 1e-6));
  const std::vector<Piece> scaled = pieces(entries, [&](size_t k) {
    return !lora || entries[k].adapter;
  });
  tbb::parallel_for(size_t{0}, scaled.size(), [&](size_t i) {
    const Piece& c = scaled[i];
    T* g = grads + entries[c.entry].offset;
    for (size_t j = c.begin; j < c.end; ++j) g[j] *= scale;
  });
  return norm;
}

template <typename T>
Optimizer<T>::Optimizer(const ParamTable& table, const OptimizerConfig& config)
    : table_(table), cfg_(config), trainable_(table.entries().size(), 1) {
  const bool lora = table.base_total() < table.total();
  size_t n = 0;
  moment_at_.assign(table.entries().size(), kNoParam);
  for (size_t i = 0; i < table.entries().size(); ++i) {
    const ParamEntry& e = table.entries()[i];
    trainable_[i] = e.trainable && (!lora || e.adapter) ? 1 : 0;
    // Moments for what may learn: set_trainable can only freeze, never unfreeze.
    if (!trainable_[i]) continue;
    moment_at_[i] = n;
    n += e.numel;
  }
  if (cfg_.kind == "adamw") {
    m_.assign(n, T(0));
    v_.assign(n, T(0));
  }
}

template <typename T>
void Optimizer<T>::set_trainable(const std::string& name, bool trainable) {
  const ParamEntry& e = table_.at(name);
  const size_t k = &e - table_.entries().data();
  trainable_[k] = trainable && moment_at_[k] != kNoParam;
}

template <typename T>
void Optimizer<T>::hold_only(const std::vector<uint8_t>& held) {
  AHA_CHECK(held.size() == table_.entries().size() && t_ == 0, "hold_only on ", held.size(),
            " entries after ", t_, " steps");
  size_t n = 0;
  for (size_t k = 0; k < held.size(); ++k) {
    if (!held[k]) {
      trainable_[k] = 0;
      moment_at_[k] = kNoParam;
    }
    if (moment_at_[k] == kNoParam) continue;
    moment_at_[k] = n;
    n += table_.entries()[k].numel;
  }
  if (cfg_.kind == "adamw") {  // still all zero: repacking is a resize
    m_.assign(n, T(0));
    v_.assign(n, T(0));
    m_.shrink_to_fit();
    v_.shrink_to_fit();
  }
}

template <typename T>
const T* Optimizer<T>::exp_avg(size_t k) const {
  return cfg_.kind == "adamw" && moment_at_[k] != kNoParam ? m_.data() + moment_at_[k] : nullptr;
}
template <typename T>
const T* Optimizer<T>::exp_avg_sq(size_t k) const {
  return cfg_.kind == "adamw" && moment_at_[k] != kNoParam ? v_.data() + moment_at_[k] : nullptr;
}

template <typename T>
void Optimizer<T>::update(T* p, const T* g, T* m, T* v, size_t n, double lr, double wd,
                          double bc1, double bc2) const {
  if (cfg_.kind == "sgd") return detail::sgd_values(p, g, n, lr, wd);
  detail::adamw_values(p, g, m, v, n, static_cast<T>(cfg_.beta1), static_cast<T>(cfg_.beta2),
                       static_cast<T>(lr / bc1), static_cast<T>(1 - lr * wd),
                       static_cast<T>(1 / std::sqrt(bc2)), static_cast<T>(cfg_.eps));
}

template <typename T>
void Optimizer<T>::step(T* params, const T* grads, double lr) {
  ++t_;
  const auto& entries = table_.entries();
  const double bc1 = 1 - std::pow(cfg_.beta1, double(t_));
  const double bc2 = 1 - std::pow(cfg_.beta2, double(t_));
  const std::vector<Piece> work = pieces(entries, [&](size_t k) { return trainable_[k] != 0; });
  // Each value's update depends on that value alone: any split gives the same bits.
  tbb::parallel_for(size_t{0}, work.size(), [&](size_t i) {
    const Piece& c = work[i];
    const ParamEntry& e = entries[c.entry];
    T* p = params + e.offset + c.begin;
    const T* g = grads + e.offset + c.begin;
    const double wd = e.shape.size() >= 2 ? cfg_.weight_decay : 0.0;
    T* m = cfg_.kind == "sgd" ? nullptr : m_.data() + moment_at_[c.entry] + c.begin;
    T* v = cfg_.kind == "sgd" ? nullptr : v_.data() + moment_at_[c.entry] + c.begin;
    const size_t n = c.end - c.begin;
    if (!e.sparse_rows) {
      update(p, g, m, v, n, lr, wd, bc1, bc2);
      return;
    }
    // Lazy (SparseAdam-style) update of a lookup table: only rows the batch touched.
    const size_t cols = static_cast<size_t>(e.shape[1]);
    for (size_t r = 0; r < n / cols; ++r) {
      const T* gr = g + r * cols;
      if (std::all_of(gr, gr + cols, [](T x) { return x == T(0); })) continue;
      update(p + r * cols, gr, m ? m + r * cols : nullptr, v ? v + r * cols : nullptr, cols, lr,
             wd, bc1, bc2);
    }
  });
}

template <typename T>
void Optimizer<T>::save(const std::string& path, const std::vector<Moments>& others) const {
  std::vector<TensorToWrite> tensors;
  const DType src = sizeof(T) == 8 ? DType::kF64 : DType::kF32;
  if (cfg_.kind == "adamw") {
    std::vector<const T*> m(table_.entries().size()), v(m.size());
    for (size_t k = 0; k < m.size(); ++k) m[k] = exp_avg(k), v[k] = exp_avg_sq(k);
    for (const Moments& o : others) m[o.entry] = o.m, v[o.entry] = o.v;
    for (size_t k = 0; k < table_.entries().size(); ++k) {
      const ParamEntry& e = table_.entries()[k];
      if (m[k] == nullptr) continue;
      tensors.push_back({"exp_avg." + e.name, e.shape, m[k], src, src});
      tensors.push_back({"exp_avg_sq." + e.name, e.shape, v[k], src, src});
    }
  }
  write_safetensors(path, tensors, {{"step", std::to_string(t_)}, {"kind", cfg_.kind}});
}

template <typename T>
void Optimizer<T>::load(const std::string& path) {
  SafetensorsFile f(path);
  auto kind = f.metadata().find("kind");
  auto step = f.metadata().find("step");
  if (kind == f.metadata().end() || kind->second != cfg_.kind || step == f.metadata().end()) {
    fail("[optimizer] ", path, " holds no ", cfg_.kind, " state");
  }
  t_ = std::stoll(step->second);
  if (cfg_.kind != "adamw") return;
  // Sharded expert parallelism writes the other ranks' expert moments beside the file as
  // <stem>-ep*.safetensors (train/checkpointer.cpp); a tensor is read from the first holding it.
  std::vector<std::unique_ptr<TensorArchive>> archives;
  archives.push_back(std::make_unique<TensorArchive>(path));
  const fs::path p(path);
  std::vector<std::string> more;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(p.parent_path(), ec)) {
    const std::string name = f.path().filename().string();
    if (name.starts_with(p.stem().string() + "-ep") && name.ends_with(".safetensors")) {
      more.push_back(f.path().string());
    }
  }
  std::sort(more.begin(), more.end());
  for (const std::string& m : more) archives.push_back(std::make_unique<TensorArchive>(m));
  for (size_t k = 0; k < table_.entries().size(); ++k) {
    const ParamEntry& e = table_.entries()[k];
    if (moment_at_[k] == kNoParam) continue;
    const TensorArchive* a = archives.front().get();
    for (const auto& x : archives) {
      if (x->contains("exp_avg." + e.name)) {
        a = x.get();
        break;
      }
    }
    a->read<T>("exp_avg." + e.name, e.shape, m_.data() + moment_at_[k]);
    a->read<T>("exp_avg_sq." + e.name, e.shape, v_.data() + moment_at_[k]);
  }
}

template double clip_grad_norm<float>(const ParamTable&, float*, double);
template double clip_grad_norm<double>(const ParamTable&, double*, double);
template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace aha::policy
