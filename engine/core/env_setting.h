// A process-wide choice that starts from an environment variable: which implementation
// runs an op (KILN_CPU_CONV=eigen picks the reference convolution, KILN_DEPTHWISE=custom
// kiln's depthwise kernel). The variable is read once, on first use; a value the parse
// function refuses is an error naming the variable. Code (tests, kiln bench's options)
// can set it afterwards; every thread sees the new value.
//
//   static EnvSetting<CpuPoolPath>& setting() {
//     static EnvSetting<CpuPoolPath> s("KILN_CPU_POOL", CpuPoolPath::fast, parse_cpu_pool_path);
//     return s;  // a function-local static: built on first use, after main's setenv
//   }
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>

namespace kiln {

template <class T>
class EnvSetting {
 public:
  // parse(text, where) returns the value `text` names or throws an error naming `where`.
  using Parse = T (*)(const std::string& text, const char* where);

  EnvSetting(const char* variable, T unset, Parse parse) : value_(initial(variable, unset, parse)) {}

  T get() const { return value_.load(); }
  void set(T value) { value_.store(value); }

 private:
  static T initial(const char* variable, T unset, Parse parse) {
    const char* text = std::getenv(variable);
    if (text == nullptr || *text == '\0') return unset;
    return parse(text, ("environment variable " + std::string(variable)).c_str());
  }

  std::atomic<T> value_;
};

}  // namespace kiln
