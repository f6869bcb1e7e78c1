// Frees the oneDNN buffers Paddle caches for a program, for the static backend's memory (issue 20).
// Paddle's oneDNN conv kernels keep, per op, the layout copies they reorder into (the input in
// channels-last for the forward; the input and the output gradient in oneDNN's blocked layout,
// twice for the latter, in the backward) in the CPU context's blob cache, allocated by oneDNN,
// outside Paddle's allocator, and freed only when the program's interpreter is destroyed, which
// dy2static never does: 0.9 GB of full-size copies held between the steps of a 1024 px search.
// Paddle drops a program's entries by the interpreter's address (ResetBlobMap), which the
// thread-local oneDNN state holds while a program runs and after, until the next runs: the op
// drops the entries of the program running it (in a graph: what it cached so far, the forward's
// in the forward, the backward's in the backward), or, called eagerly, of the last one that ran.
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

// X (and its gradient) pass through as they are, in whatever layout oneDNN left them.
std::vector<paddle::Tensor> ReleaseOnednnCache(const paddle::Tensor& x) {
  ReleaseCurrentProgram();
  return {x};
}

std::vector<paddle::Tensor> ReleaseOnednnCacheGrad(const paddle::Tensor& out_grad) {
  ReleaseCurrentProgram();
  return {out_grad};
}

PD_BUILD_OP(pulse_release_onednn_cache)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(ReleaseOnednnCache));

PD_BUILD_GRAD_OP(pulse_release_onednn_cache)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(ReleaseOnednnCacheGrad));
