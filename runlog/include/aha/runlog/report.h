// The run report: one self-contained HTML file (inline SVG plots, a little inline JS, no network)
// rendered from one or more run databases. Read-only on the databases, so a trainer may write it
// while its run is still being logged. Thread-compatible: no shared state between calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aha::runlog {

struct ReportOptions {
  std::string title = "aha run report";
  // Steps whose best/worst completions go into the sample table: evenly spaced, the first and
  // the last step always included. 0 shows every step.
  int64_t sample_steps = 40;
  // Completions and prompts longer than this many bytes are cut (with a marker) in the table.
  int64_t max_text_chars = 4000;
  // Plotted series and heat maps are thinned (every k-th step, the last kept) beyond this.
  int64_t max_points = 2000;
  // Names of the runs in legends, in database order ("" or missing: the run directory's name).
  std::vector<std::string> labels;
  // While a run is still running the page reloads itself every this many seconds (0: never).
  int refresh_s = 30;
};

// Renders the report for every run in the given databases (in order). Throws aha::Error when a
// path is missing or is not an aha run database, or when no path is given.
std::string render_report(const std::vector<std::string>& db_paths,
                          const ReportOptions& options = {});

// render_report + an atomic write to out_path (temp file, then rename): a reader never sees a
// half-written report. Throws aha::Error when out_path cannot be written. This is what
// `aha report` and the trainer's periodic report call.
void write_report(const std::vector<std::string>& db_paths, const std::string& out_path,
                  const ReportOptions& options = {});

// HTML-escapes text for element content and quoted attributes (& < > " '), replacing invalid
// UTF-8 and control characters other than tab/newline with U+FFFD. Exposed for tests.
std::string html_escape(std::string_view text);

}  // namespace aha::runlog
