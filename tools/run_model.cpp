#include "tools/run_model.h"

namespace kiln::tools {

LoadedRun load_run(const std::string& checkpoint_path, const Device& device) {
  LoadedRun run;
  run.checkpoint = load_checkpoint(checkpoint_path);
  KILN_CHECK(run.checkpoint.config.contains("model"), "'", checkpoint_path,
             "' holds no model configuration (was it written by kiln train?)");
  run.model = build_model_from_config(run.checkpoint.config);
  restore_model(*run.model.module, run.checkpoint);
  run.model.module->to(device);
  run.model.module->eval();
  if (run.checkpoint.config.contains("data")) run.fit = run.checkpoint.config["data"].value("fit", "crop");
  return run;
}

}  // namespace kiln::tools
