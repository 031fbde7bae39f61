#include "tests/support.h"

#include <stdlib.h>

#include <cmath>
#include <iostream>
#include <iterator>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace r2c::test {

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "r2c_test_XXXXXX").string();
    R2C_CHECK(mkdtemp(pattern.data()) != nullptr, "TempDir: mkdtemp failed for ", pattern);
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::new_file(const std::string& name) const {
    const std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    return p.string();
}

std::size_t TempDir::entries() const {
    return static_cast<std::size_t>(
        std::distance(std::filesystem::directory_iterator(path_), std::filesystem::directory_iterator()));
}

void skip(const std::string& why) {
    std::cout << "SKIPPED: " << why << std::endl;
}

Tensor rand(const Shape& shape, Rng& rng, double lo, double hi, bool requires_grad) {
    Tensor t = Tensor::uniform(shape, lo, hi, rng, DType::F64);
    t.set_requires_grad(requires_grad);
    return t;
}

double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
    R2C_CHECK(a.size() == b.size(), "rel_l2: sizes ", a.size(), " and ", b.size());
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    if (std::isnan(num)) return INFINITY;
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

double rel_l2(const Tensor& a, const Tensor& b) {
    R2C_CHECK(a.shape() == b.shape(), "rel_l2: shapes ", a.str(), " and ", b.str());
    return rel_l2(a.to_vector(), b.to_vector());
}

std::vector<double> gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, std::uint64_t seed, double eps) {
    for (const Tensor& t : inputs)
        R2C_CHECK(!t.defined() || t.dtype() == DType::F64, "gradcheck: inputs must be float64, got ",
                  t.str());
    Rng rng(seed);
    Tensor weights;
    auto objective = [&](const std::vector<Tensor>& xs) {
        Tensor y = f(xs);
        if (!weights.defined()) weights = Tensor::uniform(y.shape(), 0.5, 1.5, rng, DType::F64);
        return sum(mul(y, weights));
    };

    for (const Tensor& t : inputs)
        if (t.defined()) const_cast<Tensor&>(t).zero_grad();
    objective(inputs).backward();

    std::vector<double> errors;
    NoGradGuard no_grad;
    for (const Tensor& t : inputs) {
        if (!t.defined() || !t.requires_grad()) {
            errors.push_back(0.0);
            continue;
        }
        R2C_CHECK(t.grad().defined(), "gradcheck: no gradient reached an input of shape ", t.str());
        const std::vector<double> analytic = t.grad().to_vector();
        std::vector<double> numeric(analytic.size());
        double* p = const_cast<Tensor&>(t).data<double>();
        for (std::size_t i = 0; i < numeric.size(); ++i) {
            const double saved = p[i];
            p[i] = saved + eps;
            const double up = objective(inputs).item();
            p[i] = saved - eps;
            const double down = objective(inputs).item();
            p[i] = saved;
            numeric[i] = (up - down) / (2 * eps);
        }
        double num = 0, na = 0, nn = 0;
        for (std::size_t i = 0; i < numeric.size(); ++i) {
            num += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
            na += analytic[i] * analytic[i];
            nn += numeric[i] * numeric[i];
        }
        errors.push_back(std::isnan(num) ? INFINITY
                                         : std::sqrt(num) / std::max({std::sqrt(na), std::sqrt(nn), 1e-30}));
    }
    return errors;
}

double max_gradcheck_error(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, std::uint64_t seed, double eps) {
    double worst = 0;
    for (double e : gradcheck(f, inputs, seed, eps))
        worst = std::max(worst, e);
    return worst;
}

double max_disagreement(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                        const std::function<Tensor(const std::vector<Tensor>&)>& g,
                        const std::vector<Tensor>& inputs, std::uint64_t seed) {
    Rng rng(seed);
    const Tensor probe = f(inputs);
    const Tensor weights = Tensor::uniform(probe.shape(), 0.5, 1.5, rng, probe.dtype());
    const auto run = [&](const std::function<Tensor(const std::vector<Tensor>&)>& fn) {
        for (const Tensor& t : inputs)
            if (t.defined()) const_cast<Tensor&>(t).zero_grad();
        std::vector<Tensor> out{fn(inputs)};
        sum(mul(out[0], weights)).backward();
        for (const Tensor& t : inputs)
            out.push_back(t.defined() && t.requires_grad() ? t.grad() : Tensor());
        return out;
    };
    const std::vector<Tensor> a = run(f), b = run(g);
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        R2C_CHECK(a[i].defined() == b[i].defined(),
                  "max_disagreement: one function gives a gradient to input ", i - 1, " and the other none");
        if (a[i].defined()) worst = std::max(worst, rel_l2(b[i], a[i]));
    }
    return worst;
}

}  // namespace r2c::test
