// Annotated locks so that clang's -Wthread-safety can check GUARDED_BY state.
//
// Mutex is a reader-writer lock that prefers writers: once a writer waits, new readers queue
// behind it. (std::shared_mutex on glibc prefers readers, and a stream of Gets could starve the
// engine's single index writer.)
#pragma once

#include <pthread.h>

#include <cstdlib>

#include "common/thread_annotations.h"

namespace granary {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&rw_, &attr) != 0) std::abort();
    pthread_rwlockattr_destroy(&attr);
  }
  ~Mutex() { pthread_rwlock_destroy(&rw_); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { pthread_rwlock_wrlock(&rw_); }
  void Unlock() RELEASE() { pthread_rwlock_unlock(&rw_); }
  void LockShared() GRANARY_TSA(acquire_shared_capability()) { pthread_rwlock_rdlock(&rw_); }
  void UnlockShared() GRANARY_TSA(release_shared_capability()) { pthread_rwlock_unlock(&rw_); }

 private:
  pthread_rwlock_t rw_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(Mutex* mu) GRANARY_TSA(acquire_shared_capability(mu)) : mu_(mu) {
    mu_->LockShared();
  }
  ~ReaderLock() RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace granary
