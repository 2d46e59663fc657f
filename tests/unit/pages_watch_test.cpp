// The page store change watcher, against a real directory and real inotify.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pages/watch.hpp"

namespace im::pages {
namespace {
namespace fs = std::filesystem;

void write_file(const fs::path& path, std::string_view content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

bool readable_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

class PagesWatch : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pages-watch-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
        fs::create_directories(root_ / "css");
        write_file(root_ / "index.html", "v1");
        write_file(root_ / "css/site.css", "v1");
        std::string error;
        watcher_ = Watcher::create(root_, error);
        ASSERT_TRUE(watcher_) << error;
        ASSERT_GE(watcher_->fd(), 0);
    }
    void TearDown() override {
        watcher_.reset();
        fs::remove_all(root_);
    }

    // Waits for events and drains them; whether anything relevant happened.
    bool changed() { return readable_within(watcher_->fd(), 2000) && watcher_->drain(); }

    fs::path root_;
    std::unique_ptr<Watcher> watcher_;
};

TEST_F(PagesWatch, NothingPendingIsNoChange) {
    EXPECT_FALSE(readable_within(watcher_->fd(), 0));
    EXPECT_FALSE(watcher_->drain());
}

TEST_F(PagesWatch, ReportsAWrittenFile) {
    write_file(root_ / "index.html", "v2");
    EXPECT_TRUE(changed());
    write_file(root_ / "css/site.css", "v2");  // existing subdirectory
    EXPECT_TRUE(changed());
    EXPECT_FALSE(watcher_->drain());  // drained: nothing left
}

TEST_F(PagesWatch, ReportsANewFileInANewSubdirectory) {
    fs::create_directory(root_ / "errors");
    EXPECT_TRUE(changed());
    write_file(root_ / "errors/503.html", "<h1>back soon</h1>");
    EXPECT_TRUE(changed());
    // Nested directories created in one go get watched too.
    fs::create_directories(root_ / "a/b");
    EXPECT_TRUE(changed());
    write_file(root_ / "a/b/deep.html", "deep");
    EXPECT_TRUE(changed());
}

TEST_F(PagesWatch, ReportsDeletionAndRename) {
    fs::remove(root_ / "index.html");
    EXPECT_TRUE(changed());
    fs::rename(root_ / "css", root_ / "styles");
    EXPECT_TRUE(changed());
    write_file(root_ / "styles/site.css", "v3");
    EXPECT_TRUE(changed());
}

TEST_F(PagesWatch, IgnoresHiddenFiles) {
    write_file(root_ / ".index.html.swp", "editor noise");
    ASSERT_TRUE(readable_within(watcher_->fd(), 2000));
    EXPECT_FALSE(watcher_->drain());
}

TEST(PagesWatchCreate, MissingRootIsAnError) {
    std::string error;
    auto watcher = Watcher::create("/nonexistent/pages-root", error);
    EXPECT_FALSE(watcher);
    EXPECT_NE(error.find("/nonexistent/pages-root"), std::string::npos);
}

}  // namespace
}  // namespace im::pages
