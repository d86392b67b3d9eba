// What trigger.cpp (the spec's text form) and trigger_stamp.cpp (stamping)
// share; not part of fedvar's interface.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/trigger.h"

namespace fedvar::trigger_detail {

// The DBA grid has this many columns (Xie et al.: 4 bars in a 2 x 2 grid).
inline constexpr int64_t kDbaGridCols = 2;

// kInvalidArgument "key=value: why".
Status bad_value(const std::string& key, const std::string& value,
                 const std::string& why);
// "RxC".
std::string dims(int64_t rows, int64_t cols);
// The fields' ranges, whatever the image size.
Status validate(const TriggerSpec& s);

}  // namespace fedvar::trigger_detail
