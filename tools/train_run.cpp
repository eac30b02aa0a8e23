// The body of `kiln train` (see tools/train_run.h); tools/cmd_train.cpp only
// declares its flags and prints nothing of its own.
#include "tools/train_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <fstream>

#include "data/pack_set.h"
#include "engine/augment/augment.h"
#include "engine/core/backend_info.h"
#include "engine/core/cpu_threads.h"
#include "engine/core/json_parse.h"
#include "engine/ops/conv.h"
#include "engine/metrics/accumulator.h"
#include "engine/nn/init.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/train/progress.h"
#include "engine/train/run_lock.h"
#include "engine/train/signals.h"
#include "models/registry.h"
#include "tools/resume_check.h"
#include "models/rules.h"
#include "tools/train_multilabel.h"
#include "tools/train_options.h"
#include "tools/train_report.h"
#include "weights/atomic_file.h"
#include "weights/checkpoint.h"

namespace kiln::tools {

std::string default_run_dir(const std::string& model) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + model + "-" + stamp;
}

TrainOutcome train_and_evaluate(const TrainOptions& options, bool print_test_table) {
  TrainOptions o = options;
  TrainOutcome outcome;
  // Check every spelled-out option before loading data or writing anything.
  check_train_options(o);
  const models::RuleSet rules = o.rules.empty() ? models::RuleSet{} : models::parse_rules(o.rules);
  const train::ProgressiveSchedule progressive =
      train::parse_progressive(o.progressive, o.progressive_batch, o.bn_reestimate);
  const train::Precision precision = train::parse_precision(o.precision);
  // A multi-size pack (data/pack_set.h): checked against the schedule before anything is
  // loaded or written. A progressive run reads each epoch's size from its member and the
  // run's own sets (the test set, the model's input size) are the final size's; without
  // --progressive, --size picks a member (default: the largest).
  std::vector<int64_t> packed_sizes;
  std::string pack_set_text;
  if (data::is_pack_set(o.data.data)) {
    const data::PackSetIndex index = data::read_pack_set_index(o.data.data);
    if (progressive.enabled()) {
      for (const train::ProgressiveStage& stage : progressive.stages) {
        index.member(stage.size, str("--progressive ", o.progressive));  // throws naming the size and the set's
        packed_sizes.push_back(stage.size);
      }
      KILN_CHECK(o.data.size == 0 || o.data.size == progressive.final_size(), "--size ", o.data.size, ": a ",
                 "progressive run from the pack set ", o.data.data, " reads its final size, ",
                 progressive.final_size(), " px, as the run's size; leave --size out");
      o.data.size = progressive.final_size();
    } else {
      o.data.size = o.data.size > 0 ? o.data.size : index.sizes.back();
      index.member(o.data.size, "--size");
    }
    pack_set_text = str(o.data.data, " (", index.sizes_text(), " px)");
  }
  const Device device = resolve_device(o.device);
  if (o.run_dir.empty()) o.run_dir = o.resume.empty() ? default_run_dir(o.model.arch)
                                                      : std::filesystem::path(o.resume).parent_path().string();
  outcome.run_dir = o.run_dir;
  outcome.device = device.to_string();
  // One writer per run folder, from the first file written (split.json) to the report.
  const train::RunLock run_lock(o.run_dir);
  if (run_lock.previous_pid() != 0)
    std::fprintf(stderr, "run folder %s: taking over the lock of process %ld, which has ended%s\n",
                 o.run_dir.c_str(), run_lock.previous_pid(),
                 run_lock.removed_temporaries() ? " (its half-written temporary files removed)" : "");
  PreparedData data = prepare_data(o.data, o.run_dir, packed_sizes);
  std::printf("kiln train: %s on %s (%d CPU threads%s) | train %lld, val %lld, test %lld images, %lld classes | %s\n",
              o.model.arch.c_str(), device.to_string().c_str(), cpu_threads(),
              device.is_cpu() ? (", convolutions on " + cpu_conv_description()).c_str() : "",
              static_cast<long long>(data.train.size()),
              static_cast<long long>(data.val.size()), static_cast<long long>(data.test.size()),
              static_cast<long long>(data.train.num_classes()), o.run_dir.c_str());
  const train::MultiLabelSetup multi_label = prepare_multi_label(o, data);

  nn::init::manual_seed(o.data.seed);
  BuiltModel built = build_model(o.model, data.train);
  auto& model = *built.module;
  model.to(device);
  if (o.layout == "nhwc") model.to(Layout::nhwc);
  outcome.parameters = model.parameter_count();
  outcome.trainable_parameters = model.parameter_count(true);
  std::printf("%s | %lld parameters (%lld trainable)\n", built.description.c_str(),
              static_cast<long long>(model.parameter_count()), static_cast<long long>(model.parameter_count(true)));

  if (progressive.enabled()) {
    augment::AugmentParams probe_image = built.image;
    probe_image.layout = parse_layout(o.layout);
    train::check_model_takes_sizes(model, progressive, probe_image, data.train.images.shape()[1], device);
  }

  optim::OptimizerOptions optimizer_options;
  optimizer_options.momentum = o.momentum;
  optimizer_options.nesterov = o.nesterov;
  auto optimizer = optim::make_optimizer(
      o.optimizer,
      o.stage_lr_decay < 1.0 ? models::stage_param_groups(model, o.model.arch, o.lr, o.weight_decay, o.stage_lr_decay)
                             : optim::param_groups_no_decay_on_norms_and_biases(model, o.lr, o.weight_decay),
      optimizer_options);
  const int64_t steps_per_epoch = std::max<int64_t>(1, data.train.size() / o.batch_size);
  optim::LrScheduleContext schedule_context;
  schedule_context.base_lr = o.lr;
  // At least two steps: --epochs 0 (evaluate only) still needs a valid schedule object.
  // Progressive runs: the steps of every epoch at its own batch (progressive.h), so the
  // LR runs on continuously across the size switches and ends with the last step.
  schedule_context.total_steps =
      std::max<int64_t>(2, progressive.enabled()
                               ? train::progressive_total_steps(progressive, o.epochs, data.train.size(), o.batch_size)
                               : steps_per_epoch * o.epochs);
  auto schedule = optim::make_lr_schedule(o.schedule, schedule_context);

  // The frozen-feature cache: the plan probes the model (one image) and says what it
  // caches or why it cannot; zoo models' head is their last stage. cnn5 and
  // resnet_custom train from scratch (nothing frozen), so they have nothing to cache.
  const bool zoo_model = o.model.arch != "cnn5" && o.model.arch != "resnet_custom";
  const std::string head = zoo_model ? models::stage_names(o.model.arch).back() : "";
  train::FeatureCachePlan cache_plan;
  if (o.feature_cache == "off") {
    cache_plan.explanation = "off: --feature-cache off";
  } else if (progressive.enabled()) {
    cache_plan.explanation = "off: --progressive changes the image size per epoch (the cache holds one size)";
  } else if (o.epochs > 0) {
    cache_plan = train::plan_feature_cache(model, head, augment::parse_augment_spec(o.augment), built.image,
                                           data.train.images.shape()[1], device, precision,
                                           data.train.size() + data.val.size());
  }
  outcome.feature_cache = cache_plan.explanation;
  if (progressive.enabled()) {
    std::string stages;
    for (const train::ProgressiveStage& s : progressive.stages)
      stages += str(stages.empty() ? "" : ", ", s.size, " px from epoch ", s.first_epoch + 1, " (batch ",
                    progressive.batch_at(s.first_epoch + 1, o.batch_size), ")");
    std::string packed_sizes_text;
    for (int64_t size : packed_sizes) packed_sizes_text += str(packed_sizes_text.empty() ? "" : "/", size);
    const std::string source =
        packed_sizes.empty()
            ? str("resized on the device from the loaded ", data.train.images.shape()[2], "x",
                  data.train.images.shape()[3], " images")
            : str("sizes ", packed_sizes_text, " read from the packs of ", pack_set_text, ", no resizing");
    std::printf("progressive resizing: %s; %s; LR schedule over "
                "%lld steps; validation at each epoch's size, the final test at %lld px; feature cache %s\n",
                stages.c_str(), source.c_str(),
                static_cast<long long>(schedule_context.total_steps), static_cast<long long>(progressive.final_size()),
                cache_plan.explanation.c_str());
  }
  if (!cache_plan.explanation.empty() && (!head.empty() || o.feature_cache == "off"))
    std::printf("feature cache %s\n", cache_plan.explanation.c_str());

  train::TrainSetup setup;
  setup.epochs = o.epochs;
  setup.batch_size = o.batch_size;
  setup.augment = augment::parse_augment_spec(o.augment);
  setup.image = built.image;
  setup.image.layout = parse_layout(o.layout);
  setup.clip_grad_norm = o.clip_grad_norm;
  setup.monitor = o.monitor;
  setup.patience = o.patience;
  setup.stop_after_epoch = o.stop_after_epoch;
  setup.device = device;
  setup.precision = precision;
  setup.deterministic = o.deterministic;
  setup.seed = o.data.seed;
  setup.workers = o.workers;
  setup.sampler = sampler_config(o.data);
  setup.log_interval = o.log_interval;
  setup.progress = !o.quiet;
  setup.run_dir = o.run_dir;
  setup.feature_cache = cache_plan;
  setup.checkpoint_every = o.checkpoint_every;
  setup.skip_nan = o.on_nan == "skip";
  setup.cuda_graph = o.cuda_graph;
  setup.progressive = progressive;
  setup.packed_sizes = std::move(data.sizes);
  setup.config = {{"command", "train"},
                  {"model", built.config},
                  {"data", {{"source", o.data.data},
                            {"size", progressive.enabled() ? progressive.final_size() : built.image.out_size},
                            {"fit", o.data.fit}}},
                  {"image", {{"mean", built.image.mean}, {"std", built.image.std}}},
                  {"optimizer", {{"name", o.optimizer}, {"lr", o.lr}, {"weight_decay", o.weight_decay},
                                 {"stage_lr_decay", o.stage_lr_decay},
                                 {"momentum", o.momentum}, {"nesterov", o.nesterov}}},
                  {"schedule", o.schedule},
                  {"augment", augment::augment_spec_to_string(setup.augment)},
                  {"epochs", o.epochs},
                  {"precision", o.precision},
                  {"deterministic", o.deterministic},
                  {"cuda_graph", o.cuda_graph},
                  {"batch_size", o.batch_size},
                  {"clip_grad_norm", o.clip_grad_norm},
                  {"monitor", o.monitor},
                  {"patience", o.patience},
                  {"seed", o.data.seed},
                  {"sampler", {{"kind", data::sampler_name(setup.sampler.kind)},
                               {"repeat_threshold", setup.sampler.repeat_threshold}}},
                  {"feature_cache", o.feature_cache},
                  {"device", device.to_string()},
                  {"kiln", kVersion}};
  // `kiln eval RUN/best.safetensors --subset val|test` rebuilds the split from this.
  if (!o.data.test_data.empty()) setup.config["data"]["test_data"] = o.data.test_data;
  if (progressive.enabled())
    setup.config["progressive"] = {{"sizes", progressive.to_string()}, {"batch", o.progressive_batch},
                                   {"bn_reestimate", o.bn_reestimate}};
  setup.multi_label = multi_label;
  if (multi_label.enabled) setup.config["multi_label"] = multi_label.to_json();
  std::optional<Checkpoint> checkpoint;  // read before config.json is rewritten, to compare the flags
  if (!o.resume.empty()) {
    checkpoint = load_checkpoint(o.resume);
    const std::string note = check_resume_matches(checkpoint->config, setup.config, o.resume);
    if (!note.empty()) std::printf("%s\n", note.c_str());
  }
  // Refused before config.json and run_info.json are rewritten: a refused resume
  // leaves the run folder as it was. The epoch is the one Trainer::resume starts at.
  const int start_epoch = checkpoint ? train::epoch_resumed_from(*checkpoint) : 1;
  KILN_CHECK(o.stop_after_epoch == 0 || start_epoch <= o.stop_after_epoch, "--stop-after-epoch ",
             o.stop_after_epoch, ": the run would start at epoch ", start_epoch, ", after it");
  write_file_atomically(o.run_dir + "/config.json", [&](std::ostream& out) { out << setup.config.dump(2) << "\n"; });
  record_run_info(o.run_dir, built, model, device, o.data, data, o.batch_size, !o.resume.empty(),
                  cache_plan.explanation);

  if (!o.rules.empty()) {
    // Every rule can be judged now: the model is built, config.json and split.json are
    // written. A run that starts under --rules holds them; report.html shows the verdicts.
    nlohmann::json split;
    std::ifstream split_file(o.run_dir + "/split.json");
    if (split_file) split = nlohmann::json::parse(split_file, nullptr, /*allow_exceptions=*/false);
    const models::RulesReport verdict =
        models::check_rules(rules, &model, &setup.config, split.is_object() ? &split : nullptr);
    nlohmann::json stored = verdict.to_json();
    stored["rules"] = rules.spec;
    write_file_atomically(o.run_dir + "/rules.json", [&](std::ostream& out) { out << stored.dump(2) << "\n"; });
    std::printf("rules %s:\n%s", rules.spec.c_str(), verdict.to_text().c_str());
    KILN_CHECK(verdict.holds(), "--rules ", rules.spec, ": the run breaks ", verdict.violations.size(),
               " rule(s), the first: ", verdict.violations.front().rule, " at ", verdict.violations.front().where,
               ": ", verdict.violations.front().detail, " (all of them above and in ", o.run_dir, "/rules.json)");
  }
  train::Trainer trainer(model, *optimizer, [&](int64_t step) { return schedule->lr_factor(step); }, setup);
  int64_t first_step = 0;
  if (checkpoint) {
    trainer.resume(*checkpoint);
    first_step = json_int64_or(checkpoint->progress, "step", 0, "checkpoint '" + o.resume + "' progress");
    std::printf("resumed from %s at epoch %d\n", o.resume.c_str(), trainer.next_epoch());
  }
  // The optimizer follows the schedule itself (the fused CUDA steps read the step
  // from device memory); the trainer's scale_lr each step sets the same lr.
  optimizer->set_lr_schedule(schedule->params(), first_step);
  const auto start = std::chrono::steady_clock::now();
  std::vector<train::EpochStats> history;
  std::filesystem::remove(o.run_dir + "/paused.json");  // a run that goes on is no longer paused
  {
    const train::StopOnSignal stop_on_signal;  // Ctrl-C / SIGTERM: finish the step, checkpoint, stop
    history = trainer.fit(data.train, data.val);
  }
  for (const train::EpochStats& s : history) {
    if (multi_label.enabled)
      std::printf("epoch %3d  lr %.2e  train loss %.4f  val loss %.4f mAP %.4f F1 micro %.4f macro %.4f  %6.0f img/s  "
                  "%s  %.0f MiB\n",
                  s.epoch, s.lr, s.train_loss, s.val_loss, s.val_map, s.val_f1_micro, s.val_f1, s.images_per_second,
                  format_duration(s.seconds).c_str(), s.peak_memory_mb);
    else
      std::printf("epoch %3d%s  lr %.2e  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %6.0f img/s  %s  %.0f MiB\n",
                  s.epoch,
                  progressive.enabled() ? str("  ", s.image_size, " px batch ", s.batch_size).c_str() : "", s.lr, s.train_loss, s.train_accuracy, s.val_loss, s.val_accuracy, s.images_per_second,
                  format_duration(s.seconds).c_str(), s.peak_memory_mb);
    outcome.epochs.push_back(s);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  outcome.training_seconds = seconds;
  // Throughput over the whole run: images trained on / seconds spent in training steps.
  double step_seconds = 0, images = 0;
  for (const train::EpochStats& s : outcome.epochs) {
    step_seconds += s.seconds;
    images += s.images_per_second * s.seconds;
    outcome.peak_memory_mb = std::max(outcome.peak_memory_mb, s.peak_memory_mb);
  }
  outcome.images_per_second = step_seconds > 0 ? images / step_seconds : 0;
  // --stop-after-epoch: the run is paused, not over, so there is no test evaluation or
  // report yet: the run that goes on with --resume writes them when it ends. paused.json
  // says so to a sweep (an early stop on that same epoch ends the run instead).
  if (trainer.paused()) {
    const nlohmann::json paused = {{"after_epoch", o.stop_after_epoch},
                                   {"epochs", o.epochs},
                                   {"resume", o.run_dir + "/last.safetensors"}};
    write_file_atomically(o.run_dir + "/paused.json", [&](std::ostream& out) { out << paused.dump(2) << "\n"; });
    std::printf("paused after epoch %d of %d | run folder %s | go on with --resume %s/last.safetensors\n",
                o.stop_after_epoch, o.epochs, o.run_dir.c_str(), o.run_dir.c_str());
    return outcome;
  }

  // Test metrics from the best checkpoint (the last one when there was no validation set).
  // (--epochs 0 writes no checkpoint: the model is evaluated as built or imported.)
  const std::string best = o.run_dir + "/best.safetensors", last = o.run_dir + "/last.safetensors";
  if (std::filesystem::exists(best) || std::filesystem::exists(last))
    restore_model(model, load_checkpoint(std::filesystem::exists(best) ? best : last));
  Tensor test_logits;
  if (multi_label.enabled) {
    MultiLabelOutcome ml = finish_multi_label(o, model, data, setup);
    outcome.multi_label = true;
    outcome.has_test = data.test.size() > 0;
    outcome.test_multilabel = ml.test;
    return outcome;
  }
  if (data.test.size() > 0) {
    const train::Evaluation e = trainer.evaluate(data.test);
    test_logits = e.logits;
    metrics::MetricAccumulator accumulator(data.train.num_classes());
    accumulator.add(e.logits, data.test.labels);
    const metrics::ClassificationReport report = accumulator.report(data.train.class_names);
    if (print_test_table) std::printf("%s", report.to_table().c_str());
    nlohmann::json summary = report.to_json();
    summary["training_seconds"] = seconds;
    write_file_atomically(o.run_dir + "/test_metrics.json", [&](std::ostream& out) { out << summary.dump(2) << "\n"; });
    report.write_csv(o.run_dir);
    std::printf("test accuracy %.2f%%  macro F1 %.4f  (%lld images) | training %s | run folder %s\n",
                100.0 * e.accuracy, report.macro.f1, static_cast<long long>(e.count),
                format_duration(seconds).c_str(), o.run_dir.c_str());
    outcome.has_test = true;
    outcome.test = report;
  }
  if (!o.no_report) write_report_after_training(o.run_dir, data.test, test_logits);
  return outcome;
}

}  // namespace kiln::tools
