// parley: the async client's read and write paths (client_impl members).
#ifndef PARLEY_CLIENT_DETAIL_CLIENT_IO_HPP
#define PARLEY_CLIENT_DETAIL_CLIENT_IO_HPP

#include <asio/post.hpp>
#include <asio/write.hpp>

namespace parley::detail {

// --- reading ---------------------------------------------------------------

template <class Executor, class Transport>
void client_impl<Executor, Transport>::read_next(const std::shared_ptr<connection>& conn) {
    conn->stream.async_read_frame(
        [self = this->shared_from_this(), conn](std::error_code ec, frame_view frame) {
            self->on_read(conn, ec, frame);
        });
}

template <class Executor, class Transport>
void client_impl<Executor, Transport>::on_read(const std::shared_ptr<connection>& conn,
                                               std::error_code ec, frame_view frame) {
    // Every frame of one read is handed out before the next read.
    while (!ec) {
        if (conn != conn_)
            return;
        if (auto handler = on_frame_)
            (*handler)(frame);
        if (conn != conn_)
            return;
        auto next = conn->stream.read_buffered_frame(ec);
        if (!next) {
            if (!ec)
                return read_next(conn);
            break;
        }
        frame = *next;
    }
    if (conn != conn_)
        return;
    if (state_ == client_state::closing) {
        if (ec != asio::error::eof)
            return finish(conn->send_shut ? std::error_code() : ec);
        // The peer is done sending; it may still be reading, so what
        // is queued still goes out.
        conn->read_eof = true;
        if (conn->send_shut)
            finish({});
        return;
    }
    lost(ec);
}

// --- writing ---------------------------------------------------------------

template <class Executor, class Transport>
void client_impl<Executor, Transport>::schedule_flush(const std::shared_ptr<connection>& conn) {
    if (conn->writing || conn->flush_posted)
        return;
    // Posted, so that frames sent one after another by the same
    // handler leave together in one gathered write.
    conn->flush_posted = true;
    asio::post(ex_, [self = this->shared_from_this(), conn] {
        conn->flush_posted = false;
        if (conn == self->conn_)
            self->flush(conn);
    });
}

template <class Executor, class Transport>
void client_impl<Executor, Transport>::flush(const std::shared_ptr<connection>& conn) {
    if (conn->writing)
        return;
    if (conn->queue.empty()) {
        if (state_ == client_state::closing && !conn->send_shut)
            shut_send(conn);
        return;
    }
    conn->buffers.resize(max_buffers_per_write);
    const std::size_t count = conn->queue.take(std::span<asio::const_buffer>(conn->buffers));
    conn->buffers.resize(count);
    conn->writing = true;
    asio::async_write(conn->stream.next_layer(),
                      std::span<const asio::const_buffer>(conn->buffers),
                      [self = this->shared_from_this(), conn](std::error_code ec,
                                                              std::size_t written) {
                          conn->writing = false;
                          conn->queue.consume(written);
                          if (conn != self->conn_)
                              return;
                          if (ec)
                              return self->write_failed(ec);
                          self->flush(conn);
                      });
}

template <class Executor, class Transport>
void client_impl<Executor, Transport>::shut_send(const std::shared_ptr<connection>& conn) {
    conn->writing = true; // nothing else goes out after this
    transport_.async_shutdown_send(conn->stream.next_layer(),
                                   [self = this->shared_from_this(), conn] {
                                       conn->writing = false;
                                       if (conn != self->conn_)
                                           return;
                                       conn->send_shut = true;
                                       if (conn->read_eof)
                                           self->finish({});
                                   });
}

template <class Executor, class Transport>
void client_impl<Executor, Transport>::write_failed(std::error_code ec) {
    if (state_ == client_state::closing)
        return finish(ec);
    lost(ec);
}

} // namespace parley::detail

#endif
