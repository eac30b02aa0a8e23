#include "models/blocks.h"

#include "engine/nn/init.h"
#include "engine/tensor/factory.h"

namespace kiln::models {

ConvBNAct::ConvBNAct(int64_t in_channels, int64_t out_channels, int kernel, int stride, int groups,
                     Activation activation) {
  const int padding = (kernel - 1) / 2;
  add(std::make_shared<nn::Conv2d>(in_channels, out_channels, kernel, stride, padding, groups, /*bias=*/false));
  add(std::make_shared<nn::BatchNorm>(out_channels));
  add(std::make_shared<nn::ActivationLayer>(activation));
}

void fill_normal_(const Tensor& tensor, double std_dev, Rng& rng) {
  KILN_CHECK(tensor.device().is_cpu() && tensor.dtype() == DType::f32, "fill_normal_: expected an f32 CPU tensor, got ",
             tensor.describe());
  // Written in place: a VGG classifier weight has 102M elements, and a temporary
  // vector of doubles would need 800 MB more.
  float* data = tensor.data<float>();
  for (int64_t i = 0; i < tensor.numel(); ++i) data[i] = static_cast<float>(std_dev * rng.normal());
}

void init_linear(nn::Linear& linear, LinearInit linear_init) {
  if (linear_init == LinearInit::pytorch_default) return;  // the constructor already drew it
  fill_normal_(linear.weight, 0.01, nn::init::default_rng());
  if (linear.bias.defined()) fill_(linear.bias, 0.0);
}

void init_torchvision(nn::Module& model, LinearInit linear_init) {
  for_each_module(model, [&](const std::string&, nn::Module& module) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&module)) {
      copy_(conv->weight, nn::init::kaiming_normal_fan_out(conv->weight.shape(), nn::init::default_rng()));
      if (conv->bias.defined()) fill_(conv->bias, 0.0);
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&module)) {
      if (bn->weight.defined()) fill_(bn->weight, 1.0);
      if (bn->bias.defined()) fill_(bn->bias, 0.0);
    } else if (auto* linear = dynamic_cast<nn::Linear*>(&module)) {
      init_linear(*linear, linear_init);
    }
  });
}

void for_each_module(nn::Module& root, const std::function<void(const std::string&, nn::Module&)>& fn) {
  // An explicit stack instead of recursion so the prefix bookkeeping stays in one place.
  std::vector<std::pair<std::string, nn::Module*>> stack{{"", &root}};
  while (!stack.empty()) {
    auto [name, module] = stack.back();
    stack.pop_back();
    fn(name, *module);
    const auto children = module->named_children();
    for (auto it = children.rbegin(); it != children.rend(); ++it)  // reversed: visit in registration order
      stack.emplace_back(name.empty() ? it->first : name + "." + it->first, it->second.get());
  }
}

std::shared_ptr<nn::Module> find_module(const nn::Module& root, const std::string& path) {
  KILN_CHECK(!path.empty(), "find_module: empty path");
  std::shared_ptr<nn::Module> current;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    current = current ? current->child(part) : root.child(part);  // child() lists the valid names
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

}  // namespace kiln::models
