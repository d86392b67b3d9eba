// docs/cli.md is generated from the binary: every command's --help and the
// defenses' option tables (`fedvar defenses --markdown`). This test rebuilds
// it and fails when the committed file differs, so that the page cannot go
// stale. FEDVAR_UPDATE_DOCS=1 writes the new page instead.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace fedvar::testing {
namespace {

std::string help(const std::string& args) {
  const auto r = run_command(kFedvar + " " + args + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << args << ": " << r.output;
  return r.output;
}

// The subcommands `fedvar --help` lists, in its order.
std::vector<std::string> subcommands(const std::string& top_help) {
  std::vector<std::string> names;
  std::stringstream in(top_help);
  std::string line;
  bool listing = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      listing = true;
    } else if (listing && line.rfind("  ", 0) == 0) {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    } else if (listing && !line.empty()) {
      break;
    }
  }
  return names;
}

std::string generate() {
  const std::string top = help("--help");
  std::string page =
      "# The `fedvar` command line\n\n"
      "Generated from the binary by `tests/cli/cli_docs_test.cpp` (run it with\n"
      "`FEDVAR_UPDATE_DOCS=1` to rewrite this page); do not edit by hand.\n\n"
      "```\n" +
      top + "```\n";
  for (const auto& name : subcommands(top)) {
    page += "\n## fedvar " + name + "\n\n```\n" + help(name + " --help") + "```\n";
  }
  page +=
      "\n## Defenses and their options\n\n"
      "A defense is named by a spec, `NAME` or `NAME:key=value,...` (`fedvar purify\n"
      "--defense`, `fedvar serve --hook`, `fedvar simulate --hook`).\n\n" +
      help("defenses --markdown");
  return page;
}

TEST(CliDocs, DocsCliMdIsTheBinarysHelp) {
  const std::string path = std::string(FEDVAR_SOURCE_DIR) + "/docs/cli.md";
  const std::string page = generate();
  EXPECT_NE(page.find("## fedvar purify"), std::string::npos);
  EXPECT_NE(page.find("`share_max`"), std::string::npos);
  if (const char* update = std::getenv("FEDVAR_UPDATE_DOCS"); update && *update == '1') {
    ASSERT_TRUE(write_file_atomic(path, page).ok());
  }
  auto committed = read_file(path);
  ASSERT_TRUE(committed.ok()) << path
                              << " is missing: run this test with FEDVAR_UPDATE_DOCS=1";
  EXPECT_EQ(*committed, page)
      << "docs/cli.md is stale: run this test with FEDVAR_UPDATE_DOCS=1 and commit it";
}

}  // namespace
}  // namespace fedvar::testing
