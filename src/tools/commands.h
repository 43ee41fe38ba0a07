// The `granary` command's subcommands. Each file of src/tools/ registers one family of them on
// the CLI11 application; main.cc only wires them together.
#pragma once

#include <CLI/CLI.hpp>

namespace granary::tools {

// `granary bench engine ...` (bench_engine.cc).
void AddBenchCommands(CLI::App& app);

// Exit code of the subcommand that ran, set by its callback.
int& ExitCode();

}  // namespace granary::tools
