// The authors' dataset layout: <datasets_dir>/trainA (poor quality), trainB (high quality), testA (test),
// each holding PNG/JPEG files. A file is COVID-19 (label 1) when its path contains "covid", else a
// control (label 0).
#pragma once

#include <string>
#include <vector>

namespace r2c {

struct Sample {
    std::string path;  // as opened: <folder>/<name>
    std::string name;  // relative to the listed folder, '/'-separated, e.g. "covid/0001.png"
    int label = 0;     // 1 = COVID-19, 0 = control
};

// Files named *.png, *.jpg or *.jpeg (extension in any case; the content decides the format when decoding).
bool has_image_extension(const std::string& path);

// The authors test `'covid' in path`: case-sensitive ("COVID_1.png" is a control). Unlike them this looks at
// the path below the domain folder only, so a dataset stored under e.g. /data/covid-study/ is not labelled
// COVID-19 throughout.
int label_from_name(const std::string& name);

// Every image file in `dir` and its subfolders (recursively, not following symbolic links to folders),
// sorted by name (byte order) so the listing is the same on every file system. r2c::Error naming the
// folder when it does not exist, is not a folder, cannot be read or holds no image files.
std::vector<Sample> list_images(const std::string& dir);

// list_images(<datasets_dir>/<domain>), domain being "trainA", "trainB" or "testA".
std::vector<Sample> list_domain(const std::string& datasets_dir, const std::string& domain);

}  // namespace r2c
