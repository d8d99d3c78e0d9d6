#!/usr/bin/env bash
# The whole figure table of docs/performance.md in one sitting: aha's GEMM, training step and
# decode against the machine's roof (torch.mm on OpenBLAS / oneDNN) and the PyTorch peer running
# the same model, printed as markdown with ratios.
#
#   bash bench/peer/table.sh [path/to/aha] [threads]
#
# Environment: PEER_THREADS (the peer's torch threads; on a loaded machine OpenMP's spinning
# makes 2 threads several times slower than 1, so try both), BATCHES (decode batch sizes, the first is the base of the scaling ratio), PROMPT
# and NEW (prompt and generated tokens), TRAIN (training points, "preset batch seq_len;..."),
# PEER_BLAS_CORE (OpenBLAS's kernels for torch, as OPENBLAS_CORETYPE; by default the ones aha
# runs, which `aha bench gemm` prints as blas_core: an AVX-512 CPU where OpenBLAS would pick
# its AVX2 "Haswell" kernels gets "SkylakeX" on both sides, see docs/performance.md).
# The load (uptime) is printed first: the machine may be shared, so compare only within one run.
#
# Needs Debian's python3-torch with libopenblas0-pthread (scripts/setup --peer installs both).
set -euo pipefail
AHA=${1:-build/cli/aha}
THREADS=${2:-2}
BATCHES=${BATCHES:-1,16,64}
PROMPT=${PROMPT:-16}
NEW=${NEW:-32}
TRAIN=${TRAIN:-small 8 256;base 4 256}  # "preset batch seq_len" entries, ';'-separated
PEER_THREADS=${PEER_THREADS:-$THREADS}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY has no torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 2; }

field() {  # field KEY < json line
  "$PY" -c 'import json,sys; v = json.loads(sys.stdin.readline())[sys.argv[1]]; print(v if isinstance(v, str) or abs(v) < 0.1 else round(v, 1))' "$1"
}
ratio() { "$PY" -c "print(f'{float(\"$1\") / float(\"$2\"):.2f}')"; }

PEER_BLAS_CORE=${PEER_BLAS_CORE:-$("$AHA" bench gemm --sizes 64 --repeats 1 | field blas_core)}
[ "$PEER_BLAS_CORE" = eigen ] || export OPENBLAS_CORETYPE=$PEER_BLAS_CORE

echo "load: $(uptime); aha threads $THREADS, peer threads $PEER_THREADS, peer's OpenBLAS kernels ${OPENBLAS_CORETYPE:-own choice}"
echo
echo "| figure | aha | roof or peer | ratio |"
echo "|---|---|---|---|"
for n in 512 1024 2048; do
  roof=$("$PY" - "$n" "$THREADS" <<'PY'
import sys, time, torch
n, t = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(t)
out = []
for dt in (torch.float32, torch.bfloat16):
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    warm = time.perf_counter()  # 0.3 s of calls first, as aha bench gemm warms its cores
    while time.perf_counter() - warm < 0.3:
        torch.mm(a, b)
    best = min((lambda t0: (torch.mm(a, b), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
    out.append(2 * n ** 3 / best / 1e9)
print(f"{out[0]:.1f} {out[1]:.1f}")
PY
)
  set -- $roof
  for prec in fp32 bf16; do
    mine=$("$AHA" bench gemm --sizes "$n" --precision "$prec" --threads "$THREADS" | field gflops)
    r=$([ "$prec" = fp32 ] && echo "$1" || echo "$2")
    echo "| GEMM ${n}³ $prec (GFLOP/s) | $mine | torch.mm $prec $r | $(ratio "$mine" "$r") |"
  done
done
# The memory roof: decode at batch 16 and 64 streams every weight once a step, so its rate in
# GB/s (the decode rows below) is compared with what the machine reads.
mem=$("$AHA" bench memory --threads "$THREADS" 2>/dev/null | field read_gbps)
echo "| memory read, 512 MiB (GB/s) | $mem | | |"
IFS=';' read -ra train_points <<<"$TRAIN"
for spec in "${train_points[@]}"; do
  set -- $spec
  [ -f "$WORK/$1/config.json" ] || "$AHA" init --preset "$1" --out "$WORK/$1" >/dev/null
  # The peer in fp32 only: torch 1.13's CPU autocast to bf16 is ~10x slower than its fp32. Both
  # report the best of three timed steps (after one untimed step for the peer, one untimed
  # forward for aha).
  "$PY" "$HERE/torch_train.py" --config "$WORK/$1/config.json" --batch "$2" --seq-len "$3" \
    --iters 3 --threads "$PEER_THREADS" --check >"$WORK/peer_train"
  peer=$(field tokens_per_s <"$WORK/peer_train")
  echo "| peer check ($1): max abs log-prob difference from tests/reference (float64) | $(field check_max_abs_logprob_diff <"$WORK/peer_train") | | |"
  for prec in fp32 bf16; do
    mine=$("$AHA" bench train --preset "$1" --batch "$2" --seq-len "$3" --iters 3 --threads "$THREADS" --precision "$prec" | field tokens_per_s)
    echo "| train $1 $2×$3 $prec (tok/s) | $mine | PyTorch peer (fp32, $PEER_THREADS thr) $peer | $(ratio "$mine" "$peer") |"
  done
done
# Decode: aha and the peer on the same preset, prompt length and token count. The peer's model
# is checked against tests/reference first (--check: max |delta log p| in float64).
[ -f "$WORK/small/config.json" ] || "$AHA" init --preset small --out "$WORK/small" >/dev/null
"$PY" "$HERE/torch_decode.py" --config "$WORK/small/config.json" --batch "$BATCHES" \
  --prompt-len "$PROMPT" --new-tokens "$NEW" --threads "$PEER_THREADS" --check >"$WORK/peer_decode"
echo "| peer check: max abs log-prob difference from tests/reference (float64) | $(field check_max_abs_logprob_diff <"$WORK/peer_decode") | | |"
for prec in fp32 bf16; do
  "$AHA" bench generate --preset small --batch "$BATCHES" --prompt-len "$PROMPT" \
    --new-tokens "$NEW" --threads "$THREADS" --precision "$prec" 2>/dev/null >"$WORK/aha_decode"
  one=""
  while read -r line; do
    b=$(echo "$line" | field batch)
    b=${b%.0}
    d=$(echo "$line" | field decode_tokens_per_s)
    pre=$(echo "$line" | field prefill_tokens_per_s)
    [ -z "$one" ] && one=$d
    peer=$(grep "\"batch\": $b," "$WORK/peer_decode" | field decode_tokens_per_s)
    peer_pre=$(grep "\"batch\": $b," "$WORK/peer_decode" | field prefill_tokens_per_s)
    echo "| decode small batch $b $prec (tok/s; ×batch ${BATCHES%%,*}: $(ratio "$d" "$one")) | $d | PyTorch peer (fp32, $PEER_THREADS thr) $peer | $(ratio "$d" "$peer") |"
    echo "| prefill small batch $b × $PROMPT $prec (tok/s) | $pre | PyTorch peer (fp32, $PEER_THREADS thr) $peer_pre | $(ratio "$pre" "$peer_pre") |"
    gbps=$(echo "$line" | field decode_read_gbps)
    echo "| decode small batch $b $prec: reads (GB/s, estimated bytes a step) | $gbps | memory read $mem | $(ratio "$gbps" "$mem") |"
  done <"$WORK/aha_decode"
done
