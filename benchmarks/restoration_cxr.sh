#!/usr/bin/env bash
# Restoration and classification on the real chest X-rays of ../shared/data/cxr: builds the degraded
# dataset (r2c make-data --from: a seeded split stratified by class, trainA and testA degraded by the
# blind degradation model, trainB clean, testA_clean the clean originals), trains an R2C-GAN for a given
# number of iterations, runs r2c test, and writes the table of PSNR / SSIM (input, G, G^2, G^3 and their
# gains over the input) and COVID-19 accuracy / precision / recall / F1 to docs/benchmarks/restoration_cxr.md
# and the numbers to restoration_cxr.json beside it. The dataset and the run go to a temporary folder (or
# --work), never into the repository. Without the real data it prints SKIPPED and exits 0.
#
# usage: benchmarks/restoration_cxr.sh [--data DIR] [--method operational|convolutional|convolutional-light]
#            [--q Q] [--iterations N] [--device cpu|cuda] [--size S] [--seed N] [--r2c BINARY]
#            [--work DIR] [--out DIR]
# defaults: ../shared/data/cxr, operational, 3, 400, cpu, 64, 0, build/r2c (or $R2C), a temporary folder,
# docs/benchmarks. OMP_NUM_THREADS sets the CPU threads.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$repo/../shared/data/cxr
method=operational
q=3
iterations=400
device=cpu
size=64
seed=0
r2c=${R2C:-$repo/build/r2c}
work=
out=$repo/docs/benchmarks
command_line="benchmarks/restoration_cxr.sh $*"

usage() { sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }
while (($#)); do
    (($# >= 2)) || usage
    case $1 in
        --data) data=$2 ;;
        --method) method=$2 ;;
        --q) q=$2 ;;
        --iterations) iterations=$2 ;;
        --device) device=$2 ;;
        --size) size=$2 ;;
        --seed) seed=$2 ;;
        --r2c) r2c=$2 ;;
        --work) work=$2 ;;
        --out) out=$2 ;;
        *) usage ;;
    esac
    shift 2
done

if [[ ! -f "$data/labels.csv" ]]; then
    echo "SKIPPED: no real chest X-rays at $data (no labels.csv there); nothing to benchmark"
    exit 0
fi
[[ -x "$r2c" ]] || { echo "error: r2c binary '$r2c' not found; build it or pass --r2c" >&2; exit 1; }
[[ "$size" =~ ^[0-9]+$ ]] && ((size >= 16 && size % 8 == 0)) ||
    { echo "error: --size must be a multiple of 8, at least 16 (got '$size')" >&2; exit 2; }
if [[ -z "$work" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" "$out"

echo "== dataset: $data -> $work/data ($size x $size)"
"$r2c" make-data --from "$data" --out "$work/data" --size "$size" --seed "$seed"

echo "== training: $method q=$q, $iterations iterations on $device"
start=$SECONDS
"$r2c" train --datasets_dir "$work/data" --output_dir "$work/run" --method "$method" --q "$q" \
    --load_size $((size * 286 / 256)) --crop_size "$size" --max_iterations "$iterations" --sample_every 0 \
    --device "$device" --seed "$seed"
train_seconds=$((SECONDS - start))

echo "== test"
start=$SECONDS
"$r2c" test --datasets_dir "$work/data" --output_dir "$work/run" --crop_size "$size" --batch_size 8 \
    --iterations 3 --device "$device" --json "$work/test.json"
test_seconds=$((SECONDS - start))

if [[ "$device" == cuda ]]; then
    device_name="cuda: $(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1)"
else
    device_name="cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), ${OMP_NUM_THREADS:-$(nproc)} thread(s)"
fi
commit=$(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown)
[[ -z "$(git -C "$repo" status --porcelain --untracked-files=no 2> /dev/null)" ]] || commit="$commit (with uncommitted changes)"

export BENCH_TEST="$work/test.json" BENCH_MANIFEST="$work/data/manifest.json" BENCH_OUT="$out" \
    BENCH_DEVICE="$device_name" BENCH_COMMIT="$commit" BENCH_COMMAND="$command_line" BENCH_METHOD="$method" \
    BENCH_Q="$q" BENCH_ITERATIONS="$iterations" BENCH_SIZE="$size" BENCH_SEED="$seed" \
    BENCH_TRAIN_SECONDS="$train_seconds" BENCH_TEST_SECONDS="$test_seconds"
python3 - << 'PY'
import datetime
import json
import os
import textwrap

env = os.environ
test = json.load(open(env["BENCH_TEST"]))
manifest = json.load(open(env["BENCH_MANIFEST"]))
iterations, size = int(env["BENCH_ITERATIONS"]), int(env["BENCH_SIZE"])
stages = test["restoration"]["stages"]
base = stages[0]
rows = [{"stage": s["stage"], "psnr": s["psnr"], "ssim": s["ssim"],
         "psnr_gain": s["psnr"] - base["psnr"], "ssim_gain": s["ssim"] - base["ssim"]} for s in stages]
cm = test["confusion_matrix"]
counts = manifest["counts"]
train_a = counts["trainA"]["covid"] + counts["trainA"]["control"]
train_b = counts["trainB"]["covid"] + counts["trainB"]["control"]
epoch = max(train_a, train_b)
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": env["BENCH_COMMIT"],
    "device": env["BENCH_DEVICE"],
    "command": env["BENCH_COMMAND"],
    "method": env["BENCH_METHOD"],
    "q": int(env["BENCH_Q"]),
    "iterations": iterations,
    "image_size": size,
    "seed": int(env["BENCH_SEED"]),
    "train_seconds": int(env["BENCH_TRAIN_SECONDS"]),
    "test_seconds": int(env["BENCH_TEST_SECONDS"]),
    "dataset": {"counts": counts, "unknown_label_rows": manifest["unknown_label_rows"],
                "skipped_files": len(manifest["skipped"])},
    "restoration": {"images": test["restoration"]["images"], "stages": rows},
    "classification": {k: test[k] for k in
                       ("accuracy", "sensitivity", "specificity", "precision", "f1", "f2")},
    "confusion_matrix": cm,
}
with open(os.path.join(env["BENCH_OUT"], "restoration_cxr.json"), "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

best = max(rows[1:], key=lambda r: r["psnr_gain"])
if best["psnr_gain"] > 0 and best["ssim_gain"] > 0:
    restoration_text = (f"The best stage, {best['stage']}, improves on the degraded input by "
                        f"{best['psnr_gain']:+.2f} dB PSNR and {best['ssim_gain']:+.4f} SSIM.")
else:
    restoration_text = ("No stage of G improves on the degraded input in both PSNR and SSIM: after "
                        f"{iterations} iterations the generator does not yet restore these images (best "
                        f"stage {best['stage']}: {best['psnr_gain']:+.2f} dB, {best['ssim_gain']:+.4f} SSIM).")
positives, negatives = cm["tp"] + cm["fp"], cm["tn"] + cm["fn"]
if negatives == 0 or positives == 0:
    which = "COVID-19" if negatives == 0 else "control"
    class_text = (f"The classifier calls every test image {which}: these are the scores of a constant "
                  "prediction, not of a learnt one.")
else:
    covid_share = (cm["tp"] + cm["fn"]) / (positives + negatives)
    class_text = (f"The classifier calls {positives} of the {positives + negatives} test images COVID-19 "
                  f"({cm['tp'] + cm['fn']} are). For comparison, calling every one COVID-19 scores accuracy "
                  f"and precision {covid_share:.4f}, recall 1 and F1 {2 * covid_share / (1 + covid_share):.4f}.")
lr_text = "constant (it decays after epoch 100)" if iterations <= 100 * epoch else "decaying after epoch 100"

intro = ("Written by `benchmarks/restoration_cxr.sh`; the numbers are also in `restoration_cxr.json`. The real "
         "radiographs of `../shared/data/cxr` (labels from its `labels.csv`; rows labelled unknown left out) "
         "become a dataset with `r2c make-data --from`: per class, a seeded 20 % test split and two disjoint "
         "halves of the rest, trainA degraded by the project's blind degradation model, trainB clean, testA "
         "degraded with its clean originals in testA_clean, all resized to the image size below. `r2c train` "
         "runs Algorithm 1 for the given number of iterations at the paper's settings otherwise (batch 1, "
         "learning rate 2e-4, load size 286/256 of the crop), and `r2c test` scores G, G(G) and G(G(G)) of "
         "every testA image against its clean original, and the classifier on testA.")
reading = ("This run checks the whole path on real images; it does not reproduce the paper. The paper trains on "
           "QaTa-COV19's expert-annotated poor and good quality images at 256 x 256 for 2000 epochs; here the "
           f"poor quality domain is made by a synthetic degradation model, the images are {size} x {size}, and "
           f"the training covers {iterations / epoch:.2f} epochs. The degradations are sized for 256-pixel "
           "images, so at a smaller size they are relatively stronger (blur in particular).")
if iterations < 10 * epoch:
    reading += (" Gains and classification scores from a run this short are not evidence for or against the "
                "method.")
wrap = lambda text: textwrap.fill(text, width=108, break_on_hyphens=False)
lines = [
    "# Restoration and classification on real chest X-rays",
    "",
    wrap(intro),
    "",
    f"- date: {result['date']}",
    f"- commit: {result['commit']}",
    f"- device: {result['device']}",
    f"- command: `{result['command']}`",
    f"- model: {result['method']}, Q = {result['q']}; seed {result['seed']}",
    f"- iterations: {iterations} ({iterations / epoch:.2f} epochs of {epoch} iterations; the paper trains 2000), "
    f"learning rate {lr_text}; training took {result['train_seconds']} s, testing {result['test_seconds']} s",
    f"- image size: {size} x {size}",
    f"- images: trainA {train_a}, trainB {train_b}, testA {counts['testA']['covid']} COVID-19 + "
    f"{counts['testA']['control']} control; {manifest['unknown_label_rows']} unknown-label rows left out, "
    f"{len(manifest['skipped'])} undecodable files skipped",
    "",
    f"## Restoration (mean over the {result['restoration']['images']} testA images)",
    "",
    "| stage | PSNR dB | SSIM | PSNR gain dB | SSIM gain |",
    "|---|---:|---:|---:|---:|",
]
for r in rows:
    lines.append(f"| {r['stage']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['psnr_gain']:+.2f} | "
                 f"{r['ssim_gain']:+.4f} |")
c = result["classification"]
lines += [
    "",
    wrap(restoration_text),
    "",
    "## COVID-19 classification on testA (positive class COVID-19)",
    "",
    "| accuracy | precision | recall | F1 | TP | FN | FP | TN |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    f"| {c['accuracy']:.4f} | {c['precision']:.4f} | {c['sensitivity']:.4f} | {c['f1']:.4f} | "
    f"{cm['tp']} | {cm['fn']} | {cm['fp']} | {cm['tn']} |",
    "",
    wrap(class_text),
    "",
    "## Reading",
    "",
    wrap(reading),
]
with open(os.path.join(env["BENCH_OUT"], "restoration_cxr.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote", os.path.join(env["BENCH_OUT"], "restoration_cxr.md"), "and restoration_cxr.json")
PY
