// r2c info: the build, the devices, and the chosen method's networks with their parameter counts.
#include <iomanip>
#include <iostream>

#include "engine/device.h"
#include "models/networks.h"
#include "tools/commands.h"

namespace r2c::cli {

namespace {

void print_network(const char* title, const Module& m) {
    std::cout << title << "\n";
    for (const auto& [name, t] : m.parameters())
        std::cout << "  " << std::left << std::setw(22) << name << std::setw(22) << shape_str(t.shape())
                  << std::right << std::setw(12) << t.numel() << "\n";
    std::cout << "  " << std::left << std::setw(44) << "total" << std::right << std::setw(12)
              << m.num_parameters() << "\n";
}

}  // namespace

const std::vector<OptionSpec>& info_options() {
    static const std::vector<OptionSpec> specs = {
        {"method", "operational, convolutional or convolutional-light", "operational", false},
        {"q", "order of the operational layers (operational method)", "3", false},
    };
    return specs;
}

int cmd_info(const Args& args) {
    const Method method = parse_method(args.str("method"));
    const int q = static_cast<int>(args.integer("q", 1, 16));

    std::cout << "r2c " << R2C_VERSION << "\n";
    std::cout << "CUDA: " << cuda::describe() << "\n";
    std::cout << "cuDNN path of the operational convolutions: "
              << (cuda::cudnn_compiled() ? "built in (cuDNN " + cuda::cudnn_version() + " loaded)"
                                         : "not built in (the fused kernels run them all)")
              << "\n";
#ifdef _OPENMP
    std::cout << "CPU threads (OpenMP): enabled\n\n";
#else
    std::cout << "CPU threads (OpenMP): disabled\n\n";
#endif

    Rng rng(0);
    const auto g = make_generator(method, q, rng);
    const auto d = make_discriminator(method, q, rng);
    std::cout << "method " << method_name(method);
    if (method == Method::Operational) std::cout << ", Q = " << q;
    std::cout << "\n\n";
    print_network("generator (restore + classify)", *g);

    std::cout << "  " << std::left << std::setw(44) << "classify only (up to the class head)" << std::right
              << std::setw(12) << num_classify_parameters(*g) << "\n\n";
    print_network("discriminator", *d);
    return 0;
}

}  // namespace r2c::cli
