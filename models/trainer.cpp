#include "models/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "engine/autograd.h"
#include "engine/finite.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "engine/safetensors.h"

namespace r2c {

namespace {

std::vector<Tensor> params_of(std::initializer_list<const Module*> modules) {
    std::vector<Tensor> out;
    for (const Module* m : modules)
        for (const auto& [name, t] : m->parameters())
            out.push_back(t);
    return out;
}

void add_prefixed(NamedTensors& out, const std::string& prefix, const NamedTensors& tensors) {
    for (const auto& [name, t] : tensors)
        out.emplace_back(prefix + name, t);
}

NamedTensors pool_tensors(const std::string& prefix, const ImagePool& pool) {
    NamedTensors out;
    for (std::size_t i = 0; i < pool.items().size(); ++i)
        out.emplace_back(prefix + std::to_string(i), pool.items()[i]);
    return out;
}

void load_pool(const SafetensorsFile& file, const std::string& prefix, ImagePool& pool, Device device) {
    std::vector<Tensor> items;
    for (int i = 0;; ++i) {
        auto it = file.tensors.find(prefix + std::to_string(i));
        if (it == file.tensors.end()) break;
        items.push_back(it->second.to(device));
    }
    pool.set_items(std::move(items));
}

// The RNG state as text: four 64-bit words, the spare-normal flag and its bits.
std::string rng_to_text(const Rng& rng) {
    const Rng::State s = rng.state();
    std::uint64_t spare_bits;
    std::memcpy(&spare_bits, &s.spare, sizeof spare_bits);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%016llx %016llx %016llx %016llx %d %016llx",
                  static_cast<unsigned long long>(s.s[0]), static_cast<unsigned long long>(s.s[1]),
                  static_cast<unsigned long long>(s.s[2]), static_cast<unsigned long long>(s.s[3]),
                  s.has_spare ? 1 : 0, static_cast<unsigned long long>(spare_bits));
    return buf;
}

Rng::State rng_from_text(const std::string& text, const std::string& path) {
    unsigned long long w[5];
    int has_spare = 0;
    R2C_CHECK(std::sscanf(text.c_str(), "%llx %llx %llx %llx %d %llx", &w[0], &w[1], &w[2], &w[3], &has_spare,
                          &w[4]) == 6,
              path, ": malformed rng state '", text, "'");
    Rng::State s{};
    for (int i = 0; i < 4; ++i)
        s.s[i] = w[i];
    s.has_spare = has_spare != 0;
    std::memcpy(&s.spare, &w[4], sizeof s.spare);
    return s;
}

std::string require_meta(const SafetensorsFile& f, const std::string& key) {
    auto it = f.metadata.find(key);
    R2C_CHECK(it != f.metadata.end(), f.origin, ": not an r2c checkpoint (no '", key, "' in its metadata)");
    return it->second;
}

// What a sub-step's finite check covers, in the order of its flags: the total loss, each loss term, then
// every parameter gradient of each module.
std::vector<Tensor> checked_tensors(const LossTerms& loss, const std::vector<const Module*>& modules) {
    std::vector<Tensor> checked{loss.total};
    for (const auto& term : loss.terms)
        checked.push_back(term.second);
    for (const Module* m : modules)
        for (const auto& param : m->parameters())
            checked.push_back(param.second.grad());
    return checked;
}

// The loss values of a sub-step as they come back from the device: the total first, then each term.
void append_values(std::vector<Tensor>& parts, const LossTerms& loss) {
    parts.push_back(loss.total.view({1}));
    for (const auto& term : loss.terms)
        parts.push_back(term.second.view({1}));
}

StepLog to_log(const LossTerms& l, const char* total_name, const double* values) {
    StepLog log{{total_name, values[0]}};
    for (std::size_t i = 0; i < l.terms.size(); ++i)
        log.emplace_back(l.terms[i].first, values[i + 1]);
    return log;
}

// The faults that a sub-step's flags (laid out as checked_tensors() lists them) report, for an error
// message: the non-finite loss terms with their values, and the networks with a non-finite gradient.
// Empty when everything was finite.
std::string describe_faults(const LossTerms& loss, const std::vector<const Module*>& modules,
                            const std::vector<const char*>& module_names, const double* flags,
                            const double* values) {
    std::string bad;
    std::size_t i = 1;
    for (const auto& [name, t] : loss.terms) {
        if (flags[i] != 0) bad += " loss " + name + " = " + std::to_string(values[i]) + ";";
        ++i;
    }
    if (flags[0] != 0 && bad.empty()) bad = " loss total = " + std::to_string(values[0]) + ";";
    for (std::size_t k = 0; k < modules.size(); ++k) {
        bool reported = false;
        for (const auto& param : modules[k]->parameters())
            if (flags[i++] != 0 && !reported) {
                bad += std::string(" gradient of ") + module_names[k] + "." + param.first + ";";
                reported = true;
            }
    }
    return bad;
}

}  // namespace

Trainer::Trainer(const TrainConfig& config)
    : config_(config), rng_(config.seed), pool_A2B_(config.pool_size), pool_B2A_(config.pool_size) {
    R2C_CHECK(config.epochs > config.epoch_decay && config.epoch_decay >= 0, "Trainer: epoch_decay (",
              config.epoch_decay, ") must be in [0, epochs = ", config.epochs, ")");
    R2C_CHECK(config.iterations_per_epoch >= 1, "Trainer: an epoch needs at least one iteration");
    nets_.G = make_generator(config.method, config.q, rng_);
    nets_.F = make_generator(config.method, config.q, rng_);
    nets_.D_A = make_discriminator(config.method, config.q, rng_);
    nets_.D_B = make_discriminator(config.method, config.q, rng_);
    for (Module* m :
         std::initializer_list<Module*>{nets_.G.get(), nets_.F.get(), nets_.D_A.get(), nets_.D_B.get()})
        m->to(config.device);

    AdamOptions o;
    o.beta1 = config.beta1;
    o.beta2 = config.beta2;
    o.epsilon = config.epsilon;
    o.schedule = LinearDecay(config.lr, config.epochs * config.iterations_per_epoch,
                             config.epoch_decay * config.iterations_per_epoch);
    opt_g_ = std::make_unique<Adam>(params_of({nets_.G.get(), nets_.F.get()}), o);
    opt_d_ = std::make_unique<Adam>(params_of({nets_.D_A.get(), nets_.D_B.get()}), o);
}

void Trainer::report_fault(const char* which, const std::string& faults, int skipped) {
    const std::string what = detail::concat("non-finite values in the ", which, " step of iteration ",
                                            iteration_ + 1, ":", faults);
    R2C_CHECK(config_.on_nan == NanPolicy::Skip, what, " (run stopped; the last checkpoint is unaffected)");
    std::fprintf(stderr, "r2c: %s update%s skipped\n", what.c_str(), skipped > 1 ? "s" : "");
    skipped_updates_ += skipped;
}

// The inputs the captured sub-steps read (a step copies its batch and its pooled fakes there) and the
// outputs they write.
struct Trainer::Replay {
    cuda::GraphSequence graphs;  // 0: the generator sub-step, 1: the discriminator sub-step
    Tensor A, B, cA, cB, A2B_fake, B2A_fake;
    GeneratorStep g;
    DiscriminatorStep d;
    Tensor report;  // Trainer::report of g and d, gathered in the discriminator sub-step's graph

    bool fits(const Tensor& a, const Tensor& b, const Tensor& ca, const Tensor& cb) const {
        return a.shape() == A.shape() && b.shape() == B.shape() && ca.shape() == cA.shape() &&
               cb.shape() == cB.shape();
    }
};

Trainer::~Trainer() = default;

bool Trainer::replaying() const {
    return replay_ != nullptr && replay_->graphs.size() > 0;
}

void Trainer::replay_sub_step(int index, Adam& optimiser, const char* which,
                              const std::function<void()>& work) {
    Replay& r = *replay_;
    if (r.graphs.size() == index) {
        try {
            r.graphs.capture(work);
        } catch (const Error& e) {
            replay_.reset();
            throw Error(detail::concat("capturing the ", which, " step as a CUDA graph failed: ", e.what(),
                                       "; train without graphs (r2c train --cuda_graphs off) to go on"));
        }
    } else {
        optimiser.step_replayed();
    }
    r.graphs.replay(index);
}

Trainer::GeneratorStep Trainer::generator_step(const Tensor& A, const Tensor& B, const Tensor& cA,
                                               const Tensor& cB) {
    // The discriminators only pass gradients through, so they record none of their own (until the end of
    // this function, however it ends). The update is cancelled on the device when a loss or gradient is not
    // finite.
    struct Frozen {
        const R2CNetworks& nets;
        explicit Frozen(const R2CNetworks& n) : nets(n) { set(false); }
        ~Frozen() { set(true); }
        void set(bool on) const {
            nets.D_A->set_requires_grad(on);
            nets.D_B->set_requires_grad(on);
        }
    } frozen(nets_);
    opt_g_->zero_grad();
    GeneratorStep s{generator_loss(nets_, A, B, cA, cB, config_.weights), Tensor(), Tensor()};
    s.pass.loss.total.backward();
    s.flags = nonfinite_flags(checked_tensors(s.pass.loss, generators()), config_.device);
    s.skip = sum(s.flags);
    opt_g_->step(s.skip);
    return s;
}

Trainer::DiscriminatorStep Trainer::discriminator_step(const Tensor& A, const Tensor& B,
                                                       const Tensor& B2A_fake, const Tensor& A2B_fake,
                                                       const Tensor& g_skip) {
    // Cancelled too when the generator update was.
    opt_d_->zero_grad();
    DiscriminatorStep s{discriminator_loss(nets_, A, B, B2A_fake, A2B_fake), Tensor()};
    s.loss.total.backward();
    s.flags = nonfinite_flags(checked_tensors(s.loss, discriminators()), config_.device);
    opt_d_->step(add(g_skip, sum(s.flags)));
    return s;
}

Tensor Trainer::report(const GeneratorStep& g, const DiscriminatorStep& d) {
    std::vector<Tensor> parts{g.flags, d.flags};
    append_values(parts, g.pass.loss);
    append_values(parts, d.loss);
    return cat_batch(parts);
}

void Trainer::make_replay(const Tensor& A, const Tensor& B, const Tensor& cA, const Tensor& cB) {
    auto r = std::make_unique<Replay>();
    for (auto [to, from] : {std::pair{&r->A, &A}, {&r->B, &B}, {&r->cA, &cA}, {&r->cB, &cB}})
        *to = Tensor::empty(from->shape(), from->dtype(), Device::CUDA);
    r->A2B_fake = Tensor::empty(A.shape(), A.dtype(), Device::CUDA);
    r->B2A_fake = Tensor::empty(B.shape(), B.dtype(), Device::CUDA);
    replay_ = std::move(r);
}

Trainer::GeneratorStep Trainer::replayed_generator_step(const Tensor& A, const Tensor& B, const Tensor& cA,
                                                        const Tensor& cB) {
    if (!replay_ || !replay_->fits(A, B, cA, cB)) make_replay(A, B, cA, cB);
    Replay& r = *replay_;
    r.A.copy_from(A);
    r.B.copy_from(B);
    r.cA.copy_from(cA);
    r.cB.copy_from(cB);
    replay_sub_step(0, *opt_g_, "generator", [&] { r.g = generator_step(r.A, r.B, r.cA, r.cB); });
    return r.g;
}

Trainer::DiscriminatorStep Trainer::replayed_discriminator_step() {
    Replay& r = *replay_;
    replay_sub_step(1, *opt_d_, "discriminator", [&] {
        r.d = discriminator_step(r.A, r.B, r.B2A_fake, r.A2B_fake, r.g.skip);
        r.report = report(r.g, r.d);
    });
    return r.d;
}

StepLog Trainer::step(const Tensor& A, const Tensor& B, const Tensor& cA, const Tensor& cB) {
    // With graphs, the first step runs as it is and makes what is done on first use (cuDNN's searches,
    // the choice of convolution); the second is the rehearsal of the sub-steps the third captures, whose
    // memory is planned from it (cuda::GraphSequence::rehearse); the later steps replay them while the batch
    // has the shapes of the capture's.
    const bool graphs = config_.device == Device::CUDA && config_.cuda_graphs;
    const bool rehearsed = graphs && steps_run_ == 1;
    const bool replayed =
        graphs && steps_run_ == 2 && (!replay_ || replay_->graphs.size() == 0 || replay_->fits(A, B, cA, cB));
    steps_run_ = std::min(steps_run_ + 1, 2);
    if (rehearsed) make_replay(A, B, cA, cB);
    // Runs `work` as a rehearsal in the second step with graphs, or else as it is.
    const auto run = [&](const std::function<void()>& work) {
        if (rehearsed)
            replay_->graphs.rehearse(work);
        else
            work();
    };

    GeneratorStep g;
    if (replayed)
        g = replayed_generator_step(A, B, cA, cB);
    else
        run([&] { g = generator_step(A, B, cA, cB); });

    // Discriminator step on this iteration's translations (made before the generator update), pooled. When
    // the generator update is cancelled, the pools and the RNG are put back as they were, since the
    // translations of a skipped update must not enter the pools. A replayed step has the pools write
    // straight into the tensors its graph reads.
    const std::vector<Tensor> kept_A2B = pool_A2B_.items(), kept_B2A = pool_B2A_.items();
    const Rng::State kept_rng = rng_.state();
    const Tensor A2B_fake = pool_A2B_.query(g.pass.A2B, rng_, replayed ? replay_->A2B_fake : Tensor());
    const Tensor B2A_fake = pool_B2A_.query(g.pass.B2A, rng_, replayed ? replay_->B2A_fake : Tensor());
    // The one wait of the step: the flags and the loss values come back together, gathered on the device by
    // one kernel at the end of the discriminator sub-step.
    DiscriminatorStep d;
    Tensor gathered;
    if (replayed) {
        d = replayed_discriminator_step();
        gathered = replay_->report;
    } else {
        run([&] {
            d = discriminator_step(A, B, B2A_fake, A2B_fake, g.skip);
            gathered = report(g, d);
        });
    }
    const std::vector<double> host = gathered.to_vector();
    const double* g_flag = host.data();
    const double* d_flag = g_flag + g.flags.numel();
    const double* g_value = d_flag + d.flags.numel();
    const double* d_value = g_value + 1 + g.pass.loss.terms.size();

    const std::string g_faults = describe_faults(g.pass.loss, generators(), {"G", "F"}, g_flag, g_value);
    if (!g_faults.empty()) {
        opt_g_->uncount_step();
        opt_d_->uncount_step();
        pool_A2B_.set_items(kept_A2B);
        pool_B2A_.set_items(kept_B2A);
        rng_.set_state(kept_rng);
        report_fault("generator", g_faults, 2);
    } else {
        const std::string d_faults =
            describe_faults(d.loss, discriminators(), {"D_A", "D_B"}, d_flag, d_value);
        if (!d_faults.empty()) {
            opt_d_->uncount_step();
            report_fault("discriminator", d_faults, 1);
        }
    }
    ++iteration_;

    StepLog log = to_log(g.pass.loss, "g_total", g_value);
    for (auto& entry : to_log(d.loss, "d_total", d_value))
        log.push_back(std::move(entry));
    return log;
}

void Trainer::save_checkpoint(const std::string& path) const {
    NamedTensors all;
    add_prefixed(all, "G.", nets_.G->parameters());
    add_prefixed(all, "F.", nets_.F->parameters());
    add_prefixed(all, "D_A.", nets_.D_A->parameters());
    add_prefixed(all, "D_B.", nets_.D_B->parameters());
    add_prefixed(all, "", opt_g_->state("opt_G."));
    add_prefixed(all, "", opt_d_->state("opt_D."));
    add_prefixed(all, "", pool_tensors("pool_A2B.", pool_A2B_));
    add_prefixed(all, "", pool_tensors("pool_B2A.", pool_B2A_));
    save_safetensors(path, all,
                     {{"format", "r2c-checkpoint-1"},
                      {"method", method_name(config_.method)},
                      {"q", std::to_string(config_.q)},
                      {"iteration", std::to_string(iteration_)},
                      {"rng", rng_to_text(rng_)}});
}

void Trainer::load_checkpoint(const std::string& path) {
    const SafetensorsFile f = load_safetensors(path);
    R2C_CHECK(require_meta(f, "format") == "r2c-checkpoint-1", path, ": unknown checkpoint format '",
              require_meta(f, "format"), "'");
    const std::string method = require_meta(f, "method"), q = require_meta(f, "q");
    R2C_CHECK(method == method_name(config_.method) && q == std::to_string(config_.q), path,
              ": checkpoint is for method ", method, " q=", q, ", this run is ", method_name(config_.method),
              " q=", config_.q);
    const Rng::State rng_state = rng_from_text(require_meta(f, "rng"), path);
    const std::string iter_text = require_meta(f, "iteration");
    char* end = nullptr;
    const long long iteration = std::strtoll(iter_text.c_str(), &end, 10);
    R2C_CHECK(*end == '\0' && iteration >= 0, path, ": malformed iteration '", iter_text, "'");

    NamedTensors params;
    add_prefixed(params, "G.", nets_.G->parameters());
    add_prefixed(params, "F.", nets_.F->parameters());
    add_prefixed(params, "D_A.", nets_.D_A->parameters());
    add_prefixed(params, "D_B.", nets_.D_B->parameters());
    load_tensors_into(f, params);
    opt_g_->load_state(f, "opt_G.");
    opt_d_->load_state(f, "opt_D.");
    load_pool(f, "pool_A2B.", pool_A2B_, config_.device);
    load_pool(f, "pool_B2A.", pool_B2A_, config_.device);
    rng_.set_state(rng_state);
    iteration_ = iteration;
}

std::unique_ptr<Generator> load_generator(const std::string& checkpoint, const std::string& which,
                                          Device device) {
    R2C_CHECK(which == "G" || which == "F", "load_generator: which must be G or F, got ", which);
    const SafetensorsFile f = load_safetensors(checkpoint);
    R2C_CHECK(require_meta(f, "format") == "r2c-checkpoint-1", checkpoint, ": unknown checkpoint format");
    const Method method = parse_method(require_meta(f, "method"));
    const std::string q_text = require_meta(f, "q");
    const int q = std::atoi(q_text.c_str());
    R2C_CHECK(q >= 1 && q <= 64, checkpoint, ": malformed q '", q_text, "'");
    Rng rng(0);
    std::unique_ptr<Generator> g = make_generator(method, q, rng);
    NamedTensors targets;
    add_prefixed(targets, which + ".", g->parameters());
    load_tensors_into(f, targets);
    g->to(device);
    return g;
}

}  // namespace r2c
