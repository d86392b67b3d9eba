#include "core/dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "tests/core/data_files.h"

namespace fedvar {
namespace {

using test_data::cifar_record;
using test_data::has_substr;
using test_data::TempDir;
using test_data::write_idx_split;
using test_data::write_raw;

void expect_range(const std::string& spec, int64_t size, int64_t begin, int64_t end) {
  Result<IndexRange> r = parse_range(spec, size);
  ASSERT_TRUE(r.ok()) << spec << ": " << r.status().message();
  EXPECT_EQ(r->begin, begin) << spec;
  EXPECT_EQ(r->end, end) << spec;
}

void expect_bad_range(const std::string& spec, int64_t size, const std::string& why) {
  Result<IndexRange> r = parse_range(spec, size);
  ASSERT_FALSE(r.ok()) << spec << " parsed as [" << r->begin << ", " << r->end << ")";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << spec;
  EXPECT_TRUE(has_substr(r.status().message(), why)) << spec;
}

TEST(ParseRange, PythonSliceForms) {
  expect_range("0:100", 60000, 0, 100);
  expect_range("-1000:", 60000, 59000, 60000);
  expect_range(":50", 60000, 0, 50);
  expect_range("5:", 60000, 5, 60000);
  expect_range(":", 10, 0, 10);
  expect_range("2:-2", 10, 2, 8);
  expect_range("-10:-5", 10, 0, 5);
  expect_range("0:10", 10, 0, 10);
  EXPECT_EQ(parse_range("10:30", 100)->size(), 20);
}

TEST(ParseRange, Errors) {
  expect_bad_range("5:5", 10, "empty");
  expect_bad_range("8:3", 10, "empty");
  expect_bad_range("-1:-3", 10, "empty");
  expect_bad_range(":", 0, "empty");
  expect_bad_range("0:11", 10, "past the end");
  expect_bad_range("11:", 10, "past the end");
  expect_bad_range("-11:", 10, "before row 0");
  expect_bad_range("", 10, "expected A:B");
  expect_bad_range("5", 10, "expected A:B");
  expect_bad_range("a:b", 10, "integers");
  expect_bad_range("1:2:3", 10, "integers");
  expect_bad_range(" 1:2", 10, "integers");
  expect_bad_range("1.5:3", 10, "integers");
  expect_bad_range("+1:3", 10, "integers");
  expect_bad_range("0:99999999999999999999", 10, "integers");
}

Dataset tiny(int64_t n) {
  Dataset d;
  d.images = torch::arange(n * 4, torch::kLong).to(torch::kUInt8).reshape({n, 1, 2, 2});
  d.labels = torch::arange(n, torch::kLong).remainder(10);
  d.num_classes = 10;
  return d;
}

TEST(Dataset, SliceIsAView) {
  Dataset d = tiny(6);
  Dataset s = d.slice(2, 5);
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.channels(), 1);
  EXPECT_EQ(s.labels[0].item<int64_t>(), 2);
  EXPECT_EQ(s.images.data_ptr(), d.images[2].data_ptr());
  EXPECT_EQ(d.slice(4, 100).size(), 2);
}

TEST(Dataset, SubsetCopiesRows) {
  Dataset d = tiny(6);
  Dataset a = d.subset(std::vector<int64_t>{5, 0, 3});
  Dataset b = d.subset(torch::tensor({5, 0, 3}, torch::kLong));
  EXPECT_TRUE(torch::equal(a.labels, torch::tensor({5, 0, 3}, torch::kLong)));
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.images[1], d.images[0]));
  a.images.fill_(0);
  EXPECT_GT(d.images.sum().item<int64_t>(), 0);
  EXPECT_EQ(d.subset(std::vector<int64_t>{}).size(), 0);
  EXPECT_EQ(a.num_classes, 10);
}

TEST(LoadDataset, DetectsIdx) {
  TempDir dir;
  write_idx_split(dir, "train", 7, /*gzip=*/true);
  write_idx_split(dir, "t10k", 3, /*gzip=*/false);
  Result<Dataset> train = load_dataset(dir.path().string(), "train");
  Result<Dataset> test = load_dataset(dir.path().string(), "test");
  ASSERT_TRUE(train.ok()) << train.status().message();
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(train->size(), 7);
  EXPECT_EQ(test->size(), 3);
  EXPECT_EQ(train->channels(), 1);
}

TEST(LoadDataset, DetectsCifar10InArchiveFolder) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "cifar-10-batches-bin");
  const std::string sub = "cifar-10-batches-bin/";
  for (int b = 1; b <= 5; ++b) {
    write_raw(dir.file(sub + "data_batch_" + std::to_string(b) + ".bin"),
              cifar_record({static_cast<unsigned char>(b)}, 0));
  }
  write_raw(dir.file(sub + "test_batch.bin"), cifar_record({0}, 0));
  Result<Dataset> train = load_dataset(dir.path().string(), "train");
  ASSERT_TRUE(train.ok()) << train.status().message();
  EXPECT_EQ(train->size(), 5);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->num_classes, 10);
  Result<Dataset> test = load_dataset((dir.path() / sub).string(), "test");
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(test->size(), 1);
}

TEST(LoadDataset, DetectsCifar100) {
  TempDir dir;
  write_raw(dir.file("train.bin"), cifar_record({1, 77}, 0));
  write_raw(dir.file("test.bin"), cifar_record({1, 78}, 0));
  Result<Dataset> test = load_dataset(dir.path().string(), "test");
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(test->num_classes, 100);
  EXPECT_EQ(test->labels[0].item<int64_t>(), 78);
}

TEST(LoadDataset, Errors) {
  TempDir dir;
  Result<Dataset> empty = load_dataset(dir.path().string(), "train");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kNotFound);
  EXPECT_TRUE(has_substr(empty.status().message(), "no IDX, CIFAR-10 or CIFAR-100"));
  EXPECT_EQ(load_dataset(dir.file("absent"), "train").status().code(), Code::kNotFound);
  EXPECT_EQ(load_dataset(dir.path().string(), "validation").status().code(),
            Code::kInvalidArgument);
  // The format is known but the split's file is corrupt: that error surfaces.
  write_idx_split(dir, "train", 4, /*gzip=*/false);
  write_raw(dir.file("train-labels-idx1-ubyte"), "junk");
  Result<Dataset> corrupt = load_dataset(dir.path().string(), "train");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), Code::kDataLoss);
}

TEST(LoadDataset, RealFashionMnistTest) {
  Result<Dataset> d = load_dataset(FEDVAR_FASHION_MNIST, "test");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->images.sizes().vec(), (std::vector<int64_t>{10000, 1, 28, 28}));
  Result<IndexRange> last = parse_range("-1000:", d->size());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(d->slice(last->begin, last->end).size(), 1000);
}

}  // namespace
}  // namespace fedvar
