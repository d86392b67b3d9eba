// Whole-file reads and atomic writes, with errno mapped to a Status code
// (ENOENT -> kNotFound, EACCES/EROFS -> kFailedPrecondition, ENOSPC ->
// kUnavailable, else kInternal).
#pragma once

#include <string>

#include "core/status.h"

namespace fedvar {

// Reads all of `path`.
Result<std::string> read_file(const std::string& path);

// Writes `contents` to `path` atomically: a temp file "<path>.tmp.<pid>" in the
// same directory, fsync, rename; the temp file is removed on failure, so a
// reader sees the old file or the whole new one. Every output fedvar writes
// goes through here.
Status write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace fedvar
