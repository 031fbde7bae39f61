// Procedural chest radiographs (PA view, grayscale stored as 3-channel images) with a known class, for
// training and testing without real data. Each case is a set of anatomy parameters drawn at random
// (pose, body habitus, lung fields, diaphragm domes, heart, ribs, exposure) plus a finding:
//   COVID-19: bilateral, peripheral, lower-zone ground-glass opacities of random extent and patchiness;
//   controls: nothing, a single focal nodule, or an enlarged heart.
// Coordinates: u across the image in [-0.5, 0.5] (image left = the patient's right), v down in [0, 1];
// lengths are in image widths.
#pragma once

#include <cstdint>

#include "data/image_io.h"
#include "engine/rng.h"

namespace r2c {

enum class Finding { None, Nodule, Cardiomegaly, Covid };
const char* finding_name(Finding f);

struct CxrCase {
    // Pose of the patient in the image: rotation (radians) about the image centre, shift, magnification.
    double tilt = 0, shift_u = 0, shift_v = 0, scale = 1;
    // Thorax: half-width of the body, height of the shoulders, whether the upper arms are in the field.
    double body_half_width = 0.43, shoulder_v = 0.05;
    bool arms = false;
    // Lungs, [0] on the image left: apex height, medial and lateral borders, diaphragm dome (peak position
    // and height, curvature towards the costophrenic angle).
    double apex_v[2] = {0.12, 0.12}, medial_u[2] = {0.05, 0.05}, lateral_u[2] = {0.38, 0.38};
    double dome_u[2] = {0.2, 0.2}, dome_v[2] = {0.68, 0.70}, dome_curvature[2] = {2.5, 2.5};
    // Heart: centre, semi-axes, rotation of the long axis.
    double heart_u = 0.05, heart_v = 0.58, heart_a = 0.17, heart_b = 0.10, heart_angle = 0.3;
    // Posterior ribs: height of the first at the spine, spacing, half-thickness, density.
    double rib_v = 0.09, rib_spacing = 0.058, rib_half_width = 0.012, rib_density = 0.16;
    // Display: window of the film response, gamma, left-right brightness gradient (anode heel effect).
    double window_lo = 0, window_hi = 1, gamma = 1, heel = 0;
    // Seeds the vessel trees, parenchymal texture and the shape of the opacities.
    std::uint64_t texture_seed = 0;

    Finding finding = Finding::None;
    double covid_extent[2] = {0, 0};  // strength of the opacities in each lung, 0..1
    double nodule_u = 0, nodule_v = 0, nodule_r = 0;
};

// A random case: a COVID-19 case when `covid`, else a control with no finding (1/2), a nodule (1/4) or an
// enlarged heart (1/4). The anatomy draws come first and do not depend on `covid`.
CxrCase draw_cxr_case(Rng& rng, bool covid);

// Renders `c` as a size x size 3-channel image (all channels equal); deterministic.
Image render_cxr(const CxrCase& c, int size);

}  // namespace r2c
