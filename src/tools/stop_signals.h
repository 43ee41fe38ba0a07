// How the long-running subcommands (server, node, manager) wait for SIGTERM / SIGINT: the
// signals are blocked in every thread (call BlockStopSignals() before starting any) and taken
// by WaitForStopSignal() on the main thread.
#pragma once

#include <csignal>

namespace granary::tools {

// Blocks SIGTERM and SIGINT in this thread (and the threads it starts), ignores SIGPIPE.
inline sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

// Returns the signal that arrived.
inline int WaitForStopSignal(const sigset_t& stop_signals) {
  int sig = 0;
  sigwait(&stop_signals, &sig);
  return sig;
}

}  // namespace granary::tools
