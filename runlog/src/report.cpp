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
#include "report_internal.h"

namespace aha::runlog {

namespace report_detail {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string num(double v) { return fmt("%.4g", v); }

bool is_number(const Json& v) { return v.is_number() && !v.is_boolean(); }

std::vector<size_t> thin(size_t n, int64_t keep) {
  std::vector<size_t> idx;
  const size_t stride = keep > 0 && n > size_t(keep) ? (n + size_t(keep) - 1) / size_t(keep) : 1;
  for (size_t i = 0; i < n; i += stride) idx.push_back(i);
  if (n > 0 && idx.back() != n - 1) idx.push_back(n - 1);
  return idx;
}

}  // namespace report_detail

namespace {

using namespace report_detail;

// Prompts in the sample table show at most their last this many bytes.
constexpr size_t kPromptTail = 400;

std::string str_or(const Json& j, const char* key, const std::string& dflt = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
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

// The turns of the episodes among `samples` (ids: their rollout ids), as samples[i]["turns"].
// Databases older than schema v4 have no turns, older than v5 no step rewards.
void load_turns(const RunDb& db, const std::vector<int64_t>& ids, std::vector<Json>& samples) {
  if (ids.empty() || !db.has_table("rollout_turns")) return;
  const bool rewards = db.has_column("rollout_turns", "reward");
  std::map<int64_t, Json> turns;
  for (Json& t : db.query("SELECT rollout_id, role, text, tool, status, seconds, " +
                          std::string(rewards ? "reward" : "NULL AS reward") +
                          " FROM rollout_turns WHERE rollout_id IN (" + join_ints(ids) +
                          ") ORDER BY rollout_id, turn")) {
    Json& list = turns[t["rollout_id"].get<int64_t>()];
    if (list.is_null()) list = Json::array();
    list.push_back(std::move(t));
  }
  for (Json& s : samples) {
    if (auto it = turns.find(s["id"].get<int64_t>()); it != turns.end()) s["turns"] = it->second;
  }
}

void load_samples(const RunDb& db, Run& run, const ReportOptions& opt) {
  const std::string id = std::to_string(run.run_id);
  std::vector<int64_t> steps;
  for (const Json& r :
       db.query("SELECT DISTINCT step FROM rollouts WHERE run_id = " + id + " ORDER BY step")) {
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
      " FROM rollouts WHERE run_id = " +
      id + " AND step IN (" + join_ints(picked) +
      ")) WHERE best = 1 OR worst = 1 ORDER BY step, group_index, best");
  std::vector<int64_t> ids;
  for (const Json& s : run.samples) ids.push_back(s["id"].get<int64_t>());
  std::map<int64_t, std::string> breakdown;
  if (!ids.empty()) {
    for (const Json& r :
         db.query("SELECT rollout_id, name, value FROM rewards WHERE rollout_id IN (" +
                  join_ints(ids) + ") ORDER BY rollout_id, name")) {
      std::string& b = breakdown[r["rollout_id"].get<int64_t>()];
      b += (b.empty() ? "" : " ") + r["name"].get<std::string>() + "=" +
           (is_number(r["value"]) ? num(r["value"].get<double>()) : std::string("nan"));
    }
  }
  for (Json& s : run.samples) s["breakdown"] = breakdown[s["id"].get<int64_t>()];
  load_turns(db, ids, run.samples);
}

std::vector<Run> load_runs(const std::vector<std::string>& paths, const ReportOptions& opt) {
  if (paths.empty()) fail("[report] no run database given");
  if (opt.labels.size() > paths.size()) {
    fail("[report] ", opt.labels.size(), " labels for ", paths.size(), " databases");
  }
  std::vector<Run> runs;
  for (size_t pi = 0; pi < paths.size(); ++pi) {
    const std::string& path = paths[pi];
    const std::string given = pi < opt.labels.size() ? opt.labels[pi] : "";
    auto db = RunDb::open_readonly(path);
    auto rows = db->query(
        "SELECT id, kind, config, model, started_at, ended_at, status FROM runs ORDER BY id");
    for (const Json& r : rows) {
      Run run;
      run.db_path = path;
      run.run_id = r["id"].get<int64_t>();
      run.label = (given.empty() ? run_label(path) : given) +
                  (rows.size() > 1 ? "#" + std::to_string(run.run_id) : "");
      run.kind = str_or(r, "kind");
      run.status = str_or(r, "status");
      run.model = str_or(r, "model");
      run.started = str_or(r, "started_at");
      run.ended = str_or(r, "ended_at");
      run.config = str_or(r, "config");
      const std::string id = std::to_string(run.run_id);
      for (const Json& s :
           db->query("SELECT step, metrics FROM steps WHERE run_id = " + id + " ORDER BY step")) {
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
          // Derived: max / mean tokens per MoE layer (1 = balanced), plotted as a curve.
          for (size_t l = 0; l < layers.size(); ++l) {
            if (layers[l].empty()) continue;
            double sum = 0, top = 0;
            for (double v : layers[l]) {
              sum += v;
              top = std::max(top, v);
            }
            if (sum > 0) {
              m[std::string(kImbalancePrefix) + std::to_string(l)] =
                  top * double(layers[l].size()) / sum;
            }
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
// An episode's completion turn by turn: the policy's turns as text, each tool turn under a line
// naming the tool, its status, time and step reward.
template <typename Cut>
std::string episode_html(const Json& turns, const Cut& cut) {
  std::string out;
  for (const Json& t : turns) {
    const std::string role = str_or(t, "role");
    out += "<div class=\"turn " + std::string(role == "tool" ? "tool" : "assistant") + "\">";
    if (role == "tool") {
      out += "<small>⚙ " + html_escape(str_or(t, "tool")) + " · " +
             html_escape(str_or(t, "status"));
      if (is_number(t["seconds"])) out += " · " + num(t["seconds"].get<double>()) + " s";
      if (is_number(t["reward"])) out += " · reward " + num(t["reward"].get<double>());
      out += "</small>";
    }
    out += "<pre>" + cut(str_or(t, "text")) + "</pre></div>";
  }
  return out;
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
    const size_t keep = std::min<size_t>(
        kPromptTail, opt.max_text_chars > 0 ? size_t(opt.max_text_chars) : kPromptTail);
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
      const std::string correct =
          s["correct"].is_number() ? std::to_string(s["correct"].get<int64_t>()) : "";
      o << "<tr class=\"" << (best ? "best" : "worst") << "\" data-run=\"" << ri
        << "\" data-step=\"" << s["step"].get<int64_t>() << "\" data-which=\"" << which
        << "\" data-correct=\"" << correct << "\"><td>" << html_escape(runs[ri].label)
        << "</td><td>" << s["step"].get<int64_t>() << "</td><td>" << s["group_index"].get<int64_t>()
        << "<br><small>" << html_escape(str_or(s, "prompt_id")) << "</small></td><td>"
        << (best && worst ? "only" : which) << "<br><small>of " << s["group_size"].get<int64_t>()
        << "</small></td><td>"
        << (is_number(s["reward"]) ? num(s["reward"].get<double>()) : std::string("nan"))
        << (correct.empty()  ? ""
            : correct == "1" ? " ✓"
                             : " ✗")
        << "</td><td>" << html_escape(str_or(s, "breakdown")) << "</td><td>"
        << s["n_tokens"].get<int64_t>() << "<br><small>" << html_escape(str_or(s, "finish_reason"))
        << "</small></td><td><pre "
        << "class=\"prompt\">" << tail(str_or(s, "prompt")) << "</pre></td><td>"
        << (s.contains("turns") ? episode_html(s["turns"], cut)
                                : "<pre>" + cut(str_or(s, "completion")) + "</pre>")
        << "</td></tr>\n";
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
#samples .turn.tool{border-left:3px solid #c9d6e8;padding-left:5px;margin:2px 0;color:#456}
#samples .turn.assistant pre{color:#222}
p.const{font-size:12px;color:#555;margin:2px 4px;flex-basis:100%}
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
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&#39;";
          break;
        case '\n':
        case '\t':
          out += char(c);
          break;
        default:
          out += (c < 0x20 || c == 0x7f) ? "\xEF\xBF\xBD" : std::string(1, char(c));
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
  const bool live = std::any_of(runs.begin(), runs.end(),
                                [](const Run& r) { return r.status == "running"; });
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // A report of a live run (the trainer rewrites it every report_every steps) keeps itself fresh.
  if (live && opt.refresh_s > 0) {
    o << "<meta http-equiv=\"refresh\" content=\"" << opt.refresh_s << "\">\n";
  }
  o <<
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
       "<meta name=\"generator\" content=\"aha report\"><title>"
    << html_escape(opt.title) << "</title><style>" << kCss << "</style></head><body>\n<h1>"
    << html_escape(opt.title)
    << "</h1>\n<table class=\"runs\"><thead><tr><th></th><th>run</th>"
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
    o << "<tr data-run=\"" << ri
      << "\"><td><span class=\"swatch\" style=\"background:" << kPalette[ri % std::size(kPalette)]
      << "\"></span></td><td>" << html_escape(r.label) << "</td><td>" << html_escape(r.kind)
      << "</td><td>" << html_escape(r.status) << "</td><td>" << r.steps.size()
      << (r.steps.empty()
              ? ""
              : " (" + std::to_string(r.steps.front()) + "–" + std::to_string(r.steps.back()) + ")")
      << "</td><td>" << html_escape(r.model) << "</td><td>" << html_escape(r.started) << "</td><td>"
      << html_escape(r.ended) << "</td><td>" << html_escape(r.db_path) << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  for (const Run& r : runs) {
    Json cfg = Json::parse(r.config, nullptr, false);
    o << "<details><summary>config of " << html_escape(r.label) << "</summary><pre>"
      << html_escape(cfg.is_discarded() ? r.config
                                        : cfg.dump(2, ' ', false, Json::error_handler_t::replace))
      << "</pre></details>\n";
    if (!r.events.empty()) {
      o << "<details open><summary>warnings of " << html_escape(r.label) << " (" << r.events.size()
        << ")</summary><ul>";
      for (const Json& e : r.events) {
        o << "<li>step " << (e["step"].is_number() ? std::to_string(e["step"].get<int64_t>()) : "-")
          << " " << html_escape(str_or(e, "level")) << " " << html_escape(str_or(e, "kind")) << ": "
          << html_escape(str_or(e, "message")) << "</li>";
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
