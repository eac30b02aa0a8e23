// Streams, events and graphs of the emulated CUDA runtime (see runtime.cpp for the
// eager and deferred modes and the legacy stream's ordering).
//
// An event record is work in its stream like any other: when it runs it marks the
// event complete and takes the host time (cudaEventElapsedTime subtracts two such
// times: emulated, not GPU, time). cudaEventSynchronize runs the event's stream up
// to the record and no further, so work queued after it stays pending in the
// deferred mode, as it may on a GPU.
//
// Graphs: while a stream is captured, submit() appends its work to the graph;
// cudaGraphLaunch queues the recorded work again, with the arguments captured at
// recording time (a kernel's parameters are copied at the launch, as on a GPU).
#include <cuda_runtime.h>

#include "emulator/src/runtime_state.h"

using kiln::emulator::fail;
using kiln::emulator::resolve;
using kiln::emulator::runtime;
using Lock = std::lock_guard<std::recursive_mutex>;

// ---- streams
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  Lock lock(runtime().mutex);
  if (!stream) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: null stream");
  if (flags & ~static_cast<unsigned>(cudaStreamNonBlocking))
    return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: unknown flags " + std::to_string(flags));
  CUstream_st* s = new CUstream_st;
  s->flags = flags;
  runtime().streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Lock lock(runtime().mutex);
  CUstream_st* s = stream ? resolve(stream) : nullptr;
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: no such stream");
  kiln::emulator::flush(s);  // queued work still completes, as CUDA promises
  for (CUevent_st* event : runtime().events)
    if (event->stream == s) event->stream = nullptr;
  delete s->capture;
  runtime().streams.erase(s);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Lock lock(runtime().mutex);
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: no such stream");
  return kiln::emulator::synchronize_stream(s);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  Lock lock(runtime().mutex);
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaStreamQuery: no such stream");
  if (s->capture) return kiln::emulator::refuse_during_capture("cudaStreamQuery");
  if (runtime().sticky_error != cudaSuccess) return runtime().sticky_error;
  return s->queue.empty() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  Lock lock(runtime().mutex);
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: no such stream");
  if (!event || !runtime().events.count(event))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: no such event");
  if (!event->recorded || !event->stream) return cudaSuccess;  // waiting for nothing
  CUstream_st* other = event->stream;
  const uint64_t until = event->sequence;
  kiln::emulator::submit(s, "cudaStreamWaitEvent", [other, until]() {
    if (runtime().streams.count(other) || other == &runtime().legacy_stream) kiln::emulator::flush(other, until);
    return cudaSuccess;
  });
  (void)flags;
  return cudaSuccess;
}

// A host function is work in its stream like a kernel: it runs when the stream gets
// to it (at once in the eager mode), and a capture records it as a graph node that
// every launch of the graph calls again, as CUDA's host nodes do.
cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  Lock lock(runtime().mutex);
  if (!fn) return fail(cudaErrorInvalidValue, "cudaLaunchHostFunc: null function");
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaLaunchHostFunc: no such stream");
  kiln::emulator::submit(s, "cudaLaunchHostFunc", [fn, user_data]() {
    fn(user_data);
    return cudaSuccess;
  });
  return cudaSuccess;
}

// ---- events
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  Lock lock(runtime().mutex);
  if (!event) return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: null event");
  CUevent_st* e = new CUevent_st;
  e->flags = flags;
  runtime().events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Lock lock(runtime().mutex);
  if (!event || !runtime().events.erase(event))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: no such event");
  if (!event->recorded || event->completed) {
    delete event;
    return cudaSuccess;
  }
  // A record still queued in a stream refers to the event: keep the object (a few
  // bytes) where that record can find it, and make the record a no-op.
  event->stream = nullptr;
  event->generation = UINT64_MAX;
  runtime().retired_events.push_back(event);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Lock lock(runtime().mutex);
  if (!event || !runtime().events.count(event))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: no such event");
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: no such stream");
  const uint64_t generation = ++event->generation;
  event->recorded = true;
  event->completed = false;
  event->stream = s;
  event->sequence = kiln::emulator::submit(s, "cudaEventRecord", [event, generation]() {
    if (event->generation == generation) {
      event->completed = true;
      event->time = std::chrono::steady_clock::now();
    }
    return cudaSuccess;
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Lock lock(runtime().mutex);
  if (!event || !runtime().events.count(event))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: no such event");
  if (event->stream && event->stream->capture) {
    if (!event->stream->capture_invalidated) event->stream->capture_invalidated_by = "cudaEventSynchronize";
    event->stream->capture_invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaEventSynchronize on an event recorded in a capture");
  }
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaEventSynchronize");
  if (event->recorded && event->stream) kiln::emulator::flush(event->stream, event->sequence);
  return runtime().sticky_error;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  Lock lock(runtime().mutex);
  if (!event || !runtime().events.count(event))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventQuery: no such event");
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaEventQuery");
  if (runtime().sticky_error != cudaSuccess) return runtime().sticky_error;
  return !event->recorded || event->completed ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  Lock lock(runtime().mutex);
  if (!milliseconds) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: null milliseconds");
  for (CUevent_st* e : {start, end}) {
    if (!e || !runtime().events.count(e))
      return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: no such event");
    if (e->flags & cudaEventDisableTiming)
      return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event created with cudaEventDisableTiming");
    if (!e->recorded || !e->completed)
      return fail(cudaErrorNotReady, "cudaEventElapsedTime: an event has not completed");
  }
  *milliseconds = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

// ---- graphs
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  Lock lock(runtime().mutex);
  CUstream_st* s = stream ? resolve(stream) : nullptr;
  if (!s) return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: the legacy stream cannot be captured");
  if (s->capture) return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  kiln::emulator::flush(s);  // work queued before the capture is not part of it
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: unknown capture mode " + std::to_string(mode));
  s->capture = new CUgraph_st;
  s->capture_invalidated = false;
  s->capture_invalidated_by.clear();
  s->capture_mode = mode;
  s->capture_thread = std::this_thread::get_id();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  Lock lock(runtime().mutex);
  CUstream_st* s = stream ? resolve(stream) : nullptr;
  if (!s || !graph) return fail(cudaErrorInvalidValue, "cudaStreamEndCapture: no such stream or null graph");
  if (!s->capture) return fail(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
  CUgraph_st* captured = s->capture;
  s->capture = nullptr;
  if (s->capture_invalidated) {
    delete captured;
    *graph = nullptr;
    s->capture_invalidated = false;
    const std::string by = s->capture_invalidated_by.empty() ? "a call" : s->capture_invalidated_by;
    s->capture_invalidated_by.clear();
    return fail(cudaErrorStreamCaptureInvalidated,
                "cudaStreamEndCapture: the capture was invalidated by " + by + ", which is not allowed during capture");
  }
  *graph = captured;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  Lock lock(runtime().mutex);
  CUstream_st* s = resolve(stream);
  if (!s || !status) return fail(cudaErrorInvalidValue, "cudaStreamIsCapturing: no such stream or null status");
  *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture_invalidated ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  if (!exec || !graph) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: null graph or exec");
  *exec = new CUgraphExec_st{graph->nodes};
  (void)flags;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  Lock lock(runtime().mutex);
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch: null exec");
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaGraphLaunch: no such stream");
  for (const Work& node : exec->nodes) kiln::emulator::submit(s, node.what, node.run);
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
