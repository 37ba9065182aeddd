// parley: what the hub delivers into, whatever the stream: a session's
// bounded outbound queue, its shared budget, its publisher holds
// (overflow_policy::backpressure) and its close handlers. session<Stream>
// (parley/hub/session.hpp) implements it over an Asio stream.
#ifndef PARLEY_HUB_SESSION_BASE_HPP
#define PARLEY_HUB_SESSION_BASE_HPP

#include <parley/error.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/detail/optional_mutex.hpp>
#include <parley/detail/read_pause.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace parley {

namespace detail {
template <class> class flush_list;
} // namespace detail

/// Options of one session.
struct session_options {
    /// Bounds of the outbound queue and what happens when a member cannot
    /// keep up.
    queue_limits queue{};
    /// Guard the outbound queue with a mutex. Needed when messages are sent
    /// to the session from threads other than the one running its
    /// executor; a server whose io_context runs on one thread can turn it
    /// off and save two atomic operations per message and recipient. Off,
    /// on the io_context's own executor (no strand), the session's flushes
    /// also share one posted handler with every other such session of that
    /// io_context: a publish to N of them posts one handler, not N.
    bool thread_safe = true;
    /// Write deadline: a session whose socket accepts no data for this
    /// long while data is queued is closed with error::write_timeout, even
    /// if its queue is not full. 0 (the default) turns it off. A timer is
    /// armed only once the socket stops taking data, so a peer that keeps
    /// up costs nothing. Under overflow_policy::backpressure it also bounds
    /// how long the session may keep its publishers paused: one whose queue
    /// stays above the low-water mark for the deadline after pausing them
    /// is closed the same way, and they resume. That policy cannot go
    /// without a deadline, so 0 means 10 seconds there.
    std::chrono::milliseconds write_timeout{0};
    /// A budget of queued bytes shared with other sessions (see
    /// outbound_budget); null for none.
    std::shared_ptr<outbound_budget> budget{};
    /// Lingering close: once close() has sent everything, the session shuts
    /// its sending side and waits this long for the peer to close its own,
    /// discarding what the peer still sends (4 MiB at most), before it
    /// closes the socket. A socket closed with unread input sends a reset,
    /// which can destroy the last messages before the peer reads them (an
    /// error reply, a WebSocket close frame). The session counts as closed
    /// (its close handlers run) when the wait starts. 0 closes at once.
    /// Over TLS the session sends its close_notify first and reads on until
    /// the peer's own close_notify or end of stream.
    std::chrono::milliseconds linger{1000};
};

/// Counters of one session's outbound side.
struct session_stats {
    std::size_t queued_bytes = 0;
    std::size_t queued_messages = 0;
    std::uint64_t sent_messages = 0;
    std::uint64_t dropped_messages = 0;
    /// The most bytes the queue ever held.
    std::size_t peak_queued_bytes = 0;
    /// Times this session's reading was paused because a queue it
    /// published into was above its high-water mark
    /// (overflow_policy::backpressure).
    std::uint64_t read_pauses = 0;
};

/// What the hub knows of a session, whatever its stream type: a queue to
/// deliver into and a way to close it. Implemented by session<Stream>.
class session_base {
public:
    using id_type = std::uint64_t;
    using close_handler = std::function<void(session_base&, std::error_code)>;

    session_base(const session_base&) = delete;
    session_base& operator=(const session_base&) = delete;
    virtual ~session_base() = default;

    /// A process-wide unique number, never reused.
    id_type id() const noexcept { return id_; }

    /// Queues a message for this peer and returns at once; gathered writes
    /// send it later. Returns false when the session is closed or the
    /// message did not fit (then, under overflow_policy::disconnect, the
    /// session is being disconnected with error::slow_consumer). `dropped`,
    /// if given, is increased by the number of older messages
    /// overflow_policy::drop_oldest discarded to make room.
    /// Thread-safe when session_options::thread_safe is set.
    ///
    /// Under overflow_policy::backpressure, a message sent from a session's
    /// read handler (a publish) that leaves this queue above its high-water
    /// mark pauses that session's reading until this queue drains;
    /// `paused_publisher`, if given, is then set.
    bool send(const message_ptr& m, std::size_t* dropped = nullptr,
              bool* paused_publisher = nullptr) {
        session_base* hold = nullptr;
        mutex_.lock();
        const outcome result = enqueue(*m, dropped, false, hold);
        mutex_.unlock();
        return finish_send(result, hold, paused_publisher);
    }

    /// Queues several messages at the cost of one lock.
    bool send(std::span<const message_ptr> messages, std::size_t* dropped = nullptr) {
        outcome result = outcome::queued;
        session_base* hold = nullptr;
        mutex_.lock();
        for (const auto& m : messages) {
            const outcome r = enqueue(*m, dropped, false, hold);
            if (r != outcome::queued && r != outcome::queued_first) {
                result = r;
                break;
            }
            if (r == outcome::queued_first)
                result = r;
        }
        mutex_.unlock();
        return finish_send(result, hold, nullptr);
    }

    /// Like send(), for a publisher that already added the queue's
    /// reference to `m` (message::add_refs, one atomic operation for many
    /// recipients): on success the queue owns that reference, on failure
    /// it stays with the caller. What hub::publish() uses.
    bool send_counted(const message& m, std::size_t* dropped = nullptr,
                      bool* paused_publisher = nullptr) {
        session_base* hold = nullptr;
        mutex_.lock();
        const outcome result = enqueue(m, dropped, true, hold);
        mutex_.unlock();
        return finish_send(result, hold, paused_publisher);
    }

    /// Which encoding this peer wants when a message is published in
    /// several (for example framed and text lines): an index into the
    /// publisher's list. 0 by default.
    std::size_t encoding() const noexcept { return encoding_; }
    void encoding(std::size_t index) noexcept { encoding_ = index; }

    session_stats stats() const {
        detail::optional_lock lock(mutex_);
        return {queue_.bytes(), queue_.size(), sent_, dropped_, peak_bytes_,
                read_pauses_.load(std::memory_order_relaxed)};
    }

    /// Gives back what an idle outbound queue keeps between bursts (its
    /// ring of slots, outbound_queue::release_if_idle()) when nothing was
    /// written since the previous call and nothing is queued: for a
    /// periodic sweep over many mostly idle sessions (a chat server's
    /// lobby), so that each holds no slots while idle and a busy one keeps
    /// its ring. Returns whether memory was freed. Thread-safe when
    /// session_options::thread_safe is set; otherwise call it on the
    /// session's executor.
    bool release_idle_memory() {
        detail::optional_lock lock(mutex_);
        if (writing_ || flush_pending_ || closed_)
            return false;
        return queue_.release_if_idle();
    }

    /// Stops reading, sends everything queued, then closes.
    virtual void close() = 0;
    /// Like close(), with `last` queued after everything already queued
    /// even when the queue is full or closing has begun: the peer's last
    /// message, such as why it is being closed. It bypasses the queue's
    /// limits and the shared budget, and only once per session (a second
    /// last message is dropped; the close goes on). The write deadline
    /// (session_options::write_timeout), if any, bounds the wait for a
    /// peer that does not read; without one, abort() does. Does nothing
    /// more after abort(). Thread-safe.
    void close(const message_ptr& last) {
        if (!last)
            return close();
        {
            detail::optional_lock lock(mutex_);
            if (closed_ || aborting_ || last_queued_)
                return;
            last_queued_ = true;
            closing_ = true;
            queue_.push_beyond_limits(*last);
            last->add_ref();
            if (budget_) {
                budget_->charge(last->size());
                budget_->note_peak();
            }
            if (queue_.bytes() > peak_bytes_)
                peak_bytes_ = queue_.bytes();
            if (flush_pending_ || writing_)
                return; // that flush, or the write's end, sees the close
            flush_pending_ = true;
        }
        schedule_flush();
    }

    /// Pauses reading: no read of this session starts until
    /// release_reading() was called as many times (a read in progress
    /// still completes). What a transport uses to wait until the input it
    /// decoded was handled elsewhere, on the mechanism that
    /// overflow_policy::backpressure pauses publishers with: the reading
    /// resumes once every hold, of either kind, is released. Thread-safe.
    void hold_reading() noexcept { read_holds_.fetch_add(1, std::memory_order_relaxed); }
    /// Releases one hold_reading(); the last one resumes reading, on the
    /// session's executor. Thread-safe.
    void release_reading() { release_hold(); }
    /// Closes now, dropping whatever is queued. `reason` reaches the close
    /// handlers.
    virtual void abort(std::error_code reason) = 0;

    bool is_open() const {
        detail::optional_lock lock(mutex_);
        return !closing_ && !aborting_ && !closed_;
    }

    /// Adds a function called once, on the session's executor, when the
    /// session ends, with the reason (asio::error::eof when the peer
    /// closed, error::slow_consumer, a socket error, error::session_closed
    /// after close()).
    void on_close(close_handler handler) {
        if (!handler)
            return;
        if (!close_handler_) {
            close_handler_ = std::move(handler);
            return;
        }
        // Several handlers (rare) chain, in the order they were added: the
        // session holds one std::function, not a vector and its heap block.
        close_handler_ = [first = std::move(close_handler_),
                          next = std::move(handler)](session_base& s, std::error_code reason) {
            first(s, reason);
            next(s, reason);
        };
    }

protected:
    enum class outcome : unsigned char { queued, queued_first, refused, overflow };

    // Under the lock: queues one message; `queued_first` means a flush
    // must be scheduled. `counted`: the caller added the queue's reference
    // already (message::add_refs); it stays with the caller unless queued.
    // `hold`: set to the publisher to pause (overflow_policy::backpressure).
    outcome enqueue(const message& m, std::size_t* dropped, bool counted, session_base*& hold) {
        if (closing_ || aborting_ || closed_)
            return outcome::refused;
        std::size_t dropped_now = 0;
        if (budget_) [[unlikely]] {
            if (!charge_budget(m, dropped_now))
                return queue_.limits().policy == overflow_policy::drop_oldest ? outcome::refused
                                                                              : outcome::overflow;
        } else if (queue_.push_counted(m, &dropped_now) ==
                   outbound_queue::push_result::overflow) {
            return outcome::overflow;
        }
        if (!counted)
            m.add_ref();
        if (queue_.bytes() > peak_bytes_)
            peak_bytes_ = queue_.bytes();
        if (queue_.limits().policy == overflow_policy::backpressure) [[unlikely]]
            hold_publisher(hold);
        if (dropped_now != 0) {
            dropped_ += dropped_now;
            if (dropped)
                *dropped += dropped_now;
        }
        if (flush_pending_ || writing_)
            return outcome::queued;
        flush_pending_ = true;
        return outcome::queued_first;
    }

    // Under the lock: the queue is past its high-water mark; the session
    // whose read handler is publishing (if any) is held until it drains.
    void hold_publisher(session_base*& hold) {
        session_base* reader = detail::current_reader();
        if (reader == nullptr || hold == reader || !queue_.above_high_water())
            return;
        if (held_.add(reader->id(), reader->weak_base()))
            hold = reader;
    }

    // After the lock: starts the writer or the disconnection, and pauses
    // the publisher held.
    bool finish_send(outcome result, session_base* hold, bool* paused_publisher) {
        if (hold != nullptr) {
            hold->read_holds_.fetch_add(1, std::memory_order_relaxed);
            // Counted here, not where reading stops: a decoder's own holds
            // (read_action::hold) are not back-pressure.
            hold->read_pauses_.fetch_add(1, std::memory_order_relaxed);
            if (paused_publisher)
                *paused_publisher = true;
        }
        switch (result) {
        case outcome::queued:
            return true;
        case outcome::queued_first:
            schedule_flush();
            return true;
        case outcome::overflow:
            abort(error::slow_consumer);
            return false;
        case outcome::refused:
            break;
        }
        return false;
    }

    explicit session_base(const session_options& options)
        : mutex_(options.thread_safe), queue_(options.queue), budget_(options.budget),
          id_(next_id()) {}

    // Under the lock: pushes within the shared budget too. False when
    // nothing was queued.
    bool charge_budget(const message& m, std::size_t& dropped_now) {
        if (!budget_->admit(queue_.bytes(), m.size()))
            return false;
        const std::size_t before = queue_.bytes();
        if (queue_.push_counted(m, &dropped_now) == outbound_queue::push_result::overflow)
            return false;
        const std::size_t after = queue_.bytes();
        if (after >= before)
            budget_->charge(after - before);
        else
            budget_->release(before - after); // drop_oldest freed more than it added
        budget_->note_peak();
        return true;
    }

    // Under the lock: retires written bytes from the queue (and budget).
    // Publishers held by the queue, once it is drained, go to `release`.
    std::size_t consume_written(std::size_t written, detail::held_publishers::list& release) {
        const std::size_t before = queue_.bytes();
        const std::size_t completed = queue_.consume(written);
        if (budget_)
            budget_->release(before - queue_.bytes());
        if (!held_.empty() && queue_.below_low_water()) [[unlikely]]
            held_.take(release);
        return completed;
    }

    // Under the lock: drops the queue (and gives its bytes back).
    void clear_queue(detail::held_publishers::list& release) {
        if (budget_)
            budget_->release(queue_.bytes());
        queue_.clear();
        held_.take(release);
    }

    // With no lock held: lets the publishers a drained queue held read again.
    static void release_publishers(detail::held_publishers::list& publishers) {
        for (auto& p : publishers)
            if (auto publisher = p.lock())
                publisher->release_hold();
        publishers.clear();
    }

    // One queue that held this session has drained.
    void release_hold() {
        bool restart = false;
        {
            detail::optional_lock lock(mutex_);
            if (read_holds_.fetch_sub(1, std::memory_order_relaxed) == 1 && read_stopped_) {
                read_stopped_ = false;
                restart = !closed_;
            }
        }
        if (restart)
            resume_reading();
    }

    // On the session's executor, where the next read would start: whether
    // a queue holds this session's reading (then it stops until released).
    bool reading_held() {
        if (read_holds_.load(std::memory_order_relaxed) <= 0) [[likely]]
            return false;
        detail::optional_lock lock(mutex_);
        if (read_holds_.load(std::memory_order_relaxed) <= 0)
            return false;
        read_stopped_ = true;
        return true;
    }

    virtual std::weak_ptr<session_base> weak_base() noexcept = 0;
    // Starts reading again after a pause, on the session's executor.
    virtual void resume_reading() = 0;

    // Runs flush() on the session's executor.
    virtual void schedule_flush() = 0;
    // flush(), called by the flush list schedule_flush() may use.
    virtual void flush_listed() = 0;
    template <class> friend class detail::flush_list;

    // Calls the close handlers once.
    void notify_closed(std::error_code reason) {
        auto handler = std::move(close_handler_);
        close_handler_ = nullptr;
        if (handler)
            handler(*this, reason);
    }

    mutable detail::optional_mutex mutex_;
    outbound_queue queue_;
    std::shared_ptr<outbound_budget> budget_;
    bool flush_pending_ = false; // a flush is posted
    bool writing_ = false;       // a write or a wait for writability is in progress
    bool closing_ = false;       // close(): no new messages, flush then close
    bool aborting_ = false;      // abort(): no new messages, close at once
    bool closed_ = false;
    bool last_queued_ = false;   // close(last) queued its message
    std::uint64_t sent_ = 0;
    std::uint64_t dropped_ = 0;
    std::size_t peak_bytes_ = 0;
    // overflow_policy::backpressure: the publishers this queue holds, and
    // how many queues hold this session's reading (may dip below zero
    // when a queue lets go before the hold is counted).
    detail::held_publishers held_;
    std::atomic<int> read_holds_{0};
    bool read_stopped_ = false; // held, with no read outstanding
    std::atomic<std::uint64_t> read_pauses_{0};

private:
    static id_type next_id() noexcept {
        static std::atomic<id_type> next{1};
        return next.fetch_add(1, std::memory_order_relaxed);
    }

    std::size_t encoding_ = 0;
    id_type id_;
    close_handler close_handler_; // every on_close() handler, chained
};

} // namespace parley

#endif
