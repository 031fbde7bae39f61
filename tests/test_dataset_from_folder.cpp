// Datasets made from a labelled folder of real images (r2c make-data --from): the labels CSV (format, and a
// clear error naming the file and line for every kind of bad row), the split (disjoint folders, each source
// at most once, stratified by class, fixed by the seed), clean test originals under the testA names,
// classes recoverable from the written names, undecodable files skipped and counted.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "data/cxr_synth.h"
#include "data/dataset.h"
#include "data/dataset_maker.h"
#include "data/image_io.h"
#include "data/labels_csv.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

Image radiograph(std::uint64_t seed, bool covid, int size) {
    Rng rng(seed);
    return render_cxr(draw_cxr_case(rng, covid), size);
}

// A folder laid out like ../shared/data/cxr: two collections in subfolders, PNG and JPEG at two sizes,
// controls whose paths contain "covid", quoted fields holding commas, one row labelled "unknown" and one
// file that does not decode. Classes: 20 COVID-19, 30 controls that decode.
void write_labelled_folder(const std::string& root) {
    fs::create_directories(root + "/a");
    fs::create_directories(root + "/b");
    std::string csv = "file,label,source,notes\n";
    for (int i = 0; i < 12; ++i) {
        write_png(root + "/a/covid_" + std::to_string(i) + ".png", radiograph(i, true, 40));
        csv += "a/covid_" + std::to_string(i) + ".png,covid,a,\n";
    }
    for (int i = 0; i < 8; ++i) {
        const std::string name = "b/patient-" + std::to_string(i) + ".jpg";
        write_file_atomic(root + "/" + name, encode_jpeg(radiograph(100 + i, true, 72), 90));
        csv += "\"" + name + "\",COVID ,b,\"photo of a screen, \"\"cropped\"\"\"\n";
    }
    for (int i = 0; i < 20; ++i) {
        write_png(root + "/a/normal_" + std::to_string(i) + ".png", radiograph(200 + i, false, 40));
        csv += "a/normal_" + std::to_string(i) + ".png,normal,a,\n";
    }
    for (int i = 0; i < 10; ++i) {
        write_png(root + "/b/covid-like-" + std::to_string(i) + ".png", radiograph(300 + i, false, 72));
        csv += "b/covid-like-" + std::to_string(i) + ".png,noncovid,b,\"SARS, not COVID-19\"\n";
    }
    write_png(root + "/b/unsure.png", radiograph(400, true, 40));
    csv += "b/unsure.png,unknown,b,\n";
    write_file_atomic(root + "/a/broken.png", "\x89PNG\r\n\x1a\n and then nothing");
    csv += "a/broken.png,normal,a,\n";
    write_file_atomic(root + "/labels.csv", csv);
}

FolderDatasetOptions options(const std::string& root, const std::string& out, std::uint64_t seed) {
    FolderDatasetOptions o;
    o.folder = root;
    o.labels_csv = root + "/labels.csv";
    o.out_dir = out;
    o.test_fraction = 0.25;
    o.size = 32;
    o.seed = seed;
    return o;
}

nlohmann::json manifest_of(const std::string& out) {
    return nlohmann::json::parse(read_file(out + "/manifest.json"));
}

// source file -> "<folder>/<file>" it was written as.
std::map<std::string, std::string> placement(const nlohmann::json& manifest) {
    std::map<std::string, std::string> out;
    for (const auto& e : manifest["images"])
        out[e["source"].get<std::string>()] =
            e["folder"].get<std::string>() + "/" + e["file"].get<std::string>();
    return out;
}

Image resized_source(const std::string& path, int size) {
    return to_uint8(resize_antialiased(to_float(read_image(path)), size, size));
}

// A labelled folder of four images (a, b covid; c, d normal) with the given CSV text.
std::string folder_with_csv(const TempDir& dir, const std::string& csv) {
    for (const char* name : {"a.png", "b.png", "c.png", "d.png"})
        write_png(dir.new_file(std::string("f/") + name), radiograph(1, false, 16));
    write_file_atomic(dir.file("f/labels.csv"), csv);
    return dir.file("f");
}

}  // namespace

TEST_CASE("a labelled folder becomes disjoint, stratified trainA, trainB and testA with clean originals",
          "[from_folder]") {
    TempDir dir;
    const std::string root = dir.file("src"), out = dir.file("out");
    write_labelled_folder(root);
    const FolderDatasetResult r = make_dataset_from_folder(options(root, out, 5));

    // Per class: round(n / 4) test images, the rest halved, trainA taking the odd one.
    CHECK(r.counts.test_covid == 5);
    CHECK(r.counts.train_a_covid == 8);
    CHECK(r.counts.train_b_covid == 7);
    CHECK(r.counts.test_control == 8);
    CHECK(r.counts.train_a_control == 11);
    CHECK(r.counts.train_b_control == 11);
    CHECK(r.skipped == 1);
    CHECK(r.unknown == 1);

    const nlohmann::json m = manifest_of(out);
    CHECK(m["seed"] == 5);
    REQUIRE(m["skipped"].size() == 1);
    CHECK(m["skipped"][0]["source"] == "a/broken.png");
    CHECK_THAT(m["skipped"][0]["reason"].get<std::string>(), Contains("broken.png"));

    // Every decodable labelled source written exactly once; unknown and broken ones never.
    std::multiset<std::string> sources;
    std::map<std::string, std::map<std::string, int>> per_folder;  // folder -> class -> count
    for (const auto& e : m["images"]) {
        const std::string folder = e["folder"], file = e["file"], source = e["source"], cls = e["class"];
        sources.insert(source);
        ++per_folder[folder][cls];
        // The project's class rule, applied to the written name, gives the CSV's class back, also for
        // controls whose source path contains "covid".
        CHECK(label_from_name(file) == (cls == "covid" ? 1 : 0));
        CHECK(cls == (e["label"] == "covid" ? "covid" : "control"));
        const Image written = read_image(out + "/" + folder + "/" + file);
        CHECK(written.width == 32);
        CHECK(written.height == 32);
        const Image clean = resized_source(root + "/" + source, 32);
        if (folder == "trainB") {
            CHECK(written.pixels == clean.pixels);
            CHECK(e["degradation"] == "");
        } else {
            CHECK(written.pixels != clean.pixels);
            CHECK(e["degradation"] != "");
        }
        if (folder == "testA") CHECK(read_image(out + "/testA_clean/" + file).pixels == clean.pixels);
    }
    CHECK(sources.size() == 50);
    CHECK(std::set<std::string>(sources.begin(), sources.end()).size() == 50);
    CHECK(sources.count("b/unsure.png") == 0);
    CHECK(sources.count("a/broken.png") == 0);
    CHECK(sources.count("b/covid-like-3.png") == 1);
    CHECK(per_folder["trainA"] == std::map<std::string, int>{{"covid", 8}, {"control", 11}});
    CHECK(per_folder["trainB"] == std::map<std::string, int>{{"covid", 7}, {"control", 11}});
    CHECK(per_folder["testA"] == std::map<std::string, int>{{"covid", 5}, {"control", 8}});

    // The folders as the trainer and r2c test list them: the same counts and classes; testA_clean mirrors
    // testA name for name.
    std::map<std::string, int> covid_listed;
    for (const char* folder : {"trainA", "trainB", "testA"})
        for (const Sample& s : list_domain(out, folder))
            covid_listed[folder] += s.label;
    CHECK(covid_listed == std::map<std::string, int>{{"trainA", 8}, {"trainB", 7}, {"testA", 5}});
    std::vector<std::string> test_names, clean_names;
    for (const Sample& s : list_domain(out, "testA"))
        test_names.push_back(s.name);
    for (const Sample& s : list_domain(out, "testA_clean"))
        clean_names.push_back(s.name);
    CHECK(test_names.size() == 13);
    CHECK(test_names == clean_names);

    // An existing dataset is never written into.
    CHECK_THROWS_WITH(make_dataset_from_folder(options(root, out, 5)), Contains("already holds files"));
}

TEST_CASE("the split and the images are fixed by the seed", "[from_folder]") {
    TempDir dir;
    const std::string root = dir.file("src");
    write_labelled_folder(root);
    make_dataset_from_folder(options(root, dir.file("one"), 5));
    make_dataset_from_folder(options(root, dir.file("two"), 5));
    make_dataset_from_folder(options(root, dir.file("other"), 6));
    CHECK(read_file(dir.file("one/manifest.json")) == read_file(dir.file("two/manifest.json")));
    int compared = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir.file("one"))) {
        if (!e.is_regular_file()) continue;
        const fs::path rel = e.path().lexically_relative(dir.file("one"));
        CHECK(read_file(e.path().string()) == read_file((fs::path(dir.file("two")) / rel).string()));
        ++compared;
    }
    CHECK(compared == 50 + 13 + 1);

    // Another seed: another split, with the same class proportions.
    const auto one = placement(manifest_of(dir.file("one"))),
               other = placement(manifest_of(dir.file("other")));
    CHECK(one.size() == other.size());
    int moved = 0;
    for (const auto& [source, where] : one)
        moved += other.at(source).substr(0, 6) != where.substr(0, 6);
    CHECK(moved > 10);
    CHECK(manifest_of(dir.file("other"))["counts"] == manifest_of(dir.file("one"))["counts"]);
}

TEST_CASE("size 0 keeps each image's size; impossible splits and options are refused", "[from_folder]") {
    TempDir dir;
    const std::string root = dir.file("src");
    write_labelled_folder(root);
    FolderDatasetOptions o = options(root, dir.file("native"), 1);
    o.size = 0;
    make_dataset_from_folder(o);
    for (const auto& e : manifest_of(dir.file("native"))["images"]) {
        const Image source = read_image(root + "/" + e["source"].get<std::string>());
        const Image written = read_image(
            dir.file("native/" + e["folder"].get<std::string>() + "/" + e["file"].get<std::string>()));
        CHECK(written.width == source.width);
        CHECK(written.height == source.height);
    }

    o = options(root, dir.file("bad"), 1);
    o.test_fraction = 1;
    CHECK_THROWS_WITH(make_dataset_from_folder(o), Contains("test_fraction"));
    o = options(root, dir.file("bad"), 1);
    o.size = 8;
    CHECK_THROWS_WITH(make_dataset_from_folder(o), Contains("size"));
    // Two images cannot fill three folders.
    const std::string tiny = folder_with_csv(dir, "file,label\na.png,covid\nc.png,normal\n");
    o = options(tiny, dir.file("bad"), 1);
    CHECK_THROWS_WITH(make_dataset_from_folder(o), Contains("cannot fill trainA, trainB and testA"));
    CHECK_FALSE(fs::exists(dir.file("bad")));
}

TEST_CASE("labels CSV: quoting, line ends, header order, label spelling", "[labels_csv]") {
    TempDir dir;
    const std::string folder = folder_with_csv(dir,
                                               "\xEF\xBB\xBFnotes,Label,File\r\n"
                                               "\"two\r\nlines, and a \"\"quote\"\"\",covid,a.png\r\n"
                                               "\r\n"
                                               ", Normal ,\"./b.png\"\r\n"
                                               "x,UNKNOWN,c.png\r\n"
                                               "y,noncovid,d.png");
    const LabelledFolder f = read_labelled_folder(folder, folder + "/labels.csv");
    REQUIRE(f.images.size() == 3);
    CHECK(f.unknown == 1);
    CHECK(f.images[0].file == "a.png");
    CHECK(f.images[0].label_class == 1);
    CHECK(f.images[0].line == 2);
    CHECK(f.images[0].path == (fs::path(folder) / "a.png").string());
    CHECK(f.images[1].file == "./b.png");
    CHECK(f.images[1].label == "normal");
    CHECK(f.images[1].label_class == 0);
    CHECK(f.images[1].line == 5);  // the quoted line break counts
    CHECK(f.images[2].label == "noncovid");
    CHECK(f.images[2].label_class == 0);
    CHECK(f.images[2].line == 7);
}

TEST_CASE("labels CSV: every malformed row is an error naming the file and the line", "[labels_csv]") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"file,label\na.png,covid\nb.png,normal,extra\n", "labels.csv:3: 3 field(s), the header has 2"},
        {"file,label\na.png,covid\nb.png\n", "labels.csv:3: 1 field(s), the header has 2"},
        {"file,label\n\"a.png,covid\nb.png,normal\n", "labels.csv:2: a quoted field is not closed"},
        {"file,label\n\"a.png\"x,covid\n", "labels.csv:2: text after the closing quote"},
        {"file,label\na\"b.png,covid\n", "labels.csv:2: a quote inside an unquoted field"},
        {"file,class\na.png,covid\n", "labels.csv:1: the header has no 'label' column"},
        {"name,label\na.png,covid\n", "labels.csv:1: the header has no 'file' column"},
        {"file,label\na.png,covid\nb.png,maybe\n", "labels.csv:3: unknown label 'maybe'"},
        {"file,label\na.png,\n", "labels.csv:2: no label"},
        {"file,label\n,covid\n", "labels.csv:2: no file name"},
        {"file,label\na.png,covid\nc.png,normal\n./a.png,normal\n",
         "labels.csv:4: './a.png' is listed twice (also on line 2)"},
        {"file,label\n../f/a.png,covid\n",
         "labels.csv:2: '../f/a.png' is not a path inside the image folder"},
        {"file,label\n/etc/passwd,covid\n", "labels.csv:2: '/etc/passwd' is not a path inside"},
        {"file,label\na.png,unknown\n", "lists no image labelled covid, normal, noncovid or control"},
        {"\n\n", "labels.csv: empty"},
    };
    for (const auto& [csv, message] : cases) {
        CAPTURE(csv);
        TempDir dir;
        const std::string folder = folder_with_csv(dir, csv);
        CHECK_THROWS_WITH(read_labelled_folder(folder, folder + "/labels.csv"), Contains(message));
    }
    // Which of the two file problems it is.
    TempDir dir;
    const std::string folder = folder_with_csv(dir, "file,label\nmissing.png,covid\n");
    CHECK_THROWS_WITH(read_labelled_folder(folder, folder + "/labels.csv"),
                      Contains("labels.csv:2: '") && Contains("missing.png' does not exist"));
    fs::create_directories(folder + "/sub");
    write_file_atomic(folder + "/labels.csv", "file,label\nsub,covid\n");
    CHECK_THROWS_WITH(read_labelled_folder(folder, folder + "/labels.csv"),
                      Contains("labels.csv:2: '") && Contains("sub' is not a file"));
    CHECK_THROWS_WITH(read_labelled_folder(folder, folder + "/none.csv"), Contains("none.csv"));
    CHECK_THROWS_WITH(read_labelled_folder(dir.file("nowhere"), folder + "/labels.csv"),
                      Contains("nowhere' does not exist or is not a folder"));
}
