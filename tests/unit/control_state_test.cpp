#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "control/state.hpp"
#include "core/snapshot.hpp"

using namespace im;

namespace {

class StateFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("im-state-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        file_ = dir_ / "state.json";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    void write(const std::string& text) { std::ofstream(file_) << text; }
    std::filesystem::path dir_, file_;
};

core::RuntimeState sample_state() {
    core::RuntimeState s;
    core::MaintenanceState m;
    m.on = true;
    m.reason = "db upgrade";
    m.who = "ops";
    m.started_at = 1700000000;
    m.until = 1700003600;
    m.windows.push_back({1700007200, 1700010800, "planned"});
    s.maintenance["www"] = m;
    s.drained[core::drain_key("app", "127.0.0.1:8080")] = {"deploy", "ops", 1700000100};
    return s;
}

}  // namespace

TEST_F(StateFile, MissingFileIsAnEmptyState) {
    auto loaded = control::load_state(file_);
    ASSERT_TRUE(loaded.state);
    EXPECT_TRUE(loaded.state->maintenance.empty());
    EXPECT_TRUE(loaded.state->drained.empty());
}

TEST_F(StateFile, SavedStateReadsBackTheSame) {
    ASSERT_EQ(control::save_state(file_, sample_state()), "");
    EXPECT_FALSE(std::filesystem::exists(dir_ / "state.json.tmp"));
    auto loaded = control::load_state(file_);
    ASSERT_TRUE(loaded.state) << loaded.error;
    const auto& m = loaded.state->maintenance.at("www");
    EXPECT_TRUE(m.on);
    EXPECT_EQ(m.reason, "db upgrade");
    EXPECT_EQ(m.until, 1700003600);
    ASSERT_EQ(m.windows.size(), 1u);
    EXPECT_EQ(m.windows[0].reason, "planned");
    const auto& d = loaded.state->drained.at("app/127.0.0.1:8080");
    EXPECT_EQ(d.reason, "deploy");
    EXPECT_EQ(d.who, "ops");
    EXPECT_EQ(d.since, 1700000100);
}

TEST_F(StateFile, CorruptFileIsAnErrorNamingTheFileAndTheWayOut) {
    for (const char* text : {"{ torn", "[]", R"({"version": 2, "maintenance": {}, "drained": {}})",
                             R"({"version": 1, "maintenance": {"www": {"on": 1}}, "drained": {}})",
                             R"({"version": 1, "maintenance": {}, "drained": {"app/x:1": true}})"}) {
        write(text);
        auto loaded = control::load_state(file_);
        EXPECT_FALSE(loaded.state) << text;
        EXPECT_NE(loaded.error.find(file_.string()), std::string::npos) << loaded.error;
        EXPECT_NE(loaded.error.find("--fresh-state"), std::string::npos) << loaded.error;
    }
}

TEST_F(StateFile, UnwritableFolderIsAnError) {
    auto err = control::save_state(dir_ / "no-such-folder" / "state.json", sample_state());
    EXPECT_NE(err.find("no-such-folder"), std::string::npos) << err;
}

namespace {

std::shared_ptr<config::Config> groups(
    const std::vector<std::pair<std::string, std::vector<config::Address>>>& list) {
    auto c = std::make_shared<config::Config>();
    for (const auto& [name, targets] : list) {
        c->target_groups.emplace_back();
        c->target_groups.back().name = name;
        c->target_groups.back().targets = targets;
    }
    return c;
}

std::shared_ptr<const config::Config> two_groups(std::vector<config::Address> app) {
    return groups({{"api", {{"127.0.0.1", 9100}}}, {"app", app}});
}

}  // namespace

TEST(SnapshotDrains, RuntimeDrainsBecomeFlagsByName) {
    auto config = two_groups({{"127.0.0.1", 9000}, {"127.0.0.1", 9001}});
    auto base = core::build_snapshot(config, std::make_shared<core::Endpoints>(), {},
                                     core::all_healthy(*config), 1);
    EXPECT_FALSE(base->is_drained(1, 0));
    auto state = std::make_shared<core::RuntimeState>();
    state->drained[core::drain_key("app", "127.0.0.1:9001")] = {};
    state->drained[core::drain_key("gone", "127.0.0.1:1")] = {};  // a group a reload removed
    auto s = core::with_runtime(*base, state, 2);
    EXPECT_FALSE(s->is_drained(0, 0));
    EXPECT_FALSE(s->is_drained(1, 0));
    EXPECT_TRUE(s->is_drained(1, 1));
}

TEST(SnapshotDrains, CountersOfTargetsThatStayAreKeptAcrossAReload) {
    auto before = two_groups({{"127.0.0.1", 9000}, {"127.0.0.1", 9001}});
    auto load = core::carry_load(*before, nullptr, nullptr);
    (*load)[1][1]->requests = 3;
    // The reload reorders the groups and the targets and drops 9000.
    auto after = groups({{"app", {{"127.0.0.1", 9002}, {"127.0.0.1", 9001}}}});
    auto carried = core::carry_load(*after, before.get(), load.get());
    ASSERT_EQ(carried->size(), 1u);
    EXPECT_EQ((*carried)[0][0]->requests, 0);
    EXPECT_EQ((*carried)[0][1]->requests, 3);
    EXPECT_EQ((*carried)[0][1], (*load)[1][1]);
}
