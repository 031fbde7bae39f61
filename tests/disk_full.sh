#!/usr/bin/env bash
# A full disk when r2c train writes a checkpoint, with a file size limit standing in for it (as in the
# atomic-write test): the run stops with exit code 1 and an error that names the checkpoint it could not
# write, the reason and the checkpoint to resume from; that previous checkpoint, the only one kept, is
# untouched byte for byte, no temporary file is left, and a run started again resumes from it and finishes.
# usage: disk_full.sh R2C_BINARY
source "$(dirname "$0")/common.sh"
r2c=$1

"$r2c" make-data --out "$work/data" --train_a 4 --train_b 4 --test 2 --size 32 --seed 2 > /dev/null
ckpts=$work/run/checkpoints
train=("$r2c" train --datasets_dir "$work/data" --output_dir "$work/run" --method convolutional-light
       --load_size 20 --crop_size 16 --epochs 3 --epoch_decay 1 --sample_every 0 --seed 7 --keep_checkpoints 1)
"${train[@]}" --max_iterations 4 > "$work/first.log" 2>&1 || fail "first epoch failed: $(cat "$work/first.log")"
previous=$ckpts/ckpt-0000000004.safetensors
cp "$previous" "$work/previous.copy"

# A checkpoint (about 10 MB) does not fit under a 1 MiB file size limit; the loss log and settings do.
# SIGXFSZ is ignored, so the write fails with EFBIG instead of the signal killing the process.
set +e
(
    trap '' XFSZ
    ulimit -f 1024
    exec "${train[@]}"
) > "$work/full.log" 2>&1
status=$?
set -e
((status == 1)) || fail "exit code $status, expected 1: $(cat "$work/full.log")"
grep -qF "cannot write '$ckpts/ckpt-0000000008.safetensors': File too large; started again, the run resumes from $previous" \
    "$work/full.log" || fail "unclear error: $(cat "$work/full.log")"
cmp "$previous" "$work/previous.copy" || fail "the previous checkpoint changed"
[[ "$(ls -A "$ckpts")" == ckpt-0000000004.safetensors ]] || fail "checkpoints folder holds: $(ls -A "$ckpts")"

"${train[@]}" > "$work/again.log" 2>&1 || fail "the run started again failed: $(cat "$work/again.log")"
grep -q "resuming at iteration 4" "$work/again.log" || fail "did not resume: $(cat "$work/again.log")"
[[ -f "$ckpts/ckpt-0000000012.safetensors" ]] || fail "the resumed run did not finish"
echo "disk-full checkpoint test passed"
