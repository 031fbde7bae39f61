// Geometric transforms and the conversion between images and the network's NCHW tensors. The training
// pipeline works in float from decoding to the tensor (flip, resize, crop), as TensorFlow does in the
// authors' input pipeline, so no rounding to 8 bits happens between the steps.
#pragma once

#include <vector>

#include "data/image_io.h"
#include "engine/tensor.h"

namespace r2c {

// Float image with values on the 8-bit scale [0, 255] (not clamped); same layout as Image.
struct ImageF {
    int width = 0;
    int height = 0;
    int channels = 3;
    std::vector<float> values;

    ImageF() = default;
    ImageF(int w, int h, int c = 3);  // zero-filled
    float& at(int x, int y, int c) {
        return values[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
    float at(int x, int y, int c) const {
        return values[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
};

ImageF to_float(const Image& image);
// Clamps to [0, 255] and rounds to the nearest integer.
Image to_uint8(const ImageF& image);

// Bilinear resize as tf.image.resize(method="bilinear", antialias=False) in TF 2.x, i.e. ResizeBilinear with
// half_pixel_centers=True: output pixel i samples the input at s = (i + 0.5) * in/out - 0.5, between
// floor(s) and ceil(s) clamped to the image (edge pixels repeat), weight s - floor(s), interpolated along x
// then y in float32 exactly as TF does. No antialiasing: shrinking by more than 2x skips input pixels.
ImageF resize_bilinear(const ImageF& image, int width, int height);
// For shrinking originals much larger than the target (making datasets): while the image is at least twice
// the target along an axis it is halved along that axis (bilinear sampling at exactly half size averages
// each pair of pixels), then resize_bilinear makes the last step. A 1024-pixel radiograph shrunk to 64 so
// averages its pixels instead of sampling one in sixteen, whose fine detail would alias.
ImageF resize_antialiased(const ImageF& image, int width, int height);
ImageF flip_horizontal(const ImageF& image);
// The width x height window whose top-left pixel is (x, y); it must lie inside the image.
ImageF crop(const ImageF& image, int x, int y, int width, int height);

// A batch of equally sized images -> float32 CPU tensor [N, C, H, W], values clamped to [0, 255] and
// scaled as x / 255 * 2 - 1 into [-1, 1].
Tensor images_to_tensor(const std::vector<ImageF>& images);
// The inverse for a float tensor [N, C, H, W] on any device: (t + 1) / 2 * 255, clamped and rounded.
std::vector<Image> tensor_to_images(const Tensor& batch);

}  // namespace r2c
