// Tests of core/trigger's spec grammar (parse, canonical text, errors) and
// of the checks that a trigger fits an image size.
#include "core/trigger.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/trigger_util.h"

namespace fedvar {
namespace {

using testing::must_parse;

TEST(TriggerParse, ReadsEveryKey) {
  const TriggerSpec p = must_parse("badnets:size=5,pattern=checkerboard,position=random");
  EXPECT_EQ(p.kind, TriggerKind::kPatch);
  EXPECT_EQ(p.size, 5);
  EXPECT_EQ(p.pattern, PatchPattern::kCheckerboard);
  EXPECT_TRUE(p.random_position);
  const TriggerSpec f = must_parse("patch:row=2,col=3");
  EXPECT_EQ(f.row, 2);
  EXPECT_EQ(f.col, 3);
  EXPECT_FALSE(f.random_position);
  const TriggerSpec b = must_parse("blend:ratio=0.1,seed=18446744073709551615");
  EXPECT_EQ(b.kind, TriggerKind::kBlend);
  EXPECT_EQ(b.ratio, 0.1);
  EXPECT_EQ(b.seed, std::numeric_limits<uint64_t>::max());
  const TriggerSpec d = must_parse("dba:pieces=6,piece=5,bar=2x3,gap=0,origin=4x7");
  EXPECT_EQ(d.kind, TriggerKind::kDba);
  EXPECT_EQ(d.pieces, 6);
  EXPECT_EQ(d.piece, 5);
  EXPECT_EQ(std::make_pair(d.bar_rows, d.bar_cols), std::make_pair(2, 3));
  EXPECT_EQ(d.gap, 0);
  EXPECT_EQ(std::make_pair(d.origin_row, d.origin_col), std::make_pair(4, 7));
  EXPECT_EQ(must_parse("dba:piece=all").piece, -1);
  EXPECT_TRUE(must_parse("patch") == TriggerSpec{});
}

TEST(TriggerParse, ToStringIsCanonicalAndRoundTrips) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"patch", "patch:size=3,pattern=solid,position=fixed"},
      {"badnets:col=3,size=5,row=2",
       "patch:size=5,pattern=solid,position=fixed,row=2,col=3"},
      {"patch:position=random,pattern=checkerboard",
       "patch:size=3,pattern=checkerboard,position=random"},
      {"blend:seed=7,ratio=0.1", "blend:ratio=0.1,seed=7"},
      {"blend", "blend:ratio=0.1,seed=0"},
      {"dba", "dba:pieces=4,piece=all,bar=1x4,gap=2,origin=1x1"},
      {"dba:origin=0x3,piece=1,gap=0,bar=2x2,pieces=2",
       "dba:pieces=2,piece=1,bar=2x2,gap=0,origin=0x3"},
  };
  for (const auto& [text, canonical] : cases) {
    const TriggerSpec spec = must_parse(text);
    EXPECT_EQ(spec.to_string(), canonical) << text;
    EXPECT_TRUE(must_parse(spec.to_string()) == spec) << text;
  }
  TriggerSpec odd;
  odd.kind = TriggerKind::kBlend;
  odd.ratio = 1.0 / 3.0;
  odd.seed = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(must_parse(odd.to_string()) == odd) << odd.to_string();
}

TEST(TriggerParse, RejectsBadSpecsNamingKeyAndValue) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "kind="},
      {"foo", "kind=foo"},
      {"Patch:size=3", "kind=Patch"},
      {"patch:", "expected key=value"},
      {"patch:size", "expected key=value"},
      {"patch:=3", "expected key=value"},
      {"patch:size=3,", "expected key=value"},
      {"patch:size=", "size="},
      {"patch:size=abc", "size=abc"},
      {"patch:size=3x", "size=3x"},
      {"patch:size= 3", "size= 3"},
      {"patch:size=0", "size=0"},
      {"patch:size=99999999999", "size=99999999999"},
      {"patch:ratio=0.1", "ratio=0.1"},
      {"patch:colour=red", "colour=red"},
      {"patch:pattern=stripes", "pattern=stripes"},
      {"patch:position=middle", "position=middle"},
      {"patch:row=-2", "row=-2"},
      {"patch:row=-1", "row=-1"},
      {"patch:col=-1", "col=-1"},
      {"patch:col=x", "col=x"},
      {"patch:size=3,size=5", "size=5"},
      {"patch:position=random,row=1", "row=1"},
      {"patch:col=2,position=random", "col=2"},
      {"blend:ratio=0", "ratio=0"},
      {"blend:ratio=1.5", "ratio=1.5"},
      {"blend:ratio=-0.1", "ratio=-0.1"},
      {"blend:ratio=nan", "ratio=nan"},
      {"blend:ratio=x", "ratio=x"},
      {"blend:seed=-1", "seed=-1"},
      {"blend:seed=1.5", "seed=1.5"},
      {"blend:size=3", "size=3"},
      {"dba:pieces=0", "pieces=0"},
      {"dba:piece=4", "piece=4"},
      {"dba:piece=2,pieces=2", "piece=2"},
      {"dba:piece=-1", "piece=-1"},
      {"dba:piece=some", "piece=some"},
      {"dba:bar=1", "bar=1"},
      {"dba:bar=0x4", "bar=0x4"},
      {"dba:bar=1x4x2", "bar=1x4x2"},
      {"dba:gap=-1", "gap=-1"},
      {"dba:origin=-1x0", "origin=-1x0"},
      {"dba:origin=ax1", "origin=ax1"},
      {"dba:size=3", "size=3"},
  };
  for (const auto& [text, needle] : cases) {
    Result<TriggerSpec> spec = parse_trigger(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(spec.status().message().find(needle), std::string::npos)
        << text << " -> " << spec.status().message();
  }
}

TEST(TriggerFits, ChecksSizeAndPosition) {
  const auto fits = [](const std::string& text, int64_t h, int64_t w) {
    return check_trigger_fits(must_parse(text), h, w).ok();
  };
  EXPECT_TRUE(fits("patch:size=27", 28, 28));   // top-left (0, 0)
  EXPECT_FALSE(fits("patch:size=28", 28, 28));  // no room for the margin
  EXPECT_TRUE(fits("patch:size=28,position=random", 28, 28));
  EXPECT_FALSE(fits("patch:size=29,position=random", 28, 28));
  EXPECT_FALSE(fits("patch:size=5,position=random", 4, 28));
  EXPECT_TRUE(fits("patch:size=3,row=25", 28, 28));
  EXPECT_FALSE(fits("patch:size=3,row=26", 28, 28));
  EXPECT_TRUE(fits("patch:size=3,col=9", 28, 12));
  EXPECT_FALSE(fits("patch:size=3,col=10", 28, 12));
  EXPECT_TRUE(fits("patch:size=3,col=10", 12, 28));
  EXPECT_FALSE(fits("patch:size=3,row=10", 12, 28));
  EXPECT_TRUE(fits("dba", 5, 11));  // bars end at row 4, col 10
  EXPECT_FALSE(fits("dba", 4, 11));
  EXPECT_FALSE(fits("dba", 5, 10));
  EXPECT_FALSE(fits("dba:piece=0", 5, 10));  // the whole layout must fit
  EXPECT_TRUE(fits("dba:pieces=1", 2, 5));
  EXPECT_FALSE(fits("dba:pieces=1", 2, 4));
  EXPECT_TRUE(fits("dba:pieces=3", 5, 11));
  EXPECT_FALSE(fits("dba:pieces=5", 7, 11));  // third row of bars at row 7
  EXPECT_TRUE(fits("blend", 1, 1));
  EXPECT_FALSE(fits("blend", 0, 1));
  TriggerSpec bad;
  bad.size = 0;
  EXPECT_EQ(check_trigger_fits(bad, 28, 28).code(), Code::kInvalidArgument);
  bad = TriggerSpec{};
  bad.kind = TriggerKind::kBlend;
  bad.ratio = 2.0;
  EXPECT_EQ(check_trigger_fits(bad, 28, 28).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace fedvar
