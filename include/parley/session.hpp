// parley: one connected peer, with a bounded outbound queue written by
// gathered writes. The hub delivers to sessions; applications read from them.
#ifndef PARLEY_SESSION_HPP
#define PARLEY_SESSION_HPP

#include <parley/error.hpp>
#include <parley/framed_stream.hpp>
#include <parley/message.hpp>
#include <parley/outbound_budget.hpp>
#include <parley/outbound_queue.hpp>
#include <parley/detail/flush_list.hpp>
#include <parley/detail/handler_memory.hpp>
#include <parley/detail/optional_mutex.hpp>
#include <parley/detail/read_pause.hpp>
#include <parley/detail/socket_io.hpp>

#include <asio/bind_allocator.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace parley {

namespace detail {
// How a session ends its stream once everything queued is written, before
// it closes the socket: nothing more for a socket; parley/tls.hpp
// specializes it so that a TLS stream sends its close_notify.
template <class Stream>
struct graceful_end {
    static constexpr bool needed = false;
};
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
        return {queue_.bytes(), queue_.size(), sent_, dropped_, peak_bytes_, read_pauses_};
    }

    /// Stops reading, sends everything queued, then closes.
    virtual void close() = 0;
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
    void on_close(close_handler handler) { close_handlers_.push_back(std::move(handler)); }

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
        ++read_pauses_;
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
        auto handlers = std::move(close_handlers_);
        close_handlers_.clear();
        for (auto& h : handlers)
            h(*this, reason);
    }

    mutable detail::optional_mutex mutex_;
    outbound_queue queue_;
    std::shared_ptr<outbound_budget> budget_;
    bool flush_pending_ = false; // a flush is posted
    bool writing_ = false;       // a write or a wait for writability is in progress
    bool closing_ = false;       // close(): no new messages, flush then close
    bool aborting_ = false;      // abort(): no new messages, close at once
    bool closed_ = false;
    std::uint64_t sent_ = 0;
    std::uint64_t dropped_ = 0;
    std::size_t peak_bytes_ = 0;
    // overflow_policy::backpressure: the publishers this queue holds, and
    // how many queues hold this session's reading (may dip below zero
    // when a queue lets go before the hold is counted).
    detail::held_publishers held_;
    std::atomic<int> read_holds_{0};
    bool read_stopped_ = false; // held, with no read outstanding
    std::uint64_t read_pauses_ = 0;

private:
    static id_type next_id() noexcept {
        static std::atomic<id_type> next{1};
        return next.fetch_add(1, std::memory_order_relaxed);
    }

    std::size_t encoding_ = 0;
    id_type id_;
    std::vector<close_handler> close_handlers_;
};

/// A session over an Asio stream: reads frames through a framed_stream and
/// writes queued messages (already in wire form) with gathered writes,
/// hundreds of messages per system call under load.
///
/// Create it with std::make_shared. Its handlers run on the stream's
/// executor; when an io_context runs on several threads, give the socket a
/// strand (`asio::make_strand(ioc)`) so each session's handlers never run
/// concurrently.
template <class Stream>
class session final : public session_base, public std::enable_shared_from_this<session<Stream>> {
public:
    using stream_type = framed_stream<Stream>;
    using executor_type = typename stream_type::executor_type;
    using frame_handler = std::function<void(session&, frame_view)>;
    using batch_handler = std::function<void(session&, frame_batch)>;

    explicit session(Stream stream, const session_options& options = {})
        : session_base(options), stream_(std::move(stream)), write_timeout_(options.write_timeout) {
        if (options.queue.policy == overflow_policy::backpressure && write_timeout_.count() == 0)
            write_timeout_ = std::chrono::seconds(10);
        // A session that is not thread-safe on the io_context's own
        // executor is flushed from one list per io_context: a publish to
        // many such sessions posts one handler, not one each.
        if (!options.thread_safe) {
            auto executor = get_executor();
            if constexpr (std::is_same_v<executor_type, asio::io_context::executor_type>) {
                flush_list_ = &asio::use_service<detail::flush_list<session_base>>(executor.context());
            } else if constexpr (std::is_same_v<executor_type, asio::any_io_executor>) {
                if (auto* io = detail::plain_io_executor(executor))
                    flush_list_ = &asio::use_service<detail::flush_list<session_base>>(io->context());
            }
        }
    }

    executor_type get_executor() noexcept { return stream_.get_executor(); }
    stream_type& stream() noexcept { return stream_; }

    /// Starts the read loop: `handler` is called for each frame, with a
    /// view valid during the call. Reading stops at the first error, which
    /// ends the session (and reaches the close handlers).
    void read_frames(frame_handler handler) {
        on_frame_ = std::move(handler);
        read_next();
    }

    /// Starts the read loop, handing out the frames of each read together,
    /// as they arrived on the wire (see frame_batch): what a relay uses to
    /// forward them as one message. A batch holds at least one frame.
    /// Frames before a bad one are handed out before the error ends the
    /// session.
    void read_frame_batches(batch_handler handler) {
        on_batch_ = std::move(handler);
        read_next();
    }

    void close() override {
        {
            // Refuse new messages from now on, whatever thread this is.
            detail::optional_lock lock(mutex_);
            if (closing_ || closed_)
                return;
            closing_ = true;
        }
        asio::dispatch(get_executor(), [self = this->shared_from_this()] { self->flush(); });
    }

    void abort(std::error_code reason) override {
        {
            detail::optional_lock lock(mutex_);
            if (closed_ || aborting_)
                return;
            aborting_ = true;
        }
        asio::dispatch(get_executor(),
                       [self = this->shared_from_this(), reason] { self->shut(reason); });
    }

private:
    std::weak_ptr<session_base> weak_base() noexcept override { return this->weak_from_this(); }

    void resume_reading() override {
        post_pooled([self = this->shared_from_this()] {
            if (!self->closed_)
                self->read_next();
        });
    }

    void schedule_flush() override {
        if (flush_list_)
            return flush_list_->add(this->shared_from_this());
        // Posted once per batch of messages for each recipient.
        post_pooled([self = this->shared_from_this()] { self->flush(); });
    }

    void flush_listed() override { flush(); }

    // After a batch: on a flush list, the flushes the batch caused are
    // already posted, and the next read is posted behind them, so that the
    // recipients' sends do not wait for it (a speculative receive and, when
    // it finds nothing, a re-armed wait: system calls of no use to them).
    void continue_reading() {
        if (reading_held())
            return;
        if (!flush_list_)
            return read_next();
        post_pooled([self = this->shared_from_this()] {
            if (!self->closed_)
                self->read_next();
        });
    }

    // Posts `f` to the session's executor, its memory from a per-thread
    // pool rather than the heap. A polymorphic executor drops the
    // allocator (any_io_executor cannot take it): post to the io_context's
    // own executor when that is what it holds.
    template <class Function>
    void post_pooled(Function f) {
        auto handler = asio::bind_allocator(detail::handler_allocator<void>{}, std::move(f));
        auto executor = get_executor();
        if constexpr (std::is_same_v<executor_type, asio::any_io_executor>) {
            if (auto* io = detail::plain_io_executor(executor))
                return asio::post(*io, std::move(handler));
        }
        asio::post(executor, std::move(handler));
    }

    void read_next() {
        stream_.async_read_frame(
            [self = this->shared_from_this()](std::error_code ec, frame_view frame) {
                if (self->closed_)
                    return;
                if (self->on_batch_) {
                    if (!ec) {
                        // Takes every frame already buffered, then hands them out.
                        while (self->stream_.read_buffered_frame(ec)) {
                        }
                        {
                            detail::reading_scope publishing(self.get());
                            self->on_batch_(*self, self->stream_.delivered_frames());
                        }
                        if (!self->is_open())
                            return;
                        if (!ec)
                            return self->continue_reading();
                    }
                    return self->shut(ec);
                }
                while (!ec) {
                    {
                        detail::reading_scope publishing(self.get());
                        self->on_frame_(*self, frame);
                    }
                    if (!self->is_open()) // closed, or closing from another thread
                        return;
                    auto next = self->stream_.read_buffered_frame(ec);
                    if (!next) {
                        if (!ec && !self->reading_held())
                            return self->read_next();
                        if (!ec)
                            return; // resume_reading() reads on
                        break;
                    }
                    frame = *next;
                }
                self->shut(ec);
            });
    }

    // Writes as much of the queue as the socket takes now; waits for
    // writability when it takes no more. Runs on the session's executor.
    void flush() {
        // Declared first: publishers this flush lets go are released once
        // the lock (inside the loop) is no longer held.
        struct releasing {
            detail::held_publishers::list publishers;
            ~releasing() { release_publishers(publishers); }
        } released;
        for (;;) {
            detail::optional_lock lock(mutex_);
            flush_pending_ = false;
            if (writing_ || closed_)
                return;
            if (queue_.empty()) {
                if (closing_ && !aborting_) {
                    lock.unlock();
                    end_gracefully();
                }
                return;
            }
            if constexpr (detail::waitable_socket<typename stream_type::next_layer_type>) {
                if (!write_now(lock, released.publishers))
                    return;
            } else {
                return write_async(lock);
            }
        }
    }

#if PARLEY_HAS_POSIX_SOCKETS
    // One sendmsg() of up to IOV_MAX queued messages. Returns true when
    // the caller should try again at once (everything lent was sent).
    bool write_now(detail::optional_lock& lock, detail::held_publishers::list& released) {
        auto iov = detail::iovec_scratch();
        const std::size_t count = queue_.take(iov, detail::make_iovec);
        const std::size_t total = detail::iovec_bytes(iov.first(count));
        std::error_code ec;
        const std::size_t written = detail::send_now(stream_.next_layer(), iov.first(count), ec);
        sent_ += consume_written(written, released);
        if (ec && !detail::would_block(ec)) {
            lock.unlock();
            shut(ec);
            return false;
        }
        if (written == total)
            return true;
        writing_ = true; // the socket is full: wait until it drains
        const auto held_since = pressure_since();
        lock.unlock();
        watch_stall(held_since);
        stream_.next_layer().async_wait(asio::socket_base::wait_write,
                                        [self = this->shared_from_this()](std::error_code wec) {
                                            {
                                                detail::optional_lock l(self->mutex_);
                                                self->writing_ = false;
                                            }
                                            if (wec)
                                                return self->shut(wec);
                                            self->note_write_progress();
                                            self->flush();
                                        });
        return false;
    }
#else
    bool write_now(detail::optional_lock& lock, detail::held_publishers::list&) {
        write_async(lock);
        return false;
    }
#endif

    // The portable path, for streams that are not plain sockets (TLS).
    // Several queued messages are copied into one buffer first: a TLS
    // stream writes each buffer of a sequence as its own record and system
    // call, and a copy costs far less than either.
    void write_async(detail::optional_lock& lock) {
        write_buffers_.resize(64);
        const std::size_t count = queue_.take(std::span<asio::const_buffer>(write_buffers_));
        write_buffers_.resize(count);
        // Always written from the session's own copy: shut() may drop the
        // queue (and the last reference to a message) while it is in flight.
        if (count > 0) {
            std::size_t total = 0;
            std::size_t taken = 0;
            while (taken < count && (taken == 0 || total + write_buffers_[taken].size() <=
                                                       max_coalesced_bytes))
                total += write_buffers_[taken++].size();
            coalesced_.resize(total);
            asio::buffer_copy(asio::buffer(coalesced_),
                              std::span<const asio::const_buffer>(write_buffers_.data(), taken));
            write_buffers_.assign(1, asio::buffer(coalesced_));
        }
        writing_ = true;
        const auto held_since = pressure_since();
        lock.unlock();
        watch_stall(held_since);
        asio::async_write(stream_.next_layer(),
                          std::span<const asio::const_buffer>(write_buffers_),
                          [self = this->shared_from_this()](std::error_code ec, std::size_t n) {
                              detail::held_publishers::list released;
                              {
                                  detail::optional_lock l(self->mutex_);
                                  self->sent_ += self->consume_written(n, released);
                                  self->writing_ = false;
                              }
                              release_publishers(released);
                              if (ec)
                                  return self->shut(ec);
                              self->note_write_progress();
                              self->flush();
                          });
    }

    // Everything queued is written after close(): end the stream's own
    // protocol if it has one (TLS close_notify), then shut.
    void end_gracefully() {
        using end = detail::graceful_end<typename stream_type::next_layer_type>;
        if constexpr (end::needed) {
            {
                detail::optional_lock lock(mutex_);
                if (writing_ || closed_)
                    return;
                writing_ = true; // nothing else may write meanwhile
            }
            end::async_end(stream_.next_layer(),
                           [self = this->shared_from_this()](std::error_code) {
                               self->shut(error::session_closed);
                           });
        } else {
            shut(error::session_closed);
        }
    }

    // Ends the session: closes the stream, drops the queue, tells the
    // close handlers. Runs on the session's executor.
    void shut(std::error_code reason) {
        detail::held_publishers::list released;
        {
            detail::optional_lock lock(mutex_);
            if (closed_)
                return;
            closed_ = true;
            clear_queue(released);
        }
        release_publishers(released); // a cut reader no longer holds anyone
        if (write_timer_)
            write_timer_->cancel();
        std::error_code ignored;
        auto& socket = lowest_layer(stream_.next_layer());
        if constexpr (requires { socket.shutdown(asio::socket_base::shutdown_both, ignored); })
            socket.shutdown(asio::socket_base::shutdown_both, ignored);
        if constexpr (requires { socket.close(ignored); })
            socket.close(ignored);
        on_frame_ = nullptr;
        on_batch_ = nullptr;
        notify_closed(reason);
    }

    // The socket under a layered stream (TLS), or the stream itself.
    template <class S>
    static auto& lowest_layer(S& s) {
        if constexpr (requires { s.lowest_layer(); })
            return s.lowest_layer();
        else
            return s;
    }

    static constexpr std::size_t max_coalesced_bytes = 64 * 1024;
    using time_point = std::chrono::steady_clock::time_point;

    // Under the lock: since when this queue holds publishers, or never.
    time_point pressure_since() const noexcept {
        return held_.empty() ? time_point::max() : held_.since();
    }

    // The write deadline. On the plain-socket path the timer starts when
    // the socket first refuses data and every wake-up of the wait for
    // writability counts as progress; on the portable path each gathered
    // write as a whole must complete within the deadline. Publishers held
    // (overflow_policy::backpressure) count from when the first was held,
    // progress or not, so that a reader draining too slowly cannot hold a
    // room for longer. Runs on the session's executor.
    void watch_stall(time_point held_since) {
        if (write_timeout_.count() == 0 || write_timer_armed_)
            return;
        if (!write_timer_)
            write_timer_ = std::make_unique<asio::steady_timer>(get_executor());
        write_progress_ = std::chrono::steady_clock::now();
        arm_write_timer(std::min(write_progress_, held_since) + write_timeout_);
    }

    void note_write_progress() {
        if (write_timer_armed_)
            write_progress_ = std::chrono::steady_clock::now();
    }

    void arm_write_timer(time_point expiry) {
        write_timer_armed_ = true;
        write_timer_->expires_at(expiry);
        write_timer_->async_wait([self = this->shared_from_this()](std::error_code ec) {
            self->write_timer_armed_ = false;
            if (ec || self->closed_)
                return;
            bool writing;
            time_point start;
            {
                detail::optional_lock lock(self->mutex_);
                writing = self->writing_;
                start = self->pressure_since();
            }
            if (!writing && start == time_point::max())
                return; // caught up: the next stall starts a new watch
            if (writing)
                start = std::min(start, self->write_progress_);
            if (std::chrono::steady_clock::now() - start >= self->write_timeout_)
                return self->shut(error::write_timeout);
            self->arm_write_timer(start + self->write_timeout_);
        });
    }

    stream_type stream_;
    detail::flush_list<session_base>* flush_list_ = nullptr; // see the constructor
    frame_handler on_frame_;
    batch_handler on_batch_;
    std::vector<asio::const_buffer> write_buffers_;
    std::vector<std::byte> coalesced_; // write_async's copy of several messages
    std::chrono::milliseconds write_timeout_;
    std::unique_ptr<asio::steady_timer> write_timer_; // created at the first stall
    std::chrono::steady_clock::time_point write_progress_{};
    bool write_timer_armed_ = false;
};

} // namespace parley

#endif
