// Stands in for oneDNN's C++ header, which Paddle's wheels do not ship, so that Paddle's
// onednn_context.h compiles for onednn_cache.cc: that header's thread-local state holds a
// dnnl::engine and a dnnl::stream, each a handle of one std::shared_ptr (oneDNN's dnnl::handle),
// and nothing here uses either. Only their size matters: it places the fields after them.
#pragma once

#include <memory>

namespace dnnl {
struct engine {
  std::shared_ptr<void> handle;
};
struct stream {
  std::shared_ptr<void> handle;
};
}  // namespace dnnl
