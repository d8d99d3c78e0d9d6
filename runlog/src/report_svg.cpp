// The report's SVG: line charts over steps (runs overlaid, nice ticks, tooltips) and MoE
// expert-load heat maps. Every label that comes from a database is escaped.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report_internal.h"

namespace aha::runlog::report_detail {

namespace {

constexpr const char* kDashes[] = {"", "6 3", "2 3", "9 3 2 3", "12 4"};
constexpr int kW = 480, kH = 260, kMl = 64, kMr = 14, kMt = 10, kMb = 34;
// Circles (with a tooltip each) are drawn for series up to this many points.
constexpr size_t kMaxCircles = 400;

struct Point {
  int64_t step;
  double value;
};

struct Series {
  std::string label, metric;
  size_t run = 0;
  std::string color, dash;
  std::vector<Point> points;
};

// Roughly n "nice" tick values (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n, bool integer) {
  double raw = (hi - lo) / n;
  double step = std::pow(10.0, std::floor(std::log10(raw)));
  const double err = raw / step;
  if (err >= 7.5) {
    step *= 10;
  } else if (err >= 3.5) {
    step *= 5;
  } else if (err >= 1.5) {
    step *= 2;
  }
  if (integer) step = std::max(1.0, std::round(step));
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

// A tick label with as many decimals as the tick spacing needs: ticks 1.0002 apart must not
// all read "1".
std::string tick_label(double v, double spacing) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6 || a < 1e-4) return fmt("%.3g", v);
  const int decimals =
      spacing > 0 ? std::clamp(int(std::ceil(-std::log10(spacing) - 1e-9)), 0, 9) : 4;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Blue (under-used) -> white (tokens = layer mean) -> red (over-used), on log2(tokens / mean).
std::string load_color(double ratio) {
  double t = ratio > 0 ? std::clamp(std::log2(ratio), -1.0, 1.0) : -1.0;
  int r = 255, g = 255, b = 255;
  if (t < 0) {
    r = int(255 + t * (255 - 49));
    g = int(255 + t * (255 - 104));
    b = int(255 + t * (255 - 181));
  } else {
    r = int(255 + t * (178 - 255));
    g = int(255 + t * (24 - 255));
    b = int(255 + t * (43 - 255));
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

}  // namespace

// Known metrics first, in this order; groups share one chart. Then every other numeric metric.
std::vector<ChartSpec> chart_specs(const std::set<std::string>& names) {
  std::vector<ChartSpec> specs;
  std::set<std::string> used;
  auto group = [&](const std::string& id, const std::string& title,
                   const std::vector<std::string>& metrics) {
    ChartSpec c{id, title, {}};
    for (const auto& m : metrics) {
      if (names.count(m) && !used.count(m)) c.metrics.push_back(m);
    }
    if (c.metrics.empty()) return;
    used.insert(c.metrics.begin(), c.metrics.end());
    specs.push_back(std::move(c));
  };
  auto single = [&](const std::string& m) { group(m, m, {m}); };
  if (!names.count("reward_mean")) {  // pretraining only: its curves first
    for (const char* m : {"loss", "ppl", "lr", "grad_norm"}) single(m);
  }
  single("reward_mean");
  for (const auto& n : names) {
    if (n.rfind("reward/", 0) == 0) single(n);
  }
  for (const char* m : {"accuracy", "kl"}) single(m);
  group("clip_frac", "clip fractions", {"clip_low_frac", "clip_high_frac", "dual_clip_frac"});
  for (const char* m : {"entropy", "completion_len_mean", "truncation_rate", "tokens_per_s"}) {
    single(m);
  }
  group("time_split", "time per step (s)",
        {"time_rollout", "time_reward", "time_ref", "time_train"});
  std::vector<std::string> imbalance;
  for (size_t l = 0; names.count(kImbalancePrefix + std::to_string(l)); ++l) {
    imbalance.push_back(kImbalancePrefix + std::to_string(l));
  }
  group("expert_imbalance", "expert load: max / mean tokens per MoE layer", imbalance);
  for (const char* m : {"loss", "ppl", "lr", "grad_norm"}) single(m);
  for (const auto& n : names) {
    if (!used.count(n)) single(n);
  }
  return specs;
}

std::vector<Series> collect_series(const ChartSpec& spec, const std::vector<Run>& runs,
                                   const ReportOptions& opt) {
  std::vector<Series> series;
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const Run& run = runs[ri];
    for (size_t mi = 0; mi < spec.metrics.size(); ++mi) {
      const std::string& name = spec.metrics[mi];
      Series s;
      s.metric = name;
      s.run = ri;
      for (size_t i = 0; i < run.steps.size(); ++i) {
        auto it = run.metrics[i].find(name);
        if (it == run.metrics[i].end() || !is_number(*it)) continue;
        double v = it->get<double>();
        if (std::isfinite(v)) s.points.push_back({run.steps[i], v});
      }
      if (s.points.empty()) continue;
      std::vector<Point> kept;
      for (size_t i : thin(s.points.size(), opt.max_points)) kept.push_back(s.points[i]);
      s.points = std::move(kept);
      const bool grouped = spec.metrics.size() > 1;
      const size_t color = grouped && runs.size() == 1 ? mi : ri;
      s.color = kPalette[color % std::size(kPalette)];
      s.dash = grouped && runs.size() > 1 ? kDashes[mi % std::size(kDashes)] : "";
      s.label = grouped ? (runs.size() > 1 ? run.label + " · " + name : name) : run.label;
      series.push_back(std::move(s));
    }
  }
  return series;
}

// Where a chart's points land: the data ranges, the axis kinds and the plot transform.
struct Frame {
  bool by_fraction = false, log_y = false;
  std::vector<double> run_end;  // the last step of each run
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  double pw = kW - kMl - kMr, ph = kH - kMt - kMb;

  double px(const Series& s, const Point& p) const {
    return by_fraction ? 100.0 * double(p.step) / run_end[s.run] : double(p.step);
  }
  double X(double x) const { return kMl + (x - x0) / (x1 - x0) * pw; }
  double Y(double y) const { return kMt + (y1 - (log_y ? std::log10(y) : y)) / (y1 - y0) * ph; }
};

Frame make_frame(const std::vector<Series>& series, size_t n_runs) {
  Frame f;
  // Overlaid runs whose lengths differ fourfold or more share a "% of run" axis instead of a
  // step axis, so the short one is not squeezed into a corner (tooltips keep the steps).
  f.run_end.assign(n_runs, 0);
  for (const Series& s : series) {
    for (const Point& p : s.points) f.run_end[s.run] = std::max(f.run_end[s.run], double(p.step));
  }
  double shortest = 1e300, longest = 0;
  for (const Series& s : series) {
    shortest = std::min(shortest, f.run_end[s.run]);
    longest = std::max(longest, f.run_end[s.run]);
  }
  f.by_fraction = n_runs > 1 && shortest >= 1 && longest >= 4 * shortest;
  for (const Series& s : series) {
    for (const Point& p : s.points) {
      f.x0 = std::min(f.x0, f.px(s, p));
      f.x1 = std::max(f.x1, f.px(s, p));
      f.y0 = std::min(f.y0, p.value);
      f.y1 = std::max(f.y1, p.value);
    }
  }
  if (f.x1 - f.x0 < 1) {
    f.x0 -= 1;
    f.x1 += 1;
  }
  return f;
}

// Positive values over three decades or more (losses, lr, grad norms): a log axis.
void scale_y(Frame& f) {
  f.log_y = f.y0 > 0 && f.y1 / f.y0 >= 1000;
  if (f.log_y) {
    f.y0 = std::floor(std::log10(f.y0));
    f.y1 = std::ceil(std::log10(f.y1));
  } else {
    const double pad = (f.y1 - f.y0) * 0.05;
    f.y0 -= pad;
    f.y1 += pad;
  }
}

void render_axes(std::ostream& o, const Frame& f) {
  std::vector<double> y_ticks;  // in axis units (log10 when log_y)
  if (f.log_y) {
    const double every = std::max(1.0, std::ceil((f.y1 - f.y0) / 6));
    for (double e = f.y0; e <= f.y1 + 1e-9; e += every) y_ticks.push_back(e);
  } else {
    y_ticks = nice_ticks(f.y0, f.y1, 5, false);
  }
  const double y_spacing = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 0;
  o << "<g class=\"axes\">";
  for (double t : y_ticks) {
    const std::string y = fmt("%.1f", kMt + (f.y1 - t) / (f.y1 - f.y0) * f.ph);
    const std::string label =
        f.log_y ? "1e" + std::to_string(std::lround(t)) : tick_label(t, y_spacing);
    o << "<line x1=\"" << kMl << "\" x2=\"" << kW - kMr << "\" y1=\"" << y << "\" y2=\"" << y
      << "\"/><text x=\"" << kMl - 5 << "\" y=\"" << y << "\" dy=\"0.32em\" text-anchor=\"end\">"
      << label << "</text>";
  }
  for (double t : nice_ticks(f.x0, f.x1, 6, true)) {
    const std::string x = fmt("%.1f", f.X(t));
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << kMt << "\" y2=\"" << kH - kMb
      << "\"/><text x=\"" << x << "\" y=\"" << kH - kMb + 14 << "\" text-anchor=\"middle\">"
      << num(t) << "</text>";
  }
  o << "<text x=\"" << kMl + f.pw / 2 << "\" y=\"" << kH - 4 << "\" text-anchor=\"middle\">"
    << (f.by_fraction ? "% of each run (lengths differ)" : "step")
    << (f.log_y ? " (log scale)" : "") << "</text>"
    << "<rect class=\"frame\" x=\"" << kMl << "\" y=\"" << kMt << "\" width=\"" << f.pw
    << "\" height=\"" << f.ph << "\"/></g>\n";
}

void render_series(std::ostream& o, const Series& s, const Frame& f) {
  o << "<polyline class=\"series\" data-run=\"" << s.run << "\" data-metric=\""
    << html_escape(s.metric) << "\" data-n=\"" << s.points.size() << "\" stroke=\"" << s.color
    << "\"" << (s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"") << " points=\"";
  for (size_t i = 0; i < s.points.size(); ++i) {
    o << (i ? " " : "") << fmt("%.1f", f.X(f.px(s, s.points[i]))) << ','
      << fmt("%.1f", f.Y(s.points[i].value));
  }
  o << "\"/>\n";
  if (s.points.size() > kMaxCircles) return;
  o << "<g class=\"points\" data-run=\"" << s.run << "\" data-metric=\"" << html_escape(s.metric)
    << "\" fill=\"" << s.color << "\">";
  const std::string who = html_escape(s.label);
  const char* radius = s.points.size() > 60 ? "1.5" : "2.2";
  for (const Point& p : s.points) {
    o << "<circle cx=\"" << fmt("%.1f", f.X(f.px(s, p))) << "\" cy=\"" << fmt("%.1f", f.Y(p.value))
      << "\" r=\"" << radius << "\"><title>" << who << " step " << p.step << ": "
      << num(p.value) << "</title></circle>";
  }
  o << "</g>\n";
}

void render_legend(std::ostream& o, const std::vector<Series>& series) {
  o << "<div class=\"legend\">";
  for (const Series& s : series) {
    o << "<span><svg width=\"26\" height=\"10\"><line x1=\"0\" x2=\"26\" y1=\"5\" y2=\"5\" "
         "stroke=\""
      << s.color << "\" stroke-width=\"2\""
      << (s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"") << "/></svg>"
      << html_escape(s.label) << "</span>";
  }
  o << "</div>";
}

void render_chart(std::ostream& o, const ChartSpec& spec, const std::vector<Run>& runs,
                  const ReportOptions& opt) {
  const std::vector<Series> series = collect_series(spec, runs, opt);
  if (series.empty()) return;
  Frame f = make_frame(series, runs.size());
  // A metric that never moved says so in one line instead of a flat chart.
  if (f.y1 - f.y0 <= std::abs(f.y1) * 1e-12) {
    o << "<p class=\"const\" data-chart=\"" << html_escape(spec.id) << "\">"
      << html_escape(spec.title) << ": constant " << num(f.y1);
    if (!f.by_fraction) o << " (steps " << num(f.x0) << "–" << num(f.x1) << ")";
    o << "</p>\n";
    return;
  }
  scale_y(f);
  o << "<figure class=\"chart\" data-chart=\"" << html_escape(spec.id) << "\"><figcaption>"
    << html_escape(spec.title) << "</figcaption>\n<svg viewBox=\"0 0 " << kW << ' ' << kH
    << "\" width=\"" << kW << "\" height=\"" << kH << "\" role=\"img\">\n";
  render_axes(o, f);
  for (const Series& s : series) render_series(o, s, f);
  o << "</svg>";
  if (series.size() > 1) render_legend(o, series);
  o << "</figure>\n";
}

void render_heatmaps(std::ostream& o, const std::vector<Run>& runs, const ReportOptions& opt) {
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const Run& run = runs[ri];
    if (run.expert_load.empty()) continue;
    size_t n_layers = 0;
    for (const auto& [step, layers] : run.expert_load) n_layers = std::max(n_layers, layers.size());
    auto cols = thin(run.expert_load.size(), std::min<int64_t>(opt.max_points, 240));
    for (size_t l = 0; l < n_layers; ++l) {
      size_t n_experts = 0;
      for (const auto& [step, layers] : run.expert_load) {
        if (l < layers.size()) n_experts = std::max(n_experts, layers[l].size());
      }
      if (n_experts == 0) continue;
      const double cw = std::max(1.0, 400.0 / double(cols.size()));
      const double ch = std::clamp(180.0 / double(n_experts), 1.0, 14.0);
      const double w = kMl + cw * double(cols.size()) + kMr, h = kMt + ch * double(n_experts) + 30;
      o << "<figure class=\"heat\" data-run=\"" << ri << "\" data-layer=\"" << l
        << "\"><figcaption>expert load · " << html_escape(run.label) << " · MoE layer " << l
        << "</figcaption>\n<svg viewBox=\"0 0 " << fmt("%.0f", w) << ' ' << fmt("%.0f", h)
        << "\" width=\"" << fmt("%.0f", w) << "\" height=\"" << fmt("%.0f", h)
        << "\" shape-rendering=\"crispEdges\">";
      for (size_t c = 0; c < cols.size(); ++c) {
        const auto& [step, layers] = run.expert_load[cols[c]];
        if (l >= layers.size() || layers[l].empty()) continue;
        double mean = 0;
        for (double v : layers[l]) mean += v;
        mean /= double(layers[l].size());
        // Cells overlap their neighbours by 0.3 px: rounding leaves no white seams.
        for (size_t e = 0; e < layers[l].size(); ++e) {
          o << "<rect x=\"" << fmt("%.1f", kMl + cw * double(c)) << "\" y=\""
            << fmt("%.1f", kMt + ch * double(e)) << "\" width=\"" << fmt("%.2f", cw + 0.3)
            << "\" height=\"" << fmt("%.2f", ch + 0.3) << "\" fill=\""
            << load_color(mean > 0 ? layers[l][e] / mean : 1.0) << "\"><title>step " << step
            << " expert " << e << ": " << num(layers[l][e]) << " tokens</title></rect>";
        }
      }
      const double bottom = kMt + ch * double(n_experts);
      o << "<text x=\"" << kMl - 5 << "\" y=\"" << kMt + ch / 2
        << "\" dy=\"0.32em\" text-anchor=\"end\">expert 0</text><text x=\"" << kMl - 5 << "\" y=\""
        << fmt("%.1f", bottom - ch / 2) << "\" dy=\"0.32em\" text-anchor=\"end\">" << n_experts - 1
        << "</text><text x=\"" << kMl << "\" y=\"" << bottom + 14 << "\">step "
        << run.expert_load[cols.front()].first << "</text><text x=\"" << fmt("%.1f", w - kMr)
        << "\" y=\"" << bottom + 14 << "\" text-anchor=\"end\">step "
        << run.expert_load[cols.back()].first << "</text></svg></figure>\n";
    }
  }
}

}  // namespace aha::runlog::report_detail
