// `aha report DB... --out F.html`: a self-contained HTML report (plots, expert load, samples).
#include <iostream>

#include "aha/runlog/report.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_report(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::vector<std::string> dbs;
  std::string out;
  runlog::ReportOptions opt;
  desc.add_options()
      ("db", po::value(&dbs)->multitoken()->required(), "run databases (run.db), overlaid in order")
      ("out,o", po::value(&out)->required(), "HTML file to write (atomically replaced)")
      ("title", po::value(&opt.title)->default_value(opt.title), "page title")
      ("sample-steps", po::value(&opt.sample_steps)->default_value(opt.sample_steps),
       "steps (evenly spaced, first and last included) in the sample table; 0: all")
      ("max-chars", po::value(&opt.max_text_chars)->default_value(opt.max_text_chars),
       "cut prompts and completions in the table after this many bytes; 0: never")
      ("max-points", po::value(&opt.max_points)->default_value(opt.max_points),
       "thin plotted series beyond this many points")
      ("label", po::value(&opt.labels)->composing(),
       "name of the next database's run in legends (repeatable, in database order)")
      ("refresh", po::value(&opt.refresh_s)->default_value(opt.refresh_s),
       "while a run is running, the page reloads every N seconds (0: never)");
  po::positional_options_description pos;
  pos.add("db", -1);
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha report RUN.db [MORE.db ...] --out report.html\n\n"
                     "Writes one self-contained HTML file (inline SVG, no network): every numeric\n"
                     "step metric over steps with the runs overlaid, MoE expert load heat maps, and\n"
                     "a filterable table of the best and worst completion of each group.",
                     &pos)) {
    return 0;
  }
  runlog::write_report(dbs, out, opt);
  std::cerr << "report: wrote " << out << " (" << dbs.size() << " database"
            << (dbs.size() == 1 ? "" : "s") << ")\n";
  return 0;
}

}  // namespace aha::cli
