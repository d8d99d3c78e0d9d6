// Internals of the run report shared by report.cpp (loading the databases, the page, the
// sample table) and report_svg.cpp (line charts and heat maps). Not installed.
#pragma once

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "aha/core/config.h"
#include "aha/runlog/report.h"

namespace aha::runlog::report_detail {

inline constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

using Layers = std::vector<std::vector<double>>;  // [moe layer][expert] tokens
// Derived metric per MoE layer: "expert_imbalance/<layer>" = max / mean tokens per expert.
inline constexpr const char* kImbalancePrefix = "expert_imbalance/";

struct Run {
  std::string label, db_path, kind, status, model, started, ended, config;
  int64_t run_id = 0;
  std::vector<int64_t> steps;
  std::vector<Json> metrics;  // one object per step
  std::vector<std::pair<int64_t, Layers>> expert_load;
  std::vector<Json> samples;  // best/worst rollouts with a "breakdown" string
  std::vector<Json> events;   // warn/error
};

// One chart: a single metric, or a group of metrics drawn together (clip fractions, time split).
struct ChartSpec {
  std::string id, title;
  std::vector<std::string> metrics;
};

std::string fmt(const char* f, double v);
std::string num(double v);      // %.4g
bool is_number(const Json& v);  // numbers, not booleans
// Indices 0..n-1 thinned to at most `keep` (every k-th, the last always kept); keep <= 0: all.
std::vector<size_t> thin(size_t n, int64_t keep);

// Known metrics first, in a fixed order; groups share one chart. Then every other metric.
std::vector<ChartSpec> chart_specs(const std::set<std::string>& names);
// One <figure> with an SVG line chart, every run's series overlaid; nothing when no run has data.
void render_chart(std::ostream& o, const ChartSpec& spec, const std::vector<Run>& runs,
                  const ReportOptions& opt);
// One heat map <figure> per run and MoE layer from Run::expert_load.
void render_heatmaps(std::ostream& o, const std::vector<Run>& runs, const ReportOptions& opt);

}  // namespace aha::runlog::report_detail
