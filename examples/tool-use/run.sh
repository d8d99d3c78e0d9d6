#!/usr/bin/env bash
# The tool-use demo: a tiny base pretrained on documents that use a calculator tool correctly,
# wrongly (a mistyped operand) or not at all learns through GRPO to call it correctly and copy
# its answer. Held-out accuracy and the share of correct calls are measured by the trainer's
# evaluation (with the tool) before and during GRPO.
# Usage: examples/tool-use/run.sh [AHA_BINARY]    (RUN_DIR=runs/tool-use)
set -euo pipefail
cd "$(dirname "$0")/../.."
aha=${1:-build/cli/aha}
run=${RUN_DIR:-runs/tool-use}
ex=examples/tool-use
mkdir -p "$run"
start=$(date +%s)
if [ ! -f "$run/pretrain/final/model.safetensors" ]; then
  $aha make-data --task addition --n 40000 --split train --seed 1 --digits 5 6 |
    python3 $ex/make_corpus.py 1 > "$run/corpus.jsonl"
  $aha tokenizer train --corpus "$run/corpus.jsonl" --vocab-size 512 --pre-tokenizer digits \
    --out "$run/tokenizer"
  rm -rf "$run/init" "$run/pretrain"
  $aha init --preset tiny --tokenizer "$run/tokenizer" --seed 1 --out "$run/init"
  $aha pretrain --config $ex/pretrain.json --set model="$run/init" --set output_dir="$run/pretrain" \
    --set data.train="$run/corpus.jsonl"
fi
t_base=$(date +%s)
# The base, evaluated by one GRPO step at learning rate ~0 (the trainer's evaluation is the one
# that runs the tool).
rm -rf "$run/base-eval" "$run/grpo"
$aha train --config $ex/grpo.json --set model="$run/pretrain/final" --set output_dir="$run/base-eval" \
  --set grpo.steps=1 --set grpo.eval_every=1 --set schedule.lr=1e-12
$aha train --config $ex/grpo.json --set model="$run/pretrain/final" --set output_dir="$run/grpo"
t_end=$(date +%s)
python3 $ex/measure.py "$run/base-eval/run.db" "$run/grpo/run.db"
echo "pretraining (or cache) $((t_base - start)) s, evaluation + GRPO $((t_end - t_base)) s"
