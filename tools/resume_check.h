// `kiln train --resume CKPT`: the flags that decide the data order and the math of
// a step must be the ones the checkpoint was trained with, or the resumed run is not
// the run it continues (docs/reliability.md, "Bit-exact resume").
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::tools {

// Compares the run configuration saved in the checkpoint (`saved`, config.json's
// content) with this run's (`now`), key by key for the keys that must agree (model,
// image size and fit, optimizer, schedule, augment, progressive resizing, precision, batch size, seed,
// sampler, multi-label setup). Throws naming the checkpoint, the flag and both values
// at the first difference. A key missing from `saved` (a checkpoint from an older
// kiln) is not compared. Returns a note for differences that are allowed but change
// the run (a different --epochs stretches the schedule), or "".
std::string check_resume_matches(const nlohmann::json& saved, const nlohmann::json& now,
                                 const std::string& checkpoint_path);

}  // namespace kiln::tools
