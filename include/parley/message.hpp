// parley: the old path of <parley/hub/message.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/message.hpp>.
#ifndef PARLEY_COMPAT_MESSAGE_HPP
#define PARLEY_COMPAT_MESSAGE_HPP

#include <parley/hub/message.hpp>

#endif
