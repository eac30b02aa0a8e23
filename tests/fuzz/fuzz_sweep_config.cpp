// Sweep files and sweep journals (sweep/config.h, sweep/journal.h) on arbitrary bytes:
// read as YAML and as JSON; a config the reader accepts gives a journal that must
// survive a round trip, and parsed text is also tried as a journal.
#include <string>

#include "engine/core/error.h"
#include "engine/core/json_parse.h"
#include "sweep/config.h"
#include "sweep/journal.h"
#include "sweep/runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool yaml : {true, false}) {
    try {
      const nlohmann::json document =
          yaml ? kiln::sweep::yaml_to_json(text, "fuzz.yaml") : kiln::parse_json_limited(text, "fuzz.json");
      try {
        const kiln::sweep::Journal journal = kiln::sweep::journal_from_json(document, "fuzz journal");
        if (kiln::sweep::journal_to_json(kiln::sweep::journal_from_json(kiln::sweep::journal_to_json(journal), "again")) !=
            kiln::sweep::journal_to_json(journal))
          __builtin_trap();
      } catch (const kiln::Error&) {
      }
      const kiln::sweep::SweepConfig config = kiln::sweep::parse_sweep_config(document, "fuzz");
      kiln::sweep::Journal journal = kiln::sweep::new_journal(config, 3);
      for (int i = 0; i < 3 && i < journal.run_cap; ++i) kiln::sweep::create_trial(journal, config.parameters, "s");
      (void)kiln::sweep::journal_from_json(kiln::sweep::journal_to_json(journal), "round trip");
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
