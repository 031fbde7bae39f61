#!/usr/bin/env bash
# End-to-end smoke run of the r2c tool on the CPU: train a few dozen iterations on small crops, stop it
# with SIGINT part-way, resume to the end, then r2c test and r2c restore; undecodable images skipped and
# counted; make-data --from a labelled folder and its bad inputs. Trains on a few real chest X-rays
# (linked, not copied) when the shared data folder is present, generated images otherwise.
# usage: cli_smoke.sh R2C_BINARY [CXR_FOLDER]
source "$(dirname "$0")/common.sh"
r2c=$1
cxr=${2:-}

data=$work/data
if [[ -n "$cxr" && -f "$cxr/labels.csv" ]]; then
    cxr=$(cd "$cxr" && pwd)  # the links below must not depend on where they are made
    echo "using real images from $cxr"
    mkdir -p "$data/trainA" "$data/trainB" "$data/testA"
    mapfile -t covid < <(ls "$cxr/radiography" | grep '^covid' | head -12)
    mapfile -t normal < <(ls "$cxr/radiography" | grep '^normal' | head -12)
    for i in 0 1 2 3; do
        ln -s "$cxr/radiography/${covid[$i]}" "$data/trainA/"
        ln -s "$cxr/radiography/${normal[$i]}" "$data/trainA/"
        ln -s "$cxr/radiography/${covid[$((i + 4))]}" "$data/trainB/"
        ln -s "$cxr/radiography/${normal[$((i + 4))]}" "$data/trainB/"
        ln -s "$cxr/radiography/${covid[$((i + 8))]}" "$data/testA/"
        ln -s "$cxr/radiography/${normal[$((i + 8))]}" "$data/testA/"
    done
else
    echo "note: real images (../shared/data/cxr) absent; using generated images"
    "$r2c" make-data --out "$data" --train_a 8 --train_b 8 --test 8 --size 64 --seed 1
fi

run=$work/run
train=("$r2c" train --datasets_dir "$data" --output_dir "$run" --method operational --q 2 --load_size 40
       --crop_size 32 --epochs 3 --epoch_decay 1 --sample_every 8 --seed 3)

# Start, interrupt after the first checkpoint-worthy progress, and expect a clean exit with a checkpoint.
"${train[@]}" > "$work/first.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    [[ -f "$run/losses.csv" ]] && (($(wc -l < "$run/losses.csv") >= 4)) && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid" || fail "r2c train did not exit 0 after SIGINT: $(cat "$work/first.log")"
grep -q "stopped by signal" "$work/first.log" || fail "no stop message: $(cat "$work/first.log")"
stopped=$(ls "$run/checkpoints" | tail -1 | sed 's/ckpt-0*\([0-9]*\).safetensors/\1/')
echo "interrupted at iteration $stopped"
((stopped >= 3 && stopped < 24)) || fail "unexpected interruption point $stopped"

# A loss row cut short by a full disk or a kill mid-write ("2" of "2,1,..."): dropped on resume.
printf '2' >> "$run/losses.csv"

# Resume to the end: 3 epochs of 8 iterations.
"${train[@]}" > "$work/second.log" 2>&1 || fail "resume failed: $(cat "$work/second.log")"
grep -q "resuming at iteration $stopped" "$work/second.log" || fail "did not resume: $(cat "$work/second.log")"
rows=$(($(wc -l < "$run/losses.csv") - 1))
((rows == 24)) || fail "loss log has $rows rows, expected 24"
[[ "$(tail -1 "$run/losses.csv" | cut -d, -f1)" == 24 ]] || fail "last logged iteration is not 24"
[[ -f "$run/losses.png" && -f "$run/samples/iter-24.png" ]] || fail "missing loss plot or sample grid"
grep -q '"q": "2"' "$run/settings.json" || fail "settings.json does not record the run's settings"
(($(ls "$run/checkpoints" | wc -l) <= 5)) || fail "more than 5 checkpoints kept"

"$r2c" test --datasets_dir "$data" --output_dir "$run" --crop_size 32 --saveImages > "$work/test.log" ||
    fail "r2c test failed"
grep -q '"accuracy"' "$run/test.json" || fail "test.json has no accuracy"
(($(ls "$run/test_images" | wc -l) == 8)) || fail "expected 8 test strips"

"$r2c" restore --input "$data/testA" --output "$work/restored" --output_dir "$run" --size 32 > "$work/restore.log" ||
    fail "r2c restore failed"
(($(ls "$work/restored"/*.png | wc -l) == 8)) || fail "expected 8 restored images"
(($(wc -l < "$work/restored/probabilities.csv") == 9)) || fail "probabilities.csv should list 8 images"

# An image the loader refuses (a CMYK JPEG without the Adobe marker) in trainA and testA: skipped with its
# name and the reason, and counted in the summaries of train and test.
mixed=$work/mixed
mkdir -p "$mixed/trainA" "$mixed/trainB" "$mixed/testA"
for folder in trainA testA; do
    cp "$(dirname "$0")/data/cmyk_plain.jpg" "$mixed/$folder/covid_cmyk.jpg"
    for f in $(ls "$data/$folder" | head -2); do cp -P "$data/$folder/$f" "$mixed/$folder/"; done
done
for f in $(ls "$data/trainB" | head -3); do cp -P "$data/trainB/$f" "$mixed/trainB/"; done
"$r2c" train --datasets_dir "$mixed" --output_dir "$work/mixed_run" --method convolutional-light --load_size 20 \
    --crop_size 16 --epochs 1 --epoch_decay 0 --sample_every 0 > "$work/mixed_train.log" 2>&1 ||
    fail "training with an undecodable file failed: $(cat "$work/mixed_train.log")"
grep -q "skipped: .*trainA/covid_cmyk.jpg.*CMYK" "$work/mixed_train.log" ||
    fail "the refused training file is not named: $(cat "$work/mixed_train.log")"
grep -q "done at iteration 3; 1 undecodable file(s) skipped" "$work/mixed_train.log" ||
    fail "r2c train does not report the skipped file: $(cat "$work/mixed_train.log")"
"$r2c" test --datasets_dir "$mixed" --output_dir "$work/mixed_run" --crop_size 16 > "$work/mixed_test.log" 2>&1 ||
    fail "r2c test with an undecodable file failed: $(cat "$work/mixed_test.log")"
grep -q "skipped: .*testA/covid_cmyk.jpg.*CMYK" "$work/mixed_test.log" ||
    fail "the refused test file is not named: $(cat "$work/mixed_test.log")"
grep -q "^1 undecodable file(s) skipped" "$work/mixed_test.log" ||
    fail "r2c test does not report the skipped file: $(cat "$work/mixed_test.log")"
grep -q '"skipped_files": 1' "$work/mixed_run/test.json" || fail "test.json does not count the skipped file"

# make-data --from: a labelled folder (12 generated images, their labels in a CSV) split into the layout.
"$r2c" make-data --out "$work/gen" --train_a 1 --train_b 12 --test 1 --size 32 --seed 2 > /dev/null
labelled=$work/gen/trainB
{
    echo "file,label,notes"
    for f in "$labelled"/*.png; do
        name=$(basename "$f")
        echo "$name,${name%%_*},\"generated, clean\""
    done
} > "$labelled/labels.csv"
"$r2c" make-data --from "$labelled" --out "$work/from" --test_fraction 0.25 --size 32 --seed 4 > "$work/from.log" ||
    fail "make-data --from failed: $(cat "$work/from.log")"
split=$(for d in trainA trainB testA; do ls "$work/from/$d" | wc -l; done | xargs)
[[ "$split" == "4 4 4" ]] || fail "make-data --from split 12 images as $split, expected 4 4 4"
[[ "$(ls "$work/from/testA")" == "$(ls "$work/from/testA_clean")" ]] || fail "testA_clean does not mirror testA"
grep -q '"source": "covid_0001.png"' "$work/from/manifest.json" || fail "manifest.json does not name the sources"

# ... and its bad inputs: a bad CSV row fails naming the file and line; misused flags are usage errors.
set +e
sed -i '3s/,covid,/,covid-ish,/;3s/,normal,/,normal-ish,/' "$labelled/labels.csv"
"$r2c" make-data --from "$labelled" --out "$work/bad_from" 2> "$work/bad_from.log"
[[ $? == 1 ]] || fail "an unknown label was not reported with exit code 1"
grep -q "labels.csv:3: unknown label" "$work/bad_from.log" || fail "no file:line in: $(cat "$work/bad_from.log")"
"$r2c" make-data --from "$work/missing" --out "$work/bad_from" 2> /dev/null
[[ $? == 1 ]] || fail "a missing --from folder was not reported with exit code 1"
"$r2c" make-data --out "$work/bad_from" --labels "$labelled/labels.csv" 2> /dev/null
[[ $? == 2 ]] || fail "--labels without --from not rejected with exit code 2"
"$r2c" make-data --from "$labelled" --out "$work/bad_from" --train_a 5 2> /dev/null
[[ $? == 2 ]] || fail "--train_a with --from not rejected with exit code 2"
"$r2c" make-data --from "$labelled" --out "$work/bad_from" --test_fraction 1 2> /dev/null
[[ $? == 2 ]] || fail "--test_fraction 1 not rejected with exit code 2"
[[ ! -e "$work/bad_from" ]] || fail "a failed make-data --from wrote $work/bad_from"

# Bad command lines fail before any work with exit code 2.
"$r2c" train --datasets_dir "$data" --output_dir "$work/bad" --q 0 2> /dev/null
[[ $? == 2 ]] || fail "--q 0 not rejected with exit code 2"
"$r2c" train --datasets_dir "$data" --output_dir "$work/bad" --no_such_flag 1 2> /dev/null
[[ $? == 2 ]] || fail "unknown flag not rejected with exit code 2"
"$r2c" train --datasets_dir "$data" --output_dir "$work/bad" --cuda_graphs maybe 2> "$work/graphs.log"
[[ $? == 2 ]] || fail "--cuda_graphs maybe not rejected with exit code 2"
grep -q "cuda_graphs must be on or off" "$work/graphs.log" || fail "no usage message: $(cat "$work/graphs.log")"
"$r2c" restore --checkpoint "$work/none.safetensors" --input "$data" --output "$work/bad" --precision fp16 2> /dev/null
[[ $? == 2 ]] || fail "--precision fp16 not rejected with exit code 2"
"$r2c" train --datasets_dir "$data" --output_dir "$work/bad" --conv_algorithm fastest 2> "$work/algorithm.log"
[[ $? == 2 ]] || fail "--conv_algorithm fastest not rejected with exit code 2"
grep -q "conv_algorithm must be auto, fused or cudnn" "$work/algorithm.log" ||
    fail "no usage message: $(cat "$work/algorithm.log")"
"$r2c" train --datasets_dir "$work/missing" --output_dir "$work/bad" 2> /dev/null
[[ $? == 1 ]] || fail "missing dataset folder not reported"
"$r2c" bench --size 12 2> "$work/bench_size.log"
[[ $? == 2 ]] || fail "r2c bench --size 12 not rejected with exit code 2"
grep -q "multiple of 8" "$work/bench_size.log" || fail "no usage message: $(cat "$work/bench_size.log")"
set -e

# r2c info: the build and the parameter counts; the cuDNN line names the library loaded where it is built in.
"$r2c" info --method operational --q 3 > "$work/info.log" || fail "r2c info failed"
grep -Eq "^cuDNN path of the operational convolutions: (built in \(cuDNN [0-9]+\.[0-9]+\.[0-9]+ loaded\)|not built in)" \
    "$work/info.log" || fail "no cuDNN line: $(cat "$work/info.log")"
grep -q "^method operational, Q = 3" "$work/info.log" || fail "no method line: $(cat "$work/info.log")"
# Asking for the cuDNN path of a build without it is a usage error, not the fused kernels in its place.
if grep -q "^cuDNN path of the operational convolutions: not built in" "$work/info.log"; then
    set +e
    "$r2c" bench --device cuda --conv_algorithm cudnn 2> "$work/no_cudnn.log"
    [[ $? == 2 ]] || fail "--conv_algorithm cudnn without cuDNN not rejected with exit code 2"
    set -e
    grep -q "conv_algorithm cudnn: this build has no cuDNN" "$work/no_cudnn.log" ||
        fail "no usage message: $(cat "$work/no_cudnn.log")"
fi

# r2c bench: the timings, the convolutions' FLOPs and the schedule estimate, on the screen and in JSON, and
# the op profile of one more iteration.
"$r2c" bench --method convolutional-light --size 16 --batch_size 2 --warmup 1 --iterations 2 \
    --images_per_epoch 10 --epochs 3 --profile 3 --conv_algorithm fused --conv_workspace_mb 64 \
    --json "$work/bench.json" > "$work/bench.log"
grep -Eq "^training iteration: [0-9.]+ ms median" "$work/bench.log" || fail "no training time: $(cat "$work/bench.log")"
grep -Eq "^inference .*: [0-9.]+ ms per sample" "$work/bench.log" || fail "no inference time: $(cat "$work/bench.log")"
grep -q "3 epochs x 5 iterations at this rate" "$work/bench.log" || fail "no schedule: $(cat "$work/bench.log")"
grep -Eq "^op profile of one training iteration without CUDA graphs: [0-9.]+ ms" "$work/bench.log" ||
    fail "no op profile: $(cat "$work/bench.log")"
(($(grep -Ec "^ +[0-9.]+ +[0-9.]+% +[0-9]+  [a-z_0-9]+( backward)? on float32\[" "$work/bench.log") == 3)) ||
    fail "the op profile does not list 3 ops: $(cat "$work/bench.log")"
python3 - "$work/bench.json" <<'PY' || fail "bench.json: $(cat "$work/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["train"]
assert r["method"] == "convolutional-light" and r["size"] == 16 and t["batch"] == 2, r
assert r["conv_workspace_mb"] == 64 and r["conv_choices"] == [] and r["cudnn_searches"] == [], r
assert r["cudnn_version"] == "" or r["cudnn_version"].count(".") == 2, r
assert t["ms"] > 0 and t["fastest_ms"] <= t["ms"] and t["conv_gflop"] > 0, t
s = t["schedule"]
assert (s["epochs"], s["iterations_per_epoch"]) == (3, 5), s
assert abs(s["hours"] - 15 * t["ms"] / 3.6e6) < 1e-12, s
assert r["inference"]["ms_per_sample"] > 0
p = r["profile"]
assert p["total_ms"] * (1 + 1e-5) >= p["ops_ms"] > 0 and len(p["ops"]) > 3, p
assert abs(sum(o["ms"] for o in p["ops"]) - p["ops_ms"]) < 1e-6 * p["ops_ms"], p
assert any(o["op"].startswith("oper_conv2d backward on float32[2,") for o in p["ops"]), p
PY
echo "cli smoke run passed"
