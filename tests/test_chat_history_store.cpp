// Tests for include/parley/chat/history/store.hpp: its error category, and
// how completions reach the caller, with a stand-in store whose "writer" is
// a thread of its own (as a real store's is): a completion runs on the
// caller's executor, never on that thread nor inside the initiating call,
// and keeps the caller's io_context running until it has run.
#include <parley/chat/history/store.hpp>

#include <doctest/doctest.h>

#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace history = parley::chat::history;

namespace {

// Answers every operation from a thread of its own after `delay`.
class thread_store final : public history::store {
public:
    explicit thread_store(executor_type ex, std::chrono::milliseconds delay = std::chrono::milliseconds(50))
        : store(std::move(ex)), delay_(delay) {}
    ~thread_store() override {
        for (auto& t : threads_)
            t.join();
    }
    std::error_code append(history::record) override { return history::store_error::queue_full; }
    history::store_stats stats() const override { return {}; }

    std::atomic<std::thread::id> last_thread{};

protected:
    void start_load_rooms(rooms_callback cb) override {
        later([cb] { cb({}, {history::room_state{"lobby", "e1", 3}}); });
    }
    void start_read(history::range_query q, range_callback cb) override {
        later([cb, q] {
            history::range r;
            r.state = {q.room, "e1", 3};
            cb({}, r);
        });
    }
    void start_flush(done_callback cb) override { later([cb] { cb({}); }); }
    void start_close(done_callback cb) override { later([cb] { cb(history::store_error::closed); }); }

private:
    template <class F>
    void later(F f) {
        threads_.emplace_back([this, f] {
            std::this_thread::sleep_for(delay_); // stands for the disk
            last_thread = std::this_thread::get_id();
            f();
        });
    }
    std::chrono::milliseconds delay_;
    std::vector<std::thread> threads_;
};

} // namespace

TEST_CASE("history store: errors have their own category and messages") {
    CHECK(std::string(history::store_category().name()) == "parley.history");
    std::set<std::string> messages;
    for (int v = 1; v <= static_cast<int>(history::store_error::seq_out_of_order); ++v) {
        std::error_code ec = static_cast<history::store_error>(v);
        CHECK(&ec.category() == &history::store_category());
        CHECK(ec.message() != "unknown history store error");
        messages.insert(ec.message());
    }
    CHECK(messages.size() == static_cast<std::size_t>(history::store_error::seq_out_of_order));
    CHECK(std::error_code(history::store_error::disk_full) == std::errc::no_space_on_device);
    CHECK(std::error_code(history::store_error::database_locked) == std::errc::device_or_resource_busy);
}

TEST_CASE("history store: a completion runs on the caller's executor, after the call returns") {
    asio::io_context ioc;
    thread_store store(ioc.get_executor());
    bool returned = false, ran = false;
    std::thread::id ran_on;
    store.async_read(history::range_query{.room = "lobby"}, [&](std::error_code ec, history::range r) {
        CHECK(returned);
        CHECK_FALSE(ec);
        CHECK(r.state.room == "lobby");
        ran_on = std::this_thread::get_id();
        ran = true;
    });
    returned = true;
    // No other work: run() returns only because the pending read kept it
    // going, once the handler has run.
    ioc.run();
    CHECK(ran);
    CHECK(ran_on == std::this_thread::get_id());
    CHECK(ran_on != store.last_thread.load());
}

TEST_CASE("history store: every operation completes through the executor bound to its handler") {
    asio::io_context ioc;
    asio::io_context other; // the store's default, never run: a completion there would be lost
    thread_store store(other.get_executor(), std::chrono::milliseconds(1));
    auto strand = asio::make_strand(ioc);
    int done = 0;
    store.async_load_rooms(asio::bind_executor(strand, [&](std::error_code ec, std::vector<history::room_state> rooms) {
        CHECK(strand.running_in_this_thread());
        CHECK_FALSE(ec);
        CHECK(rooms.size() == 1);
        ++done;
    }));
    store.async_flush(asio::bind_executor(strand, [&](std::error_code ec) {
        CHECK(strand.running_in_this_thread());
        CHECK_FALSE(ec);
        ++done;
    }));
    store.async_close(asio::bind_executor(strand, [&](std::error_code ec) {
        CHECK(strand.running_in_this_thread());
        CHECK(ec == history::store_error::closed);
        ++done;
    }));
    ioc.run_for(std::chrono::seconds(10));
    CHECK(done == 3);
}
