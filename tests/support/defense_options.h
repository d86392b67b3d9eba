// The check every defense's options share: a bad value or an unknown key is
// an error whose message names the key.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "plugins/registry.h"

namespace fedvar::testing {

// Each of `bad` ("key=value") after "name:" is refused, naming its key.
inline void expect_bad_options_named(const std::string& name,
                                     std::initializer_list<const char*> bad) {
  for (const std::string option : bad) {
    auto r = plugins::make_defense(name + ":" + option);
    ASSERT_FALSE(r.ok()) << name << ":" << option;
    const std::string key = option.substr(0, option.find('='));
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().message();
  }
}

}  // namespace fedvar::testing
