// parley: the old path of <parley/codec/line_codec.hpp>, kept so that existing
// includes keep working; new code includes <parley/codec/line_codec.hpp>.
#ifndef PARLEY_COMPAT_LINE_CODEC_HPP
#define PARLEY_COMPAT_LINE_CODEC_HPP

#include <parley/codec/line_codec.hpp>

#endif
