#!/usr/bin/env bash
# SIGKILL at random moments, 20 times in a row, resuming each time: the newest checkpoint always loads,
# the iteration never goes backwards, and the run ends at the same iteration with the same final
# checkpoint, byte for byte, as a run that was never interrupted; partly written checkpoints that kills
# left are removed when the run resumes.
# usage: kill_resume.sh R2C_BINARY
source "$(dirname "$0")/common.sh"
r2c=$1

"$r2c" make-data --out "$work/data" --train_a 4 --train_b 4 --test 2 --size 32 --seed 2 > /dev/null
args=(--datasets_dir "$work/data" --method convolutional-light --load_size 20 --crop_size 16 --epochs 12
      --epoch_decay 4 --sample_every 0 --seed 7)
final=ckpt-0000000048.safetensors

"$r2c" train "${args[@]}" --output_dir "$work/straight" > /dev/null 2>&1 || fail "uninterrupted run failed"
[[ -f "$work/straight/checkpoints/$final" ]] || fail "uninterrupted run did not reach iteration 48"

# The newest complete checkpoint (a kill mid-write leaves a ckpt-*.safetensors.tmp.* file beside them).
newest() {
    ls "$1/checkpoints" 2> /dev/null | { grep -E '^ckpt-[0-9]+\.safetensors$' || true; } | tail -1 |
        sed 's/ckpt-0*\([0-9][0-9]*\).safetensors/\1/'
}
last_row() { tail -1 "$1/losses.csv" 2> /dev/null | cut -d, -f1 | grep -E '^[0-9]+$' || echo 0; }
# Each round runs until a random number of further iterations is logged, then is killed a random fraction
# of an iteration later: kills land in steps, in loss-log appends and in checkpoint writes.
last=0
logged=0
RANDOM=12345
for round in $(seq 1 20); do
    "$r2c" train "${args[@]}" --output_dir "$work/killed" > "$work/round.log" 2>&1 &
    pid=$!
    target=$((logged + 1 + RANDOM % 4))
    while kill -0 "$pid" 2> /dev/null && (($(last_row "$work/killed") < target)); do sleep 0.02; done
    sleep "0.$((RANDOM % 10))"
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    logged=$(last_row "$work/killed")
    now=$(newest "$work/killed")
    now=${now:-0}
    ((now >= last)) || fail "round $round: iteration went backwards ($last -> $now)"
    last=$now
done
echo "after 20 kills the newest checkpoint is at iteration $last"
# What a kill in the middle of a checkpoint write leaves, from a process that has ended: removed on resume.
true &
dead=$!
wait "$dead"
stale=$work/killed/checkpoints/ckpt-0000000001.safetensors.tmp.$dead.0
echo partial > "$stale"
"$r2c" train "${args[@]}" --output_dir "$work/killed" > "$work/final.log" 2>&1 || fail "resume failed: $(cat "$work/final.log")"
[[ ! -e "$stale" ]] || fail "the partly written checkpoint of an ended process was not removed"
grep -q "removed [1-9][0-9]* partly written checkpoint(s)" "$work/final.log" ||
    fail "the removal is not reported: $(cat "$work/final.log")"
! ls "$work/killed/checkpoints" | grep -q '\.tmp\.' || fail "temporary files left: $(ls "$work/killed/checkpoints")"
cmp "$work/straight/checkpoints/$final" "$work/killed/checkpoints/$final" ||
    fail "the resumed run's final checkpoint differs from the uninterrupted run's"
[[ "$(tail -1 "$work/killed/losses.csv" | cut -d, -f1)" == 48 ]] || fail "loss log does not end at 48"
echo "kill-and-resume passed"
