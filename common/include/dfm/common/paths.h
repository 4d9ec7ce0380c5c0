// Locating bundled resources (models, landmark data) without depending on the working directory.
#pragma once

#include <string>
#include <vector>

namespace dfm {

// Directories searched for the default models, in order: $DFMON_MODELS, <exe>/../share/dfmon/models,
// the install prefix, the source tree's models/ (for a build that was not installed).
std::vector<std::string> default_model_dirs();

// First directory of default_model_dirs() that exists, or "" when none does.
std::string find_default_model_dir();

// dlib's 68-point landmark model: $DFMON_LANDMARKS, then Debian's libdlib-data locations.
std::string find_landmark_model();

// Writes `data` to `path` atomically (temp file in the same directory + rename); false + reason on error.
bool write_file_atomic(const std::string& path, const std::string& data, std::string* error);

// Whether write_file_atomic(path) can succeed later: creates and removes a temp file beside `path`.
// Lets a command fail before hours of work instead of after. Error text: "<path>: cannot write: <why>".
bool check_writable(const std::string& path, std::string* error);

}  // namespace dfm
