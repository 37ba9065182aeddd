// parley: redis_connection.hpp bodies.
#ifndef PARLEY_REDIS_IMPL_REDIS_CONNECTION_HPP
#define PARLEY_REDIS_IMPL_REDIS_CONNECTION_HPP

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/error.hpp>

namespace parley::redis {

namespace detail {

// hiredis's reply tree (its nesting is bounded by the reader) as a reply.
inline reply from_hiredis(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING:
        out.type = reply::kind::string;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = reply::kind::status;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = reply::kind::error;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = reply::kind::integer;
        out.integer = r.integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = reply::kind::array;
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i)
            out.elements.push_back(from_hiredis(*r.element[i]));
        break;
    default: // RESP3 types of newer hiredis versions: RESP2 never sends them
        out.type = reply::kind::nil;
    }
    return out;
}

} // namespace detail

inline std::string reply::describe() const {
    switch (type) {
    case kind::nil:
        return "(nil)";
    case kind::string:
    case kind::status:
        return str;
    case kind::error:
        return "error: " + str;
    case kind::integer:
        return std::to_string(integer);
    case kind::array: {
        std::string s = "[";
        for (std::size_t i = 0; i < elements.size(); ++i)
            s += (i ? ", " : "") + elements[i].describe();
        return s + "]";
    }
    }
    return {};
}

inline connection::connection(asio::any_io_executor executor, connection_options options)
    : strand_(asio::make_strand(std::move(executor))), options_(options), socket_(strand_),
      reader_(redisReaderCreate()), in_(16 * 1024) {
    if (!reader_)
        throw std::bad_alloc();
}

inline connection::~connection() { redisReaderFree(reader_); }

inline void connection::connect(std::string host, std::uint16_t port, const connect_options& how,
                                std::function<void(std::error_code)> handler) {
    parley::async_connect(
        socket_, host, port, how,
        asio::bind_cancellation_slot(
            connect_cancel_.slot(),
            asio::bind_executor(strand_, [self = shared_from_this(), handler = std::move(handler)](
                                             std::error_code ec, const asio::ip::tcp::endpoint&) {
            if (!ec && self->closed_)
                ec = asio::error::operation_aborted;
            if (!ec) {
                self->open_ = true;
                std::error_code ignored;
                self->socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
                self->read();
            }
            handler(ec);
        })));
}

inline void connection::command(const std::vector<std::string>& args, reply_handler handler) {
    std::error_code ec;
    if (!open_)
        ec = asio::error::not_connected;
    else if (pending_bytes() >= options_.max_pending_bytes ||
             awaiting_.size() >= options_.max_pending_replies)
        ec = error::queue_full;
    if (!ec) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        argv.reserve(args.size());
        lengths.reserve(args.size());
        for (const auto& a : args) {
            argv.push_back(a.data());
            lengths.push_back(a.size());
        }
        char* formatted = nullptr;
        const int n = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()),
                                             argv.data(), lengths.data());
        if (n < 0)
            throw std::bad_alloc();
        out_.append(formatted, static_cast<std::size_t>(n));
        redisFreeCommand(formatted);
        if (!on_push_)
            awaiting_.push_back(std::move(handler));
        write();
        return;
    }
    if (handler)
        asio::post(strand_, [handler = std::move(handler), ec] { handler(ec, reply{}); });
}

inline void connection::subscriber(std::function<void(const reply&)> on_push) {
    on_push_ = std::move(on_push);
}

inline void connection::on_close(std::function<void(std::error_code)> handler) {
    on_close_ = std::move(handler);
}

inline void connection::close() {
    closed_ = true;
    connect_cancel_.emit(asio::cancellation_type::terminal);
    fail(asio::error::operation_aborted);
}

inline void connection::write() {
    if (!writing_.empty() || out_.empty() || !open_)
        return;
    writing_.swap(out_);
    asio::async_write(socket_, asio::buffer(writing_),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                          self->writing_.clear();
                          if (ec)
                              return self->fail(ec);
                          self->write();
                      });
}

inline void connection::read() {
    socket_.async_read_some(asio::buffer(in_), [self = shared_from_this()](std::error_code ec,
                                                                           std::size_t n) {
        if (ec)
            return self->fail(ec);
        if (redisReaderFeed(self->reader_, self->in_.data(), n) != REDIS_OK)
            return self->fail(error::malformed_message);
        for (;;) {
            void* raw = nullptr;
            if (redisReaderGetReply(self->reader_, &raw) != REDIS_OK)
                return self->fail(error::malformed_message);
            if (!raw)
                break;
            reply r = detail::from_hiredis(*static_cast<redisReply*>(raw));
            freeReplyObject(raw);
            self->on_reply(std::move(r));
            if (!self->open_)
                return;
        }
        self->read();
    });
}

inline void connection::on_reply(reply r) {
    if (on_push_)
        return on_push_(r);
    if (awaiting_.empty())
        return fail(error::malformed_message); // a reply nobody asked for
    auto handler = std::move(awaiting_.front());
    awaiting_.pop_front();
    if (handler)
        handler({}, r);
}

inline void connection::fail(std::error_code ec) {
    const bool was_open = open_ || !awaiting_.empty();
    open_ = false;
    std::error_code ignored;
    socket_.close(ignored);
    out_.clear();
    auto awaiting = std::move(awaiting_);
    awaiting_.clear();
    for (auto& h : awaiting)
        if (h)
            h(ec, reply{});
    if (auto done = std::move(on_close_); done && (was_open || closed_)) {
        on_close_ = nullptr;
        done(ec);
    }
}

} // namespace parley::redis

#endif
