#include "plugins/vardefense.h"

#include <gtest/gtest.h>

#include "plugins/options.h"
#include "plugins/registry.h"

namespace fedvar::plugins {
namespace {

Result<VarDefenseOptions> read_options(const std::string& text) {
  auto parsed = parse_options(text);
  EXPECT_TRUE(parsed.ok());
  return VarDefenseOptions::table().parse(*parsed);
}

TEST(VarDefense, OptionsAreValidatedByName) {
  EXPECT_TRUE(make_defense("vardefense:alpha=0.5,layers=1").ok());
  auto bad = make_defense("vardefense:alpha=abc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("alpha"), std::string::npos);
  // stod reads nan and inf; neither may pass a range check.
  for (const char* value : {"nan", "-nan", "inf", "-inf", "NAN"}) {
    EXPECT_FALSE(make_defense(std::string("vardefense:alpha=") + value).ok()) << value;
  }
  auto unknown = make_defense("vardefense:gamma=1");
  EXPECT_NE(unknown.status().message().find("gamma"), std::string::npos);
  EXPECT_NE(make_defense("vardefense:share_start=0.9,share_max=0.1")
                .status()
                .message()
                .find("start"),
            std::string::npos);
  EXPECT_NE(make_defense("magic").status().message().find("magic"), std::string::npos);
  for (const auto& name : defense_names()) EXPECT_TRUE(make_defense(name).ok()) << name;
}

// preset=federated starts from the every-round hook's recipe; options given
// with it override it; an unknown preset is an error naming the choices.
TEST(VarDefense, FederatedPresetIsTheHookRecipeAndOptionsOverrideIt) {
  auto fed = read_options("preset=federated");
  ASSERT_TRUE(fed.ok()) << fed.status().message();
  EXPECT_EQ(fed->preset, "federated");
  EXPECT_TRUE(fed->standardize);  // the defaults' score and share
  EXPECT_EQ(fed->share_max, 0.15);
  EXPECT_TRUE(fed->restore_norms);
  EXPECT_EQ(fed->final_epochs, 20);
  auto plain = read_options("");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->preset, "none");
  EXPECT_TRUE(plain->standardize);
  EXPECT_FALSE(plain->restore_norms);
  EXPECT_EQ(plain->final_epochs, 10);
  auto over = read_options("preset=federated,share_max=0.2,final_epochs=5");
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->share_max, 0.2);
  EXPECT_EQ(over->final_epochs, 5);
  EXPECT_TRUE(over->restore_norms);
  auto bad = read_options("preset=fast");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("federated"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("one-shot"), std::string::npos)
      << bad.status().message();
}

// preset=one-shot is the schedule measured for one purification of a
// well-trained model: three thresholds, statistics re-estimated, no training
// (a gentler lr and L1 should final_epochs be given); options override it.
TEST(VarDefense, OneShotPresetIsTheSinglePurificationSchedule) {
  auto one = read_options("preset=one-shot");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->share_start, 0.03);
  EXPECT_EQ(one->share_max, 0.09);
  EXPECT_EQ(one->share_steps, 3);
  EXPECT_EQ(one->step_epochs, 0);
  EXPECT_TRUE(one->recalibrate);
  EXPECT_EQ(one->lr, 0.01);
  EXPECT_EQ(one->alpha, 1000);
  EXPECT_TRUE(one->standardize);  // the score stays the defaults'
  EXPECT_EQ(one->final_epochs, 0);
  auto over = read_options("preset=one-shot,final_epochs=5");
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->final_epochs, 5);
  EXPECT_EQ(over->share_max, 0.09);
}

// Every option is described once, in the table that parses it: the report
// echoes exactly the table's options, `fedvar defenses` lists them with their
// defaults, and the knobs that measured no gain are unknown.
TEST(VarDefense, TheOptionTableDrivesParsingTheEchoAndTheCatalog) {
  const auto rows = VarDefenseOptions::table().describe(VarDefenseOptions{});
  std::vector<std::string> names;
  for (const auto& row : rows) names.push_back(row["name"].get<std::string>());
  EXPECT_EQ(names.front(), "preset");
  auto echo = VarDefenseOptions::table().echo(VarDefenseOptions{});
  ASSERT_EQ(echo.size(), names.size());
  for (const auto& name : names) EXPECT_TRUE(echo.contains(name)) << name;
  EXPECT_EQ(echo["share_max"].get<double>(), 0.15);
  auto set = read_options("layers=3,alpha=7,share_steps=2,restore_norms=1");
  ASSERT_TRUE(set.ok());
  auto echoed = VarDefenseOptions::table().echo(*set);
  EXPECT_EQ(echoed["layers"].get<int>(), 3);
  EXPECT_EQ(echoed["alpha"].get<double>(), 7.0);
  EXPECT_EQ(echoed["share_steps"].get<int>(), 2);
  EXPECT_EQ(echoed["restore_norms"].get<int>(), 1);
  for (const char* removed : {"revive", "l1_share", "distill", "temperature", "augment",
                              "final_lr", "cosine", "final_recalibrate", "original_bn",
                              "quantile", "max_fraction", "momentum", "start", "max"}) {
    auto r = make_defense(std::string("vardefense:") + removed + "=1");
    ASSERT_FALSE(r.ok()) << removed;
    EXPECT_NE(r.status().message().find("unknown option"), std::string::npos) << removed;
  }
  bool listed = false;
  for (const auto& d : defense_catalog()) {
    EXPECT_FALSE(d.options.empty()) << d.name;
    if (d.name == "vardefense") listed = d.options == rows;
  }
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace fedvar::plugins
