// The R2C-GAN networks of the reference specification: generators that restore and classify, and
// PatchGAN discriminators, for the three methods of the paper.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "models/module.h"

namespace r2c {

enum class Method {
    Operational,         // R2C-GAN (Q): OpGenerator / OpDiscriminator
    Convolutional,       // R2C-GAN (CNN): deep ResNet generator, 4-layer discriminator
    ConvolutionalLight,  // R2C-GAN (CNN*): compact generator and discriminator
};
Method parse_method(const std::string& name);  // "operational", "convolutional", "convolutional-light"
const char* method_name(Method m);

struct GeneratorOutput {
    Tensor image;  // [N,3,H,W] in [-1,1]
    Tensor probs;  // [N,2] class probabilities; index 1 = COVID-19
};

class Generator : public Module {
  public:
    virtual GeneratorOutput forward(const Tensor& x) const = 0;
};

class Discriminator : public Module {
  public:
    virtual Tensor forward(const Tensor& x) const = 0;  // [N,1,H/8,W/8] patch scores
};

// q is used by the operational method only.
std::unique_ptr<Generator> make_generator(Method method, int q, Rng& rng);
std::unique_ptr<Discriminator> make_discriminator(Method method, int q, Rng& rng);

// The parameters the class output depends on (Table V's "classify only"), found on the recorded graph of
// a small forward pass.
std::int64_t num_classify_parameters(const Generator& g);

}  // namespace r2c
