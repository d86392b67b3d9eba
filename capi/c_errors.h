// How libfedvar's C entry points report: a fedvar_code and a malloc'ed
// message, with every exception caught. Internal to libfedvar.
#pragma once

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "core/status.h"
#include "fedvar/fedvar.h"

namespace fedvar::capi {

// A malloc'ed copy the caller frees with fedvar_free.
inline char* copy_string(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

inline fedvar_code code_of(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return FEDVAR_OK;
    case Code::kUnavailable: return FEDVAR_UNAVAILABLE;
    case Code::kInternal: return FEDVAR_INTERNAL;
    default: return FEDVAR_INVALID_ARGUMENT;
  }
}

// Stores the message (or NULL when ok) in *errptr, freeing an earlier one.
inline fedvar_code report(const Status& status, char** errptr) {
  if (errptr != nullptr) {
    std::free(*errptr);
    *errptr = status.ok() ? nullptr : copy_string(status.message());
  }
  return code_of(status);
}

// Runs `body` (returning a Status) with every exception turned into one.
template <typename Body>
fedvar_code guarded(const char* where, char** errptr, Body&& body) {
  try {
    return report(body(), errptr);
  } catch (const std::exception& e) {
    return report(status_from_exception(where, e), errptr);
  } catch (...) {
    return report(Status::Internal(std::string(where) + ": unknown exception"), errptr);
  }
}

inline Status need(const void* pointer, const char* what) {
  return pointer != nullptr ? Status::Ok()
                            : Status::InvalidArgument(std::string(what) + " is NULL");
}

}  // namespace fedvar::capi
