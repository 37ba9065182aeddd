// parley internals: a session's input decoder (session::read_with), its
// type erased.
#ifndef PARLEY_DETAIL_DECODER_SLOT_HPP
#define PARLEY_DETAIL_DECODER_SLOT_HPP

#include <parley/hub/input_decoder.hpp>

#include <system_error>
#include <utility>

namespace parley::detail {

template <class Session>
struct decoder_slot {
    virtual ~decoder_slot() = default;
    virtual decode_result decode(Session& s, input_view bytes) = 0;
    virtual void finish(Session& s, input_view rest, std::error_code ec) = 0;
};

template <class Session, class Decoder>
struct decoder_of final : decoder_slot<Session> {
    template <class D>
    explicit decoder_of(D&& d) : decoder(std::forward<D>(d)) {}
    decode_result decode(Session& s, input_view bytes) override { return decoder.decode(s, bytes); }
    void finish(Session& s, input_view rest, std::error_code ec) override {
        decoder.finish(s, rest, ec);
    }
    Decoder decoder;
};

} // namespace parley::detail

#endif
