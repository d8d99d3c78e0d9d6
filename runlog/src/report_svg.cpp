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

void render_chart(std::ostream& o, const ChartSpec& spec, const std::vector<Run>& runs,
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
  if (series.empty()) return;
  // Overlaid runs whose lengths differ fourfold or more share a "% of run" axis instead of a
  // step axis, so the short one is not squeezed into a corner (tooltips keep the steps).
  std::vector<double> run_end(runs.size(), 0);
  for (const Series& s : series) {
    for (const Point& p : s.points) run_end[s.run] = std::max(run_end[s.run], double(p.step));
  }
  double shortest = 1e300, longest = 0;
  for (const Series& s : series) {
    shortest = std::min(shortest, run_end[s.run]);
    longest = std::max(longest, run_end[s.run]);
  }
  const bool by_fraction = runs.size() > 1 && shortest >= 1 && longest >= 4 * shortest;
  auto PX = [&](const Series& s, const Point& p) {
    return by_fraction ? 100.0 * double(p.step) / run_end[s.run] : double(p.step);
  };
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Series& s : series) {
    for (const Point& p : s.points) {
      x0 = std::min(x0, PX(s, p));
      x1 = std::max(x1, PX(s, p));
      y0 = std::min(y0, p.value);
      y1 = std::max(y1, p.value);
    }
  }
  if (x1 - x0 < 1) {
    x0 -= 1;
    x1 += 1;
  }
  // A metric that never moved says so in one line instead of a flat chart.
  if (y1 - y0 <= std::abs(y1) * 1e-12) {
    o << "<p class=\"const\" data-chart=\"" << html_escape(spec.id) << "\">"
      << html_escape(spec.title) << ": constant " << num(y1);
    if (!by_fraction) o << " (steps " << num(x0) << "–" << num(x1) << ")";
    o << "</p>\n";
    return;
  }
  // Positive values over three decades or more (losses, lr, grad norms): a log axis.
  const bool log_y = y0 > 0 && y1 / y0 >= 1000;
  auto T = [&](double v) { return log_y ? std::log10(v) : v; };
  if (log_y) {
    y0 = std::floor(std::log10(y0));
    y1 = std::ceil(std::log10(y1));
  } else {
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  const double pw = kW - kMl - kMr, ph = kH - kMt - kMb;
  auto X = [&](double x) { return kMl + (x - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return kMt + (y1 - T(y)) / (y1 - y0) * ph; };
  std::vector<double> y_ticks;  // in axis units (log10 when log_y)
  if (log_y) {
    const double every = std::max(1.0, std::ceil((y1 - y0) / 6));
    for (double e = y0; e <= y1 + 1e-9; e += every) y_ticks.push_back(e);
  } else {
    y_ticks = nice_ticks(y0, y1, 5, false);
  }
  const double y_spacing = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 0;

  o << "<figure class=\"chart\" data-chart=\"" << html_escape(spec.id) << "\"><figcaption>"
    << html_escape(spec.title) << "</figcaption>\n<svg viewBox=\"0 0 " << kW << ' ' << kH
    << "\" width=\"" << kW << "\" height=\"" << kH << "\" role=\"img\">\n<g class=\"axes\">";
  for (double t : y_ticks) {
    const std::string y = fmt("%.1f", kMt + (y1 - t) / (y1 - y0) * ph);
    const std::string label =
        log_y ? "1e" + std::to_string(std::lround(t)) : tick_label(t, y_spacing);
    o << "<line x1=\"" << kMl << "\" x2=\"" << kW - kMr << "\" y1=\"" << y << "\" y2=\"" << y
      << "\"/><text x=\"" << kMl - 5 << "\" y=\"" << y << "\" dy=\"0.32em\" text-anchor=\"end\">"
      << label << "</text>";
  }
  for (double t : nice_ticks(x0, x1, 6, true)) {
    const std::string x = fmt("%.1f", X(t));
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << kMt << "\" y2=\"" << kH - kMb
      << "\"/><text x=\"" << x << "\" y=\"" << kH - kMb + 14 << "\" text-anchor=\"middle\">"
      << num(t) << "</text>";
  }
  o << "<text x=\"" << kMl + pw / 2 << "\" y=\"" << kH - 4 << "\" text-anchor=\"middle\">"
    << (by_fraction ? "% of each run (lengths differ)" : "step") << (log_y ? " (log scale)" : "")
    << "</text>"
    << "<rect class=\"frame\" x=\"" << kMl << "\" y=\"" << kMt << "\" width=\"" << pw
    << "\" height=\"" << ph << "\"/></g>\n";
  for (const Series& s : series) {
    o << "<polyline class=\"series\" data-run=\"" << s.run << "\" data-metric=\""
      << html_escape(s.metric) << "\" data-n=\"" << s.points.size() << "\" stroke=\"" << s.color
      << "\"" << (s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"") << " points=\"";
    for (size_t i = 0; i < s.points.size(); ++i) {
      o << (i ? " " : "") << fmt("%.1f", X(PX(s, s.points[i]))) << ','
        << fmt("%.1f", Y(s.points[i].value));
    }
    o << "\"/>\n";
    if (s.points.size() > kMaxCircles) continue;
    o << "<g class=\"points\" data-run=\"" << s.run << "\" data-metric=\"" << html_escape(s.metric)
      << "\" fill=\"" << s.color << "\">";
    const std::string who = html_escape(s.label);
    const char* radius = s.points.size() > 60 ? "1.5" : "2.2";
    for (const Point& p : s.points) {
      o << "<circle cx=\"" << fmt("%.1f", X(PX(s, p))) << "\" cy=\""
        << fmt("%.1f", Y(p.value)) << "\" r=\"" << radius << "\"><title>" << who << " step "
        << p.step << ": " << num(p.value) << "</title></circle>";
    }
    o << "</g>\n";
  }
  o << "</svg>";
  if (series.size() > 1) {
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
