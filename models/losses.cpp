#include "models/losses.h"

namespace r2c {

namespace {

// mean((x - value)^2): the LSGAN target of a patch map.
Tensor mse_to(const Tensor& x, double value) {
    return mse(x, Tensor::full(x.shape(), value, x.dtype(), x.device()));
}

// net on each input, in one call on the inputs joined along the batch: every layer of the generators and
// discriminators works per sample (instance norm, global max pool, softmax), so each output is the one a
// call of its own would give, from fewer and larger kernels. Gradients flow back to every input.
std::vector<GeneratorOutput> forward_joined(const Generator& net, const std::vector<Tensor>& inputs) {
    const GeneratorOutput all = net.forward(cat(inputs));
    std::vector<GeneratorOutput> out;
    std::int64_t begin = 0;
    for (const Tensor& x : inputs) {
        out.push_back({narrow(all.image, begin, x.dim(0)), narrow(all.probs, begin, x.dim(0))});
        begin += x.dim(0);
    }
    return out;
}
std::pair<Tensor, Tensor> forward_joined(const Discriminator& net, const Tensor& x, const Tensor& y) {
    const Tensor both = net.forward(cat({x, y}));
    return {narrow(both, 0, x.dim(0)), narrow(both, x.dim(0), y.dim(0))};
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
    // Six generator passes in three calls: G on A and B; F on B, A and G(A); G on F(B).
    const std::vector<GeneratorOutput> g = forward_joined(*nets.G, {A, B});
    const GeneratorOutput &A2B = g[0], &B2B = g[1];
    const std::vector<GeneratorOutput> f = forward_joined(*nets.F, {B, A, A2B.image});
    const GeneratorOutput &B2A = f[0], &A2A = f[1], &A2B2A = f[2];
    const GeneratorOutput B2A2B = nets.G->forward(B2A.image);

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
    const auto [A_real, A_fake] = forward_joined(*nets.D_A, A, B2A_fake);
    const auto [B_real, B_fake] = forward_joined(*nets.D_B, B, A2B_fake);
    LossTerms l;
    l.terms = {
        {"d_A_real", mse_to(A_real, 1.0)},
        {"d_A_fake", mse_to(A_fake, 0.0)},
        {"d_B_real", mse_to(B_real, 1.0)},
        {"d_B_fake", mse_to(B_fake, 0.0)},
    };
    l.total = weighted_sum({{1.0, l.terms[0].second},
                            {1.0, l.terms[1].second},
                            {1.0, l.terms[2].second},
                            {1.0, l.terms[3].second}});
    return l;
}

}  // namespace r2c
