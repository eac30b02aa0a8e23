// The flags of `kiln train`, declared once: `kiln train` parses its command line
// with them, and `kiln sweep` dry-parses every trial's flags with the same table
// before any trial starts (an unknown flag or a value the flag would refuse is an
// error naming the sweep parameter, not a failed trial an hour later).
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "tools/train_run.h"

namespace kiln::tools {

// Declares every `kiln train` option on `app`, bound to the fields of `options`.
void add_train_options(CLI::App* app, TrainOptions& options);

// The checks that need no data: optimizer, schedule, augmentation, precision and
// option combinations (e.g. --finetune with cnn5). Throws kiln::Error naming the flag.
void check_train_options(const TrainOptions& options);

// Parses `args` (DATA and flags, as after `kiln train`) with the train option table
// and runs check_train_options: throws kiln::Error with CLI11's or kiln's message.
TrainOptions parse_train_arguments(const std::vector<std::string>& args);

}  // namespace kiln::tools
