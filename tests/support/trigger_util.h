// A trigger spec parsed for a test: the test fails (and gets a default
// spec) when it does not parse.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/trigger.h"

namespace fedvar::testing {

inline TriggerSpec must_parse(const std::string& text) {
  Result<TriggerSpec> spec = parse_trigger(text);
  EXPECT_TRUE(spec.ok()) << text << ": " << spec.status().message();
  return spec.ok() ? spec.value() : TriggerSpec{};
}

}  // namespace fedvar::testing
