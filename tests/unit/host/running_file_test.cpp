// The worker's running file: slot entries written through one MAP_SHARED
// mapping are seen through another mapping and by a plain read, also after
// the writing process was killed.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "running_file.hpp"

namespace detail = taskmill::host::detail;
namespace fs = std::filesystem;

namespace {

const std::string id_a = "0190f3a2b4c5d6e7f8091a2b3c4d5e6f";
const std::string id_b = "0190f3a2b4c5d6e7ffffffffffffffff";
const std::string id_c = "0190f3a2b4c5d6e80000000000000001";

class RunningFile : public ::testing::Test {
protected:
    fs::path dir;
    void SetUp() override {
        dir = fs::temp_directory_path() / ("tm-running-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
};

}  // namespace

TEST_F(RunningFile, PathIsInTheWorkersFolder) {
    EXPECT_EQ(detail::running_file_path("/run/tm", 1234), fs::path("/run/tm/worker-1234/running"));
}

TEST_F(RunningFile, WriteClearAndReadBackThroughAnotherMapping) {
    auto path = dir / "running";
    detail::running_file rf;
    ASSERT_TRUE(rf.open(path, 3));
    EXPECT_EQ(fs::file_size(path), 3 * detail::running_file::entry_size);
    auto empty = detail::read_running_file(path);
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->empty());

    rf.set(0, id_a);
    rf.set(2, id_c);
    rf.set(7, id_b);                  // no such slot: ignored
    rf.set(1, std::string(33, 'x'));  // too long to record: left out

    // A second, independent mapping of the same file sees the entries.
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, 96, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    const char* other = static_cast<const char*>(p);
    EXPECT_EQ(std::string(other, 32), id_a);
    EXPECT_EQ(other[32], '\0');
    EXPECT_EQ(std::string(other + 64, 32), id_c);

    EXPECT_EQ(detail::read_running_file(path), (std::vector<std::string>{id_a, id_c}));

    rf.clear(0);
    rf.set(1, id_b);
    EXPECT_EQ(std::string(other, 32), std::string(32, '\0'));
    EXPECT_EQ(std::string(other + 32, 32), id_b);
    EXPECT_EQ(detail::read_running_file(path), (std::vector<std::string>{id_b, id_c}));
    // A shorter id zeroes the rest of its entry.
    rf.set(1, "short");
    EXPECT_EQ(detail::read_running_file(path), (std::vector<std::string>{"short", id_c}));
    ::munmap(p, 96);

    rf.remove();
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(detail::read_running_file(path).has_value());
    rf.set(0, id_a);  // still mapped: harmless after remove()
}

TEST_F(RunningFile, SurvivesTheWriterBeingKilled) {
    auto path = dir / "running";
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        detail::running_file rf;
        if (!rf.open(path, 2)) ::_exit(1);
        rf.set(1, id_b);
        ::kill(::getpid(), SIGKILL);  // no destructor, no msync
        ::_exit(2);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    EXPECT_EQ(detail::read_running_file(path), (std::vector<std::string>{id_b}));
}

TEST_F(RunningFile, MissingFileIsUnknown) { EXPECT_FALSE(detail::read_running_file(dir / "nope").has_value()); }
