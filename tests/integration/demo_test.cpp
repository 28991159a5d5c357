// scripts/run.sh --demo against the binaries of this build.
#include "harness.hpp"

#include <sys/wait.h>

#include <gtest/gtest.h>

using namespace taskmill::testing;

TEST(Demo, RunShDemoExitsZero) {
    temp_dir tmp;
    auto build_dir = build_paths::broker().parent_path().parent_path();
    auto out = tmp.path() / "demo.out";
    std::string cmd = "TASKMILL_BUILD_DIR=" + build_dir.string() + " " +
                      (build_paths::source_dir() / "scripts" / "run.sh").string() + " --demo >" + out.string() +
                      " 2>&1";
    int st = std::system(cmd.c_str());
    auto text = read_file(out);
    ASSERT_TRUE(WIFEXITED(st)) << text;
    EXPECT_EQ(WEXITSTATUS(st), 0) << text;
    EXPECT_NE(text.find("demo: OK"), std::string::npos) << text;
    EXPECT_NE(text.find("state=SUCCEEDED attempts=3"), std::string::npos) << "a retried task: " << text;
    EXPECT_NE(text.find("state=FAILED attempts=1"), std::string::npos) << "a permanent failure: " << text;
}
