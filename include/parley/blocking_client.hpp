// parley: the old path of <parley/client/blocking_client.hpp>, kept so that existing
// includes keep working; new code includes <parley/client/blocking_client.hpp>.
#ifndef PARLEY_COMPAT_BLOCKING_CLIENT_HPP
#define PARLEY_COMPAT_BLOCKING_CLIENT_HPP

#include <parley/client/blocking_client.hpp>

#endif
