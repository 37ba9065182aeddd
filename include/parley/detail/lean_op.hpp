// parley internals: a composed operation without asio::async_compose's
// bookkeeping, for framed_stream's reads and writes.
#ifndef PARLEY_DETAIL_LEAN_OP_HPP
#define PARLEY_DETAIL_LEAN_OP_HPP

#include <asio/associator.hpp>
#include <asio/detail/handler_cont_helpers.hpp>

#include <type_traits>
#include <utility>

namespace parley::detail {

// Runs `Op` (a state machine called as op(self, args...), which resumes by
// passing std::move(self) to an operation of the next layer and finishes
// with self.complete(args...)) with the completion handler `Handler`.
//
// asio::async_compose (Asio 1.22) does the same, and also keeps a work guard
// on the I/O executor, copied through the polymorphic executor on every
// step, and its own cancellation state. Neither is needed here: between two
// steps the operation is always inside an operation of the next layer,
// which counts as work and tracks the handler's executor itself, and the
// handler's cancellation slot is handed to that operation unchanged (what
// cancels it cancels the frame operation). Callgrind of echo_server at
// 50 x 1: async_compose's part was about a fifth of its instructions.
//
// Rules for Op, as for async_compose: a step never completes from within
// the initiating function (it resumes through the next layer first), and
// touches nothing of itself after handing self on.
template <class Op, class Handler>
class lean_op {
public:
    lean_op(Op op, Handler handler) : op_(std::move(op)), handler_(std::move(handler)) {}

    template <class... Args>
    void operator()(Args&&... args) {
        if (steps_ < 2)
            ++steps_;
        op_(*this, std::forward<Args>(args)...);
    }

    template <class... Args>
    void complete(Args&&... args) {
        std::move(handler_)(std::forward<Args>(args)...);
    }

    const Handler& handler() const noexcept { return handler_; }

    friend bool asio_handler_is_continuation(lean_op* self) {
        return self->steps_ > 1 ? true : asio_handler_cont_helpers::is_continuation(self->handler_);
    }

private:
    Op op_;
    Handler handler_;
    unsigned char steps_ = 0;
};

// The initiation that async_initiate calls with the completion handler.
template <class Op>
struct lean_initiation {
    Op op;

    template <class Handler>
    void operator()(Handler&& handler) const {
        lean_op<Op, std::decay_t<Handler>>(op, std::forward<Handler>(handler))();
    }
};

} // namespace parley::detail

namespace asio {

// The operation's executor, allocator and cancellation slot are its
// handler's.
template <template <class, class> class Associator, class Op, class Handler,
          class DefaultCandidate>
struct associator<Associator, parley::detail::lean_op<Op, Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type
    get(const parley::detail::lean_op<Op, Handler>& op,
        const DefaultCandidate& c = DefaultCandidate()) noexcept {
        return Associator<Handler, DefaultCandidate>::get(op.handler(), c);
    }
};

} // namespace asio

#endif
