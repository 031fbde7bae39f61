// The CUDA operational-convolution kernels (kernels/oper_conv.h), every variant and pass, against float64
// references computed here from the definitions (spec: y = act(sum_q conv(x^q, W_q) + b_q), its
// transposed form, and the gradients). Outputs are poisoned with NaN before each run, so an element a
// kernel fails to write fails the comparison. Tolerances (relative L2): FP32 1e-5, TF32 5e-3, BF16 2e-2.
// Without a CUDA device (or in a build without CUDA) the GPU cases report SKIPPED.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/rng.h"
#include "tests/support.h"

#ifdef R2C_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/oper_conv.h"
#endif

using namespace r2c;

#ifdef R2C_WITH_CUDA
using namespace r2c::cuda;

namespace {

bool gpu_or_skip() {
    if (cuda::available()) return true;
    test::skip("no CUDA device: " + cuda::describe());
    return false;
}

void cuda_ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess) FAIL(what << ": " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ")");
}

// A float device buffer; poison() fills it with NaN (all bits set) and waits for the fill, since the
// kernels may run on a caller's non-blocking stream, which does not wait for the legacy stream's memset.
class DeviceBuffer {
  public:
    explicit DeviceBuffer(std::size_t n) : n_(n) { cuda_ok(cudaMalloc(&p_, bytes()), "cudaMalloc"); }
    explicit DeviceBuffer(const std::vector<float>& v) : DeviceBuffer(v.size()) {
        cuda_ok(cudaMemcpy(p_, v.data(), bytes(), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    }
    ~DeviceBuffer() { cudaFree(p_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    float* get() const { return static_cast<float*>(p_); }
    void poison() {
        cuda_ok(cudaMemset(p_, 0xff, bytes()), "cudaMemset");
        cuda_ok(cudaDeviceSynchronize(), "cudaMemset");
    }
    std::vector<double> download() const {
        std::vector<float> h(n_);
        cuda_ok(cudaDeviceSynchronize(), "kernel");
        cuda_ok(cudaMemcpy(h.data(), p_, bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        return std::vector<double>(h.begin(), h.end());
    }

  private:
    std::size_t bytes() const { return (n_ == 0 ? 1 : n_) * sizeof(float); }
    void* p_ = nullptr;
    std::size_t n_;
};

std::vector<float> uniform(std::size_t n, Rng& rng) {
    std::vector<float> v(n);
    for (float& x : v)
        x = static_cast<float>(rng.uniform(-1.0, 1.0));
    return v;
}

double act_ref(double z, OperActivation act) {
    if (act == OperActivation::Tanh) return std::tanh(z);
    if (act == OperActivation::Relu) return z > 0 ? z : 0.0;
    if (act == OperActivation::LeakyRelu) return z > 0 ? z : 0.2 * z;
    return z;
}

// One layer's data and its float64 references.
struct Case {
    Case(const OperConvGeometry& geometry, bool is_transposed, bool with_bias, OperActivation activation)
        : g(geometry), transposed(is_transposed), bias(with_bias), act(activation) {}

    OperConvGeometry g;
    bool transposed;
    bool bias;
    OperActivation act;

    std::vector<float> x, w, b, dz;
    std::vector<double> y, dx, dw, db;

    std::size_t nx() const { return std::size_t(g.N) * g.Cin * g.H * g.W; }
    std::size_t ny() const { return std::size_t(g.N) * g.Cout * g.Hout * g.Wout; }
    std::size_t nw() const { return std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k; }

    void make(Rng& rng) {
        x = uniform(nx(), rng);
        w = uniform(nw(), rng);
        b = uniform(std::size_t(g.Q) * g.Cout, rng);
        dz = uniform(ny(), rng);
        std::vector<double> z(ny(), 0.0);
        dx.assign(nx(), 0.0);
        dw.assign(nw(), 0.0);
        db.assign(std::size_t(g.Q) * g.Cout, 0.0);
        // Weight index: conv [Q,Cout,Cin,k,k], transposed [Q,Cin,Cout,k,k].
        const auto wi = [&](int q, int ci, int co, int kh, int kw) {
            const std::size_t outer = transposed
                                          ? std::size_t(q) * g.Cin * g.Cout + std::size_t(ci) * g.Cout + co
                                          : std::size_t(q) * g.Cout * g.Cin + std::size_t(co) * g.Cin + ci;
            return (outer * g.k + kh) * g.k + kw;
        };
        const auto xi = [&](int n, int ci, int ih, int iw) {
            return ((std::size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw;
        };
        const auto yi = [&](int n, int co, int oh, int ow) {
            return ((std::size_t(n) * g.Cout + co) * g.Hout + oh) * g.Wout + ow;
        };
        // Every connection x[n,ci,ih,iw] -> y[n,co,oh,ow] through tap (kh,kw): conv oh = ih' with
        // ih = oh*s - pad + kh; transposed oh = ih*s + kh - crop.
        const auto edge = [&](int n, int ci, int ih, int iw, int co, int oh, int ow, int kh, int kw) {
            const double xv = x[xi(n, ci, ih, iw)], g_out = dz[yi(n, co, oh, ow)];
            double xp = 1;
            for (int q = 0; q < g.Q; ++q) {
                const double wv = w[wi(q, ci, co, kh, kw)];
                dx[xi(n, ci, ih, iw)] += g_out * (q + 1) * xp * wv;
                xp *= xv;
                z[yi(n, co, oh, ow)] += xp * wv;
                dw[wi(q, ci, co, kh, kw)] += xp * g_out;
            }
        };
        for (int n = 0; n < g.N; ++n)
            for (int co = 0; co < g.Cout; ++co)
                for (int kh = 0; kh < g.k; ++kh)
                    for (int kw = 0; kw < g.k; ++kw)
                        for (int ci = 0; ci < g.Cin; ++ci) {
                            if (!transposed) {
                                for (int oh = 0; oh < g.Hout; ++oh)
                                    for (int ow = 0; ow < g.Wout; ++ow) {
                                        const int ih = oh * g.stride - g.pad_top + kh,
                                                  iw = ow * g.stride - g.pad_left + kw;
                                        if (g.reflect)  // the mirrored pixel, by the definition
                                            edge(n, ci,
                                                 ih < 0      ? -ih
                                                 : ih >= g.H ? 2 * g.H - 2 - ih
                                                             : ih,
                                                 iw < 0      ? -iw
                                                 : iw >= g.W ? 2 * g.W - 2 - iw
                                                             : iw,
                                                 co, oh, ow, kh, kw);
                                        else if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                                            edge(n, ci, ih, iw, co, oh, ow, kh, kw);
                                    }
                            } else {
                                for (int ih = 0; ih < g.H; ++ih)
                                    for (int iw = 0; iw < g.W; ++iw) {
                                        const int oh = ih * g.stride + kh - g.pad_top,
                                                  ow = iw * g.stride + kw - g.pad_left;
                                        if (oh >= 0 && oh < g.Hout && ow >= 0 && ow < g.Wout)
                                            edge(n, ci, ih, iw, co, oh, ow, kh, kw);
                                    }
                            }
                        }
        y.resize(ny());
        for (int n = 0; n < g.N; ++n)
            for (int co = 0; co < g.Cout; ++co) {
                double bias_sum = 0;
                for (int q = 0; q < g.Q; ++q)
                    bias_sum += bias ? b[std::size_t(q) * g.Cout + co] : 0.0;
                for (int p = 0; p < g.Hout * g.Wout; ++p) {
                    const std::size_t i = yi(n, co, 0, 0) + p;
                    y[i] = act_ref(z[i] + bias_sum, act);
                    for (int q = 0; q < g.Q; ++q)
                        db[std::size_t(q) * g.Cout + co] += dz[i];
                }
            }
    }
};

OperConvGeometry conv_same(int n, int cin, int h, int w, int cout, int k, int s, int q) {
    return oper_conv_geometry_same(n, cin, h, w, cout, k, s, q);
}

// Odd sizes, channel counts that are not tile multiples (3, 5, 17, 67), Q = 1..5, strides 1, 2, 4,
// kernels 3, 4, 7, batches 1 and 3, same and valid padding, k < s for the transposed gather.
std::vector<Case> conv_cases(bool quick) {
    std::vector<OperConvGeometry> gs = {
        conv_same(1, 3, 7, 9, 5, 3, 1, 1), conv_same(3, 5, 13, 11, 67, 3, 2, 2),
        conv_same(1, 67, 13, 11, 3, 3, 4, 3), conv_same(3, 3, 7, 9, 67, 4, 1, 4),
        conv_same(1, 5, 13, 11, 5, 4, 2, 5), conv_same(3, 67, 7, 9, 5, 4, 4, 1),
        conv_same(1, 3, 13, 11, 67, 7, 1, 2), conv_same(3, 5, 7, 9, 3, 7, 2, 3),
        conv_same(1, 5, 13, 11, 5, 7, 4, 5), oper_conv_geometry_valid(1, 67, 9, 7, 67, 3, 1, 5),
        oper_conv_geometry_valid(3, 5, 13, 11, 17, 4, 2, 4), conv_same(2, 128, 8, 8, 1, 4, 1, 3),
        // Reflect padding as R2C-GAN's residual blocks (3x3, pad 1) and CNN's outer layers (7x7, pad 3).
        oper_conv_geometry_reflect(2, 5, 7, 9, 67, 3, 1, 1, 3),
        oper_conv_geometry_reflect(1, 3, 11, 9, 17, 7, 1, 3, 2),
        oper_conv_geometry_reflect(3, 67, 6, 5, 5, 3, 2, 1, 1),
        oper_conv_geometry_reflect(1, 2, 4, 4, 3, 7, 1, 3, 5),  // pads of 3 on a 4x4 image
    };
    if (quick)
        gs = {conv_same(1, 5, 7, 9, 67, 3, 2, 3), conv_same(3, 67, 13, 11, 3, 4, 1, 2),
              oper_conv_geometry_reflect(2, 5, 7, 9, 67, 3, 1, 1, 3)};
    std::vector<Case> out;
    const OperActivation acts[] = {OperActivation::None, OperActivation::Tanh, OperActivation::LeakyRelu,
                                   OperActivation::Relu};
    for (std::size_t i = 0; i < gs.size(); ++i)
        out.emplace_back(gs[i], false, i % 2 == 0, acts[i % 4]);
    return out;
}

std::vector<Case> transpose_cases(bool quick) {
    std::vector<OperConvGeometry> gs = {
        oper_conv_transpose_geometry_same(1, 67, 7, 9, 3, 3, 2, 3),
        oper_conv_transpose_geometry_same(3, 5, 13, 11, 67, 3, 1, 1),
        oper_conv_transpose_geometry_same(1, 3, 7, 9, 5, 4, 4, 2),
        oper_conv_transpose_geometry_same(3, 5, 7, 9, 5, 7, 2, 5),
        oper_conv_transpose_geometry_same(1, 67, 5, 7, 67, 3, 4, 4),        // k < s: uncovered output phases
        {1, 3, 7, 9, 17, 4, 2, 0, 0, (7 - 1) * 2 + 4, (9 - 1) * 2 + 4, 3},  // valid: the full output
    };
    if (quick) gs = {oper_conv_transpose_geometry_same(1, 67, 7, 9, 3, 3, 2, 3), gs[4]};
    std::vector<Case> out;
    const OperActivation acts[] = {OperActivation::Tanh, OperActivation::None, OperActivation::LeakyRelu,
                                   OperActivation::Relu};
    for (std::size_t i = 0; i < gs.size(); ++i)
        out.emplace_back(gs[i], true, i % 2 == 0, acts[i % 4]);
    return out;
}

struct Config {
    OperVariant variant;
    OperPrecision precision;
    double tol;
};
std::vector<Config> configs() {
    std::vector<Config> out = {{OperVariant::Naive, OperPrecision::FP32, 1e-5},
                               {OperVariant::Tiled, OperPrecision::FP32, 1e-5},
                               {OperVariant::Narrow, OperPrecision::FP32, 1e-5},
                               {OperVariant::Auto, OperPrecision::FP32, 1e-5}};
    if (oper_device_compute_capability() >= 80) {
        out.push_back({OperVariant::TensorCore, OperPrecision::TF32, 5e-3});
        out.push_back({OperVariant::TensorCore, OperPrecision::BF16, 2e-2});
        out.push_back({OperVariant::Auto, OperPrecision::BF16, 2e-2});
    }
    return out;
}

// Worst error per (pass, variant, precision), printed at the end of a test case for the record.
class Worst {
  public:
    void add(const std::string& key, double err) {
        double& w = worst_[key];
        w = std::max(w, err);
    }
    ~Worst() {
        for (const auto& [key, err] : worst_)
            std::cout << "  max rel L2 " << key << ": " << err << "\n";
    }

  private:
    std::map<std::string, double> worst_;
};

void check(Worst& worst, const Case& c, const char* pass, const Config& cfg, const char* what,
           const std::vector<double>& got, const std::vector<double>& want) {
    const double err = test::rel_l2(got, want);
    worst.add(std::string(pass) + " " + what + " " + oper_variant_name(cfg.variant) + " " +
                  oper_precision_name(cfg.precision),
              err);
    INFO(pass << " " << what << " " << oper_variant_name(cfg.variant) << "/"
              << oper_precision_name(cfg.precision) << " " << oper_geometry_str(c.g) << " rel L2 " << err
              << " tol " << cfg.tol);
    CHECK(err <= cfg.tol);
}

// Options with as much workspace (NaN-poisoned) as the case's weight-gradient pass uses, which they own.
class WithWorkspace {
  public:
    WithWorkspace(const Case& c, const OperConvOptions& opt)
        : bytes_(oper_conv_weights_workspace(c.g, c.transposed, opt)),
          buffer_(bytes_ / sizeof(float)),
          opt_(opt) {
        buffer_.poison();
        opt_.workspace = buffer_.get();
        opt_.workspace_bytes = bytes_;
    }
    const OperConvOptions& get() const { return opt_; }
    std::size_t bytes() const { return bytes_; }

  private:
    std::size_t bytes_;
    DeviceBuffer buffer_;
    OperConvOptions opt_;
};
// The case's weight-gradient pass (db may be null).
void run_weights(const Case& c, const DeviceBuffer& x, const DeviceBuffer& dz, const DeviceBuffer& dw,
                 const DeviceBuffer* db, const OperConvOptions& opt) {
    float* dbp = db != nullptr ? db->get() : nullptr;
    if (c.transposed)
        oper_conv_transpose_backward_weights(c.g, x.get(), dz.get(), dw.get(), dbp, opt);
    else
        oper_conv_backward_weights(c.g, x.get(), dz.get(), dw.get(), dbp, opt);
}

// Runs the passes of a case that the config's variant takes (the narrow variant: the forward pass of a
// layer with at most kOperMaxNarrowChannels outputs; every other variant: all three); returns how many ran.
int run_case(Worst& worst, Case& c, const Config& cfg, void* stream) {
    DeviceBuffer x(c.x), w(c.w), b(c.b), dz(c.dz);
    DeviceBuffer y(c.ny()), dx(c.nx()), dw(c.nw()), db(std::size_t(c.g.Q) * c.g.Cout);
    const OperConvOptions opt{cfg.variant, cfg.precision, stream};
    const char* fwd = c.transposed ? "transpose_forward" : "forward";
    const char* bwd = c.transposed ? "transpose_backward_data" : "backward_data";
    const char* wgt = c.transposed ? "transpose_backward_weights" : "backward_weights";
    if (cfg.variant == OperVariant::Narrow) {
        const OperPass pass = c.transposed ? OperPass::TransposeForward : OperPass::Forward;
        if (!oper_variant_unsupported(cfg.variant, pass, c.g, cfg.precision, 0).empty()) return 0;
    }

    y.poison();
    if (c.transposed)
        oper_conv_transpose_forward(c.g, x.get(), w.get(), c.bias ? b.get() : nullptr, y.get(), c.act, opt);
    else
        oper_conv_forward(c.g, x.get(), w.get(), c.bias ? b.get() : nullptr, y.get(), c.act, opt);
    check(worst, c, fwd, cfg, "y", y.download(), c.y);
    if (cfg.variant == OperVariant::Narrow) return 1;

    dx.poison();
    if (c.transposed) {
        oper_conv_transpose_backward_data(c.g, x.get(), w.get(), dz.get(), dx.get(), opt);
        check(worst, c, bwd, cfg, "dx", dx.download(), c.dx);
    } else if (c.g.reflect) {  // the caller pads, runs the valid pass and folds (kernels/oper_conv.h)
        CHECK_THROWS_WITH(oper_conv_backward_data(c.g, x.get(), w.get(), dz.get(), dx.get(), opt),
                          Catch::Contains("reflect padding"));
    } else {
        oper_conv_backward_data(c.g, x.get(), w.get(), dz.get(), dx.get(), opt);
        check(worst, c, bwd, cfg, "dx", dx.download(), c.dx);
    }

    dw.poison();
    db.poison();
    const WithWorkspace ws(c, opt);
    run_weights(c, x, dz, dw, &db, ws.get());
    check(worst, c, wgt, cfg, "dw", dw.download(), c.dw);
    check(worst, c, wgt, cfg, "db", db.download(), c.db);
    return 3;
}

void run_all(std::vector<Case> cases, std::uint64_t seed) {
    Rng rng(seed);
    Worst worst;
    const std::vector<Config> cfgs = configs();
    std::map<OperVariant, int> passes;
    for (Case& c : cases) {
        c.make(rng);
        for (const Config& cfg : cfgs)
            passes[cfg.variant] += run_case(worst, c, cfg, nullptr);
    }
    // Every variant ran on some of the cases (the narrow one on their narrow forward passes).
    for (const Config& cfg : cfgs) {
        INFO(oper_variant_name(cfg.variant));
        CHECK(passes[cfg.variant] > 0);
    }
}

}  // namespace

TEST_CASE("oper conv kernels: forward, backward data and weights, every variant", "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    std::cout << cuda::describe() << "\n";
    run_all(conv_cases(false), 1);
}

TEST_CASE("oper transposed conv kernels: forward, backward data and weights, every variant",
          "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    run_all(transpose_cases(false), 2);
}

// A few shapes of each kind: what tools/gpu_check.sh runs under compute-sanitizer.
TEST_CASE("oper conv kernels on a few shapes", "[cuda][oper_conv][quick]") {
    if (!gpu_or_skip()) return;
    std::vector<Case> cases = conv_cases(true);
    for (Case& c : transpose_cases(true))
        cases.push_back(c);
    run_all(cases, 3);
}

TEST_CASE("oper conv kernels run on a caller's stream", "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    cudaStream_t stream = nullptr;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    Rng rng(4);
    Worst worst;
    std::vector<Case> cases = conv_cases(true);
    for (Case& c : transpose_cases(true))
        cases.push_back(c);
    for (Case& c : cases) {
        c.make(rng);
        for (const Config& cfg : configs())
            run_case(worst, c, cfg, stream);
    }
    cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

// The split-K parts of a weight gradient are added in their order: the same bits on every run (atomics
// into dW, as before, gave last-bit differences from run to run). Without workspace the pass runs as one
// part, against the reference as in run_case.
TEST_CASE("oper weight gradients are the same bits on every run, and run as one part without workspace",
          "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(5);
    Worst worst;
    // Like the generator body's 3x3 layer and the 128->3 transposed output layer, small enough that even
    // the emulated device (4 SMs) splits them.
    std::vector<Case> cases = {
        Case(conv_same(2, 17, 17, 15, 67, 3, 1, 3), false, true, OperActivation::None),
        Case(oper_conv_transpose_geometry_same(2, 67, 16, 16, 3, 3, 2, 3), true, true, OperActivation::Tanh)};
    std::vector<Config> cfgs = {{OperVariant::Tiled, OperPrecision::FP32, 1e-5}};
    for (const Config& cfg : configs())
        if (cfg.variant == OperVariant::TensorCore) cfgs.push_back(cfg);
    for (Case& c : cases) {
        c.make(rng);
        DeviceBuffer x(c.x), dz(c.dz), dw(c.nw()), again(c.nw());
        for (const Config& cfg : cfgs) {
            const OperConvOptions opt{cfg.variant, cfg.precision, nullptr};
            INFO(oper_variant_name(cfg.variant)
                 << "/" << oper_precision_name(cfg.precision) << " " << oper_geometry_str(c.g));
            const WithWorkspace ws(c, opt);
            CHECK(ws.bytes() > 0);  // more than one part, so that their order matters
            dw.poison();
            again.poison();
            run_weights(c, x, dz, dw, nullptr, ws.get());
            run_weights(c, x, dz, again, nullptr, ws.get());
            const std::vector<double> first = dw.download(), second = again.download();
            REQUIRE(first.size() == second.size());
            for (std::size_t i = 0; i < first.size(); ++i) {
                INFO("weight " << i);
                REQUIRE(std::memcmp(&first[i], &second[i], sizeof(double)) == 0);
            }
            dw.poison();
            run_weights(c, x, dz, dw, nullptr, opt);
            check(worst, c,
                  c.transposed ? "transpose_backward_weights (one part)" : "backward_weights (one part)", cfg,
                  "dw", dw.download(), c.dw);
        }
    }
}

TEST_CASE("oper activation backward turns dL/dy into dL/dz", "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(5);
    const std::size_t n = 1000;
    std::vector<float> z = uniform(n, rng), dy = uniform(n, rng);
    for (OperActivation act :
         {OperActivation::None, OperActivation::Tanh, OperActivation::Relu, OperActivation::LeakyRelu}) {
        std::vector<float> y(n);
        std::vector<double> want(n);
        for (std::size_t i = 0; i < n; ++i) {
            y[i] = static_cast<float>(act_ref(z[i], act));
            const double slope = act == OperActivation::Tanh        ? 1 - double(y[i]) * y[i]
                                 : act == OperActivation::Relu      ? (z[i] > 0 ? 1.0 : 0.0)
                                 : act == OperActivation::LeakyRelu ? (z[i] > 0 ? 1.0 : 0.2)
                                                                    : 1.0;
            want[i] = dy[i] * slope;
        }
        DeviceBuffer dy_d(dy), y_d(y), dz_d(n);
        dz_d.poison();
        oper_activation_backward(act, y_d.get(), dy_d.get(), dz_d.get(), n);
        CHECK(test::rel_l2(dz_d.download(), want) <= 1e-6);
        oper_activation_backward(act, y_d.get(), dy_d.get(), dy_d.get(), n);  // in place
        CHECK(test::rel_l2(dy_d.download(), want) <= 1e-6);
    }
}

// The pixel of x a frame position shows, or -1 for a zero: written out here from the definition.
int frame_source(int p, int pad, int size, bool reflect) {
    const int r = p - pad;
    if (r >= 0 && r < size) return r;
    if (!reflect) return -1;
    return r < 0 ? -r : 2 * (size - 1) - r;
}

TEST_CASE("oper power stack materialises the padded x^1..x^Q and its chain rule", "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(6);
    // No padding; zeros before and after; a frame that crops the last rows; mirrored pads on both sides.
    const OperStackGeometry cases[] = {
        {2, 3, 5, 7, 4, 0, 0, 5, 7, false}, {1, 2, 6, 5, 3, 1, 2, 9, 8, false},
        {2, 3, 7, 6, 2, 0, 1, 5, 6, false}, {1, 2, 6, 7, 3, 2, 1, 10, 10, true},
        {2, 1, 5, 4, 5, 1, 3, 7, 9, true},
    };
    for (const OperStackGeometry& s : cases) {
        INFO(oper_stack_str(s));
        const std::size_t frame = std::size_t(s.Hp) * s.Wp;
        const std::vector<float> x = uniform(std::size_t(s.N) * s.C * s.H * s.W, rng),
                                 g = uniform(std::size_t(s.N) * s.Q * s.C * frame, rng);
        std::vector<double> stack(g.size()), dx(x.size(), 0.0);
        for (int n = 0; n < s.N; ++n)
            for (int c = 0; c < s.C; ++c)
                for (int i = 0; i < s.Hp; ++i)
                    for (int j = 0; j < s.Wp; ++j) {
                        const int si = frame_source(i, s.pad_top, s.H, s.reflect);
                        const int sj = frame_source(j, s.pad_left, s.W, s.reflect);
                        const std::size_t src = ((std::size_t(n) * s.C + c) * s.H + si) * s.W + sj;
                        const double v = si < 0 || sj < 0 ? 0.0 : x[src];
                        double power = 1;
                        for (int q = 0; q < s.Q; ++q) {
                            const std::size_t at =
                                ((std::size_t(n) * s.Q + q) * s.C + c) * frame + std::size_t(i) * s.Wp + j;
                            if (si >= 0 && sj >= 0) dx[src] += (q + 1) * power * g[at];
                            power *= v;
                            stack[at] = power;
                        }
                    }
        DeviceBuffer x_d(x), g_d(g), stack_d(g.size()), dx_d(x.size());
        stack_d.poison();
        dx_d.poison();
        oper_power_stack(s, x_d.get(), stack_d.get());
        oper_power_stack_backward(s, x_d.get(), g_d.get(), dx_d.get());
        CHECK(test::rel_l2(stack_d.download(), stack) <= 1e-6);
        CHECK(test::rel_l2(dx_d.download(), dx) <= 1e-6);
    }
    DeviceBuffer x(8), xs(8);
    CHECK_THROWS_WITH(oper_power_stack({1, 1, 2, 2, 1, 2, 0, 4, 2, true}, x.get(), xs.get()),
                      Catch::Contains("oper_power_stack") && Catch::Contains("reflect pads") &&
                          Catch::Contains("x[1,1,2,2]"));
}

TEST_CASE("oper weights regroup for the stacked convolution, and the bias and activation after it",
          "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(8);
    const int q = 3, cout = 4, cin = 5, kk = 9;
    const std::vector<float> w = uniform(std::size_t(q) * cout * cin * kk, rng);
    std::vector<double> stacked(w.size());
    for (int a = 0; a < q; ++a)
        for (int o = 0; o < cout; ++o)
            for (int i = 0; i < cin; ++i)
                for (int t = 0; t < kk; ++t)
                    stacked[((std::size_t(o) * q + a) * cin + i) * kk + t] =
                        w[((std::size_t(a) * cout + o) * cin + i) * kk + t];
    DeviceBuffer w_d(w), ws_d(w.size()), back_d(w.size());
    ws_d.poison();
    back_d.poison();
    oper_weights_stack(w_d.get(), ws_d.get(), q, cout, cin, kk);
    oper_weights_unstack(ws_d.get(), back_d.get(), q, cout, cin, kk);
    CHECK(test::rel_l2(ws_d.download(), stacked) == 0.0);
    CHECK(test::rel_l2(back_d.download(), std::vector<double>(w.begin(), w.end())) == 0.0);

    const int n = 2, hw = 7;
    const std::vector<float> y = uniform(std::size_t(n) * cout * hw, rng),
                             b = uniform(std::size_t(q) * cout, rng);
    std::vector<double> expected(y.size());
    for (std::size_t e = 0; e < y.size(); ++e) {
        double v = y[e];
        for (int a = 0; a < q; ++a)
            v += b[std::size_t(a) * cout + (e / hw) % cout];
        expected[e] = std::tanh(v);
    }
    DeviceBuffer y_d(y), b_d(b);
    oper_bias_activation(y_d.get(), b_d.get(), n, cout, hw, q, OperActivation::Tanh);
    CHECK(test::rel_l2(y_d.download(), expected) <= 1e-6);
}

TEST_CASE("oper crop takes a transposed layer's window of its whole output, and uncrop is its adjoint",
          "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(9);
    const int n = 2, c = 3, hf = 7, wf = 6;
    // Inside the whole output, and reaching past its bottom and right edges (a transposed layer with k < s).
    for (const auto& [top, left, ho, wo] : {std::array<int, 4>{1, 0, 5, 6}, std::array<int, 4>{2, 3, 6, 4}}) {
        INFO("window " << ho << "x" << wo << " at (" << top << "," << left << ")");
        const std::vector<float> full = uniform(std::size_t(n) * c * hf * wf, rng),
                                 dy = uniform(std::size_t(n) * c * ho * wo, rng);
        std::vector<double> y(dy.size(), 0.0), back(full.size(), 0.0);
        for (int p = 0; p < n * c; ++p)
            for (int i = 0; i < ho; ++i)
                for (int j = 0; j < wo; ++j) {
                    if (i + top >= hf || j + left >= wf) continue;
                    const std::size_t from = (std::size_t(p) * hf + i + top) * wf + j + left,
                                      at = (std::size_t(p) * ho + i) * wo + j;
                    y[at] = full[from];
                    back[from] = dy[at];
                }
        DeviceBuffer full_d(full), dy_d(dy), y_d(dy.size()), back_d(full.size());
        y_d.poison();
        back_d.poison();
        oper_crop(full_d.get(), y_d.get(), n, c, hf, wf, top, left, ho, wo);
        oper_uncrop(dy_d.get(), back_d.get(), n, c, hf, wf, top, left, ho, wo);
        CHECK(test::rel_l2(y_d.download(), y) == 0.0);
        CHECK(test::rel_l2(back_d.download(), back) == 0.0);
    }
}

// A bfloat16's bits from a finite float32, rounded to nearest, ties to even: written out here.
OperBf16 to_bf16(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    const std::uint32_t low = u & 0xffffu, high = u >> 16;
    const bool up = low > 0x8000u || (low == 0x8000u && (high & 1u) != 0);
    return static_cast<OperBf16>(high + (up ? 1u : 0u));
}
float from_bf16(OperBf16 h) {
    const std::uint32_t u = std::uint32_t(h) << 16;
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}
std::vector<float> rounded_bf16(const std::vector<double>& v) {
    std::vector<float> r(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
        r[i] = from_bf16(to_bf16(static_cast<float>(v[i])));
    return r;
}

// A bfloat16 device buffer of n values, poisoned with NaN (all bits set) when made.
class Bf16Buffer {
  public:
    explicit Bf16Buffer(std::size_t n) : n_(n) {
        cuda_ok(cudaMalloc(&p_, bytes()), "cudaMalloc");
        cuda_ok(cudaMemset(p_, 0xff, bytes()), "cudaMemset");
        cuda_ok(cudaDeviceSynchronize(), "cudaMemset");
    }
    explicit Bf16Buffer(const std::vector<float>& v) : Bf16Buffer(v.size()) {
        std::vector<OperBf16> h(v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            h[i] = to_bf16(v[i]);
        cuda_ok(cudaMemcpy(p_, h.data(), bytes(), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    }
    ~Bf16Buffer() { cudaFree(p_); }
    Bf16Buffer(const Bf16Buffer&) = delete;
    Bf16Buffer& operator=(const Bf16Buffer&) = delete;
    OperBf16* get() const { return static_cast<OperBf16*>(p_); }
    std::vector<float> download() const {
        std::vector<OperBf16> h(n_);
        cuda_ok(cudaDeviceSynchronize(), "kernel");
        cuda_ok(cudaMemcpy(h.data(), p_, bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        std::vector<float> v(n_);
        for (std::size_t i = 0; i < n_; ++i)
            v[i] = from_bf16(h[i]);
        return v;
    }

  private:
    std::size_t bytes() const { return (n_ == 0 ? 1 : n_) * sizeof(OperBf16); }
    void* p_ = nullptr;
    std::size_t n_;
};

std::vector<double> widened(const std::vector<float>& v) {
    return std::vector<double>(v.begin(), v.end());
}

TEST_CASE("the bfloat16 forms of the materialised layer round the float32 forms to nearest even",
          "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    Rng rng(12);
    // Rounding itself, ties included: 1 + 2^-8 lies halfway between two bfloat16s and goes to the even one
    // (1), 1 + 3 * 2^-8 halfway too and goes up to the even 1 + 2^-6; 1 + 2^-8 + 2^-20 goes up; signed
    // zeros, a large value and a subnormal keep their bits as the rule gives them.
    const std::vector<float> ties = {
        1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f, 1.f + 0x1p-8f + 0x1p-20f, -1.f - 0x1p-8f, 0.f, -0.f, 3.0e38f,
        1e-40f};
    DeviceBuffer ties_d(ties);
    Bf16Buffer ties_h(ties.size());
    oper_to_bf16(ties_d.get(), ties_h.get(), ties.size());
    const std::vector<float> got_ties = ties_h.download();
    for (std::size_t i = 0; i < ties.size(); ++i) {
        INFO(ties[i]);
        CHECK(to_bf16(ties[i]) == to_bf16(got_ties[i]));
        CHECK(from_bf16(to_bf16(ties[i])) == got_ties[i]);
    }
    CHECK(got_ties[0] == 1.f);
    CHECK(got_ties[1] == 1.f + 0x1p-6f);
    CHECK(got_ties[2] == 1.f + 0x1p-7f);
    CHECK(got_ties[3] == -1.f);

    const OperStackGeometry s{2, 3, 6, 7, 3, 2, 1, 10, 10, true};
    const std::size_t frame = std::size_t(s.Hp) * s.Wp;
    const std::vector<float> x = uniform(std::size_t(s.N) * s.C * s.H * s.W, rng),
                             g = uniform(std::size_t(s.N) * s.Q * s.C * frame, rng);
    DeviceBuffer x_d(x), stack_d(g.size()), dx_d(x.size()), dx_h(x.size());
    stack_d.poison();
    dx_d.poison();
    dx_h.poison();
    Bf16Buffer stack_h(g.size());
    oper_power_stack(s, x_d.get(), stack_d.get());
    oper_power_stack(s, x_d.get(), stack_h.get());
    CHECK(stack_h.download() == rounded_bf16(stack_d.download()));
    // The chain rule from a bfloat16 gradient: as from the float32 one holding the same values.
    const std::vector<float> g_rounded = rounded_bf16(widened(g));
    DeviceBuffer g_d(g_rounded);
    Bf16Buffer g_h(g);
    oper_power_stack_backward(s, x_d.get(), g_d.get(), dx_d.get());
    oper_power_stack_backward(s, x_d.get(), g_h.get(), dx_h.get());
    CHECK(dx_h.download() == dx_d.download());

    const int q = 3, cout = 4, cin = 5, kk = 9;
    const std::vector<float> w = uniform(std::size_t(q) * cout * cin * kk, rng);
    DeviceBuffer w_d(w), ws_d(w.size()), back_d(w.size());
    ws_d.poison();
    back_d.poison();
    Bf16Buffer ws_h(w.size());
    oper_weights_stack(w_d.get(), ws_d.get(), q, cout, cin, kk);
    oper_weights_stack(w_d.get(), ws_h.get(), q, cout, cin, kk);
    CHECK(ws_h.download() == rounded_bf16(ws_d.download()));
    oper_weights_unstack(ws_h.get(), back_d.get(), q, cout, cin, kk);
    CHECK(widened(rounded_bf16(widened(w))) == back_d.download());

    const int n = 2, c = 3, hf = 7, wf = 6, top = 2, left = 3, ho = 6, wo = 4;
    const std::vector<float> full = uniform(std::size_t(n) * c * hf * wf, rng),
                             dy = uniform(std::size_t(n) * c * ho * wo, rng);
    const std::vector<float> full_rounded = rounded_bf16(widened(full));
    DeviceBuffer full_d(full_rounded), dy_d(dy), y_d(dy.size()), y_h(dy.size()), back_full(full.size());
    y_d.poison();
    y_h.poison();
    back_full.poison();
    Bf16Buffer full_h(full), uncropped_h(full.size());
    oper_crop(full_d.get(), y_d.get(), n, c, hf, wf, top, left, ho, wo);
    oper_crop(full_h.get(), y_h.get(), n, c, hf, wf, top, left, ho, wo);
    CHECK(y_h.download() == y_d.download());
    oper_uncrop(dy_d.get(), back_full.get(), n, c, hf, wf, top, left, ho, wo);
    oper_uncrop(dy_d.get(), uncropped_h.get(), n, c, hf, wf, top, left, ho, wo);
    CHECK(uncropped_h.download() == rounded_bf16(back_full.download()));

    // The bias and activation from a bfloat16 output into a float32 y: as in place on the same values.
    const int hw = 7;
    const std::vector<float> z = rounded_bf16(widened(uniform(std::size_t(n) * cout * hw, rng))),
                             b = uniform(std::size_t(q) * cout, rng);
    DeviceBuffer z_d(z), b_d(b), y_from_h(z.size());
    y_from_h.poison();
    Bf16Buffer z_h(z);
    oper_bias_activation(z_d.get(), b_d.get(), n, cout, hw, q, OperActivation::Tanh);
    oper_bias_activation(z_h.get(), y_from_h.get(), b_d.get(), n, cout, hw, q, OperActivation::Tanh);
    CHECK(y_from_h.download() == z_d.download());
    // No bias, no activation: still written, since y is not z.
    DeviceBuffer copied(z.size());
    copied.poison();
    oper_bias_activation(z_h.get(), copied.get(), nullptr, n, cout, hw, q, OperActivation::None);
    CHECK(widened(z) == copied.download());
    DeviceBuffer back_f(z.size());
    back_f.poison();
    oper_from_bf16(z_h.get(), back_f.get(), z.size());
    CHECK(widened(z) == back_f.download());
}

TEST_CASE("oper conv errors name the pass, the kernel requirement and the shapes", "[cuda][oper_conv]") {
    if (!gpu_or_skip()) return;
    const OperConvGeometry g = oper_conv_geometry_same(1, 4, 8, 8, 32, 3, 1, 2);
    DeviceBuffer x(std::size_t(g.N) * g.Cin * g.H * g.W), w(std::size_t(g.Q) * g.Cout * g.Cin * 9),
        y(std::size_t(g.N) * g.Cout * g.Hout * g.Wout);
    CHECK_THROWS_WITH(oper_conv_forward(g, x.get(), nullptr, nullptr, y.get()),
                      Catch::Contains("oper_conv_forward") && Catch::Contains("w is null"));
    CHECK_THROWS_WITH(oper_conv_forward(g, x.get(), w.get(), nullptr, y.get(), OperActivation::None,
                                        {OperVariant::TensorCore, OperPrecision::FP32, nullptr}),
                      Catch::Contains("TF32 or BF16"));
    if (oper_device_compute_capability() < 80)
        CHECK_THROWS_WITH(oper_conv_forward(g, x.get(), w.get(), nullptr, y.get(), OperActivation::None,
                                            {OperVariant::TensorCore, OperPrecision::TF32, nullptr}),
                          Catch::Contains("compute capability 8.0"));
    OperConvGeometry q7 = g;
    q7.Q = 7;
    CHECK_THROWS_WITH(oper_conv_forward(q7, x.get(), w.get(), nullptr, y.get(), OperActivation::None,
                                        {OperVariant::Tiled, OperPrecision::FP32, nullptr}),
                      Catch::Contains("Q <= 5"));
}

#endif  // R2C_WITH_CUDA

// Runs without a device: the geometry is checked before the device is touched.
TEST_CASE("the oper conv host API rejects invalid geometry with the shapes", "[oper_conv]") {
#ifdef R2C_WITH_CUDA
    OperConvGeometry g = oper_conv_geometry_same(2, 3, 7, 9, 5, 3, 2, 3);
    g.Wout = 6;
    float* p = nullptr;
    CHECK_THROWS_WITH(oper_conv_forward(g, p, p, p, p),
                      Catch::Contains("oper_conv_forward: invalid geometry x[2,3,7,9] -> y[2,5,4,6]"));
    g = oper_conv_transpose_geometry_same(1, 128, 16, 16, 3, 3, 2, 0);
    CHECK_THROWS_WITH(oper_conv_transpose_backward_weights(g, p, p, p, p),
                      Catch::Contains("Q must be at least 1"));
#else
    test::skip("built without CUDA (R2C_WITH_CUDA=OFF): the oper conv host API is not compiled");
#endif
}

#ifndef R2C_WITH_CUDA
TEST_CASE("oper conv kernels: forward, backward data and weights, every variant", "[cuda][oper_conv]") {
    test::skip("built without CUDA (R2C_WITH_CUDA=OFF)");
}
#endif
