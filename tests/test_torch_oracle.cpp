// Independent cross-check against PyTorch in float64: for random inputs, the forward output and the
// gradients of sum(y * R) of each op must match tests/torch_oracle.py to a relative L2 error of 1e-10.
// The script runs under a python with torch (R2C_TORCH_PYTHON, else /usr/bin/python3); without one the
// tests are reported as skipped.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/losses.h"
#include "models/networks.h"
#include "tests/support.h"

using namespace r2c;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-10;

using V = std::vector<Tensor>;

struct Input {
    std::string name;  // as the script calls it
    Tensor value;      // float64; its gradient is compared when it requires one
};

struct Case {
    std::string label;  // for failure messages
    std::string op;     // a key of OPS in torch_oracle.py
    nlohmann::json params;
    std::vector<Input> inputs;
    std::function<Tensor(const V&)> f;  // the engine's side, on the input values in order
};

// Single-quoted for /bin/sh, embedded single quotes included.
std::string shell_quote(const std::string& s) {
    std::string quoted = "'";
    for (char ch : s)
        quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return quoted + "'";
}

// The interpreter to run the oracle with, or an empty string (after reporting the skip) when it cannot
// import torch. The probe costs a second, so it runs once per process.
std::string torch_python_or_skip() {
    const char* env = std::getenv("R2C_TORCH_PYTHON");
    static const std::string python = env != nullptr ? env : "/usr/bin/python3";
    static const bool has_torch =
        std::system((shell_quote(python) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
    if (has_torch) return python;
    test::skip(python + " cannot import torch; set R2C_TORCH_PYTHON to a python with PyTorch");
    return "";
}

// Runs the source tree's script `script` under `python` on the folder `dir`: its exit status.
int run_script(const std::string& python, const char* script, const fs::path& dir) {
    const std::string command = shell_quote(python) + " " +
                                shell_quote(std::string(R2C_SOURCE_DIR "/") + script) + " " +
                                shell_quote(dir.string());
    return std::system(command.c_str());
}

using test::TempDir;

// Raw little-endian float64, byte by byte so that the host's byte order does not matter.
void write_f64(const fs::path& file, const std::vector<double>& values) {
    std::string bytes(8 * values.size(), '\0');
    for (std::size_t i = 0; i < values.size(); ++i) {
        std::uint64_t bits;
        std::memcpy(&bits, &values[i], sizeof bits);
        for (int byte = 0; byte < 8; ++byte)
            bytes[8 * i + byte] = static_cast<char>((bits >> (8 * byte)) & 0xff);
    }
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    R2C_CHECK(out.good(), "cannot write ", file.string());
}

std::vector<double> read_f64(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    R2C_CHECK(in.good(), "the oracle did not write ", file.string());
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<double> values(bytes.size() / 8);
    for (std::size_t i = 0; i < values.size(); ++i) {
        std::uint64_t bits = 0;
        for (int byte = 0; byte < 8; ++byte)
            bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[8 * i + byte])) << (8 * byte);
        std::memcpy(&values[i], &bits, sizeof bits);
    }
    return values;
}

// The engine's output and gradients for one case, with the weights R it used.
struct EngineResult {
    Tensor out, weights;
    V grads;
};

EngineResult run_engine(const Case& c, Rng& rng) {
    V values;
    for (const Input& in : c.inputs)
        values.push_back(in.value);
    EngineResult r;
    r.out = c.f(values);
    r.weights = Tensor::uniform(r.out.shape(), -1, 1, rng, DType::F64);
    sum(mul(r.out, r.weights)).backward();
    for (const Input& in : c.inputs)
        r.grads.push_back(in.value.grad());
    return r;
}

// Writes case i's inputs and weights and returns its manifest entry.
nlohmann::json write_case(const fs::path& dir, std::size_t i, const Case& c, const EngineResult& r) {
    const std::string prefix = std::to_string(i) + "_";
    nlohmann::json inputs = nlohmann::json::array();
    for (const Input& in : c.inputs) {
        write_f64(dir / (prefix + in.name + ".f64"), in.value.to_vector());
        inputs.push_back(
            {{"name", in.name}, {"shape", in.value.shape()}, {"grad", in.value.requires_grad()}});
    }
    write_f64(dir / (prefix + "R.f64"), r.weights.to_vector());
    return {{"op", c.op}, {"params", c.params}, {"inputs", inputs}, {"out_shape", r.out.shape()}};
}

void compare_case(const fs::path& dir, std::size_t i, const Case& c, const EngineResult& r) {
    const std::string prefix = std::to_string(i) + "_";
    INFO(c.label);
    CHECK(test::rel_l2(r.out.to_vector(), read_f64(dir / (prefix + "out.f64"))) <= kTol);
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
        if (!c.inputs[k].value.requires_grad()) continue;
        INFO("gradient of " << c.inputs[k].name);
        REQUIRE(r.grads[k].defined());
        CHECK(test::rel_l2(r.grads[k].to_vector(),
                           read_f64(dir / (prefix + "grad_" + c.inputs[k].name + ".f64"))) <= kTol);
    }
}

// Runs every case through the engine and, in one script run, through torch, and compares.
void check_against_torch(const std::vector<Case>& cases) {
    const std::string python = torch_python_or_skip();
    if (python.empty()) return;
    TempDir dir;
    Rng rng(99);
    std::vector<EngineResult> results;
    nlohmann::json manifest = {{"cases", nlohmann::json::array()}};
    for (std::size_t i = 0; i < cases.size(); ++i) {
        results.push_back(run_engine(cases[i], rng));
        manifest["cases"].push_back(write_case(dir.path(), i, cases[i], results.back()));
    }
    std::ofstream(dir.path() / "manifest.json") << manifest.dump();
    REQUIRE(run_script(python, "tests/torch_oracle.py", dir.path()) == 0);
    for (std::size_t i = 0; i < cases.size(); ++i)
        compare_case(dir.path(), i, cases[i], results[i]);
}

Input input(const std::string& name, const Shape& shape, Rng& rng, double lo = -1, double hi = 1,
            bool requires_grad = true) {
    return {name, test::rand(shape, rng, lo, hi, requires_grad)};
}

// How the script is told the padding of a convolution case.
nlohmann::json padding_params(const Padding& p) {
    if (p.kind == Padding::Kind::Same) return {{"padding", "same"}};
    if (p.kind == Padding::Kind::Valid) return {{"padding", "valid"}};
    if (p.kind == Padding::Kind::Reflect) return {{"padding", "reflect"}, {"pad", p.top}};
    return {{"padding", "explicit"}, {"pads", {p.top, p.bottom, p.left, p.right}}};
}

// An operational convolution (or, with `transpose`, transposed convolution) case from 2 to 3 channels
// with Q powers, kernel k, random weights and, if asked, random biases. The convolution gets a 7x6
// input (odd and even sizes), the transposed one 5x4.
Case oper_case(bool transpose, int q, int k, int stride, const Padding& padding, bool bias, Rng& rng) {
    const std::string op = transpose ? "oper_conv_transpose2d" : "oper_conv2d";
    nlohmann::json params = padding_params(padding);
    params["stride"] = stride;
    const Shape x_shape = transpose ? Shape{2, 2, 5, 4} : Shape{2, 2, 7, 6};
    const Shape w_shape = transpose ? Shape{q, 2, 3, k, k} : Shape{q, 3, 2, k, k};
    std::vector<Input> inputs{input("x", x_shape, rng), input("w", w_shape, rng, -0.5, 0.5)};
    if (bias) inputs.push_back(input("b", {q, 3}, rng));
    auto f = [transpose, stride, padding, bias](const V& t) {
        const Tensor b = bias ? t[2] : Tensor();
        return transpose ? oper_conv_transpose2d(t[0], t[1], b, stride, padding)
                         : oper_conv2d(t[0], t[1], b, stride, padding);
    };
    const std::string label =
        detail::concat(op, " Q=", q, " k=", k, " ", params.dump(), bias ? "" : " no bias");
    return {label, op, params, inputs, f};
}

}  // namespace

TEST_CASE("instance_norm matches torch", "[oracle]") {
    Rng rng(1);
    check_against_torch(
        {{"instance_norm [2,3,5,7]",
          "instance_norm",
          {{"eps", 1e-3}},
          {input("x", {2, 3, 5, 7}, rng, -2, 3), input("gamma", {3}, rng, 0.5, 1.5), input("beta", {3}, rng)},
          [](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3); }}});
}

TEST_CASE("reflect_pad matches torch", "[oracle]") {
    Rng rng(2);
    std::vector<Case> cases;
    for (int pad : {1, 2, 3})
        cases.push_back({"reflect_pad " + std::to_string(pad),
                         "reflect_pad",
                         {{"pad", pad}},
                         {input("x", {2, 3, 5, 4}, rng)},
                         [pad](const V& t) { return reflect_pad(t[0], pad); }});
    check_against_torch(cases);
}

TEST_CASE("the dense head and the losses match torch", "[oracle]") {
    Rng rng(3);
    // Logits spread wide enough that some probabilities fall below the 1e-7 clip.
    Input logits = input("logits", {4, 3}, rng, -3, 3);
    logits.value.data<double>()[0] = 25;
    logits.value.data<double>()[4] = -20;
    std::vector<Case> cases;
    cases.push_back({"linear",
                     "linear",
                     nlohmann::json::object(),
                     {input("x", {3, 5}, rng), input("w", {4, 5}, rng), input("b", {4}, rng)},
                     [](const V& t) { return linear(t[0], t[1], t[2]); }});
    cases.push_back({"global_max_pool",
                     "global_max_pool",
                     nlohmann::json::object(),
                     {input("x", {2, 3, 5, 3}, rng)},
                     [](const V& t) { return global_max_pool(t[0]); }});
    cases.push_back(
        {"softmax", "softmax", nlohmann::json::object(), {input("x", {4, 3}, rng, -3, 3)}, [](const V& t) {
             return softmax(t[0]);
         }});
    cases.push_back({"softmax + categorical_crossentropy",
                     "softmax_crossentropy",
                     nlohmann::json::object(),
                     {logits, input("target", {4, 3}, rng, 0, 1, false)},
                     [](const V& t) { return categorical_crossentropy(softmax(t[0]), t[1]); }});
    cases.push_back({"mse",
                     "mse",
                     nlohmann::json::object(),
                     {input("a", {2, 3, 5}, rng), input("b", {2, 3, 5}, rng)},
                     [](const V& t) { return mse(t[0], t[1]); }});
    cases.push_back({"mae",
                     "mae",
                     nlohmann::json::object(),
                     {input("a", {2, 3, 5}, rng), input("b", {2, 3, 5}, rng)},
                     [](const V& t) { return mae(t[0], t[1]); }});
    check_against_torch(cases);
}

TEST_CASE("oper_conv2d matches torch", "[oracle][conv]") {
    Rng rng(4);
    std::vector<Case> cases;
    for (int q : {1, 3, 5})
        for (int stride : {1, 2})
            for (int k : {3, 4})
                cases.push_back(oper_case(false, q, k, stride, Padding::same(), true, rng));
    cases.push_back(oper_case(false, 3, 3, 2, Padding::same(), false, rng));
    cases.push_back(oper_case(false, 3, 3, 1, Padding::valid(), true, rng));
    cases.push_back(oper_case(false, 3, 4, 2, Padding::explicit_pads(1, 2, 0, 3), true, rng));
    cases.push_back(oper_case(false, 3, 3, 1, Padding::reflect(1), true, rng));
    cases.push_back(oper_case(false, 2, 4, 2, Padding::reflect(3), false, rng));
    check_against_torch(cases);
}

TEST_CASE("oper_conv_transpose2d matches torch", "[oracle][conv]") {
    Rng rng(5);
    std::vector<Case> cases;
    for (int q : {1, 3})
        for (int k : {3, 4})
            cases.push_back(oper_case(true, q, k, 2, Padding::same(), true, rng));
    cases.push_back(oper_case(true, 3, 3, 2, Padding::same(), false, rng));
    cases.push_back(oper_case(true, 3, 3, 2, Padding::valid(), true, rng));
    check_against_torch(cases);
}

// benchmarks/r2cgan_torch.py, the PyTorch peer of bench_train_step, must build the same networks.
TEST_CASE("the PyTorch R2C-GAN of the benchmarks has our parameter counts", "[oracle][models]") {
    const std::string python = torch_python_or_skip();
    if (python.empty()) return;
    const std::string cmd =
        shell_quote(python) + " " + R2C_SOURCE_DIR "/benchmarks/r2cgan_torch.py --params-only";
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        out.append(buf, n);
    REQUIRE(pclose(pipe) == 0);
    const nlohmann::json peer = nlohmann::json::parse(out);
    const std::vector<std::tuple<std::string, Method, int>> methods = {
        {"q1", Method::Operational, 1},
        {"q3", Method::Operational, 3},
        {"q5", Method::Operational, 5},
        {"cnn", Method::Convolutional, 1},
        {"cnn-light", Method::ConvolutionalLight, 1}};
    for (const auto& [key, method, q] : methods) {
        INFO(key);
        Rng rng(0);
        const auto g = make_generator(method, q, rng);
        const auto d = make_discriminator(method, q, rng);
        CHECK(peer[key]["generator"].get<std::int64_t>() == g->num_parameters());
        CHECK(peer[key]["generator_classify"].get<std::int64_t>() == num_classify_parameters(*g));
        CHECK(peer[key]["discriminator"].get<std::int64_t>() == d->num_parameters());
    }
}

namespace {

// One network's parameters for the peer script: manifest entries, and a file each.
nlohmann::json write_network(const fs::path& dir, const std::string& key, const Module& m) {
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& [name, t] : m.parameters()) {
        write_f64(dir / (key + "." + name + ".f64"), t.to_vector());
        entries.push_back({{"name", name}, {"shape", t.shape()}});
    }
    return entries;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The gradients of every parameter of m, by name.
std::map<std::string, std::vector<double>> gradients(const Module& m) {
    std::map<std::string, std::vector<double>> out;
    for (const auto& [name, t] : m.parameters()) {
        REQUIRE(t.grad().defined());
        out[name] = t.grad().to_vector();
    }
    return out;
}

}  // namespace

// benchmarks/r2cgan_torch.py's training iteration, which the benchmarks time beside ours, must compute
// what ours computes: from the same weights (the constant-initialised ones made random too) and batch, its
// losses and the gradients of every parameter match ours in float64. Its optimiser is PyTorch's Adam,
// which adds epsilon after the bias correction where Keras's (ours) adds it before: the same work, not the
// same update, so the updated parameters are not compared.
TEST_CASE("the PyTorch R2C-GAN of the benchmarks computes our losses and gradients", "[oracle][models]") {
    const std::string python = torch_python_or_skip();
    if (python.empty()) return;
    const std::vector<std::pair<Method, int>> methods = {{Method::Operational, 3},
                                                         {Method::Operational, 1},
                                                         {Method::ConvolutionalLight, 1},
                                                         {Method::Convolutional, 1}};
    for (const auto& [method, q] : methods) {
        INFO(method_name(method) << " Q=" << q);
        Rng rng(21);
        R2CNetworks nets{make_generator(method, q, rng), make_generator(method, q, rng),
                         make_discriminator(method, q, rng), make_discriminator(method, q, rng)};
        const std::vector<std::pair<std::string, Module*>> modules = {
            {"G", nets.G.get()}, {"F", nets.F.get()}, {"D_A", nets.D_A.get()}, {"D_B", nets.D_B.get()}};
        for (const auto& [key, m] : modules) {
            m->to(DType::F64);
            for (auto [name, t] : m->parameters()) {
                if (ends_with(name, ".w")) continue;  // Glorot-uniform already
                const bool gamma = ends_with(name, ".gamma");
                const Tensor v =
                    Tensor::uniform(t.shape(), gamma ? 0.5 : -0.2, gamma ? 1.5 : 0.2, rng, DType::F64);
                std::copy(v.data<double>(), v.data<double>() + v.numel(), t.data<double>());
            }
        }
        const Tensor A = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng, DType::F64);
        const Tensor B = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng, DType::F64);
        const Tensor cA = Tensor::from_vector({0, 1, 1, 0}, {2, 2}, DType::F64);
        const Tensor cB = Tensor::from_vector({1, 0, 1, 0}, {2, 2}, DType::F64);

        TempDir dir;
        nlohmann::json manifest = {
            {"method", method_name(method)}, {"q", q}, {"networks", nlohmann::json::object()}};
        for (const auto& [key, m] : modules)
            manifest["networks"][key] = write_network(dir.path(), key, *m);
        manifest["inputs"] = nlohmann::json::array();
        const std::vector<std::pair<std::string, Tensor>> batch = {
            {"A", A}, {"B", B}, {"cA", cA}, {"cB", cB}};
        for (const auto& [name, t] : batch) {
            write_f64(dir.path() / (name + ".f64"), t.to_vector());
            manifest["inputs"].push_back({{"name", name}, {"shape", t.shape()}});
        }
        std::ofstream(dir.path() / "manifest.json") << manifest.dump();

        // Ours: L_G and its gradients for G and F, then L_D on the fakes (the first query of an empty
        // image pool returns them) and its gradients for D_A and D_B.
        const GeneratorPass g = generator_loss(nets, A, B, cA, cB, LossWeights{});
        g.loss.total.backward();
        std::map<std::string, std::map<std::string, std::vector<double>>> grads;
        grads["G"] = gradients(*nets.G);
        grads["F"] = gradients(*nets.F);
        nets.D_A->zero_grad();
        nets.D_B->zero_grad();
        const LossTerms d = discriminator_loss(nets, A, B, g.B2A, g.A2B);
        d.total.backward();
        grads["D_A"] = gradients(*nets.D_A);
        grads["D_B"] = gradients(*nets.D_B);
        std::vector<std::pair<std::string, double>> losses;
        for (const auto& [name, t] : g.loss.terms)
            losses.emplace_back(name, t.item());
        losses.emplace_back("g_total", g.loss.total.item());
        for (const auto& [name, t] : d.terms)
            losses.emplace_back(name, t.item());
        losses.emplace_back("d_total", d.total.item());

        REQUIRE(run_script(python, "tests/r2cgan_oracle.py", dir.path()) == 0);
        const std::vector<double> peer = read_f64(dir.path() / "losses.f64");
        REQUIRE(peer.size() == losses.size());
        for (std::size_t i = 0; i < losses.size(); ++i) {
            INFO(losses[i].first << ": ours " << losses[i].second << ", the peer's " << peer[i]);
            CHECK(std::abs(losses[i].second - peer[i]) <= kTol * std::max(1.0, std::abs(peer[i])));
        }
        for (const auto& [key, by_name] : grads)
            for (const auto& [name, ours] : by_name) {
                INFO("gradient of " << key << "." << name);
                CHECK(test::rel_l2(ours, read_f64(dir.path() / ("grad." + key + "." + name + ".f64"))) <=
                      kTol);
            }
    }
}
