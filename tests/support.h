// Shared test helpers: visible skips, random tensors, finite-difference gradient checks, comparisons.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace r2c::test {

// Prints "SKIPPED: <why>"; CTest reports such a test as skipped. Use as: return skip("...");
void skip(const std::string& why);

// A fresh, uniquely named folder under the system's temporary directory, removed with everything in it
// when the object goes out of scope.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string str() const { return path_.string(); }
    // Path of `name` inside the folder; new_file() also creates the subfolders `name` names.
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    std::string new_file(const std::string& name) const;
    std::size_t entries() const;  // files and folders directly inside

  private:
    std::filesystem::path path_;
};

// Random float64 CPU tensor with entries uniform in [lo, hi), requiring a gradient if asked.
Tensor rand(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0, bool requires_grad = true);

// Central finite-difference check of every input's gradient, in float64.
// f maps the inputs to a tensor; the checked scalar is sum(f(x) * R) for a fixed random R.
// Returns, for each input that requires a gradient, ||analytic - numeric||_2 / max(||analytic||_2,
// ||numeric||_2, 1e-30); inputs not requiring a gradient get 0.
std::vector<double> gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, std::uint64_t seed = 1, double eps = 1e-6);

// Largest gradcheck error over all inputs.
double max_gradcheck_error(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, std::uint64_t seed = 1, double eps = 1e-6);

// Largest rel_l2 difference between f and g on the same inputs, over the outputs and the gradients of
// sum(out * R) (R fixed, random) with respect to every input that requires one: 0 when g computes
// exactly what f does, forward and backward.
double max_disagreement(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                        const std::function<Tensor(const std::vector<Tensor>&)>& g,
                        const std::vector<Tensor>& inputs, std::uint64_t seed = 1);

// ||a - b||_2 / max(||b||_2, 1e-30), over all elements (shapes must match).
double rel_l2(const Tensor& a, const Tensor& b);
double rel_l2(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace r2c::test
