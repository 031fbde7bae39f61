// Algorithm 1 of R2C-GAN: one generator step (both generators, one Adam) on the full L_G, then one
// discriminator step (both discriminators, another Adam) on image-pooled fakes; checkpoints that hold the
// complete training state, so that a resumed run continues exactly as an uninterrupted one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/adam.h"
#include "models/image_pool.h"
#include "models/losses.h"

namespace r2c {

// What a step does when a loss or gradient is NaN or infinite: stop the run with an error naming the
// losses and networks concerned, or skip the update (parameters, optimiser state and pools unchanged).
enum class NanPolicy { Stop, Skip };

struct TrainConfig {
    Method method = Method::Operational;
    int q = 3;
    double lr = 2e-4;
    double beta1 = 0.5;
    double beta2 = 0.999;
    double epsilon = 1e-7;
    std::int64_t epochs = 2000;
    std::int64_t epoch_decay = 100;
    std::int64_t iterations_per_epoch = 1;
    LossWeights weights;
    int pool_size = 50;
    Device device = Device::CPU;
    std::uint64_t seed = 0;
    NanPolicy on_nan = NanPolicy::Stop;
    // On CUDA: from a trainer's third step on, replay CUDA graphs of the generator and discriminator
    // sub-steps (captured on the third step, their memory planned from a rehearsal on the second, after
    // the first has made the choices of first use) instead of launching their kernels one by one. The
    // results are the same bit for bit; steps whose batch shapes differ from the captured ones run
    // unreplayed.
    bool cuda_graphs = true;
};

// Loss values of one iteration, by term name ("g_total", "d_total" and every term of L_G and L_D).
using StepLog = std::vector<std::pair<std::string, double>>;

class Trainer {
  public:
    explicit Trainer(const TrainConfig& config);
    ~Trainer();

    // One iteration of Algorithm 1 on a batch: A, B [N,3,H,W] in [-1,1]; cA, cB one-hot [N,2].
    StepLog step(const Tensor& A, const Tensor& B, const Tensor& cA, const Tensor& cB);

    const TrainConfig& config() const { return config_; }
    const R2CNetworks& networks() const { return nets_; }
    std::int64_t iteration() const { return iteration_; }  // completed iterations
    double generator_lr() const { return opt_g_->lr(); }
    std::int64_t skipped_updates() const { return skipped_updates_; }  // sub-steps skipped for NaN/Inf

    // Whether steps now replay captured CUDA graphs (TrainConfig::cuda_graphs).
    bool replaying() const;

    // Everything needed to continue: four networks, both optimisers, both pools, the counter, the RNG.
    void save_checkpoint(const std::string& path) const;
    // Restores a checkpoint written by a trainer of the same configuration; the error names the file and
    // what does not match.
    void load_checkpoint(const std::string& path);

  private:
    TrainConfig config_;
    Rng rng_;
    R2CNetworks nets_;
    std::unique_ptr<Adam> opt_g_, opt_d_;
    ImagePool pool_A2B_, pool_B2A_;
    std::int64_t iteration_ = 0;
    std::int64_t skipped_updates_ = 0;
    int steps_run_ = 0;  // steps this trainer has run, counted up to 2

    // The networks each sub-step trains, in the order of its finite flags and of its fault report.
    std::vector<const Module*> generators() const { return {nets_.G.get(), nets_.F.get()}; }
    std::vector<const Module*> discriminators() const { return {nets_.D_A.get(), nets_.D_B.get()}; }

    // What a sub-step leaves for the rest of the step: its losses, its finite flags (laid out as
    // checked_tensors() in trainer.cpp lists them) and, for the generator, the count of raised flags that
    // cancels the updates.
    struct GeneratorStep {
        GeneratorPass pass;
        Tensor flags, skip;
    };
    struct DiscriminatorStep {
        LossTerms loss;
        Tensor flags;
    };
    GeneratorStep generator_step(const Tensor& A, const Tensor& B, const Tensor& cA, const Tensor& cB);
    DiscriminatorStep discriminator_step(const Tensor& A, const Tensor& B, const Tensor& B2A_fake,
                                         const Tensor& A2B_fake, const Tensor& g_skip);
    // What the step brings back to the host, gathered on the device into one tensor: both sub-steps' flags,
    // then the generator's loss values (total first), then the discriminators'.
    static Tensor report(const GeneratorStep& g, const DiscriminatorStep& d);

    // The captured sub-steps (trainer.cpp), with the inputs they read and the outputs they write.
    struct Replay;
    std::unique_ptr<Replay> replay_;
    void make_replay(const Tensor& A, const Tensor& B, const Tensor& cA, const Tensor& cB);
    GeneratorStep replayed_generator_step(const Tensor& A, const Tensor& B, const Tensor& cA,
                                          const Tensor& cB);
    DiscriminatorStep replayed_discriminator_step();
    // Captures graph `index` of the sequence from `work` the first time (the error names `which` sub-step),
    // or else gives `optimiser` the replayed step; then queues the graph.
    void replay_sub_step(int index, Adam& optimiser, const char* which, const std::function<void()>& work);

    // A sub-step's non-finite values, found once the step's flags are back: stops the run (an error naming
    // `faults`) or, under NanPolicy::Skip, reports them and counts `skipped` skipped updates.
    void report_fault(const char* which, const std::string& faults, int skipped);
};

// A trained generator from a checkpoint: `which` is "G" (poor -> high quality, the one R2C-GAN evaluates)
// or "F". The method and Q come from the checkpoint.
std::unique_ptr<Generator> load_generator(const std::string& checkpoint, const std::string& which,
                                          Device device);

}  // namespace r2c
