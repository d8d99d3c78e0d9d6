#!/usr/bin/env bash
# Data-parallel scaling of GRPO on this machine: the same global batch on 1 rank (1 and all
# threads) and on 2 ranks x 1 thread. Prints seconds per step (rollout + train) from run.db.
# Usage: bench/mpi/scaling.sh [preset] [steps]      (needs a build with MPI: aha version)
set -euo pipefail
aha="${AHA:-$(dirname "$0")/../../build/cli/aha}"
preset="${1:-small}"
steps="${2:-3}"
dir="$(mktemp -d /tmp/aha_mpi_bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
printf 'What is 12 + 7? <think> 2 + 7 = 9 , 1 + 0 = 1 </think> <answer> 19 </answer>\n%.0s' {1..50} > "$dir/corpus.txt"
"$aha" tokenizer train --corpus "$dir/corpus.txt" --vocab-size 300 --out "$dir/tok" > /dev/null 2>&1
"$aha" init --preset "$preset" --seed 1 --tokenizer "$dir/tok" --out "$dir/model" > /dev/null 2>&1
cat > "$dir/run.json" <<JSON
{"model": "$dir/model", "output_dir": "unset", "seed": 1,
 "data": {"train": "synthetic:addition", "template": "{prompt}"},
 "rewards": [{"name": "math"}, {"name": "cosine", "params": {"max_len": 32}}],
 "sampling": {"max_new_tokens": 32},
 "grpo": {"steps": $steps, "prompts_per_step": 8, "group_size": 4, "beta": 0.02, "threads": THREADS},
 "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.01}}
JSON
mpi="OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun -np 2 --oversubscribe --bind-to none"
run() {  # name threads launcher
  sed "s/THREADS/$2/" "$dir/run.json" > "$dir/$1.json"
  local t0=$(date +%s.%N)
  eval "$3 \"$aha\" train --config \"$dir/$1.json\" --set output_dir=\"$dir/$1\"" > /dev/null 2>&1
  local t1=$(date +%s.%N)
  sqlite3 "$dir/$1/run.db" "SELECT '$1', printf('%.2f', AVG(json_extract(metrics,'\$.time_rollout'))),
      printf('%.2f', AVG(json_extract(metrics,'\$.time_ref') + json_extract(metrics,'\$.time_train'))),
      printf('%.2f', $t1 - $t0) FROM steps WHERE step > 1"
}
echo "config|rollout_s_per_step|train_s_per_step|wall_s (preset $preset, $steps steps, 8 prompts x 4, 32 new tokens)"
run rank1_thread1 1 ""
run rank1_threads2 2 ""
run ranks2_thread1 1 "$mpi"
