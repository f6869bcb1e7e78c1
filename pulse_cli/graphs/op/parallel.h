// Work shared among std::threads by the compiled ops (not OpenMP: the extension loader links GCC's
// libgomp, a second runtime beside Paddle's libiomp5 whose spinning workers would fight oneDNN's).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

// Runs body(first, last) on `threads` threads over [0, count), the calling thread taking a share.
template <typename Body>
void ForRanges(int64_t count, int threads, const Body& body) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, count));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; ++t) {
    pool.emplace_back(body, count * t / workers, count * (t + 1) / workers);
  }
  body(0, count / workers);
  for (auto& thread : pool) thread.join();
}
