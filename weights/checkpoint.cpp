#include "weights/checkpoint.h"

#include "engine/core/json_parse.h"
#include "weights/safetensors.h"

namespace kiln {

namespace {
const char* const kFormat = "checkpoint-1";
const std::string kModelPrefix = "model.", kOptimPrefix = "optim.";
}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : c.model) tensors[kModelPrefix + name] = t;
  for (const auto& [name, t] : c.optimizer) tensors[kOptimPrefix + name] = t;
  const std::map<std::string, std::string> metadata = {
      {"kiln.format", kFormat},
      {"kiln.config", c.config.dump()},
      {"kiln.classes", nlohmann::json(c.class_names).dump()},
      {"kiln.progress", c.progress.dump()},
      {"kiln.extra_state", c.extra_state.dump()},
  };
  save_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafeTensors file = load_safetensors(path);
  auto format = file.metadata.find("kiln.format");
  KILN_CHECK(format != file.metadata.end() && format->second == kFormat, "'", path,
             "' is not a kiln checkpoint (metadata kiln.format is ",
             format == file.metadata.end() ? std::string("missing") : "'" + format->second + "'", ", expected '",
             kFormat, "'); for plain weights use --pretrained");
  Checkpoint c;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kModelPrefix, 0) == 0) {
      c.model[name.substr(kModelPrefix.size())] = t;
    } else if (name.rfind(kOptimPrefix, 0) == 0) {
      c.optimizer[name.substr(kOptimPrefix.size())] = t;
    }
  }
  auto json_of = [&](const char* key) {
    auto found = file.metadata.find(key);
    if (found == file.metadata.end()) return nlohmann::json::object();
    return parse_json_limited(found->second, "checkpoint '" + path + "': metadata " + key);
  };
  c.config = json_of("kiln.config");
  c.progress = json_of("kiln.progress");
  c.extra_state = json_of("kiln.extra_state");
  const nlohmann::json classes = json_of("kiln.classes");
  if (classes.is_array())
    c.class_names = read_json_fields("checkpoint '" + path + "': metadata kiln.classes",
                                     [&] { return classes.get<std::vector<std::string>>(); });
  return c;
}

Checkpoint checkpoint_of(const nn::Module& model) {
  Checkpoint c;
  c.model = model.state_dict();
  for (const auto& [name, value] : model.extra_state()) c.extra_state[name] = value;
  return c;
}

void restore_model(nn::Module& model, const Checkpoint& c) {
  model.load_state_dict(c.model, /*strict=*/true);
  std::map<std::string, int64_t> extra;
  for (auto& item : c.extra_state.items())
    extra[item.key()] =
        read_json_fields("checkpoint: extra state '" + item.key() + "'", [&] { return json_int64(item.value(), "checkpoint", item.key().c_str()); });
  model.load_extra_state(extra);
}

}  // namespace kiln
