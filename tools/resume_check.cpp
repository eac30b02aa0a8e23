#include "tools/resume_check.h"

#include "engine/core/check.h"

namespace kiln::tools {

namespace {

// A config key (a JSON pointer into config.json) and the flags that set it.
struct ResumeKey {
  const char* pointer;
  const char* flags;
};

constexpr ResumeKey kMustMatch[] = {
    {"/model", "--model and its model flags"},
    {"/data/size", "--size"},
    {"/data/fit", "--fit"},
    {"/image", "the model's input normalisation"},
    {"/optimizer", "--optimizer, --lr, --weight-decay, --momentum, --nesterov, --stage-lr-decay"},
    {"/schedule", "--schedule"},
    {"/augment", "--augment"},
    {"/progressive", "--progressive, --progressive-batch, --bn-reestimate"},
    {"/precision", "--precision"},
    {"/batch_size", "--batch-size"},
    {"/seed", "--seed"},
    {"/sampler", "--sampler, --repeat-threshold"},
    {"/multi_label", "--multi-label, --loss, --pos-weight, --threshold"},
};

// The first leaf where `before` and `after` differ, as "model.cnn5.num_classes"
// with both values: a whole model configuration in a message hides the one number that
// differs. Returns false when they are equal.
bool first_difference(const nlohmann::json& before, const nlohmann::json& after, std::string& path,
                      std::string& before_text, std::string& after_text) {
  if (before == after) return false;
  if (before.is_object() && after.is_object()) {
    for (const auto& [key, value] : before.items()) {
      const nlohmann::json none = "(not set)";
      const nlohmann::json& other = after.contains(key) ? after.at(key) : none;
      if (first_difference(value, other, path, before_text, after_text)) {
        path = key + (path.empty() ? "" : "." + path);
        return true;
      }
    }
    for (const auto& [key, value] : after.items())  // a key only this run has
      if (!before.contains(key)) {
        path = key, before_text = "(not set)", after_text = value.dump();
        return true;
      }
  }
  path.clear(), before_text = before.dump(), after_text = after.dump();
  return true;
}

}  // namespace

std::string check_resume_matches(const nlohmann::json& saved, const nlohmann::json& now,
                                 const std::string& checkpoint_path) {
  for (const ResumeKey& key : kMustMatch) {
    const nlohmann::json::json_pointer pointer(key.pointer);
    if (!saved.contains(pointer)) continue;  // written by an older kiln: nothing to compare
    const nlohmann::json none = "(not set)";
    const nlohmann::json& after = now.contains(pointer) ? now.at(pointer) : none;
    std::string path, before_text, after_text;
    if (!first_difference(saved.at(pointer), after, path, before_text, after_text)) continue;
    std::string name = std::string(&key.pointer[1]) + (path.empty() ? "" : "." + path);
    for (char& c : name) c = c == '/' ? '.' : c;
    KILN_FAIL("--resume: ", checkpoint_path, " was trained with ", name, " = ", before_text, ", this run has ",
              after_text, " (set by ", key.flags, "); resume with the flags of the original run (its config.json), ",
              "because a resumed run equals the uninterrupted one only with them, or start a new run");
  }
  const nlohmann::json::json_pointer epochs("/epochs");
  if (saved.contains(epochs) && now.contains(epochs) && saved.at(epochs) != now.at(epochs))
    return "--resume: the checkpoint's run was for " + saved.at(epochs).dump() + " epochs, this one is for " +
           now.at(epochs).dump() + ": the learning-rate schedule is stretched to the new length from here on";
  return "";
}

}  // namespace kiln::tools
