#!/usr/bin/env bash
# Runs docs/quickstart.md as a user would follow it: every ```bash block after the build step, in
# order, with only the sizes made small. Each size substitution must apply, so a doc edit that
# drops or renames one fails here instead of silently running at full size.
# Usage: quickstart_test.sh AHA_BINARY SOURCE_DIR
set -euo pipefail
aha_bin=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$(readlink -f "$aha_bin")" "$work/bin/aha"
ln -s "$src/examples" "$work/examples"

# The bash blocks with continuation lines joined; block 1 (install and build) is skipped: the
# binary under test is already built.
python3 - "$src/docs/quickstart.md" > "$work/commands.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
assert len(blocks) >= 5, f"expected the quickstart's bash blocks, found {len(blocks)}"
assert "scripts/setup" in blocks[0], "block 1 should be install and build"
for b in blocks[1:]:
    print(re.sub(r"\\\n\s*", "", b))
PY

# Small sizes: pattern -> replacement; each must occur.
subs=(
  's/--n 40000/--n 400/'
  's/^aha pretrain .*/& --set steps=4 --set batch_tokens=256/'
  's/^aha train .*/& --set grpo.steps=2 --set grpo.prompts_per_step=2 --set grpo.group_size=2 --set sampling.max_new_tokens=8/'
  's/checkpoint-80/checkpoint-2/'
  's/--limit 300 --n 4/--limit 4 --n 2/g'
  's/--max-new-tokens 80/--max-new-tokens 8/g'
  's/--vocab-size 512/--vocab-size 300/'
)
for s in "${subs[@]}"; do
  before=$(md5sum < "$work/commands.sh")
  sed -i -e "$s" "$work/commands.sh"
  if [ "$(md5sum < "$work/commands.sh")" = "$before" ]; then
    echo "quickstart_test: '$s' matched nothing: docs/quickstart.md changed, update this test" >&2
    exit 1
  fi
done
cd "$work"
export PATH="$work/bin:$PATH"
echo "--- running:"; cat commands.sh
bash -euo pipefail commands.sh
test -f runs/qs/report.html
test -d runs/qs/grpo/checkpoint-2
# The base remembers its documents' template; GRPO with another one says so (log and run.db).
grep -q '"prompt_template": "User: {prompt} Assistant:"' runs/qs/pretrain/final/aha_data.json
aha train --config examples/r1zero/grpo.json --set model=runs/qs/pretrain/final \
  --set output_dir=runs/qs/grpo-r1 --set data.template=r1_zero --set grpo.steps=1 \
  --set grpo.prompts_per_step=2 --set grpo.group_size=2 --set sampling.max_new_tokens=8 \
  2> train-r1.err
grep -q "differs from the template the base was pretrained with" train-r1.err
aha runs runs/qs/grpo-r1/run.db | grep -q "1 warnings"
echo "quickstart_test: ok"
