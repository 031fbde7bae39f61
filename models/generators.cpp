// The three generators. Each returns the restored image and the class probabilities.
#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "models/networks.h"

namespace r2c {

namespace {

// Global max pool -> Dense(C -> 2) -> softmax.
struct ClassHead {
    ClassHead() = default;
    ClassHead(Module& m, int channels, Rng& rng) : dense(m, "head.dense", channels, 2, rng) {}
    Tensor operator()(const Tensor& h) const { return softmax(dense(global_max_pool(h))); }
    Dense dense;
};

class OpGenerator : public Generator {
  public:
    OpGenerator(int q, Rng& rng)
        : enc_(*this, "enc.conv", q, 3, 128, 3, 2, Padding::same(), false, rng),
          enc_norm_(*this, "enc.norm", 128, rng),
          res_conv1_(*this, "res.conv1", q, 128, 128, 3, 1, Padding::reflect(1), false, rng),
          res_norm1_(*this, "res.norm1", 128, rng),
          res_conv2_(*this, "res.conv2", q, 128, 128, 3, 1, Padding::reflect(1), false, rng),
          res_norm2_(*this, "res.norm2", 128, rng),
          head_(*this, 128, rng),
          dec_(*this, "dec.convt", q, 128, 3, 3, 2, true, rng) {}

    GeneratorOutput forward(const Tensor& x) const override {
        const Tensor e = enc_norm_(enc_(x));
        const Tensor t = res_norm1_(res_conv1_(tanh(e)), Activation::Tanh);
        // tanh(e + IN(conv2(t))): the block adds its input, not tanh of it (as published).
        const Tensor h = res_norm2_(res_conv2_(t), Activation::Tanh, e);
        return {dec_(h, Activation::Tanh), head_(h)};
    }

  private:
    OperConv enc_;
    InstanceNorm enc_norm_;
    OperConv res_conv1_;
    InstanceNorm res_norm1_;
    OperConv res_conv2_;
    InstanceNorm res_norm2_;
    ClassHead head_;
    OperConvTranspose dec_;
};

// CycleGAN's residual block: x + IN(conv(pad(relu(IN(conv(pad(x))))))), the pads reflected.
struct ResBlock {
    ResBlock(Module& m, const std::string& name, int channels, Rng& rng)
        : conv1(m, name + ".conv1", 1, channels, channels, 3, 1, Padding::reflect(1), false, rng),
          norm1(m, name + ".norm1", channels, rng),
          conv2(m, name + ".conv2", 1, channels, channels, 3, 1, Padding::reflect(1), false, rng),
          norm2(m, name + ".norm2", channels, rng) {}
    Tensor operator()(const Tensor& x) const {
        const Tensor h = norm1(conv1(x), Activation::Relu);
        return norm2(conv2(h), Activation::None, x);
    }
    OperConv conv1;
    InstanceNorm norm1;
    OperConv conv2;
    InstanceNorm norm2;
};

class ConvGenerator : public Generator {
  public:
    explicit ConvGenerator(Rng& rng)
        : in_(*this, "enc.conv0", 1, 3, 64, 7, 1, Padding::reflect(3), false, rng),
          in_norm_(*this, "enc.norm0", 64, rng),
          down1_(*this, "enc.conv1", 1, 64, 128, 3, 2, Padding::same(), false, rng),
          down1_norm_(*this, "enc.norm1", 128, rng),
          down2_(*this, "enc.conv2", 1, 128, 256, 3, 2, Padding::same(), false, rng),
          down2_norm_(*this, "enc.norm2", 256, rng) {
        for (int i = 0; i < 5; ++i)
            blocks_.emplace_back(*this, "res" + std::to_string(i), 256, rng);
        head_ = ClassHead(*this, 256, rng);
        for (int i = 5; i < 9; ++i)
            blocks_.emplace_back(*this, "res" + std::to_string(i), 256, rng);
        up1_ = OperConvTranspose(*this, "dec.convt1", 1, 256, 128, 3, 2, false, rng);
        up1_norm_ = InstanceNorm(*this, "dec.norm1", 128, rng);
        up2_ = OperConvTranspose(*this, "dec.convt2", 1, 128, 64, 3, 2, false, rng);
        up2_norm_ = InstanceNorm(*this, "dec.norm2", 64, rng);
        out_ = OperConv(*this, "dec.conv", 1, 64, 3, 7, 1, Padding::reflect(3), true, rng);
    }

    GeneratorOutput forward(const Tensor& x) const override {
        Tensor h = in_norm_(in_(x), Activation::Relu);
        h = down1_norm_(down1_(h), Activation::Relu);
        h = down2_norm_(down2_(h), Activation::Relu);
        Tensor probs;
        for (std::size_t i = 0; i < blocks_.size(); ++i) {
            h = blocks_[i](h);
            if (i == 4) probs = head_(h);  // the class head is taken after the 5th block
        }
        h = up1_norm_(up1_(h), Activation::Relu);
        h = up2_norm_(up2_(h), Activation::Relu);
        return {out_(h, Activation::Tanh), probs};
    }

  private:
    OperConv in_;
    InstanceNorm in_norm_;
    OperConv down1_;
    InstanceNorm down1_norm_;
    OperConv down2_;
    InstanceNorm down2_norm_;
    std::vector<ResBlock> blocks_;
    ClassHead head_;
    OperConvTranspose up1_;
    InstanceNorm up1_norm_;
    OperConvTranspose up2_;
    InstanceNorm up2_norm_;
    OperConv out_;
};

class ConvCompGenerator : public Generator {
  public:
    explicit ConvCompGenerator(Rng& rng)
        : enc_(*this, "enc.conv", 1, 3, 128, 3, 2, Padding::same(), false, rng),
          enc_norm_(*this, "enc.norm", 128, rng),
          block_(*this, "res", 128, rng),
          head_(*this, 128, rng),
          dec_(*this, "dec.convt", 1, 128, 3, 3, 2, true, rng) {}

    GeneratorOutput forward(const Tensor& x) const override {
        const Tensor h = block_(enc_norm_(enc_(x), Activation::Relu));
        return {dec_(h, Activation::Tanh), head_(h)};
    }

  private:
    OperConv enc_;
    InstanceNorm enc_norm_;
    ResBlock block_;
    ClassHead head_;
    OperConvTranspose dec_;
};

}  // namespace

Method parse_method(const std::string& name) {
    if (name == "operational") return Method::Operational;
    if (name == "convolutional") return Method::Convolutional;
    if (name == "convolutional-light") return Method::ConvolutionalLight;
    throw Error("unknown method '" + name + "' (expected operational, convolutional or convolutional-light)");
}

const char* method_name(Method m) {
    switch (m) {
        case Method::Operational:
            return "operational";
        case Method::Convolutional:
            return "convolutional";
        case Method::ConvolutionalLight:
            return "convolutional-light";
    }
    return "?";
}

std::unique_ptr<Generator> make_generator(Method method, int q, Rng& rng) {
    R2C_CHECK(q >= 1, "make_generator: q must be >= 1, got ", q);
    switch (method) {
        case Method::Operational:
            return std::make_unique<OpGenerator>(q, rng);
        case Method::Convolutional:
            return std::make_unique<ConvGenerator>(rng);
        case Method::ConvolutionalLight:
            return std::make_unique<ConvCompGenerator>(rng);
    }
    throw Error("make_generator: unknown method");
}

std::int64_t num_classify_parameters(const Generator& g) {
    const GeneratorOutput out = g.forward(Tensor::zeros({1, 3, 16, 16}));
    std::int64_t n = 0;
    for (const auto& t : reachable_leaves(out.probs))
        n += shape_numel(t->shape);
    return n;
}

}  // namespace r2c
