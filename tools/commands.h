// The subcommand registry: each tools/cmd_*.cpp adds one Command to commands().
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace kiln::tools {

struct Command {
  std::string name;
  std::function<void(CLI::App& app)> add;  // declares the subcommand and its options
  std::function<int()> run;                // runs it after parsing; returns the exit code
};

std::vector<Command>& commands();

// This process's command line, shell-quoted (set by main before any command runs):
// `kiln train` records it in the run folder so a report can show how to reproduce the run.
void set_command_line(int argc, const char* const* argv);
const std::string& command_line();

// Used at namespace scope in a cmd_*.cpp:  static const bool registered = register_command({...});
bool register_command(Command command);

}  // namespace kiln::tools
