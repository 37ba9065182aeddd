// parley: the old path of <parley/hub/hub.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/hub.hpp>.
#ifndef PARLEY_COMPAT_HUB_HPP
#define PARLEY_COMPAT_HUB_HPP

#include <parley/hub/hub.hpp>

#endif
