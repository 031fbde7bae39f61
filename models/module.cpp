#include "models/module.h"

#include <cmath>

namespace r2c {

std::int64_t Module::num_parameters() const {
    std::int64_t n = 0;
    for (const auto& [name, t] : params_)
        n += t.numel();
    return n;
}

void Module::zero_grad() {
    for (auto& [name, t] : params_)
        t.zero_grad();
}

void Module::set_requires_grad(bool on) {
    for (auto& [name, t] : params_)
        t.set_requires_grad(on);
}

namespace {

// Converts in place (the TensorImpl keeps its identity), because layers and optimisers hold handles to
// the same parameters.
template <typename Target>
void convert_params(NamedTensors& params, Target target) {
    for (auto& [name, t] : params) {
        const Tensor moved = t.detach().to(target);
        TensorImpl& impl = t.impl();
        impl.storage = moved.impl().storage;
        impl.dtype = moved.dtype();
        impl.device = moved.device();
        impl.grad.reset();
    }
}

}  // namespace

void Module::to(Device device) {
    convert_params(params_, device);
}

void Module::to(DType dtype) {
    convert_params(params_, dtype);
}

Tensor Module::add_param(const std::string& name, const Shape& shape, Rng& rng, double limit, double fill) {
    Tensor t = limit > 0 ? Tensor::uniform(shape, -limit, limit, rng) : Tensor::full(shape, fill);
    t.set_requires_grad(true);
    params_.emplace_back(name, t);
    return t;
}

double glorot_limit(std::int64_t fan_in, std::int64_t fan_out) {
    return std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
}

OperConv::OperConv(Module& m, const std::string& name, int q, int cin, int cout, int k, int stride_,
                   Padding padding_, bool bias, Rng& rng)
    : stride(stride_), padding(padding_) {
    w = m.add_param(name + ".w", {q, cout, cin, k, k}, rng, glorot_limit(cin * k * k, cout * k * k));
    if (bias) b = m.add_param(name + ".b", {q, cout}, rng, 0.0);
}

OperConvTranspose::OperConvTranspose(Module& m, const std::string& name, int q, int cin, int cout, int k,
                                     int stride_, bool bias, Rng& rng)
    : stride(stride_) {
    w = m.add_param(name + ".w", {q, cin, cout, k, k}, rng, glorot_limit(cout * k * k, cin * k * k));
    if (bias) b = m.add_param(name + ".b", {q, cout}, rng, 0.0);
}

InstanceNorm::InstanceNorm(Module& m, const std::string& name, int channels, Rng& rng) {
    gamma = m.add_param(name + ".gamma", {channels}, rng, 0.0, 1.0);
    beta = m.add_param(name + ".beta", {channels}, rng, 0.0, 0.0);
}

Dense::Dense(Module& m, const std::string& name, int in, int out, Rng& rng) {
    w = m.add_param(name + ".w", {out, in}, rng, glorot_limit(in, out));
    b = m.add_param(name + ".b", {out}, rng, 0.0);
}

}  // namespace r2c
