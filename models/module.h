// Parameter containers and the layers R2C-GAN's networks are built from. Initialisation follows the Keras
// defaults the authors' code relies on: Glorot-uniform kernels, zero biases, InstanceNorm scale 1 offset 0.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace r2c {

// Owns named parameters (leaf tensors that require a gradient), in creation order.
class Module {
  public:
    virtual ~Module() = default;
    const NamedTensors& parameters() const { return params_; }
    std::int64_t num_parameters() const;
    void zero_grad();
    // Turns gradient recording for every parameter on or off (off for the networks a step does not train).
    void set_requires_grad(bool on);
    // Moves every parameter to `device`, or converts it to `dtype` (CPU), as a fresh leaf; gradients are
    // dropped.
    void to(Device device);
    void to(DType dtype);

    // Registers a parameter; `limit` > 0 draws uniform in [-limit, limit], otherwise fills with `fill`.
    Tensor add_param(const std::string& name, const Shape& shape, Rng& rng, double limit, double fill = 0.0);

  private:
    NamedTensors params_;
};

// Glorot-uniform bound for a kernel with the given fans.
double glorot_limit(std::int64_t fan_in, std::int64_t fan_out);

// Operational convolution (Q = 1: ordinary convolution). Weights [Q,Cout,Cin,k,k], biases [Q,Cout].
struct OperConv {
    OperConv() = default;
    OperConv(Module& m, const std::string& name, int q, int cin, int cout, int k, int stride, Padding padding,
             bool bias, Rng& rng);
    Tensor operator()(const Tensor& x, Activation act = Activation::None) const {
        return oper_conv2d(x, w, b, stride, padding, act);
    }
    Tensor w, b;
    int stride = 1;
    Padding padding;
};

// Transposed operational convolution with TensorFlow `same` padding. Weights [Q,Cin,Cout,k,k].
struct OperConvTranspose {
    OperConvTranspose() = default;
    OperConvTranspose(Module& m, const std::string& name, int q, int cin, int cout, int k, int stride,
                      bool bias, Rng& rng);
    Tensor operator()(const Tensor& x, Activation act = Activation::None) const {
        return oper_conv_transpose2d(x, w, b, stride, Padding::same(), act);
    }
    Tensor w, b;
    int stride = 1;
};

struct InstanceNorm {
    InstanceNorm() = default;
    InstanceNorm(Module& m, const std::string& name, int channels, Rng& rng);
    // act(IN(x) + residual), the residual optional.
    Tensor operator()(const Tensor& x, Activation act = Activation::None,
                      const Tensor& residual = Tensor()) const {
        return instance_norm(x, gamma, beta, 1e-3, act, residual);
    }
    Tensor gamma, beta;
};

struct Dense {
    Dense() = default;
    Dense(Module& m, const std::string& name, int in, int out, Rng& rng);
    Tensor operator()(const Tensor& x) const { return linear(x, w, b); }
    Tensor w, b;  // w [out, in]
};

}  // namespace r2c
