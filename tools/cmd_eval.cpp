// r2c test (classification metrics and restoration scores on testA) and r2c restore (any images).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "models/trainer.h"
#include "tools/commands.h"
#include "tools/figures.h"
#include "tools/run_dir.h"

namespace fs = std::filesystem;

namespace r2c::cli {

namespace {

// --checkpoint FILE, else the newest checkpoint of the run in --output_dir.
std::string checkpoint_option(const Args& args) {
    if (!args.str("checkpoint").empty()) return args.str("checkpoint");
    R2C_CHECK(!args.str("output_dir").empty(), "give --checkpoint FILE or --output_dir RUN_FOLDER");
    const std::vector<std::string> all = RunDir(args.str("output_dir")).checkpoints();
    R2C_CHECK(!all.empty(), "no checkpoint in ", args.str("output_dir"), "/checkpoints");
    return all.back();
}

struct Confusion {
    std::int64_t tp = 0, fn = 0, fp = 0, tn = 0;
    void add(int truth, int predicted) {
        if (truth == 1)
            (predicted == 1 ? tp : fn)++;
        else
            (predicted == 1 ? fp : tn)++;
    }
};

double ratio(double num, double den) {
    return den > 0 ? num / den : 0.0;
}

nlohmann::json metrics_json(const Confusion& c) {
    const double tp = c.tp, fn = c.fn, fp = c.fp, tn = c.tn;
    const double sens = ratio(tp, tp + fn), prec = ratio(tp, tp + fp);
    return {{"confusion_matrix", {{"tp", c.tp}, {"fn", c.fn}, {"fp", c.fp}, {"tn", c.tn}}},
            {"accuracy", ratio(tp + tn, tp + tn + fp + fn)},
            {"sensitivity", sens},
            {"specificity", ratio(tn, tn + fp)},
            {"precision", prec},
            {"f1", ratio(2 * prec * sens, prec + sens)},
            {"f2", ratio(5 * prec * sens, 4 * prec + sens)}};
}

// G applied `times` times; returns every stage's images (stage 0 = the input) and the first stage's
// class probabilities.
struct Restoration {
    std::vector<Tensor> stages;
    Tensor probs;
};

Restoration restore(const Generator& g, const Tensor& x, int times) {
    NoGradGuard no_grad;
    Restoration r{{x}, {}};
    for (int i = 0; i < times; ++i) {
        GeneratorOutput out = g.forward(r.stages.back());
        if (i == 0) r.probs = out.probs.to(Device::CPU);
        r.stages.push_back(out.image);
    }
    return r;
}

std::string stem(const std::string& name) {
    std::string s = fs::path(name).replace_extension("").string();
    for (char& ch : s)
        if (ch == '/') ch = '_';
    return s;
}

void write_json(const std::string& path, const nlohmann::json& j) {
    if (path == "-") {
        std::cout << j.dump(2) << "\n";
        return;
    }
    write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace

const std::vector<OptionSpec>& test_options() {
    static const std::vector<OptionSpec> specs = {
        {"datasets_dir", "folder with testA/ (and testA_clean/ for restoration scores)", "", false, true},
        {"output_dir", "run folder: its newest checkpoint is used, results are written there", "", false},
        {"checkpoint", "checkpoint file (instead of the newest in --output_dir)", "", false},
        {"crop_size", "test images are resized to this", "256", false},
        {"batch_size", "images per forward pass", "1", false},
        {"iterations", "times G is applied for the restoration scores and images", "3", false},
        {"device", "cpu or cuda", "cpu", false},
        precision_option(),
        conv_algorithm_option(),
        {"json", "where the metrics go (- for standard output); default OUTPUT_DIR/test.json", "", false},
        {"saveImages", "write [input | G | G(G) | G(G(G))] strips to OUTPUT_DIR/test_images", "", true},
    };
    return specs;
}

int cmd_test(const Args& args) {
    const Device device = args.device("device");
    cuda::set_math_precision(args.precision("precision"));
    cuda::set_conv_algorithm(args.conv_algorithm("conv_algorithm"));
    LoaderOptions lo;
    lo.crop_size = static_cast<int>(args.integer("crop_size", 8, 8192));
    lo.batch_size = static_cast<int>(args.integer("batch_size", 1, 4096));
    const int times = static_cast<int>(args.integer("iterations", 1, 16));
    const std::string dir = args.str("datasets_dir");
    const std::string ckpt = checkpoint_option(args);
    std::string out_dir = args.str("output_dir").empty() ? fs::path(ckpt).parent_path().parent_path().string()
                                                         : args.str("output_dir");
    std::string json_path = args.str("json").empty() ? out_dir + "/test.json" : args.str("json");
    const bool save_images = args.flag("saveImages");
    const std::string clean_dir = dir + "/testA_clean";
    const bool scored = fs::is_directory(clean_dir);
    if (save_images) fs::create_directories(out_dir + "/test_images");

    const auto g = load_generator(ckpt, "G", device);
    TestLoader loader(list_domain(dir, "testA"), lo);
    Confusion confusion;
    std::vector<double> psnr_sum(times + 1, 0.0), ssim_sum(times + 1, 0.0);
    std::int64_t scored_count = 0;
    nlohmann::json per_image = nlohmann::json::array();
    while (auto batch = loader.next()) {
        const Restoration r = restore(*g, batch->images.to(device), times);
        std::vector<std::vector<Image>> stages;
        for (const Tensor& s : r.stages)
            stages.push_back(tensor_to_images(s));
        const std::vector<double> p = r.probs.to_vector(), labels = batch->labels.to_vector();
        for (std::size_t i = 0; i < batch->names.size(); ++i) {
            const int truth = labels[2 * i + 1] > 0.5, predicted = p[2 * i + 1] > p[2 * i];
            confusion.add(truth, predicted);
            nlohmann::json row = {{"file", batch->names[i]}, {"label", truth}, {"p_covid", p[2 * i + 1]}};
            if (scored && fs::exists(clean_dir + "/" + batch->names[i])) {
                const Image clean = to_uint8(resize_bilinear(
                    to_float(read_image(clean_dir + "/" + batch->names[i])), lo.crop_size, lo.crop_size));
                for (int s = 0; s <= times; ++s) {
                    psnr_sum[s] += psnr(stages[s][i], clean);
                    ssim_sum[s] += ssim(stages[s][i], clean);
                }
                ++scored_count;
            }
            if (save_images) {
                std::vector<Image> strip;
                for (auto& st : stages)
                    strip.push_back(st[i]);
                write_png(out_dir + "/test_images/" + stem(batch->names[i]) + ".png",
                          tile_images(strip, static_cast<int>(strip.size())));
            }
            per_image.push_back(row);
        }
    }
    nlohmann::json result = metrics_json(confusion);
    result["checkpoint"] = ckpt;
    result["skipped_files"] = loader.skipped_files();
    if (scored_count > 0) {
        nlohmann::json rest = nlohmann::json::array();
        for (int s = 0; s <= times; ++s)
            rest.push_back({{"stage", s == 0 ? std::string("input") : "G^" + std::to_string(s)},
                            {"psnr", psnr_sum[s] / scored_count},
                            {"ssim", ssim_sum[s] / scored_count}});
        result["restoration"] = {{"images", scored_count}, {"stages", rest}};
    }
    result["images"] = per_image;

    std::cout << std::fixed << std::setprecision(4) << "TP " << confusion.tp << "  FN " << confusion.fn
              << "  FP " << confusion.fp << "  TN " << confusion.tn << "\n";
    for (const char* k : {"accuracy", "sensitivity", "specificity", "precision", "f1", "f2"})
        std::cout << std::left << std::setw(12) << k << result[k].get<double>() << "\n";
    if (scored_count > 0)
        for (const auto& st : result["restoration"]["stages"])
            std::cout << "restoration " << std::setw(6) << st["stage"].get<std::string>() << " PSNR "
                      << st["psnr"].get<double>() << " dB  SSIM " << st["ssim"].get<double>() << "\n";
    std::cout << loader.skipped_files() << " undecodable file(s) skipped\n";
    write_json(json_path, result);
    if (json_path != "-") std::cout << "metrics written to " << json_path << "\n";
    return 0;
}

const std::vector<OptionSpec>& restore_options() {
    static const std::vector<OptionSpec> specs = {
        {"input", "an image file or a folder of images", "", false, true},
        {"output", "folder for the restored PNGs and probabilities.csv", "", false, true},
        {"output_dir", "run folder whose newest checkpoint is used", "", false},
        {"checkpoint", "checkpoint file (instead of the newest in --output_dir)", "", false},
        {"size", "images are resized to this before restoration", "256", false},
        {"iterations", "times G is applied", "3", false},
        {"device", "cpu or cuda", "cpu", false},
        precision_option(),
        conv_algorithm_option(),
    };
    return specs;
}

int cmd_restore(const Args& args) {
    const Device device = args.device("device");
    cuda::set_math_precision(args.precision("precision"));
    cuda::set_conv_algorithm(args.conv_algorithm("conv_algorithm"));
    const int size = static_cast<int>(args.integer("size", 8, 8192));
    const int times = static_cast<int>(args.integer("iterations", 1, 16));
    const std::string input = args.str("input"), output = args.str("output");
    std::vector<Sample> files;
    if (fs::is_directory(input)) {
        files = list_images(input);
    } else {
        R2C_CHECK(fs::is_regular_file(input), input, ": no such file or folder");
        files.push_back({input, fs::path(input).filename().string(), 0});
    }
    fs::create_directories(output);
    const auto g = load_generator(checkpoint_option(args), "G", device);

    std::string csv = "file,p_covid\n";
    int failed = 0;
    for (const Sample& s : files) {
        Image img;
        try {
            img = read_image(s.path);
        } catch (const Error& e) {
            std::cerr << "r2c restore: skipping " << e.what() << "\n";
            ++failed;
            continue;
        }
        const Tensor x = images_to_tensor({resize_bilinear(to_float(img), size, size)}).to(device);
        const Restoration r = restore(*g, x, times);
        const std::string out = output + "/" + stem(s.name) + ".png";
        write_png(out, tensor_to_images(r.stages.back())[0]);
        const double p = r.probs.to_vector()[1];
        std::cout << out << "  p(COVID-19) = " << std::fixed << std::setprecision(4) << p << "\n";
        csv += s.name + "," + std::to_string(p) + "\n";
    }
    write_file_atomic(output + "/probabilities.csv", csv);
    if (failed > 0) std::cerr << "r2c restore: " << failed << " file(s) could not be read\n";
    return failed == static_cast<int>(files.size()) ? 1 : 0;
}

}  // namespace r2c::cli
