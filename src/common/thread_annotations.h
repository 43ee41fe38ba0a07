// Clang thread-safety annotations (no-ops elsewhere), as in LevelDB's port/thread_annotations.h.
// CI builds with clang -Wthread-safety; annotate which mutex guards each piece of shared state.
#pragma once

#if defined(__clang__)
#define GRANARY_TSA(x) __attribute__((x))
#else
#define GRANARY_TSA(x)
#endif

#define GUARDED_BY(x) GRANARY_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) GRANARY_TSA(pt_guarded_by(x))
#define REQUIRES(...) GRANARY_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GRANARY_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) GRANARY_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GRANARY_TSA(release_capability(__VA_ARGS__))
#define CAPABILITY(x) GRANARY_TSA(capability(x))
#define SCOPED_CAPABILITY GRANARY_TSA(scoped_lockable)
#define NO_THREAD_SAFETY_ANALYSIS GRANARY_TSA(no_thread_safety_analysis)
