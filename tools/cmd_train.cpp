// r2c train: Algorithm 1 over a dataset folder, with progress, loss log, sample grids, checkpoints,
// resumption from the output folder, and a clean stop on SIGINT/SIGTERM.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/device_batches.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "tools/commands.h"
#include "tools/figures.h"
#include "tools/run_dir.h"

namespace r2c::cli {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) {
    g_stop = true;
}

std::string format_duration(double seconds) {
    const long s = static_cast<long>(seconds);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    return buf;
}

double value_of(const StepLog& log, const std::string& name) {
    for (const auto& [n, v] : log)
        if (n == name) return v;
    return 0.0;
}

// [A, G(A), F(G(A)); B, F(B), G(F(B))] for the first image of the batch.
void write_sample_grid(const Trainer& trainer, const Batch& batch, const std::string& path) {
    NoGradGuard no_grad;
    const R2CNetworks& n = trainer.networks();
    const Tensor a = batch.a.batch_item(0).to(trainer.config().device);
    const Tensor b = batch.b.batch_item(0).to(trainer.config().device);
    const Tensor a2b = n.G->forward(a).image, b2a = n.F->forward(b).image;
    const std::vector<Image> tiles =
        tensor_to_images(cat_batch({a, a2b, n.F->forward(a2b).image, b, b2a, n.G->forward(b2a).image}));
    write_png(path, tile_images(tiles, 3));
}

std::string mebibytes(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1048576.0);
    return buf;
}

// `peak_bytes`: on CUDA, the device memory a step has needed so far; shown when nonzero.
void print_progress(std::int64_t it, std::int64_t total, std::int64_t epoch, std::int64_t epochs, double rate,
                    const StepLog& log, std::size_t peak_bytes, bool tty) {
    const int width = 24;
    const int filled = static_cast<int>(width * static_cast<double>(it) / static_cast<double>(total));
    char line[256];
    std::snprintf(
        line, sizeof line, "epoch %lld/%lld [%s%s] %lld/%lld %.2f it/s ETA %s | G %.4f D %.4f cycle %.4f",
        static_cast<long long>(epoch + 1), static_cast<long long>(epochs), std::string(filled, '#').c_str(),
        std::string(width - filled, '.').c_str(), static_cast<long long>(it), static_cast<long long>(total),
        rate, format_duration(rate > 0 ? (total - it) / rate : 0).c_str(), value_of(log, "g_total"),
        value_of(log, "d_total"), value_of(log, "cycle_A2B2A") + value_of(log, "cycle_B2A2B"));
    std::cerr << (tty ? "\r" : "") << line;
    if (peak_bytes > 0) std::cerr << " | device " << mebibytes(peak_bytes) << " MiB";
    std::cerr << (tty ? "" : "\n") << std::flush;
}

// The run's settings, every option with the value in force, for people and scripts reading the folder.
void write_settings(const std::string& path, const Args& args, const std::vector<OptionSpec>& specs) {
    nlohmann::json j;
    for (const OptionSpec& o : specs)
        j[o.name] = args.str(o.name);
    j["r2c_version"] = R2C_VERSION;
    write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace

const std::vector<OptionSpec>& train_options() {
    static const std::vector<OptionSpec> specs = {
        {"datasets_dir", "folder with trainA/ (poor quality) and trainB/ (high quality)", "", false, true},
        {"output_dir", "where checkpoints, logs and samples go; an existing run there is resumed", "", false,
         true},
        {"method", "operational, convolutional or convolutional-light", "operational", false},
        {"q", "order of the operational layers", "3", false},
        {"epochs", "number of epochs", "2000", false},
        {"epoch_decay", "epoch from which the learning rate decays linearly to 0", "100", false},
        {"lr", "initial learning rate", "0.0002", false},
        {"beta_1", "Adam beta1", "0.5", false},
        {"cycle_loss_weight", "lambda", "10", false},
        {"identity_loss_weight", "beta", "5", false},
        {"class_loss_weight", "gamma", "0.1", false},
        {"pool_size", "image pool capacity", "50", false},
        {"load_size", "training images are resized to this", "286", false},
        {"crop_size", "then randomly cropped to this", "256", false},
        {"batch_size", "images per domain per iteration", "1", false},
        {"device", "cpu or cuda", "cpu", false},
        precision_option(),
        conv_algorithm_option(),
        {"cuda_graphs",
         "on CUDA, replay the captured steps as CUDA graphs from the third iteration: on or off", "on",
         false},
        {"seed", "seed of initialisation, shuffling, augmentation and the pool", "0", false},
        {"max_iterations", "stop (with a checkpoint) after this many iterations in total; 0 = no limit", "0",
         false},
        {"sample_every", "write a sample grid every N iterations; 0 = never", "100", false},
        {"keep_checkpoints", "checkpoints kept in output_dir/checkpoints", "5", false},
        {"on_nan", "when a loss or gradient is NaN/Inf: stop (with an error) or skip (the update)", "stop",
         false},
    };
    return specs;
}

int cmd_train(const Args& args) {
    TrainConfig c;
    c.method = parse_method(args.str("method"));
    c.q = static_cast<int>(args.integer("q", 1, 16));
    c.epochs = args.integer("epochs", 1, 1'000'000);
    c.epoch_decay = args.integer("epoch_decay", 0, c.epochs - 1);
    c.lr = args.real("lr", 0.0, 1.0);
    c.beta1 = args.real("beta_1", 0.0, 0.999999);
    c.weights.cycle = args.real("cycle_loss_weight", 0.0, 1e6);
    c.weights.identity = args.real("identity_loss_weight", 0.0, 1e6);
    c.weights.class_weight = args.real("class_loss_weight", 0.0, 1e6);
    c.pool_size = static_cast<int>(args.integer("pool_size", 0, 100000));
    c.device = args.device("device");
    cuda::set_math_precision(args.precision("precision"));
    cuda::set_conv_algorithm(args.conv_algorithm("conv_algorithm"));
    c.seed = static_cast<std::uint64_t>(args.integer("seed", 0, INT64_MAX));
    const std::string on_nan = args.str("on_nan");
    if (on_nan != "stop" && on_nan != "skip")
        throw UsageError("--on_nan must be stop or skip, got '" + on_nan + "'");
    c.on_nan = on_nan == "stop" ? NanPolicy::Stop : NanPolicy::Skip;
    c.cuda_graphs = args.on_off("cuda_graphs");
    LoaderOptions lo;
    lo.load_size = static_cast<int>(args.integer("load_size", 8, 8192));
    lo.crop_size = static_cast<int>(args.integer("crop_size", 8, lo.load_size));
    if (lo.crop_size % 8 != 0)
        throw UsageError("--crop_size must be a multiple of 8 (the discriminators downsample by 8), got " +
                         std::to_string(lo.crop_size));
    lo.batch_size = static_cast<int>(args.integer("batch_size", 1, 4096));
    lo.seed = c.seed;
    const std::int64_t max_iterations = args.integer("max_iterations", 0, INT64_MAX);
    const std::int64_t sample_every = args.integer("sample_every", 0, INT64_MAX);
    const int keep = static_cast<int>(args.integer("keep_checkpoints", 1, 1000));

    // Everything that can be wrong with the input is found before any training work.
    const std::string dir = args.str("datasets_dir");
    std::vector<Sample> a = list_domain(dir, "trainA"), b = list_domain(dir, "trainB");
    const std::int64_t per_epoch = static_cast<std::int64_t>(std::max(a.size(), b.size())) / lo.batch_size;
    R2C_CHECK(per_epoch >= 1, dir, ": fewer images than --batch_size ", lo.batch_size);
    c.iterations_per_epoch = per_epoch;
    RunDir run(args.str("output_dir"));

    Trainer trainer(c);
    const bool resumed = run.resume(trainer);
    write_settings(run.root() + "/settings.json", args, train_options());
    const std::int64_t total = c.epochs * per_epoch;
    const std::int64_t stop_at = max_iterations > 0 ? std::min(total, max_iterations) : total;
    std::cerr << "r2c train: " << method_name(c.method) << " q=" << c.q << ", " << a.size() << " + "
              << b.size() << " images, " << per_epoch << " iterations/epoch, "
              << (resumed ? "resuming at iteration " + std::to_string(trainer.iteration())
                          : std::string("new run"))
              << ", output " << run.root() << "\n";
    if (trainer.iteration() >= stop_at) {
        std::cerr << "r2c train: nothing to do (iteration " << trainer.iteration() << " of " << stop_at
                  << ")\n";
        return 0;
    }

    lo.first_epoch = trainer.iteration() / per_epoch;
    TrainLoader loader(std::move(a), std::move(b), lo);
    for (std::int64_t skip = trainer.iteration() % per_epoch; skip > 0; --skip)
        loader.next();

    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    const bool tty = isatty(STDERR_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t start = trainer.iteration();
    bool log_started = false;
    // On CUDA, the allocator's peak bytes in use during a step (parameters, optimiser state, pools and
    // batches included), the largest over the run: the device memory the run needs.
    const bool on_cuda = c.device == Device::CUDA;
    std::size_t step_peak = 0;
    // The next batch is copied to the device while the step on this one runs.
    DeviceBatches on_device(c.device);
    Batch batch = loader.next();  // this step's, on the CPU
    on_device.put(batch);
    while (trainer.iteration() < stop_at) {
        const Batch device_batch = on_device.take();
        Batch next;
        if (trainer.iteration() + 1 < stop_at) {
            next = loader.next();
            on_device.put(next);
        }
        const double lr = trainer.generator_lr();
        if (on_cuda) cuda::allocator().reset_peak();
        const StepLog log =
            trainer.step(device_batch.a, device_batch.b, device_batch.label_a, device_batch.label_b);
        if (on_cuda) step_peak = std::max(step_peak, cuda::allocator().stats().peak_in_use);
        if (!log_started) {
            run.start_log(log, trainer.iteration() - 1);
            log_started = true;
        }
        run.append_log(trainer.iteration(), batch.epoch, lr, log);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = static_cast<double>(trainer.iteration() - start) / secs;
        if (tty || trainer.iteration() % 10 == 0 || trainer.iteration() == stop_at)
            print_progress(trainer.iteration(), stop_at, batch.epoch, c.epochs, rate, log, step_peak, tty);
        if (sample_every > 0 && trainer.iteration() % sample_every == 0)
            write_sample_grid(trainer, batch,
                              run.root() + "/samples/iter-" + std::to_string(trainer.iteration()) + ".png");
        const bool epoch_end = trainer.iteration() % per_epoch == 0;
        if (epoch_end || trainer.iteration() == stop_at || g_stop) run.save_checkpoint(trainer, keep);
        if (g_stop) {
            std::cerr << (tty ? "\n" : "") << "r2c train: stopped by signal after iteration "
                      << trainer.iteration() << " (" << loader.skipped_files()
                      << " undecodable file(s) skipped); checkpoint written, run again to resume\n";
            return 0;
        }
        batch = std::move(next);
    }
    if (tty) std::cerr << "\n";
    write_png(run.root() + "/losses.png", plot_losses(run.log_path()));
    std::cerr << "r2c train: done at iteration " << trainer.iteration() << "; " << loader.skipped_files()
              << " undecodable file(s) skipped, " << trainer.skipped_updates()
              << " update(s) skipped for NaN/Inf; ";
    if (on_cuda) std::cerr << "device memory of a step: " << mebibytes(step_peak) << " MiB at most; ";
    std::cerr << "losses in " << run.log_path() << " and " << run.root() << "/losses.png, samples in "
              << run.root() << "/samples\n";
    return 0;
}

}  // namespace r2c::cli
