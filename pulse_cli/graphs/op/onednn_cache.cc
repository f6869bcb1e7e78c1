// Frees the oneDNN buffers Paddle caches for a program, for the static backend's memory (issue 20).
// Paddle's oneDNN conv kernels keep, per op, the layout copies they reorder into (the input in
// channels-last for the forward; the input and the output gradient in oneDNN's blocked layout,
// twice for the latter, in the backward) in the CPU context's blob cache, allocated by oneDNN,
// outside Paddle's allocator, and freed only when the program's interpreter is destroyed, which
// dy2static never does: 0.9 GB of full-size copies held between the steps of a 1024 px search.
// Paddle drops a program's entries by the interpreter's address (ResetBlobMap), which the
// thread-local oneDNN state holds while a program runs and after, until the next runs: the op,
// called eagerly, drops the entries of the last one that ran.
#include "paddle/extension.h"

#ifdef PADDLE_WITH_DNNL
#include "paddle/phi/backends/context_pool.h"
#include "paddle/phi/backends/onednn/onednn_context.h"
#endif

namespace {

void ReleaseCurrentProgram() {
#ifdef PADDLE_WITH_DNNL
  auto* context = dynamic_cast<phi::OneDNNContext*>(phi::DeviceContextPool::Instance().Get(phi::CPUPlace()));
  void* program = phi::OneDNNContext::tls().get_curr_exec();
  if (context == nullptr || program == nullptr) return;  // null would clear every program's entries
  const unsigned cached = context->GetCachedObjectsNumber();
  context->ResetBlobMap(program);
  // A run_program forward under FLAGS_use_mkldnn ends by cancelling the next clearing (Paddle's
  // DontClearMKLDNNCache, meant for nested executors): a clearing that removed nothing was
  // cancelled, and one more clears. Where there was nothing to clear it changes nothing either.
  if (context->GetCachedObjectsNumber() == cached) context->ResetBlobMap(program);
#endif
}

}  // namespace

// X passes through: an op needs a tensor.
std::vector<paddle::Tensor> ReleaseOnednnCache(const paddle::Tensor& x) {
  ReleaseCurrentProgram();
  return {x};
}

PD_BUILD_OP(pulse_release_onednn_cache)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(ReleaseOnednnCache));
