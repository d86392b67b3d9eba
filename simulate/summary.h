// The end of `fedvar simulate`: the last round of every run as a Markdown
// table, the same as JSON in OUT/summary.json, and OUT/plot.svg.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar::simulate {

// Reads OUT/RUN.jsonl for each of `runs`, writes OUT/summary.json and
// OUT/plot.svg (atomically) and fills `result` with {"runs", "plot", "table"}.
// A missing or malformed metrics file: kNotFound or kDataLoss naming it.
Status report_simulation(const std::string& out, const std::vector<std::string>& runs,
                         nlohmann::json& result);

}  // namespace fedvar::simulate
