// parley: the old path of <parley/codec/utf8.hpp>, kept so that existing
// includes keep working; new code includes <parley/codec/utf8.hpp>.
#ifndef PARLEY_COMPAT_UTF8_HPP
#define PARLEY_COMPAT_UTF8_HPP

#include <parley/codec/utf8.hpp>

#endif
