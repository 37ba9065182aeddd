// parley: one connected peer over an Asio stream, with a bounded outbound
// queue (parley/hub/session_base.hpp) written by gathered writes. The hub
// delivers to sessions; applications read from them.
#ifndef PARLEY_HUB_SESSION_HPP
#define PARLEY_HUB_SESSION_HPP

#include <parley/error.hpp>
#include <parley/stream/framed_stream.hpp>
#include <parley/hub/input_decoder.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/hub/session_base.hpp>
#include <parley/detail/decoder_slot.hpp>
#include <parley/detail/flush_list.hpp>
#include <parley/detail/handler_memory.hpp>
#include <parley/detail/optional_mutex.hpp>
#include <parley/detail/read_pause.hpp>
#include <parley/detail/socket_io.hpp>

#include <asio/bind_allocator.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
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
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace parley {

namespace detail {
// How a session ends its stream once everything queued is written, before
// it closes the socket: nothing more for a socket; parley/net/tls.hpp
// specializes it so that a TLS stream sends its close_notify.
template <class Stream>
struct graceful_end {
    static constexpr bool needed = false;
};
} // namespace detail

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
        : session_base(options), stream_(std::move(stream)), write_timeout_(options.write_timeout),
          linger_(options.linger) {
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
        on_read_ = std::move(handler);
        read_next();
    }

    /// Starts the read loop, handing out the frames of each read together,
    /// as they arrived on the wire (see frame_batch): what a relay uses to
    /// forward them as one message. A batch holds at least one frame.
    /// Frames before a bad one are handed out before the error ends the
    /// session.
    void read_frame_batches(batch_handler handler) {
        on_read_ = std::move(handler);
        read_next();
    }

    /// Starts the read loop with `decoder` (see input_decoder): the bytes
    /// the peer sends are read into the stream's own read buffer, which an
    /// idle session does not hold, and handed to the decoder, which says
    /// how many it consumed and whether to read on, hold reading until a
    /// release_reading(), or stop. Reading ends once the session is
    /// closing; the decoder lives until the session closes. Call once,
    /// instead of read_frames(), on the session's executor.
    template <class Decoder>
        requires input_decoder<std::decay_t<Decoder>, session>
    void read_with(Decoder&& decoder) {
        decoder_ = std::make_unique<detail::decoder_of<session, std::decay_t<Decoder>>>(
            std::forward<Decoder>(decoder));
        // Bytes already in the stream (framed_stream::unread()) first.
        undecoded_ = !stream_.buffered_input().empty();
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

    using session_base::close; // close(last)

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
            if (self->closed_)
                return;
            // Bytes a decoder left when it held are decoded first: this
            // handler is posted already, no recursion to break.
            if (self->undecoded_)
                return self->on_input({});
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
        if (decoder_)
            return read_input();
        read_pending_ = true;
        stream_.async_read_frame(
            [self = this->shared_from_this()](std::error_code ec, frame_view frame) {
                self->read_pending_ = false;
                if (self->lingering_)
                    return self->linger_read(ec);
                if (self->closed_)
                    return;
                if (auto* on_batch = std::get_if<batch_handler>(&self->on_read_)) {
                    if (!ec) {
                        // Takes every frame already buffered, then hands them out.
                        while (self->stream_.read_buffered_frame(ec)) {
                        }
                        {
                            detail::reading_scope publishing(self.get());
                            (*on_batch)(*self, self->stream_.delivered_frames());
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
                        std::get<frame_handler>(self->on_read_)(*self, frame);
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
        // The portable path's buffers, made by its first write (a session
        // over a plain socket never needs them).
        if (!async_write_)
            async_write_ = std::make_unique<async_write_state>();
        auto& write_buffers_ = async_write_->buffers;
        auto& coalesced_ = async_write_->coalesced;
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
    // protocol if it has one (TLS close_notify), then shut, lingering.
    void end_gracefully();

    // Ends the session: closes the stream, drops the queue, tells the
    // close handlers. Runs on the session's executor.
    void shut(std::error_code reason, bool linger = false) {
        detail::held_publishers::list released;
        {
            detail::optional_lock lock(mutex_);
            if (closed_)
                return;
            closed_ = true;
            clear_queue(released);
        }
        release_publishers(released); // a cut reader no longer holds anyone
        if (timers_ && timers_->write)
            timers_->write->cancel();
        if (!linger || !start_linger())
            close_socket();
        on_read_ = std::monostate{};
        if (!decoding_)
            decoder_.reset(); // else once its call returns
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
        auto& t = rare_timers();
        if (!t.write)
            t.write.emplace(get_executor());
        t.write_progress = std::chrono::steady_clock::now();
        arm_write_timer(std::min(t.write_progress, held_since) + write_timeout_);
    }

    void note_write_progress() {
        if (write_timer_armed_)
            timers_->write_progress = std::chrono::steady_clock::now();
    }

    void arm_write_timer(time_point expiry) {
        write_timer_armed_ = true;
        timers_->write->expires_at(expiry);
        timers_->write->async_wait([self = this->shared_from_this()](std::error_code ec) {
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
                start = std::min(start, self->timers_->write_progress);
            if (std::chrono::steady_clock::now() - start >= self->write_timeout_)
                return self->shut(error::write_timeout);
            self->arm_write_timer(start + self->write_timeout_);
        });
    }

    // read_with()'s loop and the lingering close (parley/hub/impl/session.hpp).
    void read_input();
    void on_input(std::error_code ec);
    bool start_linger();
    void linger_read(std::error_code ec);
    void close_socket();

    stream_type stream_;
    detail::flush_list<session_base>* flush_list_ = nullptr; // see the constructor
    // read_frames()' or read_frame_batches()' handler (one of them).
    std::variant<std::monostate, frame_handler, batch_handler> on_read_;
    std::unique_ptr<detail::decoder_slot<session>> decoder_;
    bool decoding_ = false; // a decoder call is running: shut() must not destroy it
    bool undecoded_ = false; // the decoder held with bytes left: decode them before reading
    struct async_write_state {
        std::vector<asio::const_buffer> buffers;
        std::vector<std::byte> coalesced; // write_async's copy of several messages
    };
    std::unique_ptr<async_write_state> async_write_;
    std::chrono::milliseconds write_timeout_;
    // The write deadline's timer (made at the first stall) and the lingering
    // close's, in one block that a session which never stalls nor lingers
    // does not hold.
    struct timer_state {
        std::optional<asio::steady_timer> write;
        std::chrono::steady_clock::time_point write_progress{};
        std::optional<asio::steady_timer> linger;
        std::size_t lingered_bytes = 0;
    };
    timer_state& rare_timers() {
        if (!timers_)
            timers_ = std::make_unique<timer_state>();
        return *timers_;
    }
    std::unique_ptr<timer_state> timers_;
    bool write_timer_armed_ = false;
    bool read_pending_ = false; // a read of the stream is in progress
    bool lingering_ = false;    // closed, the socket kept to drain the peer (linger)
    std::chrono::milliseconds linger_;
};

} // namespace parley

#include <parley/hub/impl/session.hpp>

#endif
