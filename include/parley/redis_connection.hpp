// parley: the old path of <parley/redis/redis_connection.hpp>, kept so that existing
// includes keep working; new code includes <parley/redis/redis_connection.hpp>.
#ifndef PARLEY_COMPAT_REDIS_CONNECTION_HPP
#define PARLEY_COMPAT_REDIS_CONNECTION_HPP

#include <parley/redis/redis_connection.hpp>

#endif
