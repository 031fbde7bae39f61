#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "engine/error.h"

namespace r2c {

namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

int label_from_name(const std::string& name) {
    return name.find("covid") != std::string::npos ? 1 : 0;
}

std::vector<Sample> list_images(const std::string& dir) {
    std::error_code ec;
    const fs::file_status st = fs::status(dir, ec);
    R2C_CHECK(fs::exists(st), "dataset folder '", dir, "' does not exist");
    R2C_CHECK(fs::is_directory(st), "dataset folder '", dir, "' is not a folder");
    std::vector<Sample> out;
    try {
        for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
            if (!e.is_regular_file() || !has_image_extension(e.path().string())) continue;
            Sample s;
            s.path = e.path().string();
            s.name = e.path().lexically_relative(dir).generic_string();
            s.label = label_from_name(s.name);
            out.push_back(std::move(s));
        }
    } catch (const fs::filesystem_error& err) {
        throw Error(detail::concat("cannot list dataset folder '", dir, "': ", err.code().message(), " ('",
                                   err.path1().string(), "')"));
    }
    R2C_CHECK(!out.empty(), "dataset folder '", dir, "' holds no image files (*.png, *.jpg, *.jpeg)");
    std::sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) { return a.name < b.name; });
    return out;
}

std::vector<Sample> list_domain(const std::string& datasets_dir, const std::string& domain) {
    return list_images((fs::path(datasets_dir) / domain).string());
}

}  // namespace r2c
