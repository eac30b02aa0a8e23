#include "sweep/journal.h"

#include <climits>
#include <ctime>
#include <fstream>
#include <sstream>

#include "engine/core/check.h"
#include "engine/core/json_parse.h"
#include "weights/atomic_file.h"

namespace kiln::sweep {

constexpr const char* kFormat = "kiln-sweep-journal/1";

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

void Journal::update_best() {
  best.reset();
  double best_metric = 0;
  for (const Trial& t : trials) {
    if (!t.metric || (t.status != "finished" && t.status != "stopped")) continue;
    if (!best || better(*t.metric, best_metric)) {
      best = t.id;
      best_metric = *t.metric;
    }
  }
}

nlohmann::json journal_to_json(const Journal& j) {
  nlohmann::json trials = nlohmann::json::array();
  for (const Trial& t : j.trials) {
    nlohmann::json rungs = nlohmann::json::array();
    for (const Rung& r : t.rungs) rungs.push_back({{"epoch", r.epoch}, {"metric", r.metric}, {"kept", r.kept}});
    trials.push_back({{"id", t.id}, {"name", t.name}, {"created", t.created}, {"order", t.order},
                      {"params", t.params}, {"status", t.status}, {"run_dir", t.run_dir},
                      {"epochs_done", t.epochs_done},
                      {"metric", t.metric ? nlohmann::json(*t.metric) : nlohmann::json(nullptr)},
                      {"rungs", rungs}, {"command", t.command}, {"error", t.error}});
  }
  nlohmann::json early = nullptr;
  if (j.early_terminate.enabled)
    early = {{"type", "hyperband"}, {"min_iter", j.early_terminate.min_iter}, {"eta", j.early_terminate.eta}};
  return {{"format", kFormat},
          {"name", j.name},
          {"method", j.method},
          {"seed", j.seed},
          {"metric", {{"name", j.metric}, {"goal", j.goal}}},
          {"data", j.data},
          {"split", j.split},
          {"epochs", j.epochs},
          {"early_terminate", early},
          {"run_cap", j.run_cap},
          {"parameters", j.parameters},
          {"trials", trials},
          {"best", j.best ? nlohmann::json(*j.best) : nlohmann::json(nullptr)},
          {"finish", j.finish}};
}

Journal journal_from_json(const nlohmann::json& doc, const std::string& source) {
  return read_json_fields(source, [&] {
    KILN_CHECK(doc.is_object() && doc.value("format", std::string()) == kFormat, source, ": not a ", kFormat,
               " file (format: ", doc.is_object() && doc.contains("format") ? doc["format"].dump() : "missing", ")");
    Journal j;
    j.name = doc.at("name").get<std::string>();
    j.method = doc.at("method").get<std::string>();
    const int64_t kMany = 1000000000;
    j.seed = static_cast<uint64_t>(whole_number(doc.at("seed"), source + ": seed", 0, INT64_MAX));
    j.metric = doc.at("metric").at("name").get<std::string>();
    j.goal = doc.at("metric").at("goal").get<std::string>();
    j.data = doc.at("data").get<std::string>();
    j.split = doc.at("split").get<std::string>();
    j.epochs = static_cast<int>(whole_number(doc.at("epochs"), source + ": epochs", 1, 1000000));
    if (!doc.at("early_terminate").is_null()) {
      j.early_terminate.enabled = true;
      const nlohmann::json& et = doc["early_terminate"];
      j.early_terminate.min_iter = static_cast<int>(whole_number(et.at("min_iter"), source + ": min_iter", 1, 1000000));
      j.early_terminate.eta = static_cast<int>(whole_number(et.at("eta"), source + ": eta", 2, 1000));
    }
    j.run_cap = whole_number(doc.at("run_cap"), source + ": run_cap", 0, kMany);
    j.parameters = doc.at("parameters");
    for (const nlohmann::json& row : doc.at("trials")) {
      Trial t;
      t.id = whole_number(row.at("id"), source + ": trial id", 0, kMany);
      KILN_CHECK(t.id == static_cast<int64_t>(j.trials.size()), source, ": trial ids must be 0, 1, 2, ... in order, got ",
                 t.id, " at position ", j.trials.size());
      t.name = row.at("name").get<std::string>();
      t.created = row.at("created").get<std::string>();
      t.order = whole_number(row.at("order"), source + ": trial order", 0, kMany);
      t.params = row.at("params");
      KILN_CHECK(t.params.is_object(), source, ": trial ", t.id, ": params must be an object, got ", t.params.dump());
      t.status = row.at("status").get<std::string>();
      KILN_CHECK(t.status == "pending" || t.status == "running" || t.status == "finished" || t.status == "stopped" ||
                     t.status == "failed",
                 source, ": trial ", t.id, ": unknown status '", t.status, "'");
      t.run_dir = row.at("run_dir").get<std::string>();
      t.epochs_done = static_cast<int>(whole_number(row.at("epochs_done"), source + ": epochs_done", 0, 1000000));
      if (!row.at("metric").is_null()) t.metric = row["metric"].get<double>();
      for (const nlohmann::json& r : row.at("rungs"))
        t.rungs.push_back({static_cast<int>(whole_number(r.at("epoch"), source + ": rung epoch", 1, 1000000)),
                           r.at("metric").get<double>(), r.at("kept").get<bool>()});
      t.command = row.at("command").get<std::string>();
      t.error = row.at("error").get<std::string>();
      j.trials.push_back(std::move(t));
    }
    if (!doc.at("best").is_null()) {
      j.best = whole_number(doc["best"], source + ": best", 0, static_cast<int64_t>(j.trials.size()) - 1);
    }
    j.finish = doc.at("finish");
    return j;
  });
}

void save_journal(const std::string& sweep_dir, const Journal& journal) {
  const nlohmann::json document = journal_to_json(journal);
  write_file_atomically(sweep_dir + "/journal.json", [&](std::ostream& out) { out << document.dump(2) << "\n"; });
}

Journal load_journal(const std::string& sweep_dir) {
  const std::string path = sweep_dir + "/journal.json";
  std::ifstream file(path, std::ios::binary);
  KILN_CHECK(file, path, ": no sweep journal here (is ", sweep_dir, " a sweep folder written by kiln sweep?)");
  std::stringstream text;
  text << file.rdbuf();
  return journal_from_json(parse_json_limited(text.str(), path), path);
}

}  // namespace kiln::sweep
