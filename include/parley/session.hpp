// parley: the old path of <parley/hub/session.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/session.hpp>.
#ifndef PARLEY_COMPAT_SESSION_HPP
#define PARLEY_COMPAT_SESSION_HPP

#include <parley/hub/session.hpp>

#endif
