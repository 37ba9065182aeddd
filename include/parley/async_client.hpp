// parley: the old path of <parley/client/async_client.hpp>, kept so that existing
// includes keep working; new code includes <parley/client/async_client.hpp>.
#ifndef PARLEY_COMPAT_ASYNC_CLIENT_HPP
#define PARLEY_COMPAT_ASYNC_CLIENT_HPP

#include <parley/client/async_client.hpp>

#endif
