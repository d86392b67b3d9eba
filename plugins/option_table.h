// A defense's options, each described once: name, range, meaning and the
// field of the options struct it sets. The table drives parsing
// ("alpha=1,layers=2"), the echo of the options in a defense's report and the
// option list of `fedvar defenses` (and so docs/cli.md).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "plugins/options.h"

namespace fedvar::plugins {

template <typename T>
class OptionTable {
 public:
  explicit OptionTable(std::string plugin) : plugin_(std::move(plugin)) {}

  OptionTable& real(const char* name, double T::*field, double min, double max,
                    const char* help) {
    // Appended piece by piece: `"[" + std::string` trips GCC 12's
    // -Warray-bounds false positive at -O2.
    std::string range = "[";
    range += number(min);
    range += ", ";
    range += number(max);
    range += "]";
    return add(
        name, help, range,
        [=](OptionReader& r, T& o) { o.*field = r.get(name, o.*field, min, max); },
        [=](const T& o) { return nlohmann::json(o.*field); });
  }
  template <typename Int>
  OptionTable& integer(const char* name, Int T::*field, int min, int max,
                       const char* help) {
    return add(
        name, help, std::to_string(min) + ".." + std::to_string(max),
        [=](OptionReader& r, T& o) {
          o.*field = static_cast<Int>(r.get(name, static_cast<int>(o.*field), min, max));
        },
        [=](const T& o) { return nlohmann::json(o.*field); });
  }
  OptionTable& flag(const char* name, bool T::*field, const char* help) {
    return add(
        name, help, "0 or 1",
        [=](OptionReader& r, T& o) {
          o.*field = r.get(name, o.*field ? 1 : 0, 0, 1) == 1;
        },
        [=](const T& o) { return nlohmann::json(o.*field ? 1 : 0); });
  }
  // A word out of `choices`; `then` (may be empty) runs right after it is
  // read, before the options that follow it (a preset sets their defaults).
  OptionTable& choice(const char* name, std::string T::*field,
                      std::set<std::string> choices, const char* help,
                      std::function<void(T&)> then = {}) {
    std::string range;
    for (const auto& c : choices) range += (range.empty() ? "" : "|") + c;
    return add(
        name, help, range,
        [=](OptionReader& r, T& o) {
          o.*field = r.choice(name, o.*field, choices);
          if (then) then(o);
        },
        [=](const T& o) { return nlohmann::json(o.*field); });
  }

  // The same from "k=v,k=v" text.
  Result<T> parse(const std::string& text) const {
    FEDVAR_ASSIGN_OR_RETURN(auto options, parse_options(text));
    return parse(options);
  }

  // A check of the options together, run by parse() after every option is
  // read (e.g. that a start does not exceed a max).
  OptionTable& check(std::function<Status(const T&)> fn) {
    check_ = std::move(fn);
    return *this;
  }

  // T's defaults with `options` read over them in table order, then checked.
  // A malformed value, one out of range, an unknown key or a failed check:
  // kInvalidArgument.
  Result<T> parse(const Options& options) const {
    T out;
    OptionReader reader(plugin_, options);
    for (const Entry& e : entries_) e.read(reader, out);
    FEDVAR_RETURN_IF_ERROR(reader.finish());
    if (check_) FEDVAR_RETURN_IF_ERROR(check_(out));
    return out;
  }
  // {"name": value, ...}: what a report says it ran with.
  nlohmann::json echo(const T& o) const {
    nlohmann::json j = nlohmann::json::object();
    for (const Entry& e : entries_) j[e.name] = e.value(o);
    return j;
  }
  // [{"name", "default", "range", "help"}, ...] with `defaults`' values.
  nlohmann::json describe(const T& defaults) const {
    nlohmann::json rows = nlohmann::json::array();
    for (const Entry& e : entries_) {
      rows.push_back({{"name", e.name},
                      {"default", e.value(defaults)},
                      {"range", e.range},
                      {"help", e.help}});
    }
    return rows;
  }

 private:
  struct Entry {
    std::string name, help, range;
    std::function<void(OptionReader&, T&)> read;
    std::function<nlohmann::json(const T&)> value;
  };
  static std::string number(double v) { return nlohmann::json(v).dump(); }
  OptionTable& add(const char* name, const char* help, std::string range,
                   std::function<void(OptionReader&, T&)> read,
                   std::function<nlohmann::json(const T&)> value) {
    entries_.push_back({name, help, std::move(range), std::move(read), std::move(value)});
    return *this;
  }

  std::string plugin_;
  std::vector<Entry> entries_;
  std::function<Status(const T&)> check_;
};

}  // namespace fedvar::plugins
