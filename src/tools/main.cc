// `granary`: one binary, one subcommand per role (ARCHITECTURE.md, "Interfaces users see").
#include <cstdlib>
#include <string>

#include "common/logging.h"
#include "tools/commands.h"

namespace granary::tools {

int& ExitCode() {
  static int code = 0;
  return code;
}

}  // namespace granary::tools

int main(int argc, char** argv) {
  CLI::App app{"Granary: one storage system for training data, checkpoints and KV-cache"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  granary::tools::AddServerCommand(app);
  granary::tools::AddAdminCommand(app);
  granary::tools::AddClusterCommands(app);
  granary::tools::AddBenchCommands(app);
  app.parse_complete_callback([&] { granary::InitLogging(log_level); });
  CLI11_PARSE(app, argc, argv);
  return granary::tools::ExitCode();
}
