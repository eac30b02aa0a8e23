// The emulated runtime's state, shared by runtime.cpp (devices, memory, errors)
// and streams.cpp (streams, events, graphs). Internal to emulator/src.
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

// One item of a stream's queue: a grid, a copy, a memset, an event record, a library call.
struct Work {
  uint64_t sequence;
  std::string what;
  std::function<cudaError_t()> run;
};

struct CUgraph_st {
  std::vector<Work> nodes;
};
struct CUgraphExec_st {
  std::vector<Work> nodes;
};

struct CUstream_st {
  unsigned flags = cudaStreamDefault;
  std::deque<Work> queue;
  CUgraph_st* capture = nullptr;  // the graph being recorded, if capturing
  bool capture_invalidated = false;
  std::string capture_invalidated_by;  // the first call that invalidated the capture
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;  // the thread that began the capture
};

struct CUevent_st {
  unsigned flags = cudaEventDefault;
  CUstream_st* stream = nullptr;
  uint64_t sequence = 0;    // the record's place in its stream
  uint64_t generation = 0;  // a newer record supersedes an older one
  bool recorded = false;
  bool completed = false;
  std::chrono::steady_clock::time_point time;
};

namespace kiln::emulator {

struct Runtime {
  std::recursive_mutex mutex;
  CUstream_st legacy_stream;
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  std::vector<CUevent_st*> retired_events;  // destroyed while a record was still queued
  std::map<uintptr_t, size_t> device_allocations;  // address -> bytes
  std::map<uintptr_t, size_t> pinned_allocations;
  size_t device_bytes_in_use = 0;
  uint64_t next_sequence = 1;
  uint64_t successful_mallocs = 0;
  cudaError_t sticky_error = cudaSuccess;
  cudaError_t last_error = cudaSuccess;
  std::map<int, std::string> error_details;
};

Runtime& runtime();

// Records `message` as cudaGetErrorString's text for `error`, makes it the last
// (non-sticky) error and returns it.
cudaError_t fail(cudaError_t error, const std::string& message);
// The stream behind a handle (nullptr: the legacy stream); nullptr if it does not exist.
CUstream_st* resolve(cudaStream_t stream);
// Whether a capture forbids the calling thread the "potentially unsafe" calls
// (synchronisation, cudaMalloc/cudaFree, cudaHostAlloc, synchronous copies, event
// queries): a capture in global mode forbids them to every thread, one in
// thread-local mode to the thread that began it, one in relaxed mode to none.
bool any_capture_active();
cudaError_t refuse_during_capture(const char* call);
// Queues work (or records it into the capture; or, eagerly, runs it). Returns its
// sequence number in stream order (0 when captured).
uint64_t submit(CUstream_st* stream, const std::string& what, std::function<cudaError_t()> run);
// Runs the stream's queued work up to and including sequence number `until`.
void flush(CUstream_st* stream, uint64_t until = UINT64_MAX);
void flush_all();
cudaError_t synchronize_stream(CUstream_st* stream);

}  // namespace kiln::emulator
