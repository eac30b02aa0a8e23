#include "sweep/runner.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "engine/core/check.h"
#include "engine/train/signals.h"
#include "sweep/early_stop.h"
#include "sweep/search_space.h"
#include "sweep/tpe.h"
#include "sweep/trial_process.h"

namespace kiln::sweep {
namespace {

namespace fs = std::filesystem;

bool all_have_values(const std::vector<Parameter>& parameters) {
  return std::all_of(parameters.begin(), parameters.end(), [](const Parameter& p) {
    return p.kind == ParameterKind::categorical || p.kind == ParameterKind::constant;
  });
}

// Grid point `k` in the order the trials take them: the whole grid in order, or
// run_cap of its points drawn without replacement (seeded).
nlohmann::json grid_point_of_trial(const Journal& j, const std::vector<Parameter>& parameters, size_t k) {
  const size_t size = grid_size(parameters);
  return grid_point(parameters, choose_without_replacement(size, static_cast<size_t>(j.run_cap), j.seed).at(k));
}

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:+%@") ==
                           std::string::npos)
    return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Four significant digits for the terminal (the journal keeps every digit).
std::string display_value(const nlohmann::json& value) {
  if (!value.is_number_float()) return format_value(value);
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value.get<double>());
  return text;
}

std::string describe_params(const nlohmann::json& params, const Journal& j) {
  const std::vector<Parameter> parameters = parameters_from_json(j.parameters, "journal");
  std::string text;
  for (const Parameter& p : parameters)
    if (p.kind != ParameterKind::constant && params.contains(p.name))
      text += (text.empty() ? "" : " ") + p.name + "=" + display_value(params[p.name]);
  return text;
}

std::string format_seconds(double seconds) {
  char text[32];
  const long s = static_cast<long>(seconds + 0.5);
  if (s < 60) std::snprintf(text, sizeof(text), "%lds", s);
  else if (s < 3600) std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
  return text;
}

struct Slot {
  std::unique_ptr<TrialProcess> process;
  int64_t trial = -1;
  int target_epoch = 0;
  bool stop_sent = false;  // SIGTERM sent at a rung: a second signal would cut its checkpoint short
  size_t device = 0;
  std::chrono::steady_clock::time_point start;
};

struct NextTrial {
  int64_t trial = -1;
  int target_epoch = 0;
};

class Runner {
 public:
  Runner(Journal& journal, const RunnerOptions& options)
      : j_(journal), o_(options), parameters_(parameters_from_json(journal.parameters, options.sweep_dir + "/journal.json")) {}

  int run();

 private:
  void save() {
    j_.update_best();
    save_journal(o_.sweep_dir, j_);
  }
  // After a trial ends, a rung is decided, and when the sweep stops: not on every
  // epoch's save (a report over every trial is not free).
  void notify() {
    if (o_.on_journal_updated) o_.on_journal_updated(o_.sweep_dir);
  }
  Trial& trial(int64_t id) { return j_.trials[static_cast<size_t>(id)]; }
  std::string run_dir(const Trial& t) const { return o_.sweep_dir + "/" + t.run_dir; }
  std::set<int64_t> busy() const {
    std::set<int64_t> ids;
    for (const Slot& s : slots_) ids.insert(s.trial);
    return ids;
  }
  bool next_trial(NextTrial& next);
  void decide_halving_rung(const HalvingStep& step);
  // A trial that exited 0 after the epoch it was launched to reach, short of the last,
  // with the run's paused.json (kiln train --stop-after-epoch): it stopped at its
  // halving rung and goes on later. Without paused.json its early stop (--patience) on
  // that epoch ended it: "finished".
  bool paused_at_rung(const Slot& slot, const Trial& t) const {
    return slot.target_epoch < j_.epochs && t.epochs_done >= slot.target_epoch &&
           std::filesystem::exists(run_dir(t) + "/paused.json");
  }
  void launch(const NextTrial& next);
  bool poll(Slot& slot);  // true once the slot's process has ended (and was recorded)
  void print_trial_end(const Trial& t, const Slot& slot);

  Journal& j_;
  const RunnerOptions& o_;
  std::vector<Parameter> parameters_;
  std::vector<Slot> slots_;
  int trials_ended_ = 0;
  double trial_seconds_ = 0;
};

bool Runner::next_trial(NextTrial& next) {
  if (j_.method == "halving") {
    if (static_cast<int64_t>(j_.trials.size()) < j_.run_cap) {  // all trials at once: they race rung by rung
      while (static_cast<int64_t>(j_.trials.size()) < j_.run_cap) create_trial(j_, parameters_, o_.sweep_dir);
      save();
    }
    while (true) {
      const HalvingStep step = next_halving_step(j_, busy());
      if (step.kind == HalvingStep::Kind::decide) {
        decide_halving_rung(step);
        continue;
      }
      if (step.kind != HalvingStep::Kind::run) return false;
      next = {step.trial, step.target_epoch};
      return true;
    }
  }
  const std::set<int64_t> running = busy();
  for (const Trial& t : j_.trials)
    if ((t.status == "running" || t.status == "pending") && !running.count(t.id)) {
      next = {t.id, j_.epochs};
      return true;
    }
  if (static_cast<int64_t>(j_.trials.size()) >= j_.run_cap) return false;
  next = {create_trial(j_, parameters_, o_.sweep_dir).id, j_.epochs};
  save();
  return true;
}

void Runner::decide_halving_rung(const HalvingStep& step) {
  std::vector<std::pair<int64_t, double>> ranked;
  for (int64_t id : step.survivors) {
    const std::vector<double> values = read_epoch_column(run_dir(trial(id)) + "/epochs.csv", j_.metric);
    const std::optional<double> metric = best_of(values, step.rung_epoch, j_.maximize());
    if (metric) {
      ranked.push_back({id, *metric});
    } else {  // it reached the rung by the journal, but its log has no rows: nothing to rank it by
      trial(id).status = "failed";
      trial(id).error = "no rows in " + trial(id).run_dir + "/epochs.csv at the rung at epoch " + std::to_string(step.rung_epoch);
    }
  }
  const int64_t keep = apply_halving_decision(j_, step, ranked);
  if (o_.print_progress)
    std::printf("rung at epoch %d: %lld of %zu trials go on\n", step.rung_epoch, static_cast<long long>(keep),
                ranked.size());
  save();
  notify();
}

void Runner::launch(const NextTrial& next) {
  Trial& t = trial(next.trial);
  const std::string dir = run_dir(t);
  std::vector<std::string> args = trial_arguments(j_, t, o_.sweep_dir);
  try {
    if (o_.check_train_args) o_.check_train_args(args);
  } catch (const Error& e) {
    t.status = "failed";
    t.error = e.message();
    save();
    std::printf("%s failed before it started: %s\n", t.name.c_str(), t.error.c_str());
    return;
  }
  // A pending trial never ran under this journal: whatever its folder holds is stale.
  if (t.status == "pending" && fs::exists(dir)) fs::remove_all(dir);
  fs::create_directories(dir);
  const bool resume = t.status == "running" && fs::exists(dir + "/last.safetensors");
  t.status = "running";
  save();
  std::vector<std::string> argv = {"train"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (resume) argv.push_back("--resume=" + dir + "/last.safetensors");
  // Halving runs a trial to its rung and no further: the trial stops itself there, with
  // its checkpoint, and exits 0 (the schedule still spans every epoch).
  if (next.target_epoch < j_.epochs) argv.push_back("--stop-after-epoch=" + std::to_string(next.target_epoch));
  Slot slot;
  if (!o_.devices.empty()) {
    std::vector<bool> taken(o_.devices.size(), false);
    for (const Slot& s : slots_) taken[s.device] = true;
    slot.device = static_cast<size_t>(std::find(taken.begin(), taken.end(), false) - taken.begin());
    argv.push_back("--device=" + o_.devices[slot.device]);
  }
  if (o_.threads_per_trial > 0) argv.push_back("--threads=" + std::to_string(o_.threads_per_trial));
  slot.trial = t.id;
  slot.target_epoch = next.target_epoch;
  slot.start = std::chrono::steady_clock::now();
  slot.process = std::make_unique<TrialProcess>(o_.program, argv, dir + "/train.log");
  if (o_.print_progress)
    std::printf("[%lld/%lld] %s %s%s: %s%s\n", static_cast<long long>(t.id + 1), static_cast<long long>(j_.run_cap),
                t.name.c_str(), resume ? "resumes" : "starts",
                next.target_epoch < j_.epochs ? (" (to epoch " + std::to_string(next.target_epoch) + ")").c_str() : "",
                describe_params(t.params, j_).c_str(),
                o_.devices.empty() ? "" : (" on " + o_.devices[slot.device]).c_str());
  std::fflush(stdout);
  slots_.push_back(std::move(slot));
}

bool Runner::poll(Slot& slot) {
  Trial& t = trial(slot.trial);
  const bool ended = slot.process->poll();
  const std::vector<double> values = read_epoch_column(run_dir(t) + "/epochs.csv", j_.metric);
  bool changed = static_cast<int>(values.size()) != t.epochs_done;
  t.epochs_done = static_cast<int>(values.size());
  t.metric = best_of(values, 0, j_.maximize());
  // Asynchronous rungs (methods other than halving): judge each rung once.
  if (j_.method != "halving" && !slot.stop_sent)
    for (int epoch : rung_epochs(j_.early_terminate, j_.epochs)) {
      if (t.epochs_done < epoch ||
          std::any_of(t.rungs.begin(), t.rungs.end(), [&](const Rung& r) { return r.epoch == epoch; }))
        continue;
      const double metric = *best_of(values, epoch, j_.maximize());
      std::vector<double> others;
      for (const Trial& other : j_.trials)
        if (other.id != t.id)
          for (const Rung& r : other.rungs)
            if (r.epoch == epoch) others.push_back(r.metric);
      const bool kept = keep_at_rung(metric, others, j_.early_terminate.eta, j_.maximize());
      t.rungs.push_back({epoch, metric, kept});
      changed = true;
      if (!kept && !ended) {
        slot.process->signal(SIGTERM);  // checkpoint and stop: the folder stays a valid run
        slot.stop_sent = true;
        if (o_.print_progress)
          std::printf("%s stopped at the rung at epoch %d: %s %.4f is outside the best 1/%d of %zu\n", t.name.c_str(),
                      epoch, j_.metric.c_str(), metric, j_.early_terminate.eta, others.size() + 1);
        break;
      }
    }
  if (!ended) {
    if (changed) save();
    return false;
  }
  const bool clean_exit = slot.process->exit_code() == 0;
  if (clean_exit && paused_at_rung(slot, t)) {
    t.status = "running";  // stopped itself at its rung (--stop-after-epoch); continues with --resume
  } else if (clean_exit) {
    t.status = t.rungs.empty() || t.rungs.back().kept ? "finished" : "stopped";
    if (t.status == "stopped") t.metric = t.rungs.back().metric;
  } else if (slot.stop_sent) {
    t.status = "stopped";
    t.metric = t.rungs.back().metric;  // the value it was judged on, not the epochs it ran before SIGTERM landed
  } else {
    t.status = "failed";
    t.error = slot.process->term_signal() != 0
                  ? "killed by signal " + std::to_string(slot.process->term_signal()) + "; see " + t.run_dir + "/train.log"
                  : last_error_line(run_dir(t) + "/train.log");
  }
  save();
  notify();
  print_trial_end(t, slot);
  return true;
}

void Runner::print_trial_end(const Trial& t, const Slot& slot) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - slot.start).count();
  trials_ended_ += 1;
  trial_seconds_ += seconds;
  if (!o_.print_progress) return;
  std::string best;
  if (j_.best) {
    const Trial& b = j_.trials[static_cast<size_t>(*j_.best)];
    char text[96];
    std::snprintf(text, sizeof(text), " (best %.4f, %s)", *b.metric, b.name.c_str());
    best = text;
  }
  int64_t left = j_.run_cap - static_cast<int64_t>(std::count_if(j_.trials.begin(), j_.trials.end(),
                                                                 [](const Trial& x) { return x.done(); }));
  const double eta = left * (trial_seconds_ / trials_ended_) / std::max(1, o_.parallel);
  char metric[32] = "-";
  if (t.metric) std::snprintf(metric, sizeof(metric), "%.4f", *t.metric);
  std::printf("[%lld/%lld] %s %s after %d epoch%s: %s %s%s | %s | ETA %s\n", static_cast<long long>(t.id + 1),
              static_cast<long long>(j_.run_cap), t.name.c_str(), t.status == "running" ? "paused" : t.status.c_str(),
              t.epochs_done, t.epochs_done == 1 ? "" : "s", j_.metric.c_str(), metric, best.c_str(),
              format_seconds(seconds).c_str(), j_.method == "halving" ? "-" : format_seconds(eta).c_str());
  if (t.status == "failed") std::printf("  %s: %s\n", t.name.c_str(), t.error.c_str());
  std::fflush(stdout);
}

int Runner::run() {
  const train::StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: forward to the trials, save, say how to resume
  // A trial judged out at a rung just before a crash: it is stopped, not resumed.
  for (Trial& t : j_.trials)
    if (t.status == "running" && !t.rungs.empty() && !t.rungs.back().kept) {
      t.status = "stopped";
      t.metric = t.rungs.back().metric;
    }
  save();
  while (true) {
    if (const int signal_number = train::stop_requested()) {
      // (A trial already told to stop has its signal: a second one would end it in the
      // middle of writing its checkpoint.)
      for (Slot& s : slots_)
        if (!s.stop_sent) s.process->signal(signal_number);
      for (Slot& s : slots_) {
        s.process->wait();
        Trial& t = trial(s.trial);
        t.epochs_done = static_cast<int>(read_epoch_column(run_dir(t) + "/epochs.csv", j_.metric).size());
        if (!t.rungs.empty() && !t.rungs.back().kept) {  // judged out at a rung before the signal came
          t.status = "stopped";
          t.metric = t.rungs.back().metric;
        } else {
          t.status = s.process->exit_code() == 0 && !paused_at_rung(s, t) ? "finished" : "running";
        }
      }
      slots_.clear();
      save();
      notify();
      std::printf("kiln sweep: interrupted by %s; the running trials wrote checkpoints. Continue with:\n"
                  "  kiln sweep --resume %s\n",
                  signal_number == SIGINT ? "SIGINT" : "SIGTERM", o_.sweep_dir.c_str());
      return 130;
    }
    NextTrial next;
    while (static_cast<int>(slots_.size()) < std::max(1, o_.parallel) && next_trial(next)) launch(next);
    if (slots_.empty()) break;  // nothing running and nothing left to start: every trial is done
    for (size_t i = 0; i < slots_.size();)
      if (poll(slots_[i])) slots_.erase(slots_.begin() + static_cast<std::ptrdiff_t>(i));
      else ++i;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  save();
  notify();
  return 0;
}

}  // namespace

Journal new_journal(const SweepConfig& c, int64_t max_runs) {
  Journal j;
  j.name = c.name;
  j.method = c.method;
  j.seed = c.seed;
  j.metric = c.metric;
  j.goal = c.goal;
  j.data = c.data;
  j.epochs = c.epochs;
  j.early_terminate = c.early_terminate;
  j.parameters = c.parameters_json();
  j.run_cap = max_runs > 0 ? max_runs : c.run_cap;
  const bool grid = c.method == "grid" || (c.method == "halving" && all_have_values(c.parameters));
  if (grid) {
    const int64_t size = static_cast<int64_t>(grid_size(c.parameters));
    j.run_cap = j.run_cap > 0 ? std::min(j.run_cap, size) : size;
  }
  KILN_CHECK(j.run_cap > 0, c.source, ": no trials to run (run_cap / --max-runs)");
  return j;
}

Trial& create_trial(Journal& j, const std::vector<Parameter>& parameters, const std::string& sweep_dir) {
  Trial t;
  t.id = static_cast<int64_t>(j.trials.size());
  char name[32];
  std::snprintf(name, sizeof(name), "trial-%03lld", static_cast<long long>(t.id));
  t.name = name;
  t.run_dir = name;
  t.created = utc_timestamp();
  t.order = t.id;
  const bool grid = j.method == "grid" || (j.method == "halving" && all_have_values(parameters));
  if (grid) {
    t.params = grid_point_of_trial(j, parameters, static_cast<size_t>(t.id));
  } else {
    Stream random(j.seed, t.id, kRandomDraw);
    std::vector<Observation> observations;
    for (const Trial& done : j.trials)
      if (done.metric && (done.status == "finished" || done.status == "stopped"))
        observations.push_back({done.params, j.maximize() ? -*done.metric : *done.metric});
    const TpeOptions tpe;
    if (j.method == "bayes" && static_cast<int>(observations.size()) >= tpe.n_startup) {
      Stream draws(j.seed, t.id, kTpeDraw);
      t.params = tpe_suggest(parameters, observations, draws, tpe);
    } else {
      t.params = sample_parameters(parameters, random);  // random, halving, and bayes's first trials
    }
  }
  std::string command = "kiln train";
  for (const std::string& a : trial_arguments(j, t, sweep_dir)) command += " " + shell_quote(a);
  t.command = command;
  j.trials.push_back(t);
  return j.trials.back();
}

std::vector<std::string> parameter_arguments(const nlohmann::json& params) {
  std::vector<std::string> args;
  for (const auto& item : params.items()) args.push_back("--" + item.key() + "=" + format_value(item.value()));
  return args;
}

std::vector<std::string> trial_arguments(const Journal& j, const Trial& t, const std::string& sweep_dir) {
  std::vector<std::string> args = {j.data,
                                   "--epochs=" + std::to_string(j.epochs),
                                   "--monitor=" + j.metric,
                                   "--split-file=" + sweep_dir + "/" + j.split,
                                   "--run-dir=" + sweep_dir + "/" + t.run_dir,
                                   "--quiet"};
  const std::vector<std::string> params = parameter_arguments(t.params);
  args.insert(args.end(), params.begin(), params.end());
  return args;
}

void check_trials_before_start(const Journal& j, const std::vector<Parameter>& parameters, const RunnerOptions& o) {
  if (!o.check_train_args) return;
  Journal probe = j;
  probe.trials.clear();
  auto check = [&](const nlohmann::json& params, const std::string& what) {
    Trial t;
    t.params = params;
    t.run_dir = "check";
    try {
      o.check_train_args(trial_arguments(probe, t, o.sweep_dir));
    } catch (const Error& e) {
      KILN_FAIL("sweep ", j.name, ": ", what, ": kiln train would refuse it: ", e.message());
    }
  };
  // Each value on its own first, with the constants and kiln train's defaults for the
  // other swept flags (the message then names one parameter); then every grid point,
  // or a dry sample of random draws for the combinations.
  const bool grid = j.method == "grid" || (j.method == "halving" && all_have_values(parameters));
  nlohmann::json constants = nlohmann::json::object();
  for (const Parameter& p : parameters)
    if (p.kind == ParameterKind::constant) constants[p.name] = p.values[0];
  for (const Parameter& p : parameters) {
    std::vector<nlohmann::json> probes = p.values;
    if (p.kind == ParameterKind::continuous || p.kind == ParameterKind::integer)
      probes = {finish_value(p, p.low_value()), finish_value(p, p.high_value())};
    for (const nlohmann::json& value : probes) {
      nlohmann::json point = constants;
      point[p.name] = value;
      check(point, "parameters." + p.name + " = " + value.dump());
    }
  }
  if (grid) {
    for (size_t index : choose_without_replacement(grid_size(parameters), static_cast<size_t>(j.run_cap), j.seed)) {
      const nlohmann::json point = grid_point(parameters, index);
      check(point, "grid point " + point.dump());
    }
    return;
  }
  for (int64_t id = 0; id < std::max<int64_t>(j.run_cap, 64); ++id) {
    Stream stream(j.seed, id, kRandomDraw);
    const nlohmann::json point = sample_parameters(parameters, stream);
    check(point, "trial parameters " + point.dump());
  }
}

int run_sweep(Journal& journal, const RunnerOptions& options) { return Runner(journal, options).run(); }

}  // namespace kiln::sweep
