#!/usr/bin/env bash
# Expert parallelism vs data parallelism on this machine: `aha pretrain` of one preset with the
# same global batch on 1 rank, 2 data-parallel ranks and 2 expert-parallel ranks (parallel.ep=2),
# 1 thread per rank. Prints tokens/s (mean over steps 2..N), what rank 0 sent per step
# (all-to-all and allreduce bytes, from run.db), each rank's peak RSS and what each rank
# allocates for the routed experts' weights, gradients and AdamW moments (the trainer's log).
# Usage: bench/mpi/expert_parallel.sh [preset] [steps] [batch_tokens]   (needs aha with MPI)
set -euo pipefail
aha="${AHA:-$(dirname "$0")/../../build/cli/aha}"
preset="${1:-small}"
steps="${2:-4}"
batch="${3:-2048}"
dir="$(mktemp -d /tmp/aha_ep_bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
printf 'What is 12 + 7? <think> 2 + 7 = 9 , 1 + 0 = 1 </think> <answer> 19 </answer>\n%.0s' {1..50} > "$dir/corpus.txt"
"$aha" tokenizer train --corpus "$dir/corpus.txt" --vocab-size 300 --out "$dir/tok" > /dev/null 2>&1
"$aha" init --preset "$preset" --seed 1 --tokenizer "$dir/tok" --out "$dir/model" > /dev/null 2>&1
cat > "$dir/pre.json" <<JSON
{"model": "$dir/model", "output_dir": "unset", "threads": 1, "steps": $steps,
 "batch_tokens": $batch, "data": {"train": "synthetic:addition", "size": 2000},
 "optimizer": {"kind": "adamw"}, "schedule": {"lr": 0.001}}
JSON
mpi="OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun -np 2 --oversubscribe --bind-to none"
expert_mb() {  # name what: per-rank MB from "routed experts per rank: weights A/B MB, ..."
  grep -o "routed experts per rank: .*" "$dir/$1.err" | grep -o "$2 [0-9./]* MB" |
    grep -o '[0-9./]*[0-9]'
}
run() {  # name launcher extra-args
  eval "$2 /usr/bin/time -f 'peak_rss_kb %M' \"$aha\" pretrain --config \"$dir/pre.json\" \
    --set output_dir=\"$dir/$1\" $3" > /dev/null 2> "$dir/$1.err"
  local rss
  rss=$(grep -o 'peak_rss_kb [0-9]*' "$dir/$1.err" | awk '{printf "%s%.0f", sep, $2 / 1024; sep="/"}')
  sqlite3 "$dir/$1/run.db" "SELECT '$1', printf('%.0f', AVG(json_extract(metrics,'\$.tokens_per_s'))),
      printf('%.0f', AVG(json_extract(metrics,'\$.tokens'))),
      printf('%.1f', AVG(COALESCE(json_extract(metrics,'\$.alltoall_bytes'), 0)) / 1e6),
      printf('%.1f', AVG(COALESCE(json_extract(metrics,'\$.allreduce_bytes'), 0)) / 1e6),
      '$rss', '$(expert_mb "$1" weights)', '$(expert_mb "$1" gradients)',
      '$(expert_mb "$1" 'AdamW moments')'
      FROM steps WHERE step > 1"
}
echo "config|tokens_per_s|tokens_per_step|rank0_alltoall_MB_per_step|rank0_allreduce_MB_per_step|peak_rss_MB_per_rank|expert_weights_MB_per_rank|expert_grads_MB_per_rank|expert_adamw_MB_per_rank (preset $preset, $steps steps of $batch tokens)"
run rank1 "" ""
run dp2 "$mpi" ""
run ep2 "$mpi" "--set parallel.ep=2"
