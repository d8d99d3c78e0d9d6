// The HTML run report: plots and point counts, escaping of untrusted text, overlaid runs, bad
// input, and a render in headless Chromium (DOM checked, PNG screenshot kept in the build tree).
#include "aha/runlog/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/runlog/run_db.h"

namespace aha::runlog {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("aha_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

constexpr const char* kEvil = "<script>alert('x')</script> \"q\" & done \xff\xfe bad\x01utf8";

// A GRPO run of n_steps steps, 2 groups x 3 samples each; kl is NaN at step 3 (stored null).
std::string make_grpo_db(const fs::path& dir, int n_steps, double scale) {
  fs::create_directories(dir);
  std::string path = (dir / "run.db").string();
  RunDb db(path, "grpo", Json{{"grpo", {{"group_size", 3}}}}, "ckpt", false);
  for (int s = 1; s <= n_steps; ++s) {
    Json m = {{"reward_mean", scale * s},
              {"reward/math", 0.1 * s},
              {"reward/format", 1.0 - 0.01 * s},
              {"accuracy", 0.05 * s},
              {"kl", s == 3 ? NAN : 0.01 * s},
              {"clip_low_frac", 0.01},
              {"clip_high_frac", 0.02},
              {"dual_clip_frac", 0.0},
              {"entropy", 2.0 - 0.1 * s},
              {"completion_len_mean", 40.0 + s},
              {"truncation_rate", 0.1 + 0.01 * s},
              {"tokens_per_s", 1000.0 + s},
              {"time_rollout", 1.5},
              {"time_reward", 0.1},
              {"time_ref", 0.2},
              {"time_train", 2.0},
              {"pg_loss", -0.1},
              {"expert_load", {{10 + s, 5, 5, 4}, {6, 6, 6, 6}}}};
    std::vector<Rollout> rows;
    for (int g = 0; g < 2; ++g) {
      for (int i = 0; i < 3; ++i) {
        Rollout r;
        r.prompt_id = "p" + std::to_string(g);
        r.group = g;
        r.sample_index = i;
        r.prompt_text = "What is " + std::to_string(g) + "+2?";
        r.completion_text = i == 0 ? std::string(kEvil)
                              : "answer " + std::to_string(i) + " step" + std::to_string(s);
        r.completion_ids.assign(5 + i, 1);
        r.finish_reason = "stop";
        r.reward = i;
        r.logged_advantage = i - 1.0;
        r.correct = i == 2;
        r.reward_parts = {{"math", double(i == 2), Json::object()}, {"format", 1.0, Json::object()}};
        rows.push_back(r);
      }
    }
    db.write_step(s, m, rows, false);
  }
  db.finish("finished");
  return path;
}

std::string make_pretrain_db(const fs::path& dir, int n_steps) {
  fs::create_directories(dir);
  std::string path = (dir / "run.db").string();
  RunDb db(path, "pretrain", Json::object(), "", false);
  for (int s = 1; s <= n_steps; ++s) {
    db.write_step(s,
                  Json{{"loss", 3.0 / s},
                       {"ppl", std::exp(3.0 / s)},
                       {"lr", 1e-3 * std::pow(10.0, -s)},  // four decades: a log axis
                       {"grad_norm", 1.0 + 0.25 * s},
                       {"tokens_per_s", 5e4},
                       {"epoch", 0}},
                  {}, false);
  }
  db.finish("finished");
  return path;
}

struct Poly {
  std::string run, metric;
  size_t n_attr = 0, n_points = 0;
};

std::string attr(const std::string& tag, const std::string& name) {
  const std::string key = " " + name + "=\"";
  size_t a = tag.find(key);
  if (a == std::string::npos) return "";
  a += key.size();
  return tag.substr(a, tag.find('"', a) - a);
}

// Every <polyline class="series"> with its point count (from `points`) and data-n.
std::vector<Poly> polylines(const std::string& html) {
  std::vector<Poly> out;
  for (size_t p = html.find("<polyline"); p != std::string::npos;
       p = html.find("<polyline", p + 1)) {
    std::string tag = html.substr(p, html.find('>', p) - p);
    Poly poly{attr(tag, "data-run"), attr(tag, "data-metric"), 0, 0};
    poly.n_attr = std::stoul(attr(tag, "data-n"));
    std::string pts = attr(tag, "points");
    for (size_t i = 0; i < pts.size(); ++i) poly.n_points += pts[i] == ',';
    out.push_back(poly);
  }
  return out;
}

const Poly* find_poly(const std::vector<Poly>& polys, const std::string& run,
                      const std::string& metric) {
  for (const Poly& p : polys) {
    if (p.run == run && p.metric == metric) return &p;
  }
  return nullptr;
}

// Circles in the <g class="points"> of one series.
size_t circles(const std::string& html, const std::string& run, const std::string& metric) {
  const std::string head =
      "<g class=\"points\" data-run=\"" + run + "\" data-metric=\"" + metric + "\"";
  size_t p = html.find(head);
  if (p == std::string::npos) return 0;
  const size_t end = html.find("</g>", p);
  size_t n = 0;
  for (size_t c = html.find("<circle", p); c < end; c = html.find("<circle", c + 1)) ++n;
  return n;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Checks the plots of two GRPO runs (5 and 3 steps) and a pretraining run (4 steps).
void check_plots(const std::string& html) {
  auto polys = polylines(html);
  for (const Poly& p : polys) EXPECT_EQ(p.n_attr, p.n_points) << p.run << " " << p.metric;
  for (const char* m : {"reward_mean", "reward/math", "reward/format", "accuracy", "entropy",
                        "clip_low_frac", "clip_high_frac", "completion_len_mean", "truncation_rate",
                        "tokens_per_s", "time_rollout", "time_train"}) {
    const Poly* a = find_poly(polys, "0", m);
    const Poly* b = find_poly(polys, "1", m);
    ASSERT_TRUE(a && b) << m;
    EXPECT_EQ(a->n_points, 5u) << m;
    EXPECT_EQ(b->n_points, 3u) << m;
    EXPECT_EQ(circles(html, "0", m), 5u) << m;
  }
  // lr falls over four decades: drawn on a log axis with power-of-ten ticks.
  const size_t lr_chart = html.find("data-chart=\"lr\"");
  ASSERT_NE(lr_chart, std::string::npos);
  const size_t lr_end = html.find("</figure>", lr_chart);
  EXPECT_NE(html.substr(lr_chart, lr_end - lr_chart).find("(log scale)"), std::string::npos);
  EXPECT_NE(html.substr(lr_chart, lr_end - lr_chart).find(">1e-5<"), std::string::npos);
  // pg_loss never moves: one line of text, no chart.
  EXPECT_EQ(find_poly(polys, "0", "pg_loss"), nullptr);
  EXPECT_NE(html.find("<p class=\"const\" data-chart=\"pg_loss\">pg_loss: constant -0.1"),
            std::string::npos);
  // kl is NaN (null) at step 3: no point there.
  ASSERT_TRUE(find_poly(polys, "0", "kl"));
  EXPECT_EQ(find_poly(polys, "0", "kl")->n_points, 4u);
  EXPECT_EQ(find_poly(polys, "1", "kl")->n_points, 2u);
  for (const char* m : {"loss", "ppl", "lr", "grad_norm", "tokens_per_s"}) {
    ASSERT_TRUE(find_poly(polys, "2", m)) << m;
    EXPECT_EQ(find_poly(polys, "2", m)->n_points, 4u) << m;
  }
  EXPECT_FALSE(find_poly(polys, "2", "reward_mean"));
}

// The number of points of run r's reward_mean (GRPO) or loss (pretraining) series.
void check_plots_of(const std::string& html,
                    const std::vector<std::pair<std::string, size_t>>& runs) {
  auto polys = polylines(html);
  for (const auto& [run, n] : runs) {
    const Poly* p = find_poly(polys, run, "reward_mean");
    if (p == nullptr) p = find_poly(polys, run, "loss");
    ASSERT_TRUE(p) << "run " << run;
    EXPECT_EQ(p->n_points, n) << "run " << run;
  }
}

class Report : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    a_ = make_grpo_db(dir_ / "grpo-a", 5, 0.1);
    b_ = make_grpo_db(dir_ / "grpo-b", 3, 0.2);
    p_ = make_pretrain_db(dir_ / "base", 4);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string a_, b_, p_;
};

TEST_F(Report, PlotsEveryMetricWithOnePointPerStep) {
  const std::string html = render_report({a_, b_, p_});
  check_plots(html);
  // Known metrics come first, in order; then the rest (pg_loss, epoch) alphabetically.
  const size_t reward = html.find("data-chart=\"reward_mean\""),
               kl = html.find("data-chart=\"kl\""), time = html.find("data-chart=\"time_split\""),
               loss = html.find("data-chart=\"loss\""), pg = html.find("data-chart=\"pg_loss\"");
  ASSERT_NE(pg, std::string::npos);
  EXPECT_LT(reward, kl);
  EXPECT_LT(kl, time);
  EXPECT_LT(time, loss);
  EXPECT_LT(loss, pg);
  EXPECT_EQ(count(html, "data-chart=\"expert_load\""), 0u);  // arrays are not plotted
  // ... but their max / mean per MoE layer is: layer 0 of run 0 at step 1 is 11 / 6.25.
  EXPECT_LT(time, html.find("data-chart=\"expert_imbalance\""));
  for (const char* m : {"expert_imbalance/0", "expert_imbalance/1"}) {
    ASSERT_TRUE(find_poly(polylines(html), "0", m)) << m;
    EXPECT_EQ(find_poly(polylines(html), "0", m)->n_points, 5u);
    EXPECT_EQ(find_poly(polylines(html), "1", m)->n_points, 3u);
  }
  EXPECT_NE(html.find("grpo-a · expert_imbalance/0 step 1: 1.76<"), std::string::npos);
  // Legends name the runs (by their directory) on overlaid charts.
  EXPECT_NE(html.find("grpo-a"), std::string::npos);
  EXPECT_NE(html.find("grpo-b"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"legend\">"), std::string::npos);
}

// Runs of 3 and 24 steps share a "% of each run" axis: both series end at the right edge,
// and the tooltips still give steps. Runs of 5 and 3 steps keep the step axis.
TEST_F(Report, RunsOfVeryDifferentLengthsShareAProgressAxis) {
  const std::string long_run = make_grpo_db(dir_ / "grpo-long", 24, 0.1);
  const std::string html = render_report({b_, long_run});
  EXPECT_NE(html.find("% of each run (lengths differ)"), std::string::npos);
  auto last_x = [&](const std::string& run) {
    const std::string key = "data-run=\"" + run + "\" data-metric=\"reward_mean\"";
    const size_t at = html.find(key);
    EXPECT_NE(at, std::string::npos) << run;
    const std::string tag = html.substr(at, html.find('>', at) - at);
    const std::string pts = attr("<p " + tag, "points");
    const size_t last = pts.rfind(' ');
    return pts.substr(last + 1, pts.find(',', last + 1) - last - 1);
  };
  EXPECT_EQ(last_x("0"), last_x("1"));
  EXPECT_NE(html.find("grpo-b step 3:"), std::string::npos)
      << "tooltips keep the step";
  EXPECT_EQ(render_report({a_, b_}).find("% of each run"), std::string::npos);
}

TEST_F(Report, ExpertLoadHeatMapsAndSampleTable) {
  const std::string html = render_report({a_, b_});
  // Two MoE layers per run; 4 experts x 5 (3) steps.
  EXPECT_EQ(count(html, "<figure class=\"heat\""), 4u);
  const size_t h = html.find("<figure class=\"heat\" data-run=\"0\" data-layer=\"1\"");
  ASSERT_NE(h, std::string::npos);
  EXPECT_EQ(count(html.substr(h, html.find("</figure>", h) - h), "<rect"), 20u);
  // Best and worst of each group: 2 groups x 2 rows x (5 + 3) steps.
  const size_t body = html.find("<table id=\"samples\">");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(count(html.substr(body), "<tr class="), 2u * 2u * 8u);
  EXPECT_EQ(count(html.substr(body), "<tr class=\"best\""), 16u);
  EXPECT_NE(html.find("format=1 math=1"), std::string::npos);  // reward breakdown of the best
}

TEST_F(Report, EscapesUntrustedText) {
  const std::string html = render_report({a_});
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;q&quot; &amp; done"),
            std::string::npos);
  EXPECT_EQ(count(html, "<script>"), 1u);  // only the filter script
  EXPECT_EQ(html.find('\x01'), std::string::npos);
  EXPECT_EQ(html.find('\xff'), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(html_escape("é ✓ 😀\n\t"), "é ✓ 😀\n\t");
  EXPECT_EQ(html_escape("\xc3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(html_escape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(html_escape("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
}

TEST_F(Report, SampleStepsAreEvenlySpacedAndTextIsCut) {
  ReportOptions opt;
  opt.sample_steps = 2;
  opt.max_text_chars = 8;
  const std::string html = render_report({a_}, opt);
  const std::string table = html.substr(html.find("<table id=\"samples\">"));
  EXPECT_EQ(count(table, "data-step=\"1\""), 4u);
  EXPECT_EQ(count(table, "data-step=\"5\""), 4u);
  EXPECT_EQ(count(table, "data-step=\"3\""), 0u);
  EXPECT_NE(table.find("more bytes]"), std::string::npos);
}

TEST_F(Report, LongSeriesAreThinnedKeepingTheLastStep) {
  ReportOptions opt;
  opt.max_points = 2;  // 5 steps -> steps 1, 4 and the last, 5
  const std::string html = render_report({a_}, opt);
  const Poly* p = find_poly(polylines(html), "0", "reward_mean");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->n_points, 3u);
  EXPECT_NE(html.find("grpo-a step 5: 0.5<"), std::string::npos);
  EXPECT_EQ(html.find("grpo-a step 2: "), std::string::npos);
}

TEST_F(Report, EqualRewardsShowTwoDifferentCompletions) {
  const fs::path d = dir_ / "ties";
  fs::create_directories(d);
  {
    RunDb db((d / "run.db").string(), "grpo", Json::object(), "", false);
    std::vector<Rollout> rows(3);
    for (int i = 0; i < 3; ++i) {
      rows[i].prompt_id = "p";
      rows[i].sample_index = i;
      rows[i].prompt_text = "q";
      rows[i].completion_text = "sample-" + std::to_string(i);
      rows[i].finish_reason = "length";
    }
    db.write_step(1, Json{{"reward_mean", 0.0}}, rows, false);
  }
  const std::string html = render_report({(d / "run.db").string()});
  EXPECT_NE(html.find("sample-0"), std::string::npos);  // best: the first sample
  EXPECT_NE(html.find("sample-2"), std::string::npos);  // worst: the last sample
  EXPECT_EQ(html.find("sample-1"), std::string::npos);
}

TEST_F(Report, EpisodesShowTurnByTurn) {
  const fs::path d = dir_ / "episodes";
  fs::create_directories(d);
  {
    RunDb db((d / "run.db").string(), "grpo", Json::object(), "", false);
    std::vector<Rollout> rows(1);
    rows[0].prompt_text = "q";
    rows[0].completion_ids.assign(9, 5);
    rows[0].completion_text = "think<c>1+1</c>[2]so 2";
    Turn call{"tool", 4, 7, "[2]", "calc", "ok", 0.25};
    call.reward = 0.5;
    rows[0].turns = {{"assistant", 0, 4, "think<c>1+1</c>", "", "", 0.0}, call,
                     {"assistant", 7, 9, "so 2", "", "", 0.0}};
    db.write_step(1, Json{{"reward_mean", 1.0}}, rows, false);
  }
  const std::string html = render_report({(d / "run.db").string()});
  EXPECT_NE(html.find("<div class=\"turn assistant\"><pre>think&lt;c&gt;1+1&lt;/c&gt;</pre>"),
            std::string::npos);
  EXPECT_NE(html.find("⚙ calc · ok · 0.25 s · reward 0.5</small><pre>[2]</pre>"), std::string::npos)
      << html.substr(html.find("id=\"samples\""));
  EXPECT_NE(html.find("<div class=\"turn assistant\"><pre>so 2</pre>"), std::string::npos);
}

// What the trainer does every N steps: report its own database while its writer is open.
TEST_F(Report, WritesWhileTheRunIsBeingWritten) {
  const fs::path d = dir_ / "live";
  fs::create_directories(d);
  const std::string path = (d / "run.db").string(), out = (d / "report.html").string();
  RunDb db(path, "grpo", Json::object(), "", false);
  for (int s = 1; s <= 4; ++s) {
    db.write_step(s, Json{{"reward_mean", 0.1 * s}}, {}, false);
    if (s % 2 == 0) {
      write_report({path}, out);
      const Poly* p = find_poly(polylines(read_file(out)), "0", "reward_mean");
      ASSERT_TRUE(p);
      EXPECT_EQ(p->n_points, size_t(s));
    }
  }
  db.write_step(5, Json{{"reward_mean", 0.5}}, {}, false);  // the writer is unaffected
  EXPECT_EQ(db.last_step(), 5);
}

TEST_F(Report, BadInputIsAnError) {
  EXPECT_THROW(render_report({}), Error);
  EXPECT_THROW(render_report({(dir_ / "missing.db").string()}), Error);
  const std::string junk = (dir_ / "junk.db").string();
  write_file_atomic(junk, std::string_view("not a database at all, just text"));
  EXPECT_THROW(render_report({junk}), Error);
  EXPECT_THROW(write_report({a_}, (dir_ / "no" / "such" / "dir" / "r.html").string()), Error);
  const std::string out = (dir_ / "report.html").string();
  write_report({a_}, out);
  EXPECT_NE(read_file(out).find("</html>"), std::string::npos);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);  // junk.db and report.html: no temp file left behind
}

TEST_F(Report, EmptyRunRenders) {
  const fs::path d = dir_ / "empty";
  fs::create_directories(d);
  { RunDb db((d / "run.db").string(), "grpo", Json::object(), "", false); }
  const std::string html = render_report({(d / "run.db").string()});
  EXPECT_NE(html.find("No steps logged yet"), std::string::npos);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
}

// Runs a shell command under a deadline; returns its stdout, and its exit status in *rc.
std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *rc = ::pclose(f);
  return out;
}

// `aha report` end to end: the binary of this build tree (skipped when it is not built).
TEST_F(Report, CliWritesTheReportAndReportsBadInputInOneLine) {
  const std::string aha = std::string(AHA_BINARY_DIR) + "/cli/aha";
  if (::access(aha.c_str(), X_OK) != 0) GTEST_SKIP() << aha << " is not built";
  const std::string out = (dir_ / "cli.html").string(), err = (dir_ / "err.txt").string();
  int rc = 0;
  run("timeout 60 " + aha + " report " + a_ + " " + p_ + " --out " + out + " 2>" + err, &rc);
  EXPECT_EQ(rc, 0) << read_file(err);
  check_plots_of(read_file(out), {{"0", 5}, {"1", 4}});
  for (const std::string& args :
       {std::string("report ") + (dir_ / "missing.db").string() + " --out " + out,
        "report " + a_ + " --out " + (dir_ / "no/dir/r.html").string(), "report " + a_,
        std::string("report --bogus")}) {
    run("timeout 60 " + aha + " " + args + " >/dev/null 2>" + err, &rc);
    const std::string e = read_file(err);
    EXPECT_NE(rc, 0) << args;
    EXPECT_EQ(e.rfind("error: ", 0), 0u) << args << ": " << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << args << ": " << e;
  }
  const std::string help = run("timeout 60 " + aha + " report --help", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(help.find("--out"), std::string::npos);
}

std::string find_chromium() {
  for (const char* p :
       {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

TEST_F(Report, RendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium; scripts/setup does)";
  }
  const fs::path out_dir = fs::path(AHA_BINARY_DIR) / "tests" / "report";
  fs::create_directories(out_dir);
  const std::string html_path = (out_dir / "report.html").string();
  ReportOptions opt;
  opt.title = "aha report test: two GRPO runs and a pretraining run";
  write_report({a_, b_, p_}, html_path, opt);
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking"
      " --disable-component-update --disable-sync --no-first-run --hide-scrollbars"
      " --user-data-dir=" +
      (dir_ / "chromium-profile").string() + " ";
  const std::string url = "file://" + html_path;
  int rc = 0;
  const std::string dom =
      run("timeout 60 " + chromium + flags + "--dump-dom '" + url + "' 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0) << "chromium --dump-dom failed";
  ASSERT_NE(dom.find("</svg>"), std::string::npos) << dom.substr(0, 500);
  // The rendered DOM holds the same plots and point counts as the file.
  check_plots(dom);
  EXPECT_EQ(count(dom, "<figure class=\"heat\""), 4u);
  // The filter script ran.
  EXPECT_NE(dom.find("32 of 32 rows"), std::string::npos);
  EXPECT_EQ(dom.find("<script>alert"), std::string::npos);

  // The filter: "best" rows of grpo-b (run 1) only; a test script drives the controls.
  std::string driven = read_file(html_path);
  driven.insert(driven.rfind("</body>"),
                "<script>var w=document.getElementById('f-which');w.value='best';"
                "w.dispatchEvent(new Event('change'));var r=document.getElementById('f-run');"
                "r.value='1';r.dispatchEvent(new Event('change'));</script>");
  const std::string driven_path = (dir_ / "driven.html").string();
  write_file_atomic(driven_path, driven);
  const std::string filtered =
      run("timeout 60 " + chromium + flags + "--dump-dom 'file://" + driven_path + "' 2>/dev/null",
          &rc);
  ASSERT_EQ(rc, 0) << "chromium --dump-dom failed";
  EXPECT_NE(filtered.find("6 of 32 rows"), std::string::npos);  // 3 steps x 2 groups
  EXPECT_EQ(count(filtered, " hidden=\"\""), 26u);

  const std::string png = (out_dir / "report.png").string();
  fs::remove(png);
  run("timeout 60 " + chromium + flags + "--window-size=1600,4200 --screenshot=" + png + " '" +
          url + "' >/dev/null 2>&1",
      &rc);
  ASSERT_EQ(rc, 0) << "chromium --screenshot failed";
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 20000u);
  std::printf("report: %s\nscreenshot: %s\n", html_path.c_str(), png.c_str());
}

}  // namespace
}  // namespace aha::runlog
