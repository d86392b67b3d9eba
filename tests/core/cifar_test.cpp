#include "core/cifar.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <string>

#include "tests/core/data_files.h"

namespace fedvar {
namespace {

using test_data::cifar_record;
using test_data::has_substr;
using test_data::TempDir;
using test_data::write_raw;

constexpr int kRecord10 = 3073;

TEST(ReadCifar, Cifar10RecordsAreChannelMajor) {
  TempDir dir;
  write_raw(dir.file("a.bin"), cifar_record({3}, 0) + cifar_record({7}, 5));
  write_raw(dir.file("b.bin"), cifar_record({9}, 100));
  Result<Dataset> d =
      read_cifar_files({dir.file("a.bin"), dir.file("b.bin")}, CifarVariant::kCifar10);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->images.sizes().vec(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(d->images.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(d->labels, torch::tensor({3, 7, 9}, torch::kLong)));
  EXPECT_EQ(d->num_classes, 10);
  // Pixel byte i of a record is channel i / 1024, row (i % 1024) / 32, col i % 32.
  const int c = 2, h = 5, w = 17, i = c * 1024 + h * 32 + w;
  EXPECT_EQ(d->images[1][c][h][w].item<int>(), (i + 5) % 256);
  EXPECT_EQ(d->images[2][0][0][1].item<int>(), 101);
}

TEST(ReadCifar, Cifar100UsesFineLabel) {
  TempDir dir;
  write_raw(dir.file("train.bin"), cifar_record({19, 99}, 0) + cifar_record({4, 42}, 1));
  Result<Dataset> d = read_cifar_files({dir.file("train.bin")}, CifarVariant::kCifar100);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(torch::equal(d->labels, torch::tensor({99, 42}, torch::kLong)));
  EXPECT_EQ(d->num_classes, 100);
  EXPECT_EQ(d->images[1][0][0][0].item<int>(), 1);
}

TEST(ReadCifar, PartialRecordIsDataLoss) {
  TempDir dir;
  const std::string two = cifar_record({1}, 0) + cifar_record({2}, 0);
  write_raw(dir.file("cut.bin"), two.substr(0, two.size() - 10));
  Result<Dataset> d = read_cifar_files({dir.file("cut.bin")}, CifarVariant::kCifar10);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(d.status().message(), dir.file("cut.bin")));
  EXPECT_TRUE(has_substr(d.status().message(), std::to_string(2 * kRecord10 - 10)));
  EXPECT_TRUE(has_substr(d.status().message(), "3073-byte records"));
  // A CIFAR-10 file is not a whole number of CIFAR-100 records.
  write_raw(dir.file("c10.bin"), two);
  Result<Dataset> as100 =
      read_cifar_files({dir.file("c10.bin")}, CifarVariant::kCifar100);
  ASSERT_FALSE(as100.ok());
  EXPECT_TRUE(has_substr(as100.status().message(), "3074-byte records"));
}

TEST(ReadCifar, EmptyFileIsDataLoss) {
  TempDir dir;
  write_raw(dir.file("empty.bin"), "");
  Result<Dataset> d = read_cifar_files({dir.file("empty.bin")}, CifarVariant::kCifar10);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kDataLoss);
}

TEST(ReadCifar, LabelsOutOfRange) {
  TempDir dir;
  write_raw(dir.file("c10.bin"), cifar_record({1}, 0) + cifar_record({10}, 0));
  write_raw(dir.file("fine.bin"), cifar_record({0, 100}, 0));
  write_raw(dir.file("coarse.bin"), cifar_record({20, 5}, 0));
  Result<Dataset> c10 = read_cifar_files({dir.file("c10.bin")}, CifarVariant::kCifar10);
  ASSERT_FALSE(c10.ok());
  EXPECT_EQ(c10.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(c10.status().message(), dir.file("c10.bin") + ": record 1"));
  EXPECT_TRUE(has_substr(c10.status().message(), "label 10 out of range 0..9"));
  Result<Dataset> fine =
      read_cifar_files({dir.file("fine.bin")}, CifarVariant::kCifar100);
  ASSERT_FALSE(fine.ok());
  EXPECT_TRUE(has_substr(fine.status().message(), "label 100 out of range 0..99"));
  Result<Dataset> coarse =
      read_cifar_files({dir.file("coarse.bin")}, CifarVariant::kCifar100);
  ASSERT_FALSE(coarse.ok());
  EXPECT_TRUE(has_substr(coarse.status().message(), "coarse label 20"));
}

TEST(ReadCifar, NoFilesOrMissingFile) {
  TempDir dir;
  EXPECT_EQ(read_cifar_files({}, CifarVariant::kCifar10).status().code(),
            Code::kInvalidArgument);
  Result<Dataset> d = read_cifar_files({dir.file("gone.bin")}, CifarVariant::kCifar10);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kNotFound);
  EXPECT_TRUE(has_substr(d.status().message(), "gone.bin"));
}

// A directory, a device or a FIFO given as a CIFAR file is refused before it is
// read: /dev/zero would otherwise be read until memory runs out.
TEST(ReadCifar, NonRegularFilesAreRefused) {
  TempDir dir;
  write_raw(dir.file("ok.bin"), cifar_record({1}, 0));
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  for (const std::string& path :
       {dir.path().string(), std::string("/dev/zero"), dir.file("fifo")}) {
    Result<Dataset> d =
        read_cifar_files({dir.file("ok.bin"), path}, CifarVariant::kCifar10);
    ASSERT_FALSE(d.ok()) << path;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(has_substr(d.status().message(), path + " is a"));
    EXPECT_TRUE(has_substr(d.status().message(), "not a regular file"));
  }
}

TEST(LoadCifarSplit, Cifar10BatchesInOrder) {
  TempDir dir;
  for (int b = 1; b <= 5; ++b) {
    write_raw(dir.file("data_batch_" + std::to_string(b) + ".bin"),
              cifar_record({static_cast<unsigned char>(b)}, b) + cifar_record({0}, 0));
  }
  write_raw(dir.file("test_batch.bin"), cifar_record({8}, 0));
  Result<Dataset> train =
      load_cifar_split(dir.path().string(), "train", CifarVariant::kCifar10);
  Result<Dataset> test =
      load_cifar_split(dir.path().string(), "test", CifarVariant::kCifar10);
  ASSERT_TRUE(train.ok()) << train.status().message();
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(train->size(), 10);
  EXPECT_EQ(train->labels[4].item<int64_t>(), 3);
  EXPECT_EQ(test->size(), 1);
  EXPECT_EQ(test->labels[0].item<int64_t>(), 8);
}

TEST(LoadCifarSplit, MissingBatchAndBadSplit) {
  TempDir dir;
  write_raw(dir.file("data_batch_1.bin"), cifar_record({1}, 0));
  Result<Dataset> d =
      load_cifar_split(dir.path().string(), "train", CifarVariant::kCifar10);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kNotFound);
  EXPECT_TRUE(has_substr(d.status().message(), "data_batch_2.bin"));
  EXPECT_EQ(load_cifar_split(dir.path().string(), "valid", CifarVariant::kCifar10)
                .status()
                .code(),
            Code::kInvalidArgument);
}

TEST(LoadCifarSplit, Cifar100TrainAndTest) {
  TempDir dir;
  write_raw(dir.file("train.bin"), cifar_record({1, 11}, 0) + cifar_record({2, 22}, 0));
  write_raw(dir.file("test.bin"), cifar_record({3, 33}, 0));
  Result<Dataset> train =
      load_cifar_split(dir.path().string(), "train", CifarVariant::kCifar100);
  Result<Dataset> test =
      load_cifar_split(dir.path().string(), "test", CifarVariant::kCifar100);
  ASSERT_TRUE(train.ok()) << train.status().message();
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_TRUE(torch::equal(train->labels, torch::tensor({11, 22}, torch::kLong)));
  EXPECT_EQ(test->labels[0].item<int64_t>(), 33);
  EXPECT_EQ(test->channels(), 3);
}

}  // namespace
}  // namespace fedvar
