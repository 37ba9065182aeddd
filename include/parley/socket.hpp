// parley: the old path of <parley/net/socket.hpp>, kept so that existing
// includes keep working; new code includes <parley/net/socket.hpp>.
#ifndef PARLEY_COMPAT_SOCKET_HPP
#define PARLEY_COMPAT_SOCKET_HPP

#include <parley/net/socket.hpp>

#endif
