// The picture held by the image fixtures of tests/data (written by tests/make_image_fixtures.cpp) and
// checked by tests/test_image_io.cpp: smooth ramps, so JPEG reproduces it within a few levels; 20 x 12
// pixels, so the right and bottom 8 x 8 and 16 x 16 blocks are partial.
#pragma once

namespace r2c::test {

constexpr int kPatternWidth = 20;
constexpr int kPatternHeight = 12;

// Channel c (0 red, 1 green, 2 blue) of pixel (x, y), in 40..200.
constexpr int pattern(int x, int y, int c) {
    return c == 0 ? 40 + 8 * x : c == 1 ? 60 + 10 * y : 200 - 5 * x - 4 * y;
}

}  // namespace r2c::test
