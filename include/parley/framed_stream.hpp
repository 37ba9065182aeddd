// parley: the old path of <parley/stream/framed_stream.hpp>, kept so that existing
// includes keep working; new code includes <parley/stream/framed_stream.hpp>.
#ifndef PARLEY_COMPAT_FRAMED_STREAM_HPP
#define PARLEY_COMPAT_FRAMED_STREAM_HPP

#include <parley/stream/framed_stream.hpp>

#endif
