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

std::function<int()> json_action(std::function<Status(nlohmann::json&)> run) {
  return [run = std::move(run)] {
    init_logging();
    nlohmann::json result;
    try {
      Status st = run(result);
      if (!st.ok()) return fail(st);
    } catch (const std::exception& e) {
      return fail(Status::Internal(e.what()));
    }
    print_json(result);
    return 0;
  };
}

}  // namespace fedvar::cli
