// fedvar's version (CMake's project version, major.minor.patch).
#pragma once

namespace fedvar {

inline constexpr const char* kVersion = FEDVAR_VERSION;

}  // namespace fedvar
