#include "aggregator/cli/common.h"

#include <iostream>

#include "core/log.h"

namespace fedvar::cli {

int exit_code(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kDataLoss:
      return 2;
    default:
      return 1;
  }
}

int fail(const Status& status) {
  std::cerr << "error: " << status.message() << std::endl;
  return exit_code(status);
}

Result<Dataset> load_split_range(const std::string& dir, const std::string& split,
                                 const std::string& range) {
  FEDVAR_ASSIGN_OR_RETURN(auto data, load_dataset(dir, split));
  if (range.empty()) return data;
  FEDVAR_ASSIGN_OR_RETURN(auto r, parse_range(range, data.size()));
  return data.slice(r.begin, r.end);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

}  // namespace fedvar::cli
