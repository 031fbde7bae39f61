#include "data/cxr_synth.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/seed.h"
#include "engine/error.h"

namespace r2c {

const char* finding_name(Finding f) {
    switch (f) {
        case Finding::None:
            return "none";
        case Finding::Nodule:
            return "nodule";
        case Finding::Cardiomegaly:
            return "cardiomegaly";
        case Finding::Covid:
            return "covid";
    }
    return "?";
}

CxrCase draw_cxr_case(Rng& rng, bool covid) {
    CxrCase c;
    c.tilt = rng.uniform(-0.05, 0.05);
    c.shift_u = rng.uniform(-0.025, 0.025);
    c.shift_v = rng.uniform(-0.02, 0.03);
    c.scale = rng.uniform(0.92, 1.04);
    c.body_half_width = rng.uniform(0.43, 0.49);
    c.shoulder_v = rng.uniform(0.02, 0.08);
    c.arms = rng.uniform() < 0.4;
    const double apex = rng.uniform(0.10, 0.14), medial = rng.uniform(0.06, 0.08);
    const double lateral = std::min(rng.uniform(0.35, 0.40), c.body_half_width - 0.03);
    const double dome = rng.uniform(0.64, 0.72), curvature = rng.uniform(2.0, 3.2);
    for (int s = 0; s < 2; ++s) {
        c.apex_v[s] = apex + rng.uniform(-0.01, 0.01);
        c.medial_u[s] = medial + rng.uniform(-0.005, 0.005);
        c.lateral_u[s] = lateral + rng.uniform(-0.01, 0.01);
        c.dome_u[s] = rng.uniform(0.17, 0.23);
        c.dome_curvature[s] = curvature * rng.uniform(0.9, 1.1);
    }
    // The left hemidiaphragm (image right) usually sits lower than the right one, which the liver pushes up.
    c.dome_v[0] = dome;
    c.dome_v[1] = dome + rng.uniform(0.0, 0.04);
    c.heart_u = rng.uniform(0.03, 0.06);
    c.heart_v = c.dome_v[1] - rng.uniform(0.05, 0.08);
    c.heart_a = rng.uniform(0.14, 0.17);
    c.heart_b = rng.uniform(0.09, 0.11);
    c.heart_angle = rng.uniform(0.3, 0.55);
    c.rib_v = apex - rng.uniform(0.02, 0.04);
    c.rib_spacing = rng.uniform(0.054, 0.064);
    c.rib_half_width = rng.uniform(0.010, 0.014);
    c.rib_density = rng.uniform(0.08, 0.14);
    c.window_lo = rng.uniform(-0.03, 0.06);
    c.window_hi = rng.uniform(0.9, 1.02);
    c.gamma = rng.uniform(0.85, 1.2);
    c.heel = rng.uniform(-0.05, 0.05);
    c.texture_seed = rng.next_u64();

    if (covid) {
        c.finding = Finding::Covid;
        const double extent = rng.uniform(0.35, 1.0);
        for (double& e : c.covid_extent)
            e = extent * rng.uniform(0.7, 1.0);
        return c;
    }
    const double pick = rng.uniform();
    if (pick < 0.5) return c;
    if (pick < 0.75) {
        c.finding = Finding::Nodule;
        const int s = rng.uniform() < 0.5 ? 0 : 1;
        const double side = s == 0 ? -1.0 : 1.0;
        c.nodule_v = rng.uniform(c.apex_v[s] + 0.08, c.dome_v[s] - 0.05);
        c.nodule_u = side * rng.uniform(c.medial_u[s] + 0.07, c.lateral_u[s] - 0.05);
        c.nodule_r = rng.uniform(0.012, 0.03);
    } else {
        c.finding = Finding::Cardiomegaly;
        c.heart_a *= rng.uniform(1.25, 1.45);
        c.heart_b *= rng.uniform(1.1, 1.25);
    }
    return c;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

// std::hypot guards against overflow at a cost this inner loop does not need to pay.
double length(double x, double y) {
    return std::sqrt(x * x + y * y);
}

double smoothstep(double e0, double e1, double x) {
    const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3 - 2 * t);
}

// Smooth random field in [0, 1]: lattice values from a hash of the seed and the lattice point,
// interpolated with smoothstep weights, summed over octaves.
class ValueNoise {
  public:
    ValueNoise(std::uint64_t seed, double cell, int octaves) : seed_(seed), cell_(cell), octaves_(octaves) {}

    double operator()(double u, double v) const {
        double sum = 0, amplitude = 1, norm = 0, f = 1 / cell_;
        for (int o = 0; o < octaves_; ++o) {
            sum += amplitude * octave(u * f, v * f, static_cast<std::uint64_t>(o));
            norm += amplitude;
            amplitude *= 0.5;
            f *= 2;
        }
        return sum / norm;
    }

  private:
    double lattice(std::int64_t i, std::int64_t j, std::uint64_t octave) const {
        // One finaliser round over the combined coordinates: this runs a dozen times per pixel.
        const std::uint64_t h =
            mix64(seed_ ^ (static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL) ^
                  (static_cast<std::uint64_t>(j) * 0xc2b2ae3d27d4eb4fULL) ^ (octave * 0x165667b19e3779f9ULL));
        return static_cast<double>(h >> 11) * 0x1.0p-53;
    }
    double octave(double x, double y, std::uint64_t o) const {
        const double fx = std::floor(x), fy = std::floor(y);
        const auto i = static_cast<std::int64_t>(fx), j = static_cast<std::int64_t>(fy);
        const double tx = smoothstep(0, 1, x - fx), ty = smoothstep(0, 1, y - fy);
        const double top = lattice(i, j, o) + (lattice(i + 1, j, o) - lattice(i, j, o)) * tx;
        const double bottom = lattice(i, j + 1, o) + (lattice(i + 1, j + 1, o) - lattice(i, j + 1, o)) * tx;
        return top + (bottom - top) * ty;
    }

    std::uint64_t seed_;
    double cell_;
    int octaves_;
};

struct Segment {
    double u0, v0, u1, v1, half_width;
    double lo_u, hi_u, lo_v, hi_v;  // bounding box with margin, to skip far pixels cheaply
};

// Pulmonary vessels: a tree per lung branching from the hilum, thinning outwards.
void grow_vessels(std::vector<Segment>& out, Rng& rng, double u, double v, double angle, double length,
                  double half_width, int depth) {
    // Each branch is drawn as a few slightly bending pieces.
    for (int piece = 0; piece < 3; ++piece) {
        angle += rng.uniform(-0.15, 0.15);
        const double u1 = u + std::cos(angle) * length / 3, v1 = v + std::sin(angle) * length / 3;
        const double m = 3 * half_width;
        out.push_back({u, v, u1, v1, half_width, std::min(u, u1) - m, std::max(u, u1) + m,
                       std::min(v, v1) - m, std::max(v, v1) + m});
        u = u1;
        v = v1;
    }
    if (depth == 0) return;
    for (const double turn : {-1.0, 1.0})
        grow_vessels(out, rng, u, v, angle + turn * rng.uniform(0.25, 0.6), length * rng.uniform(0.6, 0.8),
                     half_width * 0.72, depth - 1);
}

double segment_distance(const Segment& s, double u, double v) {
    const double du = s.u1 - s.u0, dv = s.v1 - s.v0;
    const double t = std::clamp(((u - s.u0) * du + (v - s.v0) * dv) / (du * du + dv * dv), 0.0, 1.0);
    return length(u - s.u0 - t * du, v - s.v0 - t * dv);
}

// Everything about one case that does not change from pixel to pixel.
class Renderer {
  public:
    explicit Renderer(const CxrCase& c)
        : c_(c),
          parenchyma_(derive_seed(c.texture_seed, {1}), 0.03, 3),
          opacity_(derive_seed(c.texture_seed, {2}), 0.07, 3) {
        Rng rng(derive_seed(c.texture_seed, {3}));
        for (int s = 0; s < 2; ++s) {
            const double side = s == 0 ? -1.0 : 1.0;
            const double hilum_u = side * (c.medial_u[s] + 0.04);
            for (const double a : {-1.2, -0.6, 0.0, 0.5, 1.0}) {
                // Angles measured from the lateral direction, positive downwards; mirrored for the image-left
                // lung.
                const double angle = s == 0 ? kPi - a : a;
                grow_vessels(vessels_, rng, hilum_u, hilum_v(s), angle + rng.uniform(-0.15, 0.15),
                             rng.uniform(0.07, 0.1), 0.007, 3);
            }
        }
        bucket_vessels();
    }

    // Display brightness in [0, 1] at anatomy coordinates (u, v).
    double brightness(double u, double v) const {
        const double t = std::abs(u);
        const int s = u < 0 ? 0 : 1;

        const double body = body_mask(t, v);
        const double diaphragm = dome(s, t);
        const double lung = lung_mask(s, t, v, diaphragm);
        const double heart = heart_mask(u, v);

        // Attenuation along the ray, in arbitrary units: soft tissue thickest in the middle of the body.
        double mu = body * (0.42 + 0.14 * (1 - (t / c_.body_half_width) * (t / c_.body_half_width)));
        if (c_.arms) {
            const double arm_in = c_.body_half_width + 0.012, arm_out = arm_in + 0.07;
            mu += 0.32 * smoothstep(arm_in - 0.005, arm_in + 0.005, t) *
                  smoothstep(arm_out + 0.005, arm_out - 0.005, t) * smoothstep(0.7, 0.5, v) *
                  smoothstep(c_.shoulder_v, c_.shoulder_v + 0.05, v);
        }
        mu += 0.16 * body * smoothstep(diaphragm - 0.008, diaphragm + 0.008, v);  // liver, spleen, bowel
        const double m2 = (t / 0.09) * (t / 0.09);
        mu += 0.16 * std::exp(-m2 * m2) * smoothstep(0.02, 0.15, v);  // mediastinum
        mu += 0.1 * heart;
        mu += 0.08 * disc(u, v, c_.medial_u[1], c_.apex_v[1] + 0.15, 0.028);  // aortic knob
        mu += 0.08 * (disc(u, v, -(c_.medial_u[0] + 0.04), hilum_v(0), 0.03) +
                      disc(u, v, c_.medial_u[1] + 0.04, hilum_v(1), 0.03));  // hila
        mu += spine(t, v);
        // Ribs show mostly against the lungs; elsewhere dense soft tissue hides them.
        mu += c_.rib_density * ribs(t, v) * smoothstep(c_.lateral_u[s] + 0.05, c_.lateral_u[s], t) * body *
              (0.25 + 0.75 * lung);
        mu += 0.2 * clavicle(s, t, v);

        // Air: lungs behind the heart shadow are mostly hidden by it; the trachea is a dark column.
        const double air = lung * (1 - 0.8 * heart);
        if (air > 0) mu += air * (-0.34 + 0.06 * vessels(u, v) + 0.08 * (parenchyma_(u, v) - 0.5));
        mu -= 0.1 * smoothstep(0.02, 0.012, t) * smoothstep(0.33, 0.3, v) * smoothstep(0.0, 0.04, v);
        mu += finding(s, u, v, t, lung, diaphragm);

        double b = 1 - std::exp(-2.0 * std::max(mu, 0.0));  // film response: saturates in dense regions
        b *= 1 + c_.heel * u * 2;
        b = std::clamp((b - c_.window_lo) / (c_.window_hi - c_.window_lo), 0.0, 1.0);
        return std::pow(b, c_.gamma);
    }

  private:
    double hilum_v(int s) const { return 0.5 * (c_.apex_v[s] + c_.dome_v[s]); }

    double body_mask(double t, double v) const {
        const double half_width = c_.body_half_width * (1 - 0.15 * (v - 0.55) * (v - 0.55));
        // Shoulders slope down from the neck; the neck itself reaches the top of the image.
        const double r = t / c_.body_half_width;
        const double top = c_.shoulder_v * smoothstep(0.06, 0.12, t) + 0.14 * r * r * r;
        const double d = std::max(t - half_width, top - v);
        return smoothstep(0.01, -0.01, d);
    }

    // Height of the diaphragm: a dome, lowest at the costophrenic angle.
    double dome(int s, double t) const {
        const double d = t - c_.dome_u[s];
        return c_.dome_v[s] + c_.dome_curvature[s] * d * d;
    }

    // A lung field: the upper part is half an ellipse (rounded apex, lateral border curving outwards), the
    // lower part a band between the medial and lateral borders down to the diaphragm.
    double lung_mask(int s, double t, double v, double diaphragm) const {
        const double apex = c_.apex_v[s], medial = c_.medial_u[s], lateral = c_.lateral_u[s];
        const double centre = 0.5 * (medial + lateral), half = 0.5 * (lateral - medial);
        const double v_mid = apex + 0.3;
        const double a = (t - centre) / (half * (1 + 0.1 * std::max(v - v_mid, 0.0)));
        double d;
        if (v < v_mid)
            d = (length(a, (v - v_mid) / (v_mid - apex)) - 1) * half;
        else
            d = (std::abs(a) - 1) * half;
        d = std::max(d, v - diaphragm);
        return smoothstep(0.008, -0.008, d);
    }

    // An ellipse whose lower half continues straight down, so that the heart rests on the diaphragm.
    double heart_mask(double u, double v) const {
        return std::max(heart_ellipse(u, v), heart_ellipse(u, std::min(v, c_.heart_v)));
    }

    double heart_ellipse(double u, double v) const {
        const double du = u - c_.heart_u, dv = v - c_.heart_v;
        const double ca = std::cos(c_.heart_angle), sa = std::sin(c_.heart_angle);
        const double x = (du * ca + dv * sa) / c_.heart_a, y = (-du * sa + dv * ca) / c_.heart_b;
        return smoothstep(1.04, 0.96, length(x, y));
    }

    static double disc(double u, double v, double cu, double cv, double r) {
        return smoothstep(r, 0.6 * r, length(u - cu, v - cv));
    }

    double spine(double t, double v) const {
        // Vertebral bodies with darker discs between them.
        const double discs = 0.75 + 0.25 * std::abs(std::sin(kPi * (v - c_.rib_v) / (0.9 * c_.rib_spacing)));
        return 0.06 * smoothstep(0.04, 0.03, t) * discs;
    }

    // Posterior ribs rise slightly from the spine, then curve down along the chest wall; the anterior ribs
    // (fainter) run from the chest wall down towards the sternum.
    double ribs(double t, double v) const {
        if (t < 0.03) return 0;
        double sum = 0;
        const double w = c_.rib_half_width;
        for (int k = 0; k < 11; ++k) {
            const double v0 = c_.rib_v + k * c_.rib_spacing * (1 + 0.04 * k);
            const double posterior = v0 - 0.1 * t + 1.4 * t * t;
            sum += band(v - posterior, w) * smoothstep(0.03, 0.06, t);
            const double lateral_end = v0 - 0.1 * 0.4 + 1.4 * 0.16;
            const double anterior = lateral_end + 0.5 * (0.4 - t);
            sum += 0.3 * band(v - anterior, 1.2 * w) * smoothstep(0.1, 0.16, t);
        }
        return std::min(sum, 1.5);
    }

    // A bone in cross-section: dense cortex at both edges, lighter marrow between.
    static double band(double d, double w) {
        const double a = std::abs(d) / w;
        if (a >= 1.3) return 0;
        return smoothstep(1.3, 0.9, a) * (0.65 + 0.35 * a * a);
    }

    // From the sternum up and out to the shoulder, gently S-shaped.
    double clavicle(int s, double t, double v) const {
        const double t0 = c_.medial_u[s] - 0.01, t1 = c_.lateral_u[s] - 0.03;
        if (t < t0 || t > t1 + 0.02) return 0;
        const double f = (t - t0) / (t1 - t0);
        const double centre = c_.apex_v[s] + 0.06 - 0.08 * f + 0.012 * std::sin(2 * kPi * f);
        return band(v - centre, 0.014) * smoothstep(1.08, 0.98, f);
    }

    double vessels(double u, double v) const {
        const int cu = static_cast<int>(std::floor((u - kGridU0) / kCell)),
                  cv = static_cast<int>(std::floor((v - kGridV0) / kCell));
        if (cu < 0 || cu >= kCells || cv < 0 || cv >= kCells) return 0;
        double best = 0;
        for (const int i : cells_[static_cast<std::size_t>(cv * kCells + cu)]) {
            const Segment& s = vessels_[static_cast<std::size_t>(i)];
            if (u < s.lo_u || u > s.hi_u || v < s.lo_v || v > s.hi_v) continue;
            const double d = segment_distance(s, u, v) / s.half_width;
            best = std::max(best, std::exp(-d * d) * std::min(1.0, s.half_width / 0.003));
        }
        return best;
    }

    double finding(int s, double u, double v, double t, double lung, double diaphragm) const {
        switch (c_.finding) {
            case Finding::Covid: {
                // Ground glass: hazy, patchy, both lungs, towards the chest wall and the bases.
                const double medial = c_.medial_u[s], lateral = c_.lateral_u[s];
                const double peripheral = smoothstep(0.35, 0.85, (t - medial) / (lateral - medial));
                const double lower = smoothstep(0.35, 0.75, (v - c_.apex_v[s]) / (diaphragm - c_.apex_v[s]));
                const double where = lung * peripheral * lower;
                if (where == 0) return 0;
                return 0.35 * c_.covid_extent[s] * where * smoothstep(0.3, 0.6, opacity_(u, v));
            }
            case Finding::Nodule:
                return 0.3 *
                       smoothstep(c_.nodule_r, 0.7 * c_.nodule_r, length(u - c_.nodule_u, v - c_.nodule_v));
            case Finding::None:
            case Finding::Cardiomegaly:
                return 0;
        }
        return 0;
    }

    // Vessel segments bucketed by a grid over the anatomy, so each pixel tests only the few nearby ones.
    static constexpr double kGridU0 = -0.6, kGridV0 = -0.1, kCell = 0.025;
    static constexpr int kCells = 48;

    void bucket_vessels() {
        cells_.assign(static_cast<std::size_t>(kCells * kCells), {});
        auto cell = [](double x, double origin) {
            return std::clamp(static_cast<int>(std::floor((x - origin) / kCell)), 0, kCells - 1);
        };
        for (std::size_t i = 0; i < vessels_.size(); ++i) {
            const Segment& s = vessels_[i];
            for (int cv = cell(s.lo_v, kGridV0); cv <= cell(s.hi_v, kGridV0); ++cv)
                for (int cu = cell(s.lo_u, kGridU0); cu <= cell(s.hi_u, kGridU0); ++cu)
                    cells_[static_cast<std::size_t>(cv * kCells + cu)].push_back(static_cast<int>(i));
        }
    }

    const CxrCase& c_;
    ValueNoise parenchyma_, opacity_;
    std::vector<Segment> vessels_;
    std::vector<std::vector<int>> cells_;
};

}  // namespace

Image render_cxr(const CxrCase& c, int size) {
    R2C_CHECK(size >= 16 && size <= 8192, "render_cxr: size must be in [16, 8192], got ", size);
    const Renderer r(c);
    Image out(size, size, 3);
    const double ct = std::cos(c.tilt), st = std::sin(c.tilt);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            // Image position -> anatomy coordinates: undo the shift, the rotation about the centre and the
            // magnification.
            const double pu = (x + 0.5) / size - 0.5 - c.shift_u, pv = (y + 0.5) / size - 0.5 - c.shift_v;
            const double u = (ct * pu + st * pv) / c.scale, v = (-st * pu + ct * pv) / c.scale + 0.5;
            const auto g = static_cast<std::uint8_t>(std::lround(255 * r.brightness(u, v)));
            for (int k = 0; k < 3; ++k)
                out.at(x, y, k) = g;
        }
    return out;
}

}  // namespace r2c
