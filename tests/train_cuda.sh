#!/usr/bin/env bash
# r2c end to end on a CUDA device (a GPU, or the CPU emulator of -DR2C_CUDA_EMULATION=ON): train the compact
# model for two iterations on generated images, then test and restore with its checkpoint, and bench it, all
# with --device cuda. Training reports the device memory of a step. SKIPPED where r2c has no CUDA device.
# usage: train_cuda.sh R2C_BINARY
source "$(dirname "$0")/common.sh"
r2c=$1

if ! "$r2c" info | grep -q "^CUDA: cuda:0"; then
    echo "SKIPPED: CUDA: $("$r2c" info | sed -n 's/^CUDA: //p')"
    exit 0
fi

data=$work/data
run=$work/run
"$r2c" make-data --out "$data" --train_a 2 --train_b 2 --test 2 --size 24 --seed 1 > /dev/null
"$r2c" train --device cuda --datasets_dir "$data" --output_dir "$run" --method convolutional-light \
    --load_size 16 --crop_size 16 --epochs 2 --epoch_decay 1 --max_iterations 2 --sample_every 0 \
    > "$work/train.log" 2>&1 || fail "r2c train --device cuda failed: $(cat "$work/train.log")"
grep -q "done at iteration 2" "$work/train.log" || fail "training did not finish: $(cat "$work/train.log")"
grep -Eq "\| device [0-9]+\.[0-9] MiB" "$work/train.log" ||
    fail "the progress line does not report the device memory: $(cat "$work/train.log")"
grep -Eq "device memory of a step: [0-9]+\.[0-9] MiB at most" "$work/train.log" ||
    fail "the summary does not report the device memory of a step: $(cat "$work/train.log")"

"$r2c" test --device cuda --datasets_dir "$data" --output_dir "$run" --crop_size 16 > "$work/test.log" 2>&1 ||
    fail "r2c test --device cuda failed: $(cat "$work/test.log")"
grep -q '"accuracy"' "$run/test.json" || fail "test.json has no accuracy"
"$r2c" restore --device cuda --input "$data/testA" --output "$work/restored" --output_dir "$run" --size 16 \
    > "$work/restore.log" 2>&1 || fail "r2c restore --device cuda failed: $(cat "$work/restore.log")"
(($(ls "$work/restored"/*.png | wc -l) == 2)) || fail "expected 2 restored images"

# r2c bench on the device: with the warm-up past the capture, the timed iterations are replays; then the
# op profile of an iteration without graphs, timed with device events. With cuDNN built in, Auto (the
# default) has timed the convolution passes both ways and lists its choices.
cudnn=False
"$r2c" info | grep -q "cuDNN path of the operational convolutions: built in" && cudnn=True
"$r2c" bench --device cuda --method convolutional-light --size 16 --warmup 3 --iterations 2 --profile 3 \
    --json "$work/bench.json" > "$work/bench.log" 2>&1 || fail "r2c bench --device cuda failed: $(cat "$work/bench.log")"
grep -Eq "device memory of a step: [0-9]+\.[0-9] MiB at most; per iteration [0-9]+ kernel launches, [0-9]+ copies and fills, 1 host waits" \
    "$work/bench.log" || fail "r2c bench does not report memory, launches, copies and waits: $(cat "$work/bench.log")"
python3 - "$work/bench.json" "$cudnn" <<'PY' || fail "bench.json: $(cat "$work/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cuda_graphs"] is True and r["train"]["peak_bytes"] > 0 and r["train"]["conv_gflop"] > 0, r
assert r["conv_algorithm"] == "auto", r
# Replayed steps launch no kernel one by one; the batch is still copied into the tensors the graphs read.
assert r["train"]["kernel_launches"] == 0 and r["train"]["memory_operations"] > 0, r
# The graphs' memory was planned from the rehearsal step, and the capture allocated just as it did.
assert r["train"]["plan_records"] > 0 and r["train"]["planned"] == r["train"]["plan_records"], r
if sys.argv[2] == "True":
    assert r["conv_choices"] and all(c["fused_ms"] > 0 and c["cudnn_ms"] > 0 for c in r["conv_choices"]), r
else:
    assert r["conv_choices"] == [], r
p = r["profile"]
assert p["total_ms"] * (1 + 1e-5) >= p["ops_ms"] > 0, p  # up to the rounding of float milliseconds
assert any(o["op"].startswith("oper_conv2d backward on float32[1,") and o["op"].endswith(" cuda") for o in p["ops"]), p
PY
# Every convolution pass cuDNN takes forced onto it, replayed in graphs too (in a build without cuDNN, the
# fused kernels).
"$r2c" bench --device cuda --method convolutional-light --size 16 --warmup 3 --iterations 2 --conv_algorithm cudnn \
    > "$work/bench_cudnn.log" 2>&1 || fail "r2c bench --conv_algorithm cudnn failed: $(cat "$work/bench_cudnn.log")"
echo "r2c train, test and restore ran on $("$r2c" info | sed -n 's/^CUDA: //p')"
