// The `granary` command's subcommands. Each file of src/tools/ registers one family of them on
// the CLI11 application; main.cc only wires them together.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace granary::tools {

// `granary bench engine ...` (bench_engine.cc).
void AddBenchCommands(CLI::App& app);

// `granary server --data DIR ...` (server_command.cc).
void AddServerCommand(CLI::App& app);

// `granary admin pool ...` (admin_command.cc).
void AddAdminCommand(CLI::App& app);

// `granary node ...`, `granary manager ...` and `granary gateway ...` (cluster_commands.cc).
void AddClusterCommands(CLI::App& app);
// `granary admin status|nodes|drain|undrain --etcd URLS` on the `admin` subcommand
// (cluster_admin.cc).
void AddClusterAdminCommands(CLI::App& admin);

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> SplitList(const std::string& s);

// `granary bench s3|client ...` on the `bench` subcommand (bench_objects.cc).
void AddObjectBenchCommands(CLI::App& bench);
// `granary bench meta ...` (bench_meta.cc).
void AddMetaBenchCommand(CLI::App& bench);
// `granary bench kv ...` (bench_kv.cc).
void AddKvBenchCommand(CLI::App& bench);
// `granary bench cluster ...` (bench_cluster.cc).
void AddClusterBenchCommand(CLI::App& bench);
// `granary bench checkpoint ...` (bench_checkpoint.cc).
void AddCheckpointBenchCommand(CLI::App& bench);

// Exit code of the subcommand that ran, set by its callback.
int& ExitCode();

}  // namespace granary::tools
