// parley: the old path of <parley/net/tls.hpp>, kept so that existing
// includes keep working; new code includes <parley/net/tls.hpp>.
#ifndef PARLEY_COMPAT_TLS_HPP
#define PARLEY_COMPAT_TLS_HPP

#include <parley/net/tls.hpp>

#endif
