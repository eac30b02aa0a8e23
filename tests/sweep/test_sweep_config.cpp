// Sweep configs (sweep/config.h): YAML and JSON read the same, the hosted tools'
// distribution names, and errors that name the file and key before any trial runs.
#include <doctest/doctest.h>

#include <string>

#include "engine/core/error.h"
#include "sweep/config.h"
#include "sweep/journal.h"

using namespace kiln;
using namespace kiln::sweep;

namespace {

SweepConfig from_yaml(const std::string& text) { return parse_sweep_config(yaml_to_json(text, "s.yaml"), "s.yaml"); }

std::string error_of(const std::string& yaml) {
  try {
    from_yaml(yaml);
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

const char* kExample = R"(
name: cnn5-fashion
method: random
metric: {name: val_accuracy, goal: maximize}
data: fashion-mnist
run_cap: 20
seed: 7
epochs: 9
early_terminate: {type: hyperband, min_iter: 1, eta: 3}
parameters:
  lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}
  weight_decay: {distribution: log_uniform, min: -9, max: -4}
  dense: {distribution: q_log_uniform_values, min: 16, max: 256, q: 16}
  filters: {min: 8, max: 32}
  dropout: {min: 0.0, max: 0.5}
  activation: {values: [relu, gelu, silu]}
  batch-norm: {values: ["on", off]}
  optimizer: {value: adamw}
)";

}  // namespace

TEST_CASE("sweep config: a YAML file in the hosted tools' format reads every key") {
  const SweepConfig c = from_yaml(kExample);
  CHECK(c.name == "cnn5-fashion");
  CHECK(c.method == "random");
  CHECK(c.run_cap == 20);
  CHECK(c.seed == 7);
  CHECK(c.epochs == 9);
  CHECK(c.early_terminate.enabled);
  CHECK(c.early_terminate.min_iter == 1);
  CHECK(c.early_terminate.eta == 3);
  REQUIRE(c.parameters.size() == 8);
  const Parameter* wd = c.find("weight-decay");  // weight_decay names --weight-decay
  REQUIRE(wd != nullptr);
  CHECK(wd->distribution == "log_uniform");
  CHECK(wd->low_value() == doctest::Approx(std::exp(-9.0)));
  CHECK(c.find("filters")->distribution == "int_uniform");  // inferred from whole-number bounds
  CHECK(c.find("filters")->kind == ParameterKind::integer);
  CHECK(c.find("dropout")->distribution == "uniform");
  CHECK(c.find("dense")->q == 16);
  // YAML 1.1 reads "off" as false: kiln keeps the words --batch-norm takes.
  CHECK(c.find("batch-norm")->values == std::vector<nlohmann::json>{"on", "off"});
  CHECK(c.find("optimizer")->kind == ParameterKind::constant);
}

TEST_CASE("sweep config: JSON and YAML give the same config") {
  const nlohmann::json json = yaml_to_json(kExample, "s.yaml");
  const SweepConfig from_json = parse_sweep_config(nlohmann::json::parse(json.dump()), "s.json");
  CHECK(from_json.parameters_json() == from_yaml(kExample).parameters_json());
}

TEST_CASE("sweep config: unknown keys and impossible values are errors naming the key") {
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {lr: {min: 0.1, max: 0.2}}\nepoch: 3\n")
            .find("s.yaml: unknown key 'epoch'") != std::string::npos);
  CHECK(error_of("method: sobol\nparameters: {lr: {values: [0.1]}}\n").find("method must be grid") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {lr: {min: 0.2, max: 0.1}}\n")
            .find("parameters.lr: min must be below max") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {lr: {distribution: log_uniform_values, min: 0, max: 1}}\n")
            .find("needs min > 0") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {lr: {distribution: beta, min: 0, max: 1}}\n")
            .find("unknown distribution 'beta'") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {lr: {mu: 0, sigma: 1}}\n")
            .find("parameters.lr: unknown key 'mu'") != std::string::npos);
  CHECK(error_of("method: grid\nparameters: {lr: {min: 0.1, max: 0.2}}\n").find("grid needs values") !=
        std::string::npos);
  CHECK(error_of("method: random\nparameters: {lr: {min: 0.1, max: 0.2}}\n").find("needs run_cap") !=
        std::string::npos);
  CHECK(error_of("method: grid\ncommand: [python, train.py]\nparameters: {lr: {values: [1]}}\n")
            .find("no command:") != std::string::npos);
  CHECK(error_of("method: grid\nparameters: {run_dir: {values: [a, b]}}\n").find("--run-dir is set by kiln sweep") !=
        std::string::npos);
  CHECK(error_of("method: grid\nparameters: {epochs: {values: [1, 2]}}\n").find("top-level epochs") !=
        std::string::npos);
  CHECK(error_of("method: grid\nparameters: {lr: {value: 0.1}}\n").find("nothing to sweep") != std::string::npos);
  CHECK(error_of("method: halving\nrun_cap: 3\nepochs: 2\nearly_terminate: {type: hyperband, min_iter: 3}\n"
                 "parameters: {lr: {values: [1, 2]}}\n")
            .find("min_iter (3) must be below epochs (2)") != std::string::npos);
  CHECK(error_of("method: grid\nparameters: {lr: {values: [1, 1]}}\n").find("listed twice") != std::string::npos);
  CHECK(error_of("method: grid\nepochs: 1e300\nparameters: {lr: {values: [1, 2]}}\n")
            .find("s.yaml: epochs must be a whole number, got 1e+300") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: -2\nparameters: {lr: {min: 0.1, max: 0.2}}\n")
            .find("run_cap must be in [0, 1000000], got -2") != std::string::npos);
  CHECK(error_of("method: random\nrun_cap: 2\nparameters: {k: {min: 0, max: 1.0e300, distribution: int_uniform}}\n")
            .find("within +-2^53") != std::string::npos);
  CHECK(error_of("method: [grid\n").find("s.yaml: not valid YAML: line 2, column 1") != std::string::npos);
}

TEST_CASE("sweep config: values become the words kiln train reads back exactly") {
  CHECK(format_value(0.1) == "0.1");
  CHECK(format_value(3e-4) == "0.0003");
  CHECK(format_value(64) == "64");
  CHECK(format_value(64.0) == "64");
  CHECK(format_value("gelu") == "gelu");
  CHECK(format_value(true) == "true");
  const double awkward = 0.000123456789012345678;
  CHECK(std::strtod(format_value(awkward).c_str(), nullptr) == awkward);
  CHECK(flag_name("weight_decay") == "weight-decay");
  CHECK(flag_name("--lr") == "lr");
}

TEST_CASE("sweep journal: every field survives a round trip through JSON") {
  Journal j;
  j.name = "s";
  j.method = "bayes";
  j.seed = 3;
  j.metric = "val_loss";
  j.goal = "minimize";
  j.data = "fashion-mnist";
  j.epochs = 4;
  j.early_terminate = {true, 1, 2};
  j.run_cap = 2;
  j.parameters = from_yaml(kExample).parameters_json();
  Trial t;
  t.id = 0;
  t.name = "trial-000";
  t.created = "2026-12-05T06:00:00Z";
  t.params = {{"lr", 0.01}, {"activation", "relu"}};
  t.status = "stopped";
  t.run_dir = "trial-000";
  t.epochs_done = 2;
  t.metric = 0.5;
  t.rungs = {{1, 0.7, true}, {2, 0.5, false}};
  t.command = "kiln train fashion-mnist --lr=0.01";
  j.trials = {t};
  j.update_best();
  CHECK(j.best == 0);
  const nlohmann::json once = journal_to_json(j);
  CHECK(once["format"] == "kiln-sweep-journal/1");
  CHECK(once["trials"][0]["metric"] == 0.5);
  const Journal back = journal_from_json(once, "journal.json");
  CHECK(journal_to_json(back) == once);
  nlohmann::json broken = once;
  broken["trials"][0]["status"] = "paused";
  CHECK_THROWS_WITH_AS(journal_from_json(broken, "journal.json"), doctest::Contains("unknown status 'paused'"), Error);
}
