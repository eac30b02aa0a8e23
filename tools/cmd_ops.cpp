// `kiln ops`: the op table as a list: op case, family, CPU and CUDA dtypes.
#include <cstdio>

#include "engine/ops/op_table.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

const bool registered = register_command({
    "ops",
    [](CLI::App& app) { app.add_subcommand("ops", "list every op case in the op table with its dtypes"); },
    [] {
      std::printf("%-36s %-12s %-14s %s\n", "op case", "family", "cpu", "cuda");
      for (const OpCase& row : op_table())
        std::printf("%-36s %-12s %-14s %s\n", row.name.c_str(), row.family.c_str(),
                    row.cpu_dtypes.to_string().c_str(), row.cuda_dtypes.to_string().c_str());
      std::printf("%zu op cases\n", op_table().size());
      return 0;
    },
});

}  // namespace
}  // namespace kiln::tools
