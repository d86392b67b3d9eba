#include "core/round_schedule.h"

#include <climits>
#include <sstream>

namespace fedvar {
namespace {

Result<int> parse_round(const std::string& text, const std::string& whole) {
  try {
    size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used == text.size() && value >= 1) return value;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("bad rounds '" + whole +
                                 "': expected all, or rounds >= 1 like 1,3,5-8 or 10-");
}

}  // namespace

Result<RoundSchedule> RoundSchedule::parse(const std::string& text) {
  RoundSchedule schedule;
  schedule.text_ = text;
  if (text == "all") return schedule;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      FEDVAR_ASSIGN_OR_RETURN(int round, parse_round(item, text));
      schedule.spans_.emplace_back(round, round);
      continue;
    }
    FEDVAR_ASSIGN_OR_RETURN(int first, parse_round(item.substr(0, dash), text));
    int last = INT_MAX;
    if (dash + 1 < item.size()) {
      FEDVAR_ASSIGN_OR_RETURN(last, parse_round(item.substr(dash + 1), text));
    }
    if (last < first)
      return Status::InvalidArgument("empty span in rounds '" + text + "'");
    schedule.spans_.emplace_back(first, last);
  }
  if (schedule.spans_.empty()) {
    return Status::InvalidArgument("rounds '" + text + "' name no round");
  }
  return schedule;
}

bool RoundSchedule::contains(int round) const {
  if (spans_.empty()) return true;  // "all"
  for (const auto& [first, last] : spans_) {
    if (round >= first && round <= last) return true;
  }
  return false;
}

}  // namespace fedvar
