#!/usr/bin/env bash
# Logit KD vs SFT-only at an equal token budget on the demo task (1-2 digit addition).
#   teacher: the R1-Zero demo's GRPO policy (MoE, scripts/demo), TEACHER=dir to use another.
#   1. aha distill sample: K completions per training prompt, rejection-sampled, teacher top-k.
#   2. three Llama students from the same random init, same data order, same steps x tokens:
#      SFT only; forward-KL on the stored top-k only; SFT + KL.
#   3. aha eval of teacher and students on held-out problems (never in the training split).
# Prints one JSON line per model and writes them to $OUT/results.jsonl.
# Usage: bench/distill/kd_vs_sft.sh   (AHA=build/cli/aha OUT=runs/distill-bench STEPS=300
#        PROMPTS=1500 VARIANTS="sft kd sft_kd")
set -euo pipefail
cd "$(dirname "$0")/../.."
aha=${AHA:-build/cli/aha}
out=${OUT:-runs/distill-bench}
teacher=${TEACHER:-runs/r1zero/grpo/checkpoint-80}
steps=${STEPS:-300}
prompts=${PROMPTS:-1500}
template="User: {prompt} Assistant:"
[ -f "$teacher/model.safetensors" ] || { echo "error: no teacher at $teacher (run scripts/demo)"; exit 1; }
mkdir -p "$out"
cat > "$out/sample.json" <<JSON
{"teacher": "$teacher", "output": "$out/sft.jsonl", "seed": 1,
 "data": {"train": "synthetic:addition", "digits": [1, 2], "split": "train",
          "synthetic_size": $prompts, "template": "$template"},
 "rewards": [{"name": "math"}], "samples_per_prompt": 4, "store_topk": 20,
 "sampling": {"temperature": 1.0, "max_new_tokens": 80}}
JSON
t0=$(date +%s)
$aha distill sample --config "$out/sample.json" > "$out/sample_stats.json"
echo "sample: $(cat "$out/sample_stats.json") in $(( $(date +%s) - t0 ))s"
train() {  # name, kd.weight, kd.sft_weight
  rm -rf "$out/$1"
  cat > "$out/$1.json" <<JSON
{"student_config": "llama", "tokenizer": "$teacher", "teacher": "$teacher", "output_dir": "$out/$1", "seed": 3,
 "data": {"train": "$out/sft.jsonl"}, "steps": $steps, "batch_tokens": 2048,
 "kd": {"weight": $2, "sft_weight": $3, "source": "stored"},
 "optimizer": {"weight_decay": 0.01},
 "schedule": {"kind": "cosine", "lr": 0.003, "warmup_steps": 10, "min_lr_ratio": 0.1}}
JSON
  local s=$(date +%s)
  $aha distill train --config "$out/$1.json" > /dev/null 2> "$out/$1.log"
  echo "$1: trained in $(( $(date +%s) - s ))s" >&2
}
evaluate() {  # name, model dir
  $aha eval --model "$2" --data synthetic:addition --digits 1 2 --split eval --limit 300 --n 4 \
    --max-new-tokens 80 --template "$template" --seed 7 --reward math 2>/dev/null |
    python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'model': '$1', 'pass@1': r['pass@1'], 'pass@4': r['pass@4']}))"
}
variants=${VARIANTS:-sft kd sft_kd}
declare -A weights=([sft]="0 1" [kd]="1 0" [sft_kd]="1 1")
for v in $variants; do train "$v" ${weights[$v]}; done
: > "$out/results.jsonl"
for m in teacher $variants; do
  dir="$out/$m/final"; [ $m = teacher ] && dir=$teacher
  evaluate $m "$dir" | tee -a "$out/results.jsonl"
done
