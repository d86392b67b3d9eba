#include "core/idx.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <string>

#include "tests/core/data_files.h"
#include "tests/core/peak_memory.h"

namespace fedvar {
namespace {

using test_data::has_substr;
using test_data::idx_bytes;
using test_data::peak_growth_mib;
using test_data::ramp;
using test_data::read_raw;
using test_data::TempDir;
using test_data::write_gzip;
using test_data::write_idx_split;
using test_data::write_raw;

// One gzip member holding `bytes` (members concatenate into one gzip stream).
std::string gzip_member(const std::string& bytes) {
  z_stream zs{};
  EXPECT_EQ(
      deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&zs, bytes.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void expect_ramp(const torch::Tensor& t, std::vector<int64_t> shape) {
  ASSERT_EQ(t.scalar_type(), torch::kUInt8);
  ASSERT_EQ(t.sizes().vec(), shape);
  const torch::Tensor expected =
      torch::arange(t.numel(), torch::kLong).remainder(256).to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(t.reshape({-1}), expected));
}

TEST(ReadIdx, RawThreeDims) {
  TempDir dir;
  write_raw(dir.file("a.idx"), idx_bytes({2, 3, 4}, ramp(24)));
  Result<torch::Tensor> t = read_idx(dir.file("a.idx"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  expect_ramp(*t, {2, 3, 4});
}

TEST(ReadIdx, GzipOneAndFourDims) {
  TempDir dir;
  write_gzip(dir.file("one.gz"), idx_bytes({300}, ramp(300)));
  write_gzip(dir.file("four.gz"), idx_bytes({2, 3, 4, 5}, ramp(120)));
  Result<torch::Tensor> one = read_idx(dir.file("one.gz"));
  Result<torch::Tensor> four = read_idx(dir.file("four.gz"));
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_TRUE(four.ok()) << four.status().message();
  expect_ramp(*one, {300});
  expect_ramp(*four, {2, 3, 4, 5});
}

TEST(ReadIdx, GzipLargerThanInitialBuffer) {
  TempDir dir;  // zeros compress ~1000x: the output buffer has to grow
  write_gzip(dir.file("z.gz"), idx_bytes({1000, 100, 10}, std::string(1000000, '\0')));
  Result<torch::Tensor> t = read_idx(dir.file("z.gz"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->sizes().vec(), (std::vector<int64_t>{1000, 100, 10}));
  EXPECT_EQ(t->sum().item<int64_t>(), 0);
}

TEST(ReadIdx, TruncatedDataNamesFileAndSizes) {
  TempDir dir;
  write_raw(dir.file("short.idx"), idx_bytes({2, 3, 4}, ramp(20)));
  write_gzip(dir.file("short.gz"), idx_bytes({2, 3, 4}, ramp(20)));
  for (const char* name : {"short.idx", "short.gz"}) {
    Result<torch::Tensor> t = read_idx(dir.file(name));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Code::kDataLoss);
    EXPECT_TRUE(has_substr(t.status().message(), dir.file(name)));
    EXPECT_TRUE(has_substr(t.status().message(), "truncated"));
    EXPECT_TRUE(has_substr(t.status().message(), "need 24 bytes, got 20"));
  }
}

TEST(ReadIdx, TrailingBytesAreAnError) {
  TempDir dir;
  write_raw(dir.file("long.idx"), idx_bytes({4}, ramp(5)));
  Result<torch::Tensor> t = read_idx(dir.file("long.idx"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(t.status().message(), "too long"));
}

TEST(ReadIdx, TruncatedGzipStream) {
  TempDir dir;
  write_gzip(dir.file("full.gz"), idx_bytes({64, 64}, ramp(4096)));
  const std::string packed = read_raw(dir.file("full.gz"));
  write_raw(dir.file("cut.gz"), packed.substr(0, packed.size() / 2));
  Result<torch::Tensor> t = read_idx(dir.file("cut.gz"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(t.status().message(), dir.file("cut.gz")));
  EXPECT_TRUE(has_substr(t.status().message(), "gzip"));
}

TEST(ReadIdx, TruncatedHeader) {
  TempDir dir;
  write_raw(dir.file("h.idx"), idx_bytes({7, 7, 7}, "").substr(0, 9));
  Result<torch::Tensor> t = read_idx(dir.file("h.idx"));
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(has_substr(t.status().message(), "truncated IDX header"));
  EXPECT_TRUE(has_substr(t.status().message(), "expected 16 bytes, got 9"));
}

TEST(ReadIdx, WrongMagic) {
  TempDir dir;
  std::string bytes = idx_bytes({4}, ramp(4));
  bytes[0] = 0x12;
  write_raw(dir.file("m.idx"), bytes);
  write_raw(dir.file("tiny.idx"), "\0\0");
  for (const char* name : {"m.idx", "tiny.idx"}) {
    Result<torch::Tensor> t = read_idx(dir.file(name));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Code::kDataLoss);
    EXPECT_TRUE(has_substr(t.status().message(), "magic"));
    EXPECT_TRUE(has_substr(t.status().message(), dir.file(name)));
  }
}

TEST(ReadIdx, UnsupportedTypeIsNamed) {
  TempDir dir;
  write_gzip(dir.file("f.gz"), idx_bytes({4}, std::string(16, '\0'), 0x0d));
  Result<torch::Tensor> t = read_idx(dir.file("f.gz"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(t.status().message(), "unsupported IDX type 0x0d"));
}

TEST(ReadIdx, DimensionCountOutOfRange) {
  TempDir dir;
  write_raw(dir.file("d0.idx"), idx_bytes({}, ""));
  write_raw(dir.file("d5.idx"), idx_bytes({1, 1, 1, 1, 1}, "x"));
  for (const char* name : {"d0.idx", "d5.idx"}) {
    Result<torch::Tensor> t = read_idx(dir.file(name));
    ASSERT_FALSE(t.ok());
    EXPECT_TRUE(has_substr(t.status().message(), "dimension count"));
  }
}

TEST(ReadIdx, HugeDimsDoNotOverflow) {
  TempDir dir;
  write_raw(dir.file("big.idx"),
            idx_bytes({0xffffffff, 0xffffffff, 0xffffffff}, ramp(10)));
  Result<torch::Tensor> t = read_idx(dir.file("big.idx"));
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(has_substr(t.status().message(), "truncated"));
}

TEST(ReadIdx, MissingFileIsNotFound) {
  TempDir dir;
  Result<torch::Tensor> t = read_idx(dir.file("nope.idx"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kNotFound);
  EXPECT_TRUE(has_substr(t.status().message(), "nope.idx"));
}

// A 0.5 MB gzip file whose header declares 60000x28x28 images (47 MB) but
// which inflates to 512 MiB: refused after the declared bytes and one more.
TEST(ReadIdx, GzipBombIsReadNoFurtherThanItsHeaderDeclares) {
  TempDir dir;
  const std::string zeros = gzip_member(std::string(1 << 20, '\0'));
  std::string bomb = gzip_member(idx_bytes({60000, 28, 28}, std::string(1 << 20, '\0')));
  for (int i = 1; i < 512; ++i) bomb += zeros;
  write_raw(dir.file("bomb.gz"), bomb);
  ASSERT_LT(bomb.size(), 1u << 20);
  Result<torch::Tensor> t = Status::Internal("not run");
  const auto start = std::chrono::steady_clock::now();
  const auto growth = peak_growth_mib([&] { t = read_idx(dir.file("bomb.gz")); });
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(t.status().message(), "too long"));
  EXPECT_TRUE(has_substr(t.status().message(), "need 47040000 bytes"));
  EXPECT_LT(took.count(), 2.0);
  if (growth) {
    EXPECT_LT(*growth, 128) << "MiB to refuse a 0.5 MB file";
  }
}

// A gzip header declaring more than the 1 GiB cap is refused before any data.
TEST(ReadIdx, DeclaredSizeOverTheCapIsRefused) {
  TempDir dir;
  write_gzip(dir.file("huge.gz"), idx_bytes({65536, 65536, 2}, ramp(100)));
  Result<torch::Tensor> t = read_idx(dir.file("huge.gz"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(t.status().message(), "declare more than the 1073741824 bytes"));
}

// A directory, a device or a FIFO is refused before it is read (a FIFO
// without a writer would block a reader forever).
TEST(ReadIdx, NonRegularFilesAreRefused) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  for (const std::string& path :
       {dir.path().string(), std::string("/dev/zero"), dir.file("fifo")}) {
    Result<torch::Tensor> t = read_idx(path);
    ASSERT_FALSE(t.ok()) << path;
    EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(has_substr(t.status().message(), path + " is a"));
    EXPECT_TRUE(has_substr(t.status().message(), "not a regular file"));
  }
}

// Many gzip members in one file are one stream, read across members.
TEST(ReadIdx, GzipMembersConcatenate) {
  TempDir dir;
  const std::string whole = idx_bytes({3, 100}, ramp(300));
  write_raw(dir.file("multi.gz"), gzip_member(whole.substr(0, 7)) +
                                      gzip_member(whole.substr(7, 200)) +
                                      gzip_member(whole.substr(207)));
  Result<torch::Tensor> t = read_idx(dir.file("multi.gz"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  expect_ramp(*t, {3, 100});
}

TEST(LoadIdxSplit, RawAndGzipSplits) {
  TempDir dir;
  write_idx_split(dir, "train", 12, /*gzip=*/false);
  write_idx_split(dir, "t10k", 5, /*gzip=*/true);
  Result<Dataset> train = load_idx_split(dir.path().string(), "train");
  Result<Dataset> test = load_idx_split(dir.path().string(), "test");
  ASSERT_TRUE(train.ok()) << train.status().message();
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(train->images.sizes().vec(), (std::vector<int64_t>{12, 1, 4, 4}));
  EXPECT_EQ(test->images.sizes().vec(), (std::vector<int64_t>{5, 1, 4, 4}));
  EXPECT_EQ(train->labels.scalar_type(), torch::kLong);
  EXPECT_EQ(train->labels[11].item<int64_t>(), 1);
  EXPECT_EQ(train->images[1][0][0][0].item<int>(), 16);
  EXPECT_EQ(test->num_classes, 10);
}

TEST(LoadIdxSplit, MismatchedCounts) {
  TempDir dir;
  write_idx_split(dir, "train", 6, /*gzip=*/false);
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_bytes({5}, ramp(5)));
  Result<Dataset> d = load_idx_split(dir.path().string(), "train");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kDataLoss);
  EXPECT_TRUE(has_substr(d.status().message(), "6 images"));
  EXPECT_TRUE(has_substr(d.status().message(), "5 labels"));
}

TEST(LoadIdxSplit, LabelOutOfRange) {
  TempDir dir;
  write_idx_split(dir, "train", 3, /*gzip=*/false);
  write_raw(dir.file("train-labels-idx1-ubyte"),
            idx_bytes({3}, std::string("\x01\x0a\x02", 3)));
  Result<Dataset> d = load_idx_split(dir.path().string(), "train");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(has_substr(d.status().message(), "label 10 out of range"));
}

TEST(LoadIdxSplit, WrongRankAndMissingFiles) {
  TempDir dir;
  write_idx_split(dir, "train", 3, /*gzip=*/false);
  write_raw(dir.file("train-images-idx3-ubyte"), idx_bytes({3, 16}, ramp(48)));
  Result<Dataset> rank = load_idx_split(dir.path().string(), "train");
  ASSERT_FALSE(rank.ok());
  EXPECT_TRUE(has_substr(rank.status().message(), "expected 3 dimensions"));
  Result<Dataset> missing = load_idx_split(dir.path().string(), "test");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_TRUE(has_substr(missing.status().message(), "t10k-images-idx3-ubyte"));
  EXPECT_EQ(load_idx_split(dir.path().string(), "val").status().code(),
            Code::kInvalidArgument);
}

TEST(LoadIdxSplit, RealFashionMnist) {
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 60000},
                                 std::pair<std::string, int64_t>{"test", 10000}}) {
    Result<Dataset> d = load_idx_split(FEDVAR_FASHION_MNIST, split);
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(d->images.sizes().vec(), (std::vector<int64_t>{n, 1, 28, 28}));
    EXPECT_EQ(d->images.scalar_type(), torch::kUInt8);
    EXPECT_EQ(d->labels.sizes().vec(), (std::vector<int64_t>{n}));
    EXPECT_EQ(d->labels.min().item<int64_t>(), 0);
    EXPECT_EQ(d->labels.max().item<int64_t>(), 9);
    EXPECT_GT(d->images.max().item<int>(), 200);  // real pixels, not zeros
    const torch::Tensor counts = torch::bincount(d->labels, {}, /*minlength=*/10);
    EXPECT_TRUE(torch::equal(counts, torch::full({10}, n / 10, torch::kLong)))
        << split << " class counts " << counts;
  }
}

}  // namespace
}  // namespace fedvar
