#!/usr/bin/env bash
# The main job on data the project makes itself: generate a small synthetic chest-radiograph dataset,
# train an operational R2C-GAN (Q = 3) on it on the CPU for a few epochs, evaluate it (classification and
# restoration scores against the clean originals) and restore its test images.
# usage: tools/demo.sh [OUTPUT_FOLDER]   (default r2c-demo; R2C=path/to/r2c overrides build/r2c)
set -euo pipefail
r2c=${R2C:-build/r2c}
out=${1:-r2c-demo}

if [[ ! -d "$out/data" ]]; then
    "$r2c" make-data --out "$out/data" --train_a 32 --train_b 32 --test 16 --size 64 --seed 1
fi
"$r2c" train --datasets_dir "$out/data" --output_dir "$out/run" --method operational --q 3 \
    --load_size 40 --crop_size 32 --epochs 4 --epoch_decay 2 --sample_every 32 --seed 1
"$r2c" test --datasets_dir "$out/data" --output_dir "$out/run" --crop_size 32 --saveImages
"$r2c" restore --input "$out/data/testA" --output "$out/restored" --output_dir "$out/run" --size 32

cat <<EOT

Pictures written:
  $out/run/samples/iter-*.png      training samples: [A, G(A), F(G(A)); B, F(B), G(F(B))]
  $out/run/losses.png              loss curves
  $out/run/test_images/*.png       test strips: [input | G | G(G) | G(G(G))]
  $out/restored/*.png              G(G(G(input))) for every test image, probabilities in probabilities.csv
Metrics: $out/run/test.json
EOT
