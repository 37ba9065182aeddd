// parley: the old path of <parley/codec/frame_codec.hpp>, kept so that existing
// includes keep working; new code includes <parley/codec/frame_codec.hpp>.
#ifndef PARLEY_COMPAT_FRAME_CODEC_HPP
#define PARLEY_COMPAT_FRAME_CODEC_HPP

#include <parley/codec/frame_codec.hpp>

#endif
