// libfedvar as a user installs it: `cmake --install` into a fresh prefix,
// then the C example built against it twice (CMake's find_package(fedvar)
// and pkg-config), run on a real model file and real Fashion-MNIST images;
// and the installed Python package imported by Debian's python3.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/model_io.h"
#include "core/safetensors.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::run_command;

const std::string kSource = FEDVAR_SOURCE_DIR;
const std::string kBuild = std::filesystem::path(FEDVAR_BINARY).parent_path().string();

TEST(Install, TheCExampleBuildsAgainstTheInstalledLibraryAndPurifies) {
  testing::TempDir dir;
  const std::string prefix = dir.file("prefix");
  auto installed = run_command("cmake --install " + kBuild + " --prefix " + prefix + " 2>&1");
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  for (const char* file : {"include/fedvar/fedvar.h", "lib/cmake/fedvar/fedvarConfig.cmake",
                           "lib/pkgconfig/fedvar.pc", "bin/fedvar"}) {
    EXPECT_TRUE(std::filesystem::exists(prefix + "/" + file)) << file;
  }

  // The example through find_package(fedvar), then through pkg-config.
  const std::string examples = dir.file("examples");
  auto built = run_command("cmake -S " + kSource + "/examples -B " + examples +
                           " -DCMAKE_PREFIX_PATH=" + prefix + " -DCMAKE_BUILD_TYPE=Release" +
                           " >/dev/null 2>&1 && cmake --build " + examples + " 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const std::string pc_binary = dir.file("purify_model_pc");
  auto pc = run_command("cc " + kSource + "/examples/purify_model.c -o " + pc_binary +
                        " $(PKG_CONFIG_PATH=" + prefix +
                        "/lib/pkgconfig pkg-config --cflags --libs fedvar) -lz 2>&1");
  ASSERT_EQ(pc.exit_code, 0) << pc.output;

  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  const std::string in = dir.file("in.safetensors");
  ASSERT_TRUE(save_resnet(in, model, std::nullopt).ok());
  const std::string data = testing::kData;
  const std::string args = " " + in + " " + data + "/train-images-idx3-ubyte.gz " + data +
                           "/train-labels-idx1-ubyte.gz 200 ";
  const std::string env = "LD_LIBRARY_PATH=" + prefix + "/lib ";
  for (const std::string& binary : {examples + "/purify_model", pc_binary}) {
    const std::string out = binary + ".safetensors";
    auto run = run_command(env + binary + args + out + " fine-tuning:epochs=1 2>&1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto report = nlohmann::json::parse(run.output);
    EXPECT_EQ(report["defense"], "fine-tuning");
    auto purified = read_safetensors(out);
    ASSERT_TRUE(purified.ok()) << purified.status().message();
    EXPECT_FALSE(torch::allclose(purified->tensors.at("fc.weight"),
                                 resnet_state(model).tensors.at("fc.weight")));
  }
  auto refused = run_command(env + pc_binary + args + dir.file("x.safetensors") +
                             " no-such-defense 2>&1");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("no-such-defense"), std::string::npos) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.safetensors")));

  // The Python package, installed where Debian's python3 looks under this
  // prefix, loads the installed library.
  auto python = run_command(
      "cd / && PYTHONPATH=$(ls -d " + prefix + "/lib/python3*/dist-packages) " +
      "/usr/bin/python3 -c 'import fedvar; print(fedvar.__version__, fedvar.__file__)' 2>&1");
  ASSERT_EQ(python.exit_code, 0) << python.output;
  EXPECT_NE(python.output.find(FEDVAR_VERSION), std::string::npos) << python.output;
  EXPECT_NE(python.output.find(prefix), std::string::npos) << python.output;
}

}  // namespace
}  // namespace fedvar
