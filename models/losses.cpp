#include "models/losses.h"

namespace r2c {

namespace {

// mean((x - value)^2): the LSGAN target of a patch map.
Tensor mse_to(const Tensor& x, double value) {
    return mse(x, Tensor::full(x.shape(), value, x.dtype(), x.device()));
}

Tensor weighted_sum(const std::vector<std::pair<double, Tensor>>& parts) {
    Tensor total;
    for (const auto& [weight, t] : parts) {
        const Tensor term = weight == 1.0 ? t : mul_scalar(t, weight);
        total = total.defined() ? add(total, term) : term;
    }
    return total;
}

}  // namespace

GeneratorPass generator_loss(const R2CNetworks& nets, const Tensor& A, const Tensor& B, const Tensor& cA,
                             const Tensor& cB, const LossWeights& w) {
    const GeneratorOutput A2B = nets.G->forward(A);
    const GeneratorOutput B2A = nets.F->forward(B);
    const GeneratorOutput A2B2A = nets.F->forward(A2B.image);
    const GeneratorOutput B2A2B = nets.G->forward(B2A.image);
    const GeneratorOutput A2A = nets.F->forward(A);
    const GeneratorOutput B2B = nets.G->forward(B);

    GeneratorPass pass;
    auto& t = pass.loss.terms;
    t = {
        {"g_adv_A2B", mse_to(nets.D_B->forward(A2B.image), 1.0)},
        {"g_adv_B2A", mse_to(nets.D_A->forward(B2A.image), 1.0)},
        {"class_A2B", categorical_crossentropy(A2B.probs, cA)},
        {"class_B2A", categorical_crossentropy(B2A.probs, cB)},
        {"cycle_A2B2A", mae(A, A2B2A.image)},
        {"cycle_B2A2B", mae(B, B2A2B.image)},
        {"class_A2B2A", categorical_crossentropy(A2B2A.probs, cA)},
        {"class_B2A2B", categorical_crossentropy(B2A2B.probs, cB)},
        {"id_A2A", mae(A, A2A.image)},
        {"id_B2B", mae(B, B2B.image)},
        {"class_A2A", categorical_crossentropy(A2A.probs, cA)},
        {"class_B2B", categorical_crossentropy(B2B.probs, cB)},
    };
    pass.loss.total = weighted_sum({
        {1.0, t[0].second},
        {1.0, t[1].second},
        {w.class_weight, t[2].second},
        {w.class_weight, t[3].second},
        {w.cycle, t[4].second},
        {w.cycle, t[5].second},
        {w.cycle * 0.01, t[6].second},
        {w.cycle * 0.01, t[7].second},
        {w.identity, t[8].second},
        {w.identity, t[9].second},
        {w.identity * 0.02, t[10].second},
        {w.identity * 0.02, t[11].second},
    });
    pass.A2B = A2B.image.detach();
    pass.B2A = B2A.image.detach();
    return pass;
}

LossTerms discriminator_loss(const R2CNetworks& nets, const Tensor& A, const Tensor& B,
                             const Tensor& B2A_fake, const Tensor& A2B_fake) {
    LossTerms l;
    l.terms = {
        {"d_A_real", mse_to(nets.D_A->forward(A), 1.0)},
        {"d_A_fake", mse_to(nets.D_A->forward(B2A_fake), 0.0)},
        {"d_B_real", mse_to(nets.D_B->forward(B), 1.0)},
        {"d_B_fake", mse_to(nets.D_B->forward(A2B_fake), 0.0)},
    };
    l.total = weighted_sum({{1.0, l.terms[0].second},
                            {1.0, l.terms[1].second},
                            {1.0, l.terms[2].second},
                            {1.0, l.terms[3].second}});
    return l;
}

}  // namespace r2c
