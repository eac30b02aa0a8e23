// The captured training step of `--cuda-graph`: see cuda_graph_step.h.
#include "engine/train/cuda_graph_step.h"

#include <atomic>
#include <cstdio>

#include "engine/core/backend_info.h"
#include "engine/core/check.h"
#include "engine/memory/caching_allocator.h"
#include "engine/nn/layers.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"
#include "engine/train/trainer.h"
#if KILN_WITH_CUDA
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_graph.h"
#endif

namespace kiln::train {

namespace {

#if KILN_WITH_CUDA
// Pool numbers are unique per process: two CudaGraphSteps never share a pool.
int next_pool_number() {
  static std::atomic<int> next{1};
  return next++;
}

std::string shape_key(const std::vector<Tensor>& inputs) {
  std::string key;
  for (const Tensor& t : inputs)
    key += t.shape().to_string() + dtype_name(t.dtype()) + (t.layout() == Layout::nhwc ? " nhwc;" : ";");
  return key;
}

CachingAllocator& device_allocator(const Device& device) { return cuda::Context::get(device.index).allocator(); }

// Activates a private pool for the lifetime of the guard, whatever is thrown.
class PrivatePoolGuard {
 public:
  PrivatePoolGuard(CachingAllocator& allocator, int pool, bool capturing) : allocator_(allocator) {
    allocator_.begin_private_pool(pool, capturing);
  }
  ~PrivatePoolGuard() { allocator_.end_private_pool(); }
  PrivatePoolGuard(const PrivatePoolGuard&) = delete;
  PrivatePoolGuard& operator=(const PrivatePoolGuard&) = delete;

 private:
  CachingAllocator& allocator_;
};
#endif

// Every Dropout (and module type whose forward draws from a host counter) in
// training mode, by name.
void find_host_counted_modules(const nn::Module& module, const std::string& name, std::vector<std::string>& found) {
  const auto* dropout = dynamic_cast<const nn::Dropout*>(&module);
  if (dropout && dropout->p > 0 && module.is_training()) found.push_back(name.empty() ? "(the model)" : name);
  for (const auto& [child_name, child] : module.named_children())
    find_host_counted_modules(*child, name.empty() ? child_name : name + "." + child_name, found);
}

}  // namespace

CudaGraphStep::CudaGraphStep(const Device& device, int warmup_steps) : device_(device), warmup_steps_(warmup_steps) {
  KILN_CHECK(device.is_cuda(), "--cuda-graph captures the training step on a GPU: it needs --device cuda, got ",
             device.to_string());
  KILN_CHECK(warmup_steps >= 1, "--cuda-graph: at least one warm-up step per input shape is needed (it settles the "
             "allocator and the optimizer's state before the capture), got ", warmup_steps);
#if !KILN_WITH_CUDA
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

CudaGraphStep::~CudaGraphStep() {
  for (auto& [key, entry] : entries_) {
    try {
      release(entry);
    } catch (const std::exception& e) {  // a destructor reports, never throws
      std::fprintf(stderr, "CudaGraphStep: %s\n", e.what());
    }
  }
}

void CudaGraphStep::release(Entry& entry) {
  entry.graph.reset();
#if KILN_WITH_CUDA
  // Work queued on the stream before this point still uses the pool's blocks; any
  // later user of them runs after it on the same stream.
  device_allocator(device_).release_private_pool(entry.pool);
#endif
}

bool CudaGraphStep::run(const std::vector<Tensor>& inputs, const Step& step) {
#if KILN_WITH_CUDA
  for (const Tensor& t : inputs)
    KILN_CHECK(t.device() == device_, "--cuda-graph: a step input is on ", t.device().to_string(), ", expected ",
               device_.to_string(), " (", t.describe(), ")");
  const std::string key = shape_key(inputs);
  auto found = entries_.find(key);
  if (found == entries_.end()) {
    if (entries_.size() >= kMaxGraphs) {  // forget the least recently used shape
      auto oldest = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (it->second.last_used < oldest->second.last_used) oldest = it;
      release(oldest->second);
      entries_.erase(oldest);
    }
    Entry entry;
    for (const Tensor& t : inputs) entry.fixed_inputs.push_back(empty(t.shape(), {t.dtype(), device_, t.layout()}));
    entry.pool = next_pool_number();
    found = entries_.emplace(key, std::move(entry)).first;
  }
  Entry& entry = found->second;
  entry.last_used = ++calls_;
  // Queued on the stream before the step's own work, as its first reads.
  for (size_t i = 0; i < inputs.size(); ++i) copy_(entry.fixed_inputs[i], inputs[i]);
  CachingAllocator& allocator = device_allocator(device_);
  if (entry.warmups_done < warmup_steps_) {
    PrivatePoolGuard pool(allocator, entry.pool, /*capturing=*/false);
    step(entry.fixed_inputs);
    ++entry.warmups_done;
    ++eager_steps_;
    return false;
  }
  if (!entry.graph) {
    {
      PrivatePoolGuard pool(allocator, entry.pool, /*capturing=*/true);
      entry.graph = cuda::CapturedGraph::capture(device_, [&] { step(entry.fixed_inputs); });
    }
    ++captures_;
    entry.graph->launch();  // the capture ran nothing: this step's work runs now
    return false;           // the host code did run (once, for this step)
  }
  entry.graph->launch();
  ++replays_;
  return true;
#else
  (void)inputs;
  (void)step;
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

void check_cuda_graph_setup(const TrainSetup& setup, const nn::Module& model, const optim::Optimizer& optimizer) {
  const char* why = " a captured step replays the same launch arguments every step and must not read the device";
  KILN_CHECK(setup.device.is_cuda(), "--cuda-graph captures the training step on a GPU: it needs --device cuda, got ",
             setup.device.to_string());
  KILN_CHECK(!setup.skip_nan, "--cuda-graph cannot be combined with --on-nan skip: skipping reads the loss on the "
             "host every step;", why, ". Use --on-nan stop (the default: the loss is checked on the device totals "
             "every log interval) or leave out --cuda-graph");
  KILN_CHECK(!setup.augment.mix.enabled(), "--cuda-graph cannot be combined with mixup or cutmix (--augment): their "
             "partners and masks are drawn on the host and uploaded every step;", why);
  KILN_CHECK(!setup.multi_label.enabled, "--cuda-graph does not support multi-label training (its running loss is "
             "a new tensor every step, not an in-place total the graph could keep)");
  KILN_CHECK(!setup.feature_cache.enabled, "--cuda-graph cannot be combined with the frozen-feature cache "
             "(--feature-cache): its steps read host rows of cached features; use --feature-cache off");
  KILN_CHECK(optimizer.has_lr_schedule(), "--cuda-graph needs the device-side LR schedule "
             "(Optimizer::set_lr_schedule): a host learning rate is a launch argument that changes every step");
  KILN_CHECK(optimizer.multi_tensor(), "--cuda-graph needs the multi-tensor optimizer step: the per-tensor path "
             "reads the loss scaler's flag on the host");
  std::vector<std::string> dropouts;
  find_host_counted_modules(model, "", dropouts);
  if (!dropouts.empty()) {
    std::string names;
    for (const std::string& n : dropouts) names += (names.empty() ? "" : ", ") + n;
    KILN_FAIL("--cuda-graph cannot capture dropout: its mask seed is a per-call host counter, which a replay "
              "would freeze (module", dropouts.size() > 1 ? "s " : " ", names, "); use a model without dropout");
  }
}

}  // namespace kiln::train
