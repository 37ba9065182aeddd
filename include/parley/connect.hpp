// parley: the old path of <parley/net/connect.hpp>, kept so that existing
// includes keep working; new code includes <parley/net/connect.hpp>.
#ifndef PARLEY_COMPAT_CONNECT_HPP
#define PARLEY_COMPAT_CONNECT_HPP

#include <parley/net/connect.hpp>

#endif
