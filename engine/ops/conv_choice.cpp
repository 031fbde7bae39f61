// Auto's choice between the fused kernels and cuDNN for one pass and shape (engine/ops/conv_choice.h).
#ifdef R2C_WITH_CUDA
#include "engine/ops/conv_choice.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/graph.h"
#include "engine/ops.h"

namespace r2c::ops {

namespace {

// The choices made: for each key, whether cuDNN runs it; and the record cuda::conv_choices() returns.
class Choices {
  public:
    std::optional<bool> find(const std::vector<std::int64_t>& key) {
        std::lock_guard<std::mutex> lock(mu_);
        const auto it = cudnn_.find(key);
        if (it == cudnn_.end()) return std::nullopt;
        return it->second;
    }
    void add(const std::vector<std::int64_t>& key, const cuda::ConvChoice& c) {
        std::lock_guard<std::mutex> lock(mu_);
        cudnn_[key] = c.cudnn;
        record_.push_back(c);
    }
    std::vector<cuda::ConvChoice> record() {
        std::lock_guard<std::mutex> lock(mu_);
        return record_;
    }

  private:
    std::mutex mu_;
    std::map<std::vector<std::int64_t>, bool> cudnn_;
    std::vector<cuda::ConvChoice> record_;
};

Choices& choices() {
    static Choices c;
    return c;
}

constexpr int kTimedRuns = 3;

// Why `outputs` cannot stand for `reference`, or "" when they can. Waits for the device.
std::string disagreement(const std::vector<Tensor>& outputs, const std::vector<Tensor>& reference) {
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        if (!outputs[i].defined()) continue;
        const Tensor zeros = Tensor::zeros(reference[i].shape(), reference[i].dtype(), Device::CUDA);
        const double norm = mse(reference[i], zeros).item();
        if (!std::isfinite(norm)) continue;
        const double diff = mse(outputs[i], reference[i]).item();
        const double rel = norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? INFINITY : 0.0);
        if (!(rel <= kConvAgreement))
            return detail::concat("cuDNN's output ", i,
                                  " differs from the fused kernels' by a relative L2 of ", rel);
    }
    return "";
}

}  // namespace

void run_chosen(const std::vector<std::int64_t>& key, const std::string& pass, const std::string& shape,
                const std::vector<Tensor>& outputs, const std::function<void()>& fused,
                const std::function<void()>& cudnn) {
    if (const std::optional<bool> use_cudnn = choices().find(key)) return *use_cudnn ? cudnn() : fused();
    if (cuda::capturing()) return fused();
    cuda::ConvChoice choice{pass, shape, false, 0, 0, ""};
    fused();
    std::vector<Tensor> reference;
    for (const Tensor& t : outputs)
        reference.push_back(t.defined() ? t.clone() : Tensor());
    try {
        cudnn();
        choice.note = disagreement(outputs, reference);
    } catch (const Error& e) {
        choice.note = detail::concat("cuDNN failed: ", e.what());
    }
    if (!choice.note.empty()) {
        std::fprintf(stderr, "r2c: %s %s: %s; the fused kernels run it\n", pass.c_str(), shape.c_str(),
                     choice.note.c_str());
        choices().add(key, choice);
        return fused();
    }
    cuda::TimingEvent start, middle, end;
    for (int i = 0; i < kTimedRuns; ++i) {
        start.record();
        fused();
        middle.record();
        cudnn();
        end.record();
        choice.fused_ms += middle.ms_since(start) / kTimedRuns;
        choice.cudnn_ms += end.ms_since(middle) / kTimedRuns;
    }
    choice.cudnn = choice.cudnn_ms < choice.fused_ms;
    choices().add(key, choice);
    // The outputs are the chosen way's, as in every later run of this pass and shape.
    if (!choice.cudnn) fused();
}

}  // namespace r2c::ops

namespace r2c::cuda {

std::vector<ConvChoice> conv_choices() {
    return ops::choices().record();
}

}  // namespace r2c::cuda
#endif  // R2C_WITH_CUDA
