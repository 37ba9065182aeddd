// parley internals: telling an io_context's own executor from the others.
#ifndef PARLEY_DETAIL_IO_EXECUTOR_HPP
#define PARLEY_DETAIL_IO_EXECUTOR_HPP

#include <asio/io_context.hpp>

#include <type_traits>
#include <typeinfo>

namespace parley::detail {

// `executor` as a `Target`, when it is one, itself or held by a polymorphic
// executor (asio::any_io_executor); null otherwise.
//
// Asio 1.22's any_executor::target<T>() casts without checking the type it
// holds (a strand's inner executor would pass for the io_context's), so the
// type is compared first; without RTTI nothing held is recognised.
template <class Target, class Executor>
const Target* held_executor(const Executor& executor) noexcept {
    if constexpr (std::is_same_v<Executor, Target>) {
        return &executor;
    } else if constexpr (requires {
                             executor.target_type();
                             executor.template target<Target>();
                         }) {
#if !defined(ASIO_NO_TYPEID)
        if (executor && executor.target_type() == typeid(Target))
            return executor.template target<Target>();
#endif
        return nullptr;
    } else {
        return nullptr;
    }
}

// The io_context executor `executor` is, or null when it is anything else:
// a strand above all, past which a handler must never be run directly (the
// session's handlers would then run on two threads at once).
template <class Executor>
const asio::io_context::executor_type* plain_io_executor(const Executor& executor) noexcept {
    return held_executor<asio::io_context::executor_type>(executor);
}

} // namespace parley::detail

#endif
