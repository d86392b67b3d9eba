#include "core/normalization.h"

#include <gtest/gtest.h>

namespace fedvar {
namespace {

TEST(Normalization, ParsesMeansThenStdsAndPrintsBack) {
  auto one = Normalization::parse("0.286,0.353");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->mean, std::vector<double>{0.286});
  EXPECT_EQ(one->std, std::vector<double>{0.353});
  auto three = Normalization::parse("0.1,0.2,0.3,1,2,3");
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->std, (std::vector<double>{1, 2, 3}));
  auto again = Normalization::parse(three->to_string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->mean, three->mean);
}

// stod reads "nan" and "inf"; a mean or std that is not finite would turn
// every input into NaN, so both are refused with the item named.
TEST(Normalization, RefusesWhatIsNotAFiniteMeanAndPositiveStd) {
  for (const char* text : {"", "0.5", "0.5,0", "0.5,-1", "a,1", "0.5,1x", "nan,1",
                           "0.5,nan", "inf,1", "0.5,inf", "-inf,1", "0.5,1,0.5"}) {
    auto parsed = Normalization::parse(text);
    EXPECT_FALSE(parsed.ok()) << text;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("normalization"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace fedvar
