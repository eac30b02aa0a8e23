#include "tools/commands.h"

#include "report/run_folder.h"

namespace kiln::tools {

std::vector<Command>& commands() {
  static std::vector<Command> registry;
  return registry;
}

namespace {
std::string& command_line_storage() {
  static std::string line;
  return line;
}
}  // namespace

void set_command_line(int argc, const char* const* argv) {
  command_line_storage() = report::shell_quote_command(argc, argv);
}

const std::string& command_line() { return command_line_storage(); }

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

}  // namespace kiln::tools
