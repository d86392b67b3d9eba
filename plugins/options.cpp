#include "plugins/options.h"

#include <cmath>
#include <sstream>

namespace fedvar::plugins {

Result<Options> parse_options(const std::string& text) {
  Options options;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("option '" + item + "' is not key=value");
    }
    const std::string key = item.substr(0, eq);
    if (!options.emplace(key, item.substr(eq + 1)).second) {
      return Status::InvalidArgument("option '" + key + "' given twice");
    }
  }
  return options;
}

Spec split_spec(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return {spec, ""};
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

const std::string* OptionReader::lookup(const std::string& key) {
  read_.insert(key);
  auto it = options_.find(key);
  return it == options_.end() ? nullptr : &it->second;
}

void OptionReader::fail(const std::string& key, const std::string& why) {
  if (error_.ok()) {
    error_ = Status::InvalidArgument(plugin_ + ": option " + key + "=" + options_[key] +
                                     ": " + why);
  }
}

double OptionReader::get(const std::string& key, double fallback, double min,
                         double max) {
  const std::string* text = lookup(key);
  if (text == nullptr) return fallback;
  try {
    size_t used = 0;
    const double v = std::stod(*text, &used);
    if (used != text->size()) throw std::invalid_argument(*text);
    if (!(v >= min && v <= max) || !std::isfinite(v)) {
      fail(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
      return fallback;
    }
    return v;
  } catch (const std::exception&) {
    fail(key, "not a number");
    return fallback;
  }
}

int OptionReader::get(const std::string& key, int fallback, int min, int max) {
  const std::string* text = lookup(key);
  if (text == nullptr) return fallback;
  try {
    size_t used = 0;
    const int v = std::stoi(*text, &used);
    if (used != text->size()) throw std::invalid_argument(*text);
    if (!(v >= min && v <= max) || !std::isfinite(v)) {
      fail(key, "must be in " + std::to_string(min) + ".." + std::to_string(max));
      return fallback;
    }
    return v;
  } catch (const std::exception&) {
    fail(key, "not an integer");
    return fallback;
  }
}

std::string OptionReader::choice(const std::string& key, const std::string& fallback,
                                 const std::set<std::string>& choices) {
  const std::string* text = lookup(key);
  if (text == nullptr) return fallback;
  if (choices.count(*text) == 0) {
    std::string known;
    for (const auto& c : choices) known += (known.empty() ? "" : ", ") + c;
    fail(key, "must be one of " + known);
    return fallback;
  }
  return *text;
}

Status OptionReader::finish() const {
  if (!error_.ok()) return error_;
  for (const auto& [key, value] : options_) {
    if (read_.count(key) == 0) {
      std::string known;
      for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(plugin_ + ": unknown option '" + key +
                                     "' (known: " + known + ")");
    }
  }
  return Status::Ok();
}

}  // namespace fedvar::plugins
