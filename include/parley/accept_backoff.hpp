// parley: the old path of <parley/net/accept_backoff.hpp>, kept so that existing
// includes keep working; new code includes <parley/net/accept_backoff.hpp>.
#ifndef PARLEY_COMPAT_ACCEPT_BACKOFF_HPP
#define PARLEY_COMPAT_ACCEPT_BACKOFF_HPP

#include <parley/net/accept_backoff.hpp>

#endif
