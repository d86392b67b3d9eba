// The check every defense's options share: a bad value or an unknown key is
// an error whose message names the key.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "plugins/registry.h"

namespace fedvar::testing {

// Each of `bad` ("key=value") after "name:" is refused with a message that
// quotes it.
inline void expect_bad_options_named(const std::string& name,
                                     std::initializer_list<const char*> bad) {
  for (const std::string option : bad) {
    auto r = plugins::make_defense(name + ":" + option);
    ASSERT_FALSE(r.ok()) << name << ":" << option;
    // "NAME: option KEY=VALUE: why", naming the option as given.
    EXPECT_NE(r.status().message().find("option " + option + ":"), std::string::npos)
        << r.status().message();
  }
}

// `spec` names an option the defense does not have: refused, naming `key`.
inline void expect_unknown_option_named(const std::string& spec, const std::string& key) {
  auto r = plugins::make_defense(spec);
  ASSERT_FALSE(r.ok()) << spec;
  EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().message();
}

}  // namespace fedvar::testing
