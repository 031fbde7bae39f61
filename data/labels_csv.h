// A labelled folder of images: the folder plus a CSV file that names its images and their classes, as
// ../shared/data/cxr/labels.csv does:
//
//   file,label,source,finding,view,notes
//   radiography/covid_1.png,covid,radiography_db,COVID-19,,uniform224
//   "figure1/COVID-00005.jpg",unknown,figure1,"",,"Slight from monitor, red blur on bottom left corner"
//
// The CSV is RFC 4180: a header row, then one row per image, fields separated by commas; a field in double
// quotes may hold commas, line breaks and doubled quotes (""). LF or CRLF line ends; a UTF-8 byte-order
// mark and blank lines are ignored. The header names the columns; `file` (the image's path relative to the
// folder, '/'-separated) and `label` must be among them, the others are ignored. Labels, in any case and
// with surrounding spaces ignored:
//   covid                        COVID-19 (class 1)
//   normal, noncovid, control    control (class 0)
//   unknown                      no class: the row is counted and left out
#pragma once

#include <string>
#include <vector>

namespace r2c {

struct LabelledImage {
    std::string file;     // relative to the folder, as the CSV gives it
    std::string path;     // <folder>/<file>
    std::string label;    // the CSV's label, lower case
    int label_class = 0;  // 1 = COVID-19, 0 = control
    int line = 0;         // the CSV line its row starts on
};

struct LabelledFolder {
    std::vector<LabelledImage> images;  // in the CSV's order, "unknown" rows left out
    int unknown = 0;                    // rows labelled "unknown"
};

// Reads and checks the whole CSV before anything is done with it. Every problem is an r2c::Error that
// names the CSV file and, for a row, its line ("labels.csv:12: ..."): a folder that does not exist, an
// unreadable or empty CSV, a header without a `file` or `label` column, a quote that is not closed or stray
// text around a quoted field, a row with more or fewer fields than the header, an empty file name, an
// absolute path or one that leaves the folder (".."), a file listed twice, a file that does not exist or
// is not a regular file (rows labelled "unknown" included), an empty or unknown label, and a CSV with no
// image of a known class. Whether the files decode is not checked here.
LabelledFolder read_labelled_folder(const std::string& folder, const std::string& csv_path);

}  // namespace r2c
