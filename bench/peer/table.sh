#!/usr/bin/env bash
# The whole figure table of docs/performance.md in one sitting: aha's GEMM, training step and
# decode against the machine's roof (torch.mm on OpenBLAS / oneDNN) and the PyTorch peer running
# the same model, printed as markdown with ratios.
#
#   bash bench/peer/table.sh [path/to/aha] [threads]
#
# Needs Debian's python3-torch with libopenblas0-pthread (scripts/setup --peer installs both).
set -euo pipefail
AHA=${1:-build/cli/aha}
THREADS=${2:-2}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY has no torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 2; }

field() {  # field KEY < json line
  "$PY" -c 'import json,sys; print(round(json.loads(sys.stdin.readline())[sys.argv[1]], 1))' "$1"
}
ratio() { "$PY" -c "print(f'{float(\"$1\") / float(\"$2\"):.2f}')"; }

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
for spec in "small 8 256" "base 4 256"; do
  set -- $spec
  "$AHA" init --preset "$1" --out "$WORK/$1" >/dev/null 2>&1
  # The peer in fp32 only: torch 1.13's CPU autocast to bf16 is ~10x slower than its fp32.
  peer=$("$PY" "$HERE/torch_train.py" --config "$WORK/$1/config.json" --batch "$2" --seq-len "$3" --iters 1 --threads "$THREADS" | field tokens_per_s)
  for prec in fp32 bf16; do
    mine=$("$AHA" bench train --preset "$1" --batch "$2" --seq-len "$3" --iters 2 --threads "$THREADS" --precision "$prec" | field tokens_per_s)
    echo "| train $1 $2×$3 $prec (tok/s) | $mine | PyTorch peer (fp32) $peer | $(ratio "$mine" "$peer") |"
  done
done
for prec in fp32 bf16; do
  while read -r line; do
    b=$(echo "$line" | field batch)
    d=$(echo "$line" | field decode_tokens_per_s)
    echo "| decode small batch ${b%.0} $prec (tok/s) | $d | | |"
  done < <("$AHA" bench generate --preset small --batch 1,16,64 --new-tokens 32 --threads "$THREADS" --precision "$prec")
done
