// Where `fedvar serve --resume` continues, from the files a killed run left:
// the checkpoint commits a round, a metrics line past it is dropped, and
// anything that does not add up is an error naming the file.
#include "aggregator/resume.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace fedvar::aggregator {
namespace {

using testing::TempDir;

void write_checkpoint(const std::string& path, int round, uint64_t seed) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 2});
  std::map<std::string, std::string> metadata;
  if (round > 0) metadata[kCheckpointRound] = std::to_string(round);
  metadata[kCheckpointSeed] = std::to_string(seed);
  ASSERT_TRUE(save_resnet(path, model, std::nullopt, metadata).ok());
}

void write_metrics(const std::string& path, const std::vector<int>& rounds) {
  std::string text;
  for (int r : rounds)
    text += nlohmann::json{{"round", r}, {"acc", 10.0 * r}}.dump() + "\n";
  ASSERT_TRUE(write_file_atomic(path, text).ok());
}

struct Files {
  TempDir dir;
  std::string checkpoint = dir.file("global.safetensors");
  std::string metrics = dir.file("metrics.jsonl");
};

TEST(ResumePoint, NothingRecordedStartsAtRoundOne) {
  Files f;
  auto point = read_resume_point(f.checkpoint, f.metrics, 7);
  ASSERT_TRUE(point.ok()) << point.status().message();
  EXPECT_EQ(point->last_round, 0);
  EXPECT_FALSE(point->checkpoint);
  EXPECT_TRUE(point->history.empty());
}

// Metrics are written before the checkpoint: a kill between the two leaves
// one line past the checkpoint's round, which the resumed run records again.
TEST(ResumePoint, TheCheckpointCommitsARoundAndALaterLineIsDropped) {
  Files f;
  write_metrics(f.metrics, {1});
  auto first = read_resume_point(f.checkpoint, f.metrics, 7);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->last_round, 0);
  EXPECT_TRUE(first->history.empty());

  write_checkpoint(f.checkpoint, 2, 7);
  write_metrics(f.metrics, {1, 2, 3});
  auto point = read_resume_point(f.checkpoint, f.metrics, 7);
  ASSERT_TRUE(point.ok()) << point.status().message();
  EXPECT_EQ(point->last_round, 2);
  ASSERT_TRUE(point->checkpoint);
  EXPECT_EQ(point->checkpoint->model->options().width, 2);
  ASSERT_EQ(point->history.size(), 2u);
  EXPECT_EQ(point->history[1]["round"], 2);
  EXPECT_EQ(point->history[1]["acc"], 20.0);

  write_metrics(f.metrics, {1, 2});
  point = read_resume_point(f.checkpoint, f.metrics, 7);
  ASSERT_TRUE(point.ok());
  EXPECT_EQ(point->history.size(), 2u);
}

TEST(ResumePoint, WhatDoesNotAddUpIsAnErrorNamingTheFile) {
  Files f;
  const auto error_of = [&](uint64_t seed) {
    auto point = read_resume_point(f.checkpoint, f.metrics, seed);
    return point.ok() ? std::string() : point.status().message();
  };
  write_metrics(f.metrics, {1, 2});  // no checkpoint, but two rounds recorded
  EXPECT_NE(error_of(7).find("past the checkpoint"), std::string::npos);

  write_checkpoint(f.checkpoint, 3, 7);
  EXPECT_NE(error_of(7).find("records 2 rounds"), std::string::npos) << error_of(7);
  EXPECT_NE(error_of(8).find("--seed 7"), std::string::npos) << error_of(8);
  write_metrics(f.metrics, {1, 3, 2});
  EXPECT_NE(error_of(7).find("where round 2 was expected"), std::string::npos);
  write_metrics(f.metrics, {1, 1, 2, 3});
  EXPECT_NE(error_of(7).find("where round 2 was expected"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(f.metrics, "{\"round\": 1}\nnot json\n").ok());
  EXPECT_NE(error_of(7).find(f.metrics + " line 2"), std::string::npos) << error_of(7);
  ASSERT_TRUE(write_file_atomic(f.metrics, "{\"acc\": 1}\n").ok());
  EXPECT_NE(error_of(7).find("line 1"), std::string::npos);

  std::filesystem::remove(f.metrics);
  EXPECT_NE(error_of(7).find("missing"), std::string::npos);

  write_checkpoint(f.checkpoint, 0, 7);  // a model file, not a server's checkpoint
  EXPECT_NE(error_of(7).find("round and seed"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(f.checkpoint, "not safetensors").ok());
  EXPECT_NE(error_of(7).find(f.checkpoint), std::string::npos) << error_of(7);
}

TEST(ResumePoint, StaleTempFilesOfTheFileAloneAreRemoved) {
  Files f;
  for (const char* name : {"metrics.jsonl.tmp.123", "metrics.jsonl.tmp.456",
                           "metrics.jsonl", "other.tmp.1"}) {
    ASSERT_TRUE(write_file_atomic(f.dir.file(name), "x").ok());
  }
  EXPECT_EQ(remove_stale_temp_files(f.metrics), 2);
  EXPECT_TRUE(std::filesystem::exists(f.metrics));
  EXPECT_TRUE(std::filesystem::exists(f.dir.file("other.tmp.1")));
  EXPECT_FALSE(std::filesystem::exists(f.dir.file("metrics.jsonl.tmp.123")));
  EXPECT_EQ(remove_stale_temp_files(""), 0);
}

}  // namespace
}  // namespace fedvar::aggregator
