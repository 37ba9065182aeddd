// The chat core's inputs and actions (parley/chat/core/types.hpp).
#include <parley/chat/core/types.hpp>

#include <doctest/doctest.h>

namespace core = parley::chat::core;

TEST_CASE("core types: actions hold what a transport or the cluster link needs") {
    core::actions out;
    auto members = std::make_shared<const std::vector<core::conn_id>>(std::vector<core::conn_id>{1, 2});
    out.push_back(core::publish_action{members, parley::chat::ping_event{}});
    out.push_back(core::close_action{1, std::chrono::milliseconds(5)});
    out.push_back(core::cluster_claim{2, 7, "alice"});
    CHECK(std::get<core::publish_action>(out[0]).to->size() == 2);
    CHECK(members.use_count() == 2); // shared, not copied
    CHECK(std::get<core::close_action>(out[1]).flush.count() == 5);
    CHECK(std::get<core::cluster_claim>(out[2]).serial == 7);
    const auto a = core::moment::now();
    const auto b = core::moment::now();
    CHECK(b.steady >= a.steady);
}
