#include "engine/core/device.h"

#include "engine/core/check.h"

namespace kiln {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda" || text == "gpu") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string number = text.substr(5);
    KILN_CHECK(!number.empty() && number.find_first_not_of("0123456789") == std::string::npos,
               "device '", text, "': expected cpu, cuda or cuda:N");
    return cuda(std::stoi(number));
  }
  KILN_FAIL("device '", text, "': expected cpu, cuda or cuda:N");
}

std::string Device::to_string() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

}  // namespace kiln
