// session_base's queue rules without a network: a stand-in session that
// records what the base asks of it (flushes, aborts) instead of writing.
#include <parley/hub/session_base.hpp>

#include "support/frame_message.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace {

parley::message_ptr frame(std::size_t payload) {
    return parley::test::frame(std::string(payload, 'x'));
}

class recording_session final : public parley::session_base,
                                public std::enable_shared_from_this<recording_session> {
public:
    explicit recording_session(const parley::session_options& options) : session_base(options) {}

    using session_base::close; // close(last)
    void close() override { closing_ = true; }
    void abort(std::error_code reason) override {
        aborted.push_back(reason);
        aborting_ = true;
        parley::detail::held_publishers::list release;
        clear_queue(release);
        release_publishers(release);
        notify_closed(reason);
    }

    // What a flush does, without a socket: everything queued is written.
    void write_all() {
        parley::detail::held_publishers::list release;
        {
            parley::detail::optional_lock lock(mutex_);
            flush_pending_ = false;
            std::vector<asio::const_buffer> buffers(64);
            (void)queue_.take(std::span<asio::const_buffer>(buffers));
            sent_ += consume_written(queue_.bytes(), release);
        }
        release_publishers(release);
    }
    std::size_t ring_slots() const { return queue_.capacity(); }

    int flushes = 0;
    std::vector<std::error_code> aborted;

private:
    std::weak_ptr<session_base> weak_base() noexcept override { return weak_from_this(); }
    void resume_reading() override {}
    void schedule_flush() override { ++flushes; }
    void flush_listed() override {}
};

} // namespace

TEST_CASE("session_base: the first message queued schedules one flush; the others wait for it") {
    auto s = std::make_shared<recording_session>(parley::session_options{});
    const auto m = frame(10);
    CHECK(s->send(m));
    CHECK(s->send(m));
    CHECK(s->flushes == 1);
    CHECK(s->stats().queued_messages == 2);
    CHECK(s->stats().queued_bytes == 2 * m->size());
}

TEST_CASE("session_base: overflow under the disconnect policy aborts with slow_consumer") {
    auto s = std::make_shared<recording_session>(parley::session_options{
        .queue = {.max_bytes = 100, .max_messages = 10, .policy = parley::overflow_policy::disconnect}});
    std::error_code closed_with;
    s->on_close([&](parley::session_base&, std::error_code ec) { closed_with = ec; });
    CHECK(s->send(frame(40)));
    CHECK(s->send(frame(40)));
    CHECK_FALSE(s->send(frame(40))); // 132 bytes would not fit
    REQUIRE(s->aborted.size() == 1);
    CHECK(s->aborted[0] == parley::error::slow_consumer);
    CHECK(closed_with == parley::error::slow_consumer);
    CHECK_FALSE(s->is_open());
    CHECK_FALSE(s->send(frame(1))); // refused once closed
    CHECK(s->stats().queued_bytes == 0);
}

TEST_CASE("session_base: drop_oldest makes room and counts what it dropped") {
    auto s = std::make_shared<recording_session>(parley::session_options{
        .queue = {.max_bytes = 100, .max_messages = 10, .policy = parley::overflow_policy::drop_oldest}});
    std::size_t dropped = 0;
    for (int i = 0; i < 5; ++i)
        CHECK(s->send(frame(40), &dropped));
    CHECK(s->aborted.empty());
    CHECK(s->is_open());
    CHECK(s->stats().queued_bytes <= 100);
    CHECK(dropped == 3); // 5 sent, 2 fit
    CHECK(s->stats().dropped_messages == 3);
}

TEST_CASE("session_base: a full shared budget refuses the sessions past their reserve, not the others") {
    auto budget = std::make_shared<parley::outbound_budget>(
        parley::outbound_budget_limits{.max_bytes = 200, .reserve_bytes = 50});
    const parley::session_options options{.queue = {.max_bytes = 1000, .max_messages = 100},
                                          .budget = budget};
    auto slow = std::make_shared<recording_session>(options);
    auto other = std::make_shared<recording_session>(options);
    auto healthy = std::make_shared<recording_session>(options);
    for (int i = 0; i < 4; ++i)
        CHECK(slow->send(frame(36))); // 4 x 40 wire bytes
    CHECK(other->send(frame(36)));
    CHECK(budget->used() == 200); // the budget is full
    CHECK(healthy->send(frame(17))); // 21 bytes: within its reserve, admitted all the same
    CHECK(healthy->aborted.empty());
    CHECK_FALSE(slow->send(frame(36))); // past its reserve and the budget: cut
    REQUIRE(slow->aborted.size() == 1);
    CHECK(slow->aborted[0] == parley::error::slow_consumer);
    CHECK(budget->used() == 61); // the slow session's bytes were given back
}

TEST_CASE("session_base: close(last) queues its message past a full queue, once, then refuses") {
    auto s = std::make_shared<recording_session>(
        parley::session_options{.queue = {.max_bytes = 100, .max_messages = 2}});
    CHECK(s->send(frame(40)));
    CHECK(s->send(frame(40)));
    CHECK(s->flushes == 1);
    s->close(frame(200)); // over both limits, and no slow_consumer for it
    CHECK(s->aborted.empty());
    CHECK(s->stats().queued_messages == 3);
    CHECK(s->stats().queued_bytes > 100);
    CHECK(s->flushes == 1); // the pending flush writes it
    CHECK_FALSE(s->is_open());
    CHECK_FALSE(s->send(frame(1)));  // refused: closing
    s->close(frame(1));              // a second last message is dropped
    CHECK(s->stats().queued_messages == 3);
    CHECK(s->aborted.empty());
}

TEST_CASE("session_base: close(last) on an idle session schedules the flush that sends it") {
    auto s = std::make_shared<recording_session>(parley::session_options{});
    s->close(frame(5));
    CHECK(s->flushes == 1);
    CHECK(s->stats().queued_messages == 1);
    s->abort(parley::error::shut_down);
    s->close(frame(5)); // after abort(): nothing
    CHECK(s->stats().queued_messages == 0);
}

TEST_CASE("session_base: release_idle_memory gives the ring back after an idle period only") {
    auto s = std::make_shared<recording_session>(parley::session_options{});
    const auto m = frame(10);
    CHECK(s->send(m));
    CHECK_FALSE(s->release_idle_memory()); // a flush is pending: never
    s->write_all();
    CHECK(s->ring_slots() != 0);           // kept between bursts
    CHECK_FALSE(s->release_idle_memory()); // written in this period
    CHECK(s->ring_slots() != 0);
    CHECK(s->release_idle_memory());       // idle for a whole period
    CHECK(s->ring_slots() == 0);
    CHECK(m->use_count() == 1);
    CHECK(s->send(m));                     // and it works on as before
    s->write_all();
    CHECK(s->stats().sent_messages == 2);
}

TEST_CASE("session_base: every close handler runs once, in the order added") {
    auto s = std::make_shared<recording_session>(parley::session_options{});
    std::vector<int> calls;
    std::vector<std::error_code> reasons;
    for (int i = 0; i < 3; ++i)
        s->on_close([&, i](parley::session_base& closed, std::error_code ec) {
            CHECK(&closed == s.get());
            calls.push_back(i);
            reasons.push_back(ec);
        });
    s->on_close({}); // an empty handler is ignored
    s->abort(parley::error::slow_consumer);
    s->abort(parley::error::slow_consumer); // notified once only
    CHECK(calls == std::vector<int>{0, 1, 2});
    REQUIRE(reasons.size() == 3);
    for (const auto& ec : reasons)
        CHECK(ec == parley::error::slow_consumer);
}
