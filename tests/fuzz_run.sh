#!/usr/bin/env bash
# Runs one libFuzzer target for R2C_FUZZ_SECONDS (default 60) on a fresh corpus seeded with generated
# files and, for the image decoder, the JPEG fixtures of tests/data and the real chest X-rays of CXR_FOLDER
# when present.
# usage: fuzz_run.sh FUZZ_BINARY [CXR_FOLDER]
source "$(dirname "$0")/common.sh"
target=$1
cxr=${2:-}
mkdir -p "$work/corpus" "$work/seeds"

case "$(basename "$target")" in
fuzz_safetensors)
    # A valid file: header {"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} and two floats.
    header='{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    printf "\\x$(printf %02x ${#header})\\x00\\x00\\x00\\x00\\x00\\x00\\x00%s\\x00\\x00\\x80\\x3f\\x00\\x00\\x00\\x40" \
        "$header" > "$work/seeds/valid.safetensors"
    ;;
fuzz_image)
    if [[ -n "$cxr" && -d "$cxr/ieee8023" ]]; then
        # One file of each kind the collection holds (PNG, JPEG, gray, RGBA, wrong extensions): small ones.
        find "$cxr/ieee8023" -type f -size -60k | head -40 | while read -r f; do cp "$f" "$work/seeds/"; done
    else
        echo "note: real images absent; seeding with the fixtures and a minimal PNG only"
    fi
    cp "$(dirname "$0")"/data/*.jpg "$work/seeds/"
    printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82' \
        > "$work/seeds/one_pixel.png"
    # Regression: an IDAT chunk declaring 2 GiB in a file of a few dozen bytes (the decoder once reserved it).
    head -c 33 "$work/seeds/one_pixel.png" > "$work/seeds/huge_idat.png"
    printf '\x7f\xff\xff\x00IDATxxxx' >> "$work/seeds/huge_idat.png"
    tail -c +34 "$work/seeds/one_pixel.png" >> "$work/seeds/huge_idat.png"
    ;;
esac
# No input may make the decoders reserve more than 1 GiB at once.
"$target" -max_total_time="${R2C_FUZZ_SECONDS:-60}" -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    "$work/corpus" "$work/seeds"
