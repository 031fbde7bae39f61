// PatchGAN discriminators: 256x256 input -> 32x32 patch scores.
#include "models/networks.h"

namespace r2c {

namespace {

// OpDiscriminator(Q) and, with Q = 1 and no final activation, ConvCompDiscriminator: the same three layers.
class CompactDiscriminator : public Discriminator {
  public:
    CompactDiscriminator(int q, bool final_activation, Rng& rng)
        : c1_(*this, "conv1", q, 3, 64, 4, 2, Padding::same(), true, rng),
          c2_(*this, "conv2", q, 64, 128, 4, 4, Padding::same(), false, rng),
          n2_(*this, "norm2", 128, rng),
          c3_(*this, "conv3", q, 128, 1, 4, 1, Padding::same(), true, rng),
          final_activation_(final_activation) {}

    Tensor forward(const Tensor& x) const override {
        const Tensor h = n2_(c2_(c1_(x, Activation::LeakyRelu)), Activation::LeakyRelu);
        return c3_(h, final_activation_ ? Activation::LeakyRelu : Activation::None);
    }

  private:
    OperConv c1_, c2_;
    InstanceNorm n2_;
    OperConv c3_;
    bool final_activation_;
};

class ConvDiscriminator : public Discriminator {
  public:
    explicit ConvDiscriminator(Rng& rng)
        : c1_(*this, "conv1", 1, 3, 64, 4, 2, Padding::same(), true, rng),
          c2_(*this, "conv2", 1, 64, 128, 4, 2, Padding::same(), false, rng),
          n2_(*this, "norm2", 128, rng),
          c3_(*this, "conv3", 1, 128, 256, 4, 2, Padding::same(), false, rng),
          n3_(*this, "norm3", 256, rng),
          c4_(*this, "conv4", 1, 256, 512, 4, 1, Padding::same(), false, rng),
          n4_(*this, "norm4", 512, rng),
          c5_(*this, "conv5", 1, 512, 1, 4, 1, Padding::same(), true, rng) {}

    Tensor forward(const Tensor& x) const override {
        Tensor h = c1_(x, Activation::LeakyRelu);
        h = n2_(c2_(h), Activation::LeakyRelu);
        h = n3_(c3_(h), Activation::LeakyRelu);
        h = n4_(c4_(h), Activation::LeakyRelu);
        return c5_(h);
    }

  private:
    OperConv c1_, c2_;
    InstanceNorm n2_;
    OperConv c3_;
    InstanceNorm n3_;
    OperConv c4_;
    InstanceNorm n4_;
    OperConv c5_;
};

}  // namespace

std::unique_ptr<Discriminator> make_discriminator(Method method, int q, Rng& rng) {
    R2C_CHECK(q >= 1, "make_discriminator: q must be >= 1, got ", q);
    switch (method) {
        case Method::Operational:
            return std::make_unique<CompactDiscriminator>(q, true, rng);
        case Method::Convolutional:
            return std::make_unique<ConvDiscriminator>(rng);
        case Method::ConvolutionalLight:
            return std::make_unique<CompactDiscriminator>(1, false, rng);
    }
    throw Error("make_discriminator: unknown method");
}

}  // namespace r2c
