// The HTML run report: reads run databases, draws every numeric step metric as an inline SVG
// line chart (known GRPO/pretraining metrics first, runs overlaid), MoE expert load as heat
// maps, and the best/worst completion of each group in a filterable table. All text from the
// databases is escaped; a Content-Security-Policy forbids any network access.
#include "aha/runlog/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/runlog/run_db.h"

namespace aha::runlog {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr const char* kDashes[] = {"", "6 3", "2 3", "9 3 2 3", "12 4"};
constexpr int kW = 480, kH = 260, kMl = 64, kMr = 14, kMt = 10, kMb = 34;
// Circles (with a tooltip each) are drawn for series up to this many points.
constexpr size_t kMaxCircles = 400;
// Prompts in the sample table show at most their last this many bytes.
constexpr size_t kPromptTail = 400;

using Layers = std::vector<std::vector<double>>;  // [moe layer][expert] tokens

struct Run {
  std::string label, db_path, kind, status, model, started, ended, config;
  int64_t run_id = 0;
  std::vector<int64_t> steps;
  std::vector<Json> metrics;  // one object per step
  std::vector<std::pair<int64_t, Layers>> expert_load;
  std::vector<Json> samples;  // best/worst rollouts with a "breakdown" string
  std::vector<Json> events;   // warn/error
};

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

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string num(double v) { return fmt("%.4g", v); }

std::string str_or(const Json& j, const char* key, const std::string& dflt = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}

bool is_number(const Json& v) { return v.is_number() && !v.is_boolean(); }

// Indices 0..n-1 thinned to at most `keep` (every k-th, the last always kept).
std::vector<size_t> thin(size_t n, int64_t keep) {
  std::vector<size_t> idx;
  const size_t stride = keep > 0 && n > size_t(keep) ? (n + size_t(keep) - 1) / size_t(keep) : 1;
  for (size_t i = 0; i < n; i += stride) idx.push_back(i);
  if (n > 0 && idx.back() != n - 1) idx.push_back(n - 1);
  return idx;
}

std::string run_label(const std::string& path) {
  std::filesystem::path p(path);
  std::string parent = p.parent_path().filename().string();
  return p.filename() == "run.db" && !parent.empty() && parent != "." ? parent : p.stem().string();
}

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

void load_samples(const RunDb& db, Run& run, const ReportOptions& opt) {
  const std::string id = std::to_string(run.run_id);
  std::vector<int64_t> steps;
  for (const Json& r : db.query("SELECT DISTINCT step FROM rollouts WHERE run_id = " + id +
                                " ORDER BY step")) {
    steps.push_back(r["step"].get<int64_t>());
  }
  if (steps.empty()) return;
  std::vector<int64_t> picked;
  const size_t k = opt.sample_steps > 0 ? size_t(opt.sample_steps) : steps.size();
  if (steps.size() <= k) {
    picked = steps;
  } else if (k == 1) {
    picked = {steps.back()};
  } else {
    for (size_t i = 0; i < k; ++i) {
      int64_t s = steps[(i * (steps.size() - 1) + (k - 1) / 2) / (k - 1)];
      if (picked.empty() || picked.back() != s) picked.push_back(s);
    }
  }
  // NULL rewards sort last for "best" and first for "worst".
  run.samples = db.query(
      "SELECT * FROM (SELECT id, step, prompt_id, group_index, sample_index, prompt, completion,"
      " n_tokens, finish_reason, reward, advantage, correct,"
      " ROW_NUMBER() OVER (PARTITION BY step, group_index ORDER BY reward DESC, sample_index)"
      " AS best, ROW_NUMBER() OVER (PARTITION BY step, group_index ORDER BY reward ASC,"
      " sample_index DESC) AS worst, COUNT(*) OVER (PARTITION BY step, group_index) AS group_size"
      " FROM rollouts WHERE run_id = " + id + " AND step IN (" + join_ints(picked) +
      ")) WHERE best = 1 OR worst = 1 ORDER BY step, group_index, best");
  std::vector<int64_t> ids;
  for (const Json& s : run.samples) ids.push_back(s["id"].get<int64_t>());
  std::map<int64_t, std::string> breakdown;
  if (!ids.empty()) {
    for (const Json& r : db.query("SELECT rollout_id, name, value FROM rewards WHERE rollout_id IN (" +
                                  join_ints(ids) + ") ORDER BY rollout_id, name")) {
      std::string& b = breakdown[r["rollout_id"].get<int64_t>()];
      b += (b.empty() ? "" : " ") + r["name"].get<std::string>() + "=" +
           (is_number(r["value"]) ? num(r["value"].get<double>()) : std::string("nan"));
    }
  }
  for (Json& s : run.samples) s["breakdown"] = breakdown[s["id"].get<int64_t>()];
}

std::vector<Run> load_runs(const std::vector<std::string>& paths, const ReportOptions& opt) {
  if (paths.empty()) fail("[report] no run database given");
  std::vector<Run> runs;
  for (const std::string& path : paths) {
    auto db = RunDb::open_readonly(path);
    auto rows = db->query(
        "SELECT id, kind, config, model, started_at, ended_at, status FROM runs ORDER BY id");
    for (const Json& r : rows) {
      Run run;
      run.db_path = path;
      run.run_id = r["id"].get<int64_t>();
      run.label = run_label(path) + (rows.size() > 1 ? "#" + std::to_string(run.run_id) : "");
      run.kind = str_or(r, "kind");
      run.status = str_or(r, "status");
      run.model = str_or(r, "model");
      run.started = str_or(r, "started_at");
      run.ended = str_or(r, "ended_at");
      run.config = str_or(r, "config");
      const std::string id = std::to_string(run.run_id);
      for (const Json& s : db->query("SELECT step, metrics FROM steps WHERE run_id = " + id +
                                     " ORDER BY step")) {
        Json m = Json::parse(str_or(s, "metrics", "{}"), nullptr, false);
        if (!m.is_object()) m = Json::object();
        const int64_t step = s["step"].get<int64_t>();
        auto el = m.find("expert_load");
        if (el != m.end() && el->is_array() && !el->empty()) {
          Layers layers;
          for (const Json& layer : *el) {
            std::vector<double> row;
            if (layer.is_array()) {
              for (const Json& v : layer) row.push_back(is_number(v) ? v.get<double>() : 0.0);
            }
            layers.push_back(std::move(row));
          }
          run.expert_load.emplace_back(step, std::move(layers));
        }
        run.steps.push_back(step);
        run.metrics.push_back(std::move(m));
      }
      load_samples(*db, run, opt);
      run.events = db->query("SELECT step, level, kind, message FROM events WHERE run_id = " + id +
                             " AND level != 'info' ORDER BY id LIMIT 100");
      runs.push_back(std::move(run));
    }
  }
  // Labels name runs in legends and filters: make them unique.
  std::map<std::string, int> seen;
  for (Run& r : runs) {
    if (int n = seen[r.label]++; n > 0) r.label += " (" + std::to_string(n + 1) + ")";
  }
  return runs;
}

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

struct ChartSpec {
  std::string id, title;
  std::vector<std::string> metrics;
};

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
  group("time_split", "time per step (s)", {"time_rollout", "time_reward", "time_ref", "time_train"});
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
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Series& s : series) {
    for (const Point& p : s.points) {
      x0 = std::min(x0, double(p.step));
      x1 = std::max(x1, double(p.step));
      y0 = std::min(y0, p.value);
      y1 = std::max(y1, p.value);
    }
  }
  if (x1 - x0 < 1) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 - y0 <= std::abs(y1) * 1e-12) {
    const double pad = y1 != 0 ? std::abs(y1) * 0.1 : 1.0;
    y0 -= pad;
    y1 += pad;
  } else {
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  const double pw = kW - kMl - kMr, ph = kH - kMt - kMb;
  auto X = [&](double x) { return kMl + (x - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return kMt + (y1 - y) / (y1 - y0) * ph; };

  o << "<figure class=\"chart\" data-chart=\"" << html_escape(spec.id) << "\"><figcaption>"
    << html_escape(spec.title) << "</figcaption>\n<svg viewBox=\"0 0 " << kW << ' ' << kH
    << "\" width=\"" << kW << "\" height=\"" << kH << "\" role=\"img\">\n<g class=\"axes\">";
  for (double t : nice_ticks(y0, y1, 5, false)) {
    const std::string y = fmt("%.1f", Y(t));
    o << "<line x1=\"" << kMl << "\" x2=\"" << kW - kMr << "\" y1=\"" << y << "\" y2=\"" << y
      << "\"/><text x=\"" << kMl - 5 << "\" y=\"" << y << "\" dy=\"0.32em\" text-anchor=\"end\">"
      << num(t) << "</text>";
  }
  for (double t : nice_ticks(x0, x1, 6, true)) {
    const std::string x = fmt("%.1f", X(t));
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << kMt << "\" y2=\"" << kH - kMb
      << "\"/><text x=\"" << x << "\" y=\"" << kH - kMb + 14 << "\" text-anchor=\"middle\">"
      << num(t) << "</text>";
  }
  o << "<text x=\"" << kMl + pw / 2 << "\" y=\"" << kH - 4 << "\" text-anchor=\"middle\">step</text>"
    << "<rect class=\"frame\" x=\"" << kMl << "\" y=\"" << kMt << "\" width=\"" << pw
    << "\" height=\"" << ph << "\"/></g>\n";
  for (const Series& s : series) {
    o << "<polyline class=\"series\" data-run=\"" << s.run << "\" data-metric=\""
      << html_escape(s.metric) << "\" data-n=\"" << s.points.size() << "\" stroke=\"" << s.color
      << "\"" << (s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"") << " points=\"";
    for (size_t i = 0; i < s.points.size(); ++i) {
      o << (i ? " " : "") << fmt("%.1f", X(double(s.points[i].step))) << ','
        << fmt("%.1f", Y(s.points[i].value));
    }
    o << "\"/>\n";
    if (s.points.size() > kMaxCircles) continue;
    o << "<g class=\"points\" data-run=\"" << s.run << "\" data-metric=\"" << html_escape(s.metric)
      << "\" fill=\"" << s.color << "\">";
    const std::string who = html_escape(s.label);
    const char* radius = s.points.size() > 60 ? "1.5" : "2.2";
    for (const Point& p : s.points) {
      o << "<circle cx=\"" << fmt("%.1f", X(double(p.step))) << "\" cy=\""
        << fmt("%.1f", Y(p.value)) << "\" r=\"" << radius << "\"><title>" << who << " step " << p.step << ": "
        << num(p.value) << "</title></circle>";
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
        for (size_t e = 0; e < layers[l].size(); ++e) {
          o << "<rect x=\"" << fmt("%.1f", kMl + cw * double(c)) << "\" y=\""
            << fmt("%.1f", kMt + ch * double(e)) << "\" width=\"" << fmt("%.2f", cw)
            << "\" height=\"" << fmt("%.2f", ch) << "\" fill=\""
            << load_color(mean > 0 ? layers[l][e] / mean : 1.0) << "\"><title>step " << step
            << " expert " << e << ": " << num(layers[l][e]) << " tokens</title></rect>";
        }
      }
      const double bottom = kMt + ch * double(n_experts);
      o << "<text x=\"" << kMl - 5 << "\" y=\"" << kMt + ch / 2
        << "\" dy=\"0.32em\" text-anchor=\"end\">expert 0</text><text x=\"" << kMl - 5
        << "\" y=\"" << fmt("%.1f", bottom - ch / 2) << "\" dy=\"0.32em\" text-anchor=\"end\">"
        << n_experts - 1 << "</text><text x=\"" << kMl << "\" y=\"" << bottom + 14 << "\">step "
        << run.expert_load[cols.front()].first << "</text><text x=\"" << fmt("%.1f", w - kMr)
        << "\" y=\"" << bottom + 14 << "\" text-anchor=\"end\">step "
        << run.expert_load[cols.back()].first << "</text></svg></figure>\n";
    }
  }
}

void render_samples(std::ostream& o, const std::vector<Run>& runs, const ReportOptions& opt) {
  size_t total = 0;
  for (const Run& r : runs) total += r.samples.size();
  if (total == 0) return;
  auto cut = [&](const std::string& s) {
    if (opt.max_text_chars <= 0 || s.size() <= size_t(opt.max_text_chars)) return html_escape(s);
    return html_escape(std::string_view(s).substr(0, size_t(opt.max_text_chars))) +
           "<span class=\"cut\">… [" + std::to_string(s.size() - size_t(opt.max_text_chars)) +
           " more bytes]</span>";
  };
  // Prompt templates put the question last: a long prompt keeps its tail.
  auto tail = [&](const std::string& s) {
    const size_t keep = std::min<size_t>(kPromptTail, opt.max_text_chars > 0
                                                          ? size_t(opt.max_text_chars)
                                                          : kPromptTail);
    if (s.size() <= keep) return html_escape(s);
    size_t from = s.size() - keep;
    while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
    return "<span class=\"cut\">[" + std::to_string(from) + " bytes] …</span>" +
           html_escape(std::string_view(s).substr(from));
  };
  o << "<h2>Samples: best and worst completion of each group</h2>\n<div class=\"filters\">"
       "<input id=\"f-text\" type=\"search\" placeholder=\"filter: text in prompt, completion, "
       "id…\" size=\"40\"><select id=\"f-run\"><option value=\"\">all runs</option>";
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    o << "<option value=\"" << ri << "\">" << html_escape(runs[ri].label) << "</option>";
  }
  o << "</select><select id=\"f-which\"><option value=\"\">best and worst</option><option "
       "value=\"best\">best</option><option value=\"worst\">worst</option></select><select "
       "id=\"f-correct\"><option value=\"\">correct or not</option><option value=\"1\">correct"
       "</option><option value=\"0\">incorrect</option></select> steps <input id=\"f-lo\" "
       "type=\"number\" placeholder=\"from\" style=\"width:5em\"> – <input id=\"f-hi\" "
       "type=\"number\" placeholder=\"to\" style=\"width:5em\"> <span id=\"f-count\"></span>"
       "</div>\n<table id=\"samples\"><thead><tr><th>run</th><th>step</th><th>group</th>"
       "<th></th><th>reward</th><th>rewards</th><th>tokens</th><th>prompt</th><th>completion</th>"
       "</tr></thead><tbody>\n";
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    for (const Json& s : runs[ri].samples) {
      const bool best = s["best"] == 1, worst = s["worst"] == 1;
      const std::string which = best && worst ? "best worst" : best ? "best" : "worst";
      const std::string correct = s["correct"].is_number() ? std::to_string(s["correct"].get<int64_t>()) : "";
      o << "<tr class=\"" << (best ? "best" : "worst") << "\" data-run=\"" << ri
        << "\" data-step=\"" << s["step"].get<int64_t>() << "\" data-which=\"" << which
        << "\" data-correct=\"" << correct << "\"><td>" << html_escape(runs[ri].label)
        << "</td><td>" << s["step"].get<int64_t>() << "</td><td>" << s["group_index"].get<int64_t>()
        << "<br><small>" << html_escape(str_or(s, "prompt_id")) << "</small></td><td>"
        << (best && worst ? "only" : which) << "<br><small>of " << s["group_size"].get<int64_t>()
        << "</small></td><td>"
        << (is_number(s["reward"]) ? num(s["reward"].get<double>()) : std::string("nan"))
        << (correct.empty() ? "" : correct == "1" ? " ✓" : " ✗") << "</td><td>"
        << html_escape(str_or(s, "breakdown")) << "</td><td>" << s["n_tokens"].get<int64_t>()
        << "<br><small>" << html_escape(str_or(s, "finish_reason")) << "</small></td><td><pre "
        << "class=\"prompt\">" << tail(str_or(s, "prompt")) << "</pre></td><td><pre>"
        << cut(str_or(s, "completion")) << "</pre></td></tr>\n";
    }
  }
  o << "</tbody></table>\n";
}

constexpr const char* kCss = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.charts{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;border:1px solid #e3e3e3;border-radius:4px;padding:4px 6px}
figcaption{font-weight:600;font-size:13px}.axes line{stroke:#eee}.axes text{font-size:10px;fill:#555}
.axes .frame{fill:none;stroke:#bbb}polyline{fill:none;stroke-width:1.6}
.legend{font-size:11px;max-width:470px}.legend span{margin-right:10px;white-space:nowrap}.legend svg{vertical-align:middle;margin-right:3px}
.heat text{font-size:10px;fill:#555}.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:middle}
#samples pre{white-space:pre-wrap;word-break:break-word;max-height:18em;overflow:auto;margin:0;font-size:12px;max-width:60em}
#samples pre.prompt{max-width:24em;color:#555}#samples tr.best{background:#f3fbf3}#samples tr.worst{background:#fdf4f4}
.filters{margin:6px 0}.filters>*{margin-right:6px}.cut{color:#a00}small{color:#777}details pre{font-size:12px}
)";

constexpr const char* kJs = R"(
(function(){
  var q=function(id){return document.getElementById(id)};
  if(!q('samples'))return;
  var rows=Array.prototype.slice.call(document.querySelectorAll('#samples tbody tr'));
  var texts=rows.map(function(r){return r.textContent.toLowerCase()});
  function apply(){
    var t=q('f-text').value.toLowerCase(),run=q('f-run').value,w=q('f-which').value,
        c=q('f-correct').value,lo=parseFloat(q('f-lo').value),hi=parseFloat(q('f-hi').value),n=0;
    rows.forEach(function(tr,i){
      var d=tr.dataset,s=+d.step;
      var ok=(!run||d.run===run)&&(!w||d.which.split(' ').indexOf(w)>=0)&&(!c||d.correct===c)&&
             (isNaN(lo)||s>=lo)&&(isNaN(hi)||s<=hi)&&(!t||texts[i].indexOf(t)>=0);
      tr.hidden=!ok;n+=ok?1:0;
    });
    q('f-count').textContent=n+' of '+rows.length+' rows';
  }
  ['f-text','f-run','f-which','f-correct','f-lo','f-hi'].forEach(function(id){
    q(id).addEventListener('input',apply);q(id).addEventListener('change',apply)});
  apply();
})();
)";

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        case '\n': case '\t': out += char(c); break;
        default: out += (c < 0x20 || c == 0x7f) ? "\xEF\xBF\xBD" : std::string(1, char(c));
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence is copied; anything else becomes U+FFFD, one byte at a time.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
    for (size_t k = 2; ok && k < len; ++k) ok = p[i + k] >= 0x80 && p[i + k] <= 0xBF;
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string render_report(const std::vector<std::string>& db_paths, const ReportOptions& opt) {
  const std::vector<Run> runs = load_runs(db_paths, opt);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
       "<meta name=\"generator\" content=\"aha report\"><title>"
    << html_escape(opt.title) << "</title><style>" << kCss << "</style></head><body>\n<h1>"
    << html_escape(opt.title) << "</h1>\n<table class=\"runs\"><thead><tr><th></th><th>run</th>"
       "<th>kind</th><th>status</th><th>steps</th><th>model</th><th>started</th><th>ended</th>"
       "<th>database</th></tr></thead><tbody>\n";
  std::set<std::string> names;
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const Run& r = runs[ri];
    for (const Json& m : r.metrics) {
      for (const auto& [k, v] : m.items()) {
        if (is_number(v)) names.insert(k);
      }
    }
    o << "<tr data-run=\"" << ri << "\"><td><span class=\"swatch\" style=\"background:"
      << kPalette[ri % std::size(kPalette)] << "\"></span></td><td>" << html_escape(r.label)
      << "</td><td>" << html_escape(r.kind) << "</td><td>" << html_escape(r.status) << "</td><td>"
      << r.steps.size() << (r.steps.empty() ? "" : " (" + std::to_string(r.steps.front()) + "–" +
                                                        std::to_string(r.steps.back()) + ")")
      << "</td><td>" << html_escape(r.model) << "</td><td>" << html_escape(r.started)
      << "</td><td>" << html_escape(r.ended) << "</td><td>" << html_escape(r.db_path)
      << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  for (const Run& r : runs) {
    Json cfg = Json::parse(r.config, nullptr, false);
    o << "<details><summary>config of " << html_escape(r.label) << "</summary><pre>"
      << html_escape(cfg.is_discarded() ? r.config : cfg.dump(2, ' ', false,
                                                               Json::error_handler_t::replace))
      << "</pre></details>\n";
    if (!r.events.empty()) {
      o << "<details open><summary>warnings of " << html_escape(r.label) << " ("
        << r.events.size() << ")</summary><ul>";
      for (const Json& e : r.events) {
        o << "<li>step " << (e["step"].is_number() ? std::to_string(e["step"].get<int64_t>()) : "-")
          << " " << html_escape(str_or(e, "level")) << " " << html_escape(str_or(e, "kind"))
          << ": " << html_escape(str_or(e, "message")) << "</li>";
      }
      o << "</ul></details>\n";
    }
  }
  o << "<h2>Metrics over steps</h2>\n<div class=\"charts\">\n";
  if (names.empty()) o << "<p>No steps logged yet.</p>\n";
  for (const ChartSpec& spec : chart_specs(names)) render_chart(o, spec, runs, opt);
  o << "</div>\n";
  std::ostringstream heat;
  render_heatmaps(heat, runs, opt);
  if (!heat.str().empty()) {
    o << "<h2>MoE expert load (tokens per expert per step; white = layer mean, red = up to 2x, "
         "blue = down to 0.5x)</h2>\n<div class=\"charts\">\n"
      << heat.str() << "</div>\n";
  }
  render_samples(o, runs, opt);
  o << "<script>" << kJs << "</script>\n</body></html>\n";
  return o.str();
}

void write_report(const std::vector<std::string>& db_paths, const std::string& out_path,
                  const ReportOptions& options) {
  const std::string html = render_report(db_paths, options);
  try {
    write_file_atomic(out_path, html);
  } catch (const Error& e) {
    fail("[report] cannot write ", out_path, ": ", e.what());
  }
}

}  // namespace aha::runlog
