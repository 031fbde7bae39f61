#include "tools/figures.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/error.h"

#define STB_EASY_FONT_IMPLEMENTATION
#include <stb_easy_font.h>

namespace r2c::cli {

namespace {

struct Rgb {
    unsigned char r, g, b;
};

class Canvas {
  public:
    Canvas(int w, int h) : img_(w, h, 3) { std::fill(img_.pixels.begin(), img_.pixels.end(), 255); }
    void set(int x, int y, Rgb c) {
        if (x < 0 || y < 0 || x >= img_.width || y >= img_.height) return;
        std::uint8_t* p = &img_.pixels[(static_cast<std::size_t>(y) * img_.width + x) * 3];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
    }
    void rect(int x0, int y0, int x1, int y1, Rgb c) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                set(x, y, c);
    }
    // Bresenham, 2 px thick.
    void line(int x0, int y0, int x1, int y1, Rgb c) {
        const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1,
                  sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        while (true) {
            rect(x0, y0, x0 + 2, y0 + 2, c);
            if (x0 == x1 && y0 == y1) break;
            const int e2 = 2 * err;
            if (e2 >= dy) {
                err += dy;
                x0 += sx;
            }
            if (e2 <= dx) {
                err += dx;
                y0 += sy;
            }
        }
    }
    // stb_easy_font emits axis-aligned quads (4 vertices of x, y, z, colour = 16 bytes each).
    void text(int x, int y, const std::string& s, Rgb c) {
        static char buffer[60000];
        const int quads =
            stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr, buffer, sizeof buffer);
        for (int q = 0; q < quads; ++q) {
            const float* v = reinterpret_cast<const float*>(buffer + q * 64);
            rect(x + static_cast<int>(v[0]), y + static_cast<int>(v[1]), x + static_cast<int>(v[8]),
                 y + static_cast<int>(v[9]), c);
        }
    }
    Image take() { return std::move(img_); }

  private:
    Image img_;
};

using Columns = std::map<std::string, std::vector<double>>;

Columns read_log(const std::string& path) {
    std::ifstream in(path);
    R2C_CHECK(in.good(), "cannot read the loss log ", path);
    std::string line, cell;
    R2C_CHECK(static_cast<bool>(std::getline(in, line)), path, ": empty loss log");
    std::vector<std::string> names;
    for (std::istringstream h(line); std::getline(h, cell, ',');)
        names.push_back(cell);
    Columns cols;
    while (std::getline(in, line)) {
        std::istringstream r(line);
        for (std::size_t i = 0; i < names.size() && std::getline(r, cell, ','); ++i)
            cols[names[i]].push_back(std::strtod(cell.c_str(), nullptr));
    }
    return cols;
}

void panel(Canvas& cv, int x0, int y0, int w, int h, const Columns& cols,
           const std::vector<std::string>& names, const std::vector<double>& xs) {
    static const Rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}};
    const Rgb axis{90, 90, 90};
    cv.rect(x0, y0 + h - 1, x0 + w, y0 + h, axis);
    cv.rect(x0, y0, x0 + 1, y0 + h, axis);
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& n : names) {
        auto it = cols.find(n);
        if (it == cols.end()) continue;
        for (double v : it->second)
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (!(hi >= lo) || xs.size() < 2) return;
    if (hi == lo) hi = lo + 1;
    char range[64];
    std::snprintf(range, sizeof range, "%.3g .. %.3g", lo, hi);
    cv.text(x0 + 4, y0 + h + 4, range, axis);
    const double x_lo = xs.front(), x_hi = xs.back() > xs.front() ? xs.back() : xs.front() + 1;
    for (std::size_t k = 0; k < names.size(); ++k) {
        auto it = cols.find(names[k]);
        if (it == cols.end()) continue;
        const Rgb c = palette[k % 4];
        cv.text(x0 + 8, y0 + 6 + 12 * static_cast<int>(k), names[k], c);
        int px = -1, py = -1;
        for (std::size_t i = 0; i < it->second.size() && i < xs.size(); ++i) {
            if (!std::isfinite(it->second[i])) continue;
            const int x = x0 + static_cast<int>((xs[i] - x_lo) / (x_hi - x_lo) * (w - 2));
            const int y = y0 + h - 2 - static_cast<int>((it->second[i] - lo) / (hi - lo) * (h - 4));
            if (px >= 0) cv.line(px, py, x, y, c);
            px = x;
            py = y;
        }
    }
}

}  // namespace

Image tile_images(const std::vector<Image>& tiles, int columns) {
    R2C_CHECK(!tiles.empty() && columns >= 1, "tile_images: nothing to tile");
    const int w = tiles[0].width, h = tiles[0].height;
    const int rows = (static_cast<int>(tiles.size()) + columns - 1) / columns;
    Image out(w * columns, h * rows, 3);
    for (std::size_t t = 0; t < tiles.size(); ++t) {
        const Image& im = tiles[t];
        R2C_CHECK(im.width == w && im.height == h && im.channels == 3, "tile_images: tile ", t, " is ",
                  im.width, "x", im.height, "x", im.channels, ", expected ", w, "x", h, "x3");
        const int ox = static_cast<int>(t % columns) * w, oy = static_cast<int>(t / columns) * h;
        for (int y = 0; y < h; ++y)
            std::copy_n(&im.pixels[static_cast<std::size_t>(y) * w * 3], static_cast<std::size_t>(w) * 3,
                        &out.pixels[(static_cast<std::size_t>(oy + y) * out.width + ox) * 3]);
    }
    return out;
}

Image plot_losses(const std::string& csv_path) {
    const Columns cols = read_log(csv_path);
    const auto it = cols.find("iteration");
    const std::vector<double> xs = it == cols.end() ? std::vector<double>{} : it->second;
    const int pw = 440, ph = 260, margin = 30;
    Canvas cv(2 * pw + 3 * margin, 2 * ph + 3 * margin);
    const std::vector<std::vector<std::string>> groups = {
        {"g_total", "d_total"},
        {"cycle_A2B2A", "cycle_B2A2B", "id_A2A", "id_B2B"},
        {"g_adv_A2B", "g_adv_B2A", "d_A_fake", "d_B_fake"},
        {"class_A2B", "class_B2A", "class_A2A", "class_B2B"}};
    for (int p = 0; p < 4; ++p)
        panel(cv, margin + (p % 2) * (pw + margin), margin + (p / 2) * (ph + margin), pw, ph, cols, groups[p],
              xs);
    cv.text(margin, 8, "r2c train: losses per iteration  (" + csv_path + ")", {0, 0, 0});
    return cv.take();
}

}  // namespace r2c::cli
