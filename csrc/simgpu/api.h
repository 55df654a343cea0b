// Common prelude for every file that defines simulated driver entry points.
#pragma once

// Every cuda.h entry point defined in this library is exported: declaring them
// with default visibility here (the build hides everything else) keeps the
// weak fallbacks and the real definitions agreeing on visibility, which the
// linker would otherwise resolve to the most restrictive one.
#pragma GCC visibility push(default)
#include "driver_api.h"
#pragma GCC visibility pop

#define SIM_EXPORT __attribute__((visibility("default")))
