// The R2C-GAN objectives of one training iteration (Algorithm 1), term by term.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "models/networks.h"

namespace r2c {

// lambda (cycle), beta (identity), gamma (class). The cycle and identity class terms carry the fixed
// factors 0.01 and 0.02 inside lambda and beta, as the authors' code has them, so that with the defaults
// every cross-entropy term weighs 0.1 overall.
struct LossWeights {
    double cycle = 10.0;
    double identity = 5.0;
    double class_weight = 0.1;
};

// Named scalar terms, in a fixed order, and their weighted total (the tensor to differentiate).
struct LossTerms {
    std::vector<std::pair<std::string, Tensor>> terms;
    Tensor total;
};

// The four networks of the cycle: G = A -> B (poor -> high quality), F = B -> A, and a discriminator per
// domain.
struct R2CNetworks {
    std::unique_ptr<Generator> G, F;
    std::unique_ptr<Discriminator> D_A, D_B;
};

// What the generator pass produces besides its loss: the translated images the discriminator step needs.
struct GeneratorPass {
    LossTerms loss;
    Tensor A2B, B2A;  // detached
};

// L_G for real images A, B ([N,3,H,W]) with one-hot labels cA, cB ([N,2]).
GeneratorPass generator_loss(const R2CNetworks& nets, const Tensor& A, const Tensor& B, const Tensor& cA,
                             const Tensor& cB, const LossWeights& w);

// L_D on the real images and the (pooled) fakes.
LossTerms discriminator_loss(const R2CNetworks& nets, const Tensor& A, const Tensor& B,
                             const Tensor& B2A_fake, const Tensor& A2B_fake);

}  // namespace r2c
