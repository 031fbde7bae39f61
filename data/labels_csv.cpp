#include "data/labels_csv.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace r2c {

namespace fs = std::filesystem;

namespace {

struct CsvRow {
    int line = 0;  // where the row starts
    std::vector<std::string> fields;
};

bool line_end(char c) {
    return c == '\n' || c == '\r';
}

// RFC 4180 rows of `text`; rows holding a single empty field (blank lines) are dropped. `name` labels
// errors.
std::vector<CsvRow> parse_csv(const std::string& text, const std::string& name) {
    std::vector<CsvRow> rows;
    const std::size_t n = text.size();
    std::size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    int line = 1;
    while (i < n) {
        CsvRow row;
        row.line = line;
        for (;;) {
            std::string field;
            if (i < n && text[i] == '"') {
                const int opened = line;
                for (++i;; ++i) {
                    R2C_CHECK(i < n, name, ":", opened, ": a quoted field is not closed");
                    if (text[i] == '"') {
                        if (i + 1 < n && text[i + 1] == '"') {
                            field += '"';
                            ++i;
                            continue;
                        }
                        ++i;
                        break;
                    }
                    if (text[i] == '\n') ++line;
                    field += text[i];
                }
                R2C_CHECK(i == n || text[i] == ',' || line_end(text[i]), name, ":", line,
                          ": text after the closing quote of a field");
            } else {
                for (; i < n && text[i] != ',' && !line_end(text[i]); ++i) {
                    R2C_CHECK(
                        text[i] != '"', name, ":", line,
                        ": a quote inside an unquoted field (quote the whole field and double the quote)");
                    field += text[i];
                }
            }
            row.fields.push_back(std::move(field));
            if (i < n && text[i] == ',') {
                ++i;
                continue;
            }
            if (i < n && text[i] == '\r') ++i;
            if (i < n && text[i] == '\n') ++i;
            ++line;
            break;
        }
        if (row.fields.size() > 1 || !row.fields[0].empty()) rows.push_back(std::move(row));
    }
    return rows;
}

std::string trimmed(const std::string& s) {
    const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
    const auto first = std::find_if_not(s.begin(), s.end(), space);
    const auto last = std::find_if_not(s.rbegin(), s.rend(), space).base();
    return first < last ? std::string(first, last) : std::string();
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// The column called `name` in the header row.
std::size_t column(const CsvRow& header, const std::string& name, const std::string& csv) {
    for (std::size_t i = 0; i < header.fields.size(); ++i)
        if (lower(trimmed(header.fields[i])) == name) return i;
    std::string names;
    for (const std::string& f : header.fields)
        names += (names.empty() ? "'" : ", '") + f + "'";
    throw Error(detail::concat(csv, ":", header.line, ": the header has no '", name, "' column (it names ",
                               names, "); expected a header row such as file,label"));
}

// 1 for COVID-19, 0 for a control, -1 for "unknown".
int label_class(const std::string& label, const std::string& where) {
    R2C_CHECK(!label.empty(), where, ": no label (covid, normal, noncovid, control or unknown)");
    if (label == "covid") return 1;
    if (label == "normal" || label == "noncovid" || label == "control") return 0;
    R2C_CHECK(label == "unknown", where, ": unknown label '", label,
              "' (expected covid, normal, noncovid, control or unknown)");
    return -1;
}

}  // namespace

LabelledFolder read_labelled_folder(const std::string& folder, const std::string& csv_path) {
    std::error_code ec;
    R2C_CHECK(fs::is_directory(folder, ec), "image folder '", folder, "' does not exist or is not a folder");
    const std::vector<CsvRow> rows = parse_csv(read_file(csv_path), csv_path);
    R2C_CHECK(!rows.empty(), csv_path, ": empty; expected a header row naming the columns file and label");
    const CsvRow& header = rows.front();
    const std::size_t file_col = column(header, "file", csv_path),
                      label_col = column(header, "label", csv_path);

    LabelledFolder out;
    std::map<std::string, int> listed;  // normalised path -> its line
    for (std::size_t r = 1; r < rows.size(); ++r) {
        const CsvRow& row = rows[r];
        const std::string where = detail::concat(csv_path, ":", row.line);
        R2C_CHECK(row.fields.size() == header.fields.size(), where, ": ", row.fields.size(),
                  " field(s), the header has ", header.fields.size());
        LabelledImage image;
        image.file = trimmed(row.fields[file_col]);
        image.label = lower(trimmed(row.fields[label_col]));
        image.line = row.line;
        R2C_CHECK(!image.file.empty(), where, ": no file name");
        const fs::path rel = fs::path(image.file).lexically_normal();
        R2C_CHECK(rel.is_relative() && *rel.begin() != "..", where, ": '", image.file,
                  "' is not a path inside the image folder");
        const auto [seen, fresh] = listed.emplace(rel.generic_string(), row.line);
        R2C_CHECK(fresh, where, ": '", image.file, "' is listed twice (also on line ", seen->second, ")");
        image.path = (fs::path(folder) / rel).string();
        R2C_CHECK(fs::exists(image.path, ec), where, ": '", image.path, "' does not exist");
        R2C_CHECK(fs::is_regular_file(image.path, ec), where, ": '", image.path, "' is not a file");
        const int cls = label_class(image.label, where);
        if (cls < 0) {
            ++out.unknown;
            continue;
        }
        image.label_class = cls;
        out.images.push_back(std::move(image));
    }
    R2C_CHECK(!out.images.empty(), csv_path, ": lists no image labelled covid, normal, noncovid or control");
    return out;
}

}  // namespace r2c
