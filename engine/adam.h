// The Adam optimiser exactly as Keras 2.4 runs it (TensorFlow's ResourceApplyAdam kernel), and the
// linear learning-rate decay of the CycleGAN-TF2 training script the R2C-GAN authors build on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace r2c {

// Learning rate as a function of the optimiser's iteration count before the update (Keras passes
// `iterations` to a LearningRateSchedule).
using LrSchedule = std::function<double(std::int64_t step)>;

// initial_lr while step < decay_start_step, then linear down to 0 at total_steps:
// initial_lr * (1 - (step - decay_start_step) / (total_steps - decay_start_step)).
// Steps past total_steps give 0 rather than the negative rate the formula would extrapolate to.
// Evaluated in double (CycleGAN-TF2 evaluates it in float32; the two agree to float32 rounding).
class LinearDecay {
  public:
    LinearDecay(double initial_lr, std::int64_t total_steps, std::int64_t decay_start_step);
    double operator()(std::int64_t step) const;

  private:
    double initial_lr_;
    std::int64_t total_steps_;
    std::int64_t decay_start_step_;
};

struct AdamOptions {
    double lr = 2e-4;     // the learning rate when no schedule is given
    LrSchedule schedule;  // when set, replaces lr
    double beta1 = 0.5;
    double beta2 = 0.999;
    double epsilon = 1e-7;
};

// With t = iterations + 1, each step applies to every parameter p with a gradient g, in p's dtype:
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//   m += (g - m) * (1 - beta1)        (= beta1*m + (1-beta1)*g, rounded as TensorFlow rounds it)
//   v += (g*g - v) * (1 - beta2)
//   p -= (m * alpha) / (sqrt(v) + epsilon)
// then iterations += 1. As in Keras, t counts the optimiser's steps, not each parameter's updates.
class Adam {
  public:
    // `params` must be distinct leaf tensors that require a gradient; their moments start at zero.
    explicit Adam(std::vector<Tensor> params, AdamOptions options = {});

    // Updates the parameters that have a gradient; those without one, and their moments, are left as they
    // are. At least one parameter must have a gradient (Keras raises otherwise). The update works on the
    // raw buffers and records nothing for autograd. CUDA parameters (float32) are updated together by one
    // multi-tensor kernel launch (kernels/adam.h).
    // `skip`, when given, is a one-element float32 tensor on the parameters' device, typically the count
    // of non-finite flags (engine/finite.h): where it is nonzero, no parameter or moment changes. On CUDA
    // the kernel reads it when it runs, so the host need not wait for the check that computes it. The
    // iteration count advances either way; uncount_step() takes it back once the host knows.
    // Captured into a CUDA graph (engine/graph.h), step() leaves the scalars of the update (they depend on
    // the iteration and the learning rate) in pinned host memory that the graph copies to the device when
    // it runs, so that each replay takes the step it was given by step_replayed().
    void step(const Tensor& skip = Tensor());
    // Counts a step that a replay of the graph captured from step() performs, and gives it that step's
    // scalars. Call it before the replay is queued, once the previous replay has finished.
    void step_replayed();
    // Takes back the iteration that a skipped step() counted.
    void uncount_step();
    // Drops every parameter's gradient.
    void zero_grad();

    std::int64_t iterations() const { return iterations_; }
    // The learning rate the next step() uses.
    double lr() const;
    const std::vector<Tensor>& params() const { return params_; }

    // The state as named tensors, for save_safetensors: "<prefix>m.<i>", "<prefix>v.<i>" (the live moment
    // tensors of parameter i, not copies) and "<prefix>iterations" (float64 [1]).
    NamedTensors state(const std::string& prefix) const;
    // Restores the state written from state(prefix) by an optimiser over parameters of the same shapes and
    // dtypes. The file must hold exactly one m and one v per parameter; on any mismatch nothing changes.
    void load_state(const SafetensorsFile& file, const std::string& prefix);

  private:
    std::vector<Tensor> params_;
    std::vector<Tensor> m_;
    std::vector<Tensor> v_;
    AdamOptions options_;
    std::int64_t iterations_ = 0;
    // CUDA only: the scalars a captured update reads, on the host and their device copy, and whether a
    // step() was captured.
    std::unique_ptr<cuda::PinnedBuffer> replay_scalars_;
    Tensor device_scalars_;
    bool captured_ = false;
};

}  // namespace r2c
