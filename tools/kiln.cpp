// The `kiln` command line. Each subcommand lives in its own tools/cmd_*.cpp and
// registers itself here through the table below (a registry, not a strcmp chain).
// This is the only place that turns a kiln::Error into an exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <new>

#include "engine/core/backend_info.h"
#include "engine/core/cpu_threads.h"
#include "engine/core/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  kiln::tools::set_command_line(argc, argv);
  CLI::App app{"kiln: a from-scratch C++/CUDA deep-learning engine for image classification"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the version, the compiled-in backends and the GPUs found");
  // Accepted before or after the subcommand (`kiln train DATA --threads 2`): a
  // subcommand passes the options it does not know up to here.
  int threads = 0;
  app.fallthrough();
  app.add_option("--threads", threads, "CPU compute threads (default: OpenMP's, OMP_NUM_THREADS or one per core)")
      ->check(CLI::PositiveNumber);
  for (const kiln::tools::Command& command : kiln::tools::commands()) command.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (threads > 0) kiln::set_cpu_threads(threads);
  if (version) {
    std::cout << kiln::runtime_summary();
    return 0;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return 0;
  }
  try {
    for (const kiln::tools::Command& command : kiln::tools::commands())
      if (app.got_subcommand(command.name)) return command.run();
  } catch (const kiln::OutOfMemoryError& e) {
    std::fprintf(stderr,
                 "kiln: error: %s\n  try a smaller --batch-size (or --size); on a GPU, --precision bf16 halves "
                 "the activations. Files written so far are complete: kiln writes each one atomically.\n",
                 e.what());
    return 1;
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());  // names the path and the system's reason
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of host memory; try a smaller --batch-size or --size, or fewer --workers\n");
    return 1;
  }
  return 0;
}
