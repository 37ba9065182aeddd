// parley: the old path of <parley/hub/outbound_budget.hpp>, kept so that existing
// includes keep working; new code includes <parley/hub/outbound_budget.hpp>.
#ifndef PARLEY_COMPAT_OUTBOUND_BUDGET_HPP
#define PARLEY_COMPAT_OUTBOUND_BUDGET_HPP

#include <parley/hub/outbound_budget.hpp>

#endif
