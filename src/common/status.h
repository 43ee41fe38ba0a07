// Status and Result<T> are part of the public API (include/granary/status.h); this header lets
// the parts of the server include them by their part's name like every other common header.
#pragma once

#include "granary/status.h"
