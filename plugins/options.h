// key=value options of a plugin ("alpha=1,layers=2"), read with types and
// checked once: a malformed value or an unknown key is an error naming it.
#pragma once

#include <map>
#include <set>
#include <string>

#include "core/status.h"

namespace fedvar::plugins {

using Options = std::map<std::string, std::string>;

// Parses "k=v,k=v" ("" = no options). Duplicate or empty keys are errors.
Result<Options> parse_options(const std::string& text);

// A rule's or defense's spec, "name:k=v,..." or "name", cut at the first ':'.
struct Spec {
  std::string name;
  std::string options;  // "" when there are none
};
Spec split_spec(const std::string& spec);

// Reads typed values with defaults; remembers what was read and the first
// error, reported by finish().
class OptionReader {
 public:
  OptionReader(std::string plugin, const Options& options)
      : plugin_(std::move(plugin)), options_(options) {}

  double get(const std::string& key, double fallback, double min, double max);
  int get(const std::string& key, int fallback, int min, int max);
  // One of `choices` (a word, e.g. a preset's name).
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::set<std::string>& choices);
  // First error, or an unknown key (one not read), or Ok.
  Status finish() const;

 private:
  const std::string* lookup(const std::string& key);
  void fail(const std::string& key, const std::string& why);

  std::string plugin_;
  Options options_;
  std::set<std::string> read_;
  Status error_;
};

}  // namespace fedvar::plugins
