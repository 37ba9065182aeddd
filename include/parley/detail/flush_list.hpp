// parley: one posted handler that flushes every session a publish woke up.
#ifndef PARLEY_DETAIL_FLUSH_LIST_HPP
#define PARLEY_DETAIL_FLUSH_LIST_HPP

#include <parley/detail/handler_memory.hpp>

#include <asio/bind_allocator.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <memory>
#include <vector>

namespace parley::detail {

// Sessions of one io_context with output waiting for a flush. A publish to
// N members would otherwise post N handlers, each through Asio's scheduler
// and its outstanding-work count; the list posts one, which flushes them
// all in the order they were added, as a raw epoll server walks its dirty
// list once per round.
//
// Only for sessions whose executor is the io_context's own and which are
// not thread-safe: their sends and flushes all happen on the one thread
// that runs the io_context, and so does everything here.
template <class Session> // Session::flush_listed(): the flush itself
class flush_list final : public asio::execution_context::service {
public:
    static inline asio::execution_context::id id;

    explicit flush_list(asio::io_context& io) : asio::execution_context::service(io), io_(io) {}

    // Adds `s`, whose flush is due; posts the run if none is pending.
    void add(std::shared_ptr<Session> s) {
        pending_.push_back(std::move(s));
        if (posted_)
            return;
        posted_ = true;
        asio::post(io_, asio::bind_allocator(handler_allocator<void>{}, [this] { run(); }));
    }

private:
    // The io_context is going away: its pending handlers are destroyed,
    // not run, so the sessions are let go here.
    void shutdown() override {
        pending_.clear();
        running_.clear();
        posted_ = false;
    }

    void run() {
        posted_ = false;
        // Flushing may close a session, whose close handlers may publish
        // again: those additions go to the other vector, and a new run.
        running_.swap(pending_);
        struct done {
            std::vector<std::shared_ptr<Session>>& v;
            ~done() { v.clear(); } // keeps its capacity: no allocation per run
        } clear_after{running_};
        for (auto& s : running_)
            s->flush_listed();
    }

    asio::io_context& io_;
    std::vector<std::shared_ptr<Session>> pending_;
    std::vector<std::shared_ptr<Session>> running_;
    bool posted_ = false;
};

} // namespace parley::detail

#endif
