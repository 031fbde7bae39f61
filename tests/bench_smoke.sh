#!/usr/bin/env bash
# bench_train_step on the CPU at a tiny size: its JSON holds every field the tables and docs/benchmarks/
# read (timings, parameter counts, convolution FLOPs, the paper's Table V beside inference), the tables
# print, and the PyTorch peer runs from the source tree named by R2C_SOURCE_DIR (a benchmark moved to
# another machine) with equal parameter counts. The peer part is SKIPPED where python3 has no torch.
# usage: bench_smoke.sh BENCH_TRAIN_STEP SOURCE_DIR
source "$(dirname "$0")/common.sh"
bench=$1
src=$2

# The peer script is read from a copy of the tree, so R2C_SOURCE_DIR must be followed for it to be found.
mkdir -p "$work/tree/benchmarks"
cp "$src/benchmarks/r2cgan_torch.py" "$work/tree/benchmarks/"
R2C_SOURCE_DIR=$work/tree R2C_TORCH_PYTHON=${R2C_TORCH_PYTHON:-/usr/bin/python3} "$bench" --methods q1,cnn-light \
    --size 16 --batches 1 --inference-batches 1,2 --threads 1 --reps 1 --warmup 0 --no-compile \
    --json "$work/bench.json" > "$work/out.txt" 2> "$work/err.txt" ||
    fail "bench_train_step failed: $(cat "$work/out.txt" "$work/err.txt")"

grep -q "^inference .*Table V" "$work/out.txt" || fail "no inference table: $(cat "$work/out.txt")"
python3 - "$work/bench.json" <<'PY' || fail "bench.json: $(cat "$work/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["implementation"] == "r2c" and r["size"] == 16 and r["device"] == "cpu", r
q1, light = r["results"]
assert (q1["label"], light["label"]) == ("Q=1", "CNN*")
assert (q1["paper_ms_per_sample"], light["paper_ms_per_sample"]) == (3.113, 3.0)
assert q1["params"] == {"generator": 302853, "generator_classify": 299394, "discriminator": 136513}, q1["params"]
for m in r["results"]:
    assert [t["batch"] for t in m["train"]] == [1] and m["train"][0]["ms"] > 0
    assert [i["batch"] for i in m["inference"]] == [1, 2] and all(i["ms_per_sample"] > 0 for i in m["inference"])
    t = m["train"][0]
    assert t["conv_gflop"] > 0 and abs(t["conv_tflop_per_s"] - t["conv_gflop"] / t["ms"]) < 1e-12
    # Inference is G's forward alone; a training step runs G and F six times, forward and backward.
    per_sample = [i["conv_gflop_per_sample"] for i in m["inference"]]
    assert per_sample[0] > 0 and abs(per_sample[1] - per_sample[0]) < 1e-9 * per_sample[0], per_sample
    assert t["conv_gflop"] > 6 * per_sample[0], (t["conv_gflop"], per_sample)
PY

if grep -q "PyTorch peer .* is unavailable" "$work/err.txt"; then
    echo "SKIPPED: the PyTorch peer did not run: $(cat "$work/err.txt")"
    exit 0
fi
grep -q "$work/tree/benchmarks/r2cgan_torch.py" "$work/err.txt" || fail "the peer was not run from R2C_SOURCE_DIR"
python3 - "$work/bench.json" <<'PY' || fail "the peer's results in bench.json: $(cat "$work/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
eager = r["torch"]["modes"]["eager"]["results"]
assert [m["params"] for m in eager] == [m["params"] for m in r["results"]]
assert all(m["train"][0]["ms"] > 0 for m in eager)
PY
# Without R2C_TORCH_PYTHON, the python3 on PATH runs the peer when it imports torch (here a wrapper of
# /usr/bin/python3 that notes each run).
mkdir -p "$work/bin"
printf '#!/bin/sh\necho run >> "%s"\nexec /usr/bin/python3 "$@"\n' "$work/wrapper_runs" > "$work/bin/python3"
chmod +x "$work/bin/python3"
env -u R2C_TORCH_PYTHON PATH="$work/bin:$PATH" R2C_SOURCE_DIR=$work/tree "$bench" --methods q1 --size 16 \
    --batches 1 --inference-batches 1 --threads 1 --reps 1 --warmup 0 --no-compile > "$work/out2.txt" \
    2> "$work/err2.txt" || fail "bench_train_step with the PATH's python3 failed: $(cat "$work/err2.txt")"
grep -q "running the PyTorch peer: OMP_NUM_THREADS=1 python3 " "$work/err2.txt" ||
    fail "the peer did not run with the python3 on PATH: $(cat "$work/err2.txt")"
grep -q "PyTorch peer .* is unavailable" "$work/err2.txt" && fail "the peer failed: $(cat "$work/err2.txt")"
(($(wc -l < "$work/wrapper_runs") == 2)) || fail "expected the probe and the peer run through PATH's python3"
echo "bench_train_step: tables, JSON and the peer from R2C_SOURCE_DIR ok"
