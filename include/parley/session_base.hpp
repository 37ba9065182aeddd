// parley: the old path of <parley/hub/session_base.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/session_base.hpp>.
#ifndef PARLEY_COMPAT_SESSION_BASE_HPP
#define PARLEY_COMPAT_SESSION_BASE_HPP

#include <parley/hub/session_base.hpp>

#endif
