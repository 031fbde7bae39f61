// Pictures for people: image grids and the loss-curve plot.
#pragma once

#include <string>
#include <vector>

#include "data/image_io.h"

namespace r2c::cli {

// Equally sized 3-channel images laid out left to right, `columns` per row.
Image tile_images(const std::vector<Image>& tiles, int columns);

// A 2x2 panel plot of the loss log written by `r2c train` (totals of G and D, cycle and identity L1,
// adversarial terms, class cross-entropies), each panel scaled to its curves, with a legend.
Image plot_losses(const std::string& csv_path);

}  // namespace r2c::cli
