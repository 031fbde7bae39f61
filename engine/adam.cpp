#include "engine/adam.h"

#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "engine/graph.h"
#ifdef R2C_WITH_CUDA
#include "kernels/adam.h"
#endif

namespace r2c {

namespace {

// float64 holds every integer up to 2^53 exactly, far beyond any training run's step count.
constexpr double kMaxExactIterations = 9007199254740992.0;

// The scalar factors of one update, rounded to the parameter's dtype as Keras casts its hyperparameters
// to the variable's dtype before calling the kernel.
template <typename T>
struct Coefficients {
    T alpha;
    T one_minus_beta1;
    T one_minus_beta2;
    T epsilon;
};

template <typename T>
Coefficients<T> coefficients(double lr, const AdamOptions& o, std::int64_t t) {
    const T beta1 = static_cast<T>(o.beta1), beta2 = static_cast<T>(o.beta2);
    const T step = static_cast<T>(t);
    const T beta1_power = std::pow(beta1, step), beta2_power = std::pow(beta2, step);
    const T alpha = static_cast<T>(lr) * std::sqrt(T(1) - beta2_power) / (T(1) - beta1_power);
    return {alpha, T(1) - beta1, T(1) - beta2, static_cast<T>(o.epsilon)};
}

template <typename T>
void apply_update(Tensor& param, Tensor& m_t, Tensor& v_t, const Coefficients<T>& c) {
    T* p = param.data<T>();
    T* m = m_t.data<T>();
    T* v = v_t.data<T>();
    const Tensor grad = param.grad();
    const T* g = grad.data<T>();
    const std::int64_t n = param.numel();
#pragma omp parallel for
    for (std::int64_t k = 0; k < n; ++k) {
        m[k] += (g[k] - m[k]) * c.one_minus_beta1;
        v[k] += (g[k] * g[k] - v[k]) * c.one_minus_beta2;
        p[k] -= (m[k] * c.alpha) / (std::sqrt(v[k]) + c.epsilon);
    }
}

NamedTensors named_moments(const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                           const std::string& prefix) {
    NamedTensors out;
    for (std::size_t i = 0; i < m.size(); ++i) {
        out.emplace_back(prefix + "m." + std::to_string(i), m[i]);
        out.emplace_back(prefix + "v." + std::to_string(i), v[i]);
    }
    return out;
}

std::size_t count_with_prefix(const SafetensorsFile& file, const std::string& prefix) {
    std::size_t n = 0;
    const auto& tensors = file.tensors;
    for (auto it = tensors.lower_bound(prefix); it != tensors.end() && it->first.rfind(prefix, 0) == 0; ++it)
        ++n;
    return n;
}

std::int64_t read_iterations(const SafetensorsFile& file, const std::string& name) {
    const Tensor& t = file.at(name);
    R2C_CHECK(t.dtype() == DType::F64 && t.shape() == Shape{1}, "Adam::load_state: '", file.origin,
              "': ", name, " is ", t.str(), ", expected float64[1]");
    const double value = t.item();
    R2C_CHECK(value >= 0 && value <= kMaxExactIterations && value == std::floor(value), "Adam::load_state: '",
              file.origin, "': ", name, " = ", value, " is not an iteration count");
    return static_cast<std::int64_t>(value);
}

// Leaves a step's float32 scalars where a captured update copies them from when it runs.
void write_replay_scalars(cuda::PinnedBuffer& to, const Coefficients<float>& c) {
    const float values[4] = {c.alpha, c.one_minus_beta1, c.one_minus_beta2, c.epsilon};
    std::memcpy(to.data(), values, sizeof values);
}

}  // namespace

LinearDecay::LinearDecay(double initial_lr, std::int64_t total_steps, std::int64_t decay_start_step)
    : initial_lr_(initial_lr), total_steps_(total_steps), decay_start_step_(decay_start_step) {
    R2C_CHECK(decay_start_step >= 0 && decay_start_step < total_steps,
              "LinearDecay: need 0 <= decay_start_step (", decay_start_step, ") < total_steps (", total_steps,
              ")");
}

double LinearDecay::operator()(std::int64_t step) const {
    if (step < decay_start_step_) return initial_lr_;
    if (step >= total_steps_) return 0.0;
    return initial_lr_ * (1.0 - static_cast<double>(step - decay_start_step_) /
                                    static_cast<double>(total_steps_ - decay_start_step_));
}

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
    R2C_CHECK(!params_.empty(), "Adam: no parameters to optimise");
    R2C_CHECK(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1,
              "Adam: betas must lie in [0, 1); got beta1 ", options_.beta1, ", beta2 ", options_.beta2);
    std::set<const TensorImpl*> seen;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        R2C_CHECK(p.defined() && p.is_leaf() && p.requires_grad(), "Adam: parameter ", i,
                  " is not a leaf tensor that requires a gradient");
        // A tensor listed twice would be updated twice per step.
        R2C_CHECK(seen.insert(p.impl_ptr().get()).second, "Adam: parameter ", i, " is listed twice");
        m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
        v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
        // Made here, not in a capture: a capture's memory belongs to its graphs.
        if (p.device() == Device::CUDA && !replay_scalars_) {
            replay_scalars_ = std::make_unique<cuda::PinnedBuffer>(4 * sizeof(float));
            device_scalars_ = Tensor::empty({4}, DType::F32, Device::CUDA);
        }
    }
}

double Adam::lr() const {
    return options_.schedule ? options_.schedule(iterations_) : options_.lr;
}

void Adam::step(const Tensor& skip) {
    // Every check comes before the first write, so a rejected step leaves the whole state unchanged.
    if (skip.defined())
        R2C_CHECK(skip.numel() == 1 && skip.dtype() == DType::F32 && skip.device() == params_[0].device(),
                  "Adam::step: the skip flag is ", skip.str(), ", expected float32[1] on ",
                  device_name(params_[0].device()));
    bool any_grad = false;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor g = params_[i].grad();
        if (!g.defined()) continue;
        any_grad = true;
        R2C_CHECK(!skip.defined() || params_[i].device() == skip.device(), "Adam::step: parameter ", i,
                  " is ", params_[i].str(), " but the skip flag is on ", device_name(skip.device()));
        R2C_CHECK(params_[i].device() == Device::CPU || params_[i].dtype() == DType::F32,
                  "Adam::step: parameter ", i, " is ", params_[i].str(), "; CUDA parameters must be float32");
        R2C_CHECK(g.shape() == params_[i].shape() && g.dtype() == params_[i].dtype() &&
                      g.device() == params_[i].device(),
                  "Adam::step: parameter ", i, " is ", params_[i].str(), " but its gradient is ", g.str());
    }
    R2C_CHECK(any_grad, "Adam::step: no parameter has a gradient");

    const double rate = lr();
    const std::int64_t t = iterations_ + 1;
    if (skip.defined() && skip.device() == Device::CPU && skip.item() != 0) {
        iterations_ = t;
        return;
    }
#ifdef R2C_WITH_CUDA
    std::vector<cuda::AdamTensor> on_device;
#endif
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor g = params_[i].grad();
        if (!g.defined()) continue;
#ifdef R2C_WITH_CUDA
        if (params_[i].device() == Device::CUDA) {
            const auto f = [](const Tensor& x) { return static_cast<float*>(x.raw_data()); };
            on_device.push_back({f(params_[i]), f(m_[i]), f(v_[i]), f(g), params_[i].numel()});
            continue;
        }
#endif
        if (params_[i].dtype() == DType::F32)
            apply_update(params_[i], m_[i], v_[i], coefficients<float>(rate, options_, t));
        else
            apply_update(params_[i], m_[i], v_[i], coefficients<double>(rate, options_, t));
    }
#ifdef R2C_WITH_CUDA
    if (!on_device.empty()) {
        const Coefficients<float> c = coefficients<float>(rate, options_, t);
        const cuda::AdamCoefficients* device_c = nullptr;
        if (cuda::capturing()) {
            static_assert(sizeof(cuda::AdamCoefficients) == 4 * sizeof(float), "four float scalars");
            captured_ = true;
            write_replay_scalars(*replay_scalars_, c);
            replay_scalars_->upload(device_scalars_.raw_data());
            device_c = static_cast<const cuda::AdamCoefficients*>(device_scalars_.raw_data());
        }
        cuda::adam_update(on_device.data(), static_cast<int>(on_device.size()),
                          {c.alpha, c.one_minus_beta1, c.one_minus_beta2, c.epsilon}, device_c,
                          skip.defined() ? static_cast<const float*>(skip.raw_data()) : nullptr);
    }
#endif
    iterations_ = t;
}

void Adam::step_replayed() {
    R2C_CHECK(captured_, "Adam::step_replayed: no step() was captured into a CUDA graph");
    write_replay_scalars(*replay_scalars_, coefficients<float>(lr(), options_, iterations_ + 1));
    ++iterations_;
}

void Adam::uncount_step() {
    R2C_CHECK(iterations_ > 0, "Adam::uncount_step: no step to take back");
    --iterations_;
}

void Adam::zero_grad() {
    for (Tensor& p : params_)
        p.zero_grad();
}

NamedTensors Adam::state(const std::string& prefix) const {
    NamedTensors out = named_moments(m_, v_, prefix);
    out.emplace_back(prefix + "iterations",
                     Tensor::from_vector({static_cast<double>(iterations_)}, {1}, DType::F64));
    return out;
}

void Adam::load_state(const SafetensorsFile& file, const std::string& prefix) {
    for (const char* moment : {"m.", "v."}) {
        const std::size_t found = count_with_prefix(file, prefix + moment);
        R2C_CHECK(found == params_.size(), "Adam::load_state: '", file.origin, "' holds ", found,
                  " tensors named ", prefix, moment, "<i>, the optimiser has ", params_.size(),
                  " parameters");
    }
    const std::int64_t iterations = read_iterations(file, prefix + "iterations");
    load_tensors_into(file, named_moments(m_, v_, prefix));
    iterations_ = iterations;
}

}  // namespace r2c
