// parley: the old path of <parley/codec/frame_batch.hpp>, kept so that existing
// includes keep working; new code includes <parley/codec/frame_batch.hpp>.
#ifndef PARLEY_COMPAT_FRAME_BATCH_HPP
#define PARLEY_COMPAT_FRAME_BATCH_HPP

#include <parley/codec/frame_batch.hpp>

#endif
