#include "tools/commands.h"

namespace kiln::tools {

std::vector<Command>& commands() {
  static std::vector<Command> registry;
  return registry;
}

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

}  // namespace kiln::tools
