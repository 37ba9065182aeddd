// parley: the old path of <parley/hub/outbound_queue.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/outbound_queue.hpp>.
#ifndef PARLEY_COMPAT_OUTBOUND_QUEUE_HPP
#define PARLEY_COMPAT_OUTBOUND_QUEUE_HPP

#include <parley/hub/outbound_queue.hpp>

#endif
