// The link between the chat core and a backplane (parley/chat/cluster/link.hpp).
#include <parley/chat/cluster/link.hpp>

#include <doctest/doctest.h>

#include <deque>

namespace core = parley::chat::core;
namespace pc = parley::chat;

namespace {
// A backplane that records what it is asked and answers claims on demand.
struct fake_backplane final : pc::backplane {
    std::string id = "me";
    pc::backplane_events events;
    std::vector<std::string> published, presence, released;
    std::deque<std::function<void(pc::claim_result)>> claims;
    const std::string& instance_id() const override { return id; }
    void start(pc::backplane_events e) override { events = std::move(e); }
    void stop() override {}
    void publish(std::string payload) override { published.push_back(std::move(payload)); }
    void claim_nick(std::string, std::function<void(pc::claim_result)> done) override {
        claims.push_back(std::move(done));
    }
    void release_nick(std::string key) override { released.push_back(std::move(key)); }
    void set_presence(std::string key, std::string value) override {
        presence.push_back(key + "=" + value);
    }
    pc::backplane_counters counters() const override { return {}; }
};
} // namespace

TEST_CASE("cluster link: the core's cluster actions reach the backplane, its answers the core") {
    core::options o;
    o.clustered = true;
    core::chat chat(o);
    auto bp = std::make_shared<fake_backplane>();
    std::deque<pc::cluster::core_step> steps; // the server's runner, here a queue
    pc::cluster::link link(
        bp, [&](pc::cluster::core_step s) { steps.push_back(std::move(s)); },
        [&] { return chat.local_presence(); });
    link.start();
    core::actions out;
    const auto carry_out = [&] {
        for (auto& a : out)
            link.carry_out(a);
        out.clear();
    };
    const auto run_steps = [&] {
        while (!steps.empty()) {
            auto s = std::move(steps.front());
            steps.pop_front();
            s(chat, out);
        }
        carry_out();
    };
    chat.connect(1, {"p", "", false}, core::moment::now(), out);
    chat.input(1, "alice", core::moment::now(), out);
    carry_out();
    REQUIRE(bp->claims.size() == 1);
    bp->claims.front()(pc::claim_result::claimed);
    run_steps();
    CHECK(bp->presence == std::vector<std::string>{"alice=alice\nlobby"});
    REQUIRE(bp->published.size() == 1);
    CHECK(bp->published[0].starts_with("J\nlobby\nalice\n"));
    CHECK(bp->events.local_presence().size() == 1);

    // A payload from another instance becomes a core input.
    bp->events.on_message("other", "J\nlobby\nzed\nt");
    run_steps();
    chat.input(1, "/list", core::moment::now(), out);
    bool listed = false;
    for (auto& a : out)
        if (auto* s = std::get_if<core::send_action>(&a))
            if (auto* m = std::get_if<pc::members_event>(&s->ev))
                listed = m->count == 2;
    CHECK(listed);
    out.clear();

    core::action log = core::log_action{"not the cluster's"};
    CHECK_FALSE(link.carry_out(log));
}
