#!/usr/bin/env python3
"""Timeflux peer of the common workload (see reference.py for the workload).

Usage: peer_timeflux.py --data PATH [--repeat N]. The pipeline is the Timeflux app in APP below
(YAML, loaded and validated by timeflux.core.manager.Manager, nodes instantiated by
timeflux.core.worker.Worker.load and run by timeflux.core.scheduler.Scheduler):

    source -> filter (timeflux_dsp IIRFilter) ------------------------------------------> sink
                `-> window (timeflux Slide 10 s / 1 s) -> mean (ApplyMethod numpy.mean) -> sink
                                                      |-> std  (ApplyMethod numpy.std)  -> sink
                                                      `-> welch (timeflux_dsp Welch) -> bands
                                                            (timeflux_dsp Bands) ---------> sink

The graph has `rate: 0`, for which Timeflux's Scheduler runs cycle after cycle without sleeping:
that is "as fast as possible". What is not Timeflux's usual way is only the process: `timeflux
app.yaml` spawns one worker process per graph (multiprocessing, a logging queue, SIGINT to stop);
here the worker's two steps (Worker.load, then Scheduler(path, nodes, rate).run()) run in this
process, so that the run is timed and its results read back without inter-process plumbing. Each
scheduler cycle clears every node's ports, copies predecessor outputs into inputs in topological
order and calls each node's update(), exactly as under `timeflux`.

One chunk enters per cycle: the Source node emits chunk i as a DataFrame (DatetimeIndex, columns
ch0..ch7, meta {"rate": 700, "chunk": i, "t_in": stamp}); every node on the way passes the meta on.

Configured to match the reference (defaults that differ):
  * IIRFilter: frequencies=[0.5, 40], order=4, filter_type=bandpass, design=butter (its default),
    rate=700. Its design gives exactly butter(4, [0.5, 40], 'band', fs=700, output='sos'), and its
    initial state is already sosfilt_zi * x[0] per column.
  * Slide: length=10, step=1, rate=700 (its first window starts at the first sample).
  * Welch: rate=700, nperseg=700 (its own default is 256); the rest are scipy.signal.welch's
    defaults, which the node passes through (Hann, noverlap 350, detrend constant, density).
  * Bands: label-based .loc slices, inclusive at both ends, so each band is [lo, hi - 0.5] on the
    1 Hz grid (lo <= f < hi). Bands sums the PSD without multiplying by df, which is 1 Hz here.
  * mean/std: ApplyMethod with numpy.mean / numpy.std, apply_mode=reduce (numpy's ddof=0; pandas'
    own std would be ddof=1).
Custom nodes: only Source and Sink (the benchmark's driver and measuring point); every DSP step is
a timeflux / timeflux_dsp node.

Timed: from the first Source update to the last Sink update (node construction and data loading
happen before). Chunk latency: one scheduler cycle from the Source stamping its chunk to the Sink
seeing that chunk's filtered output (and, for the 111 chunks that complete a window, its mean, std
and five band powers); since a cycle runs every node synchronously, this is the chunk's full
processing time.
"""

import os
import tempfile

import numpy as np
import pandas as pd

import reference as ref
from timeflux.core.exceptions import WorkerInterrupt
from timeflux.core.manager import Manager
from timeflux.core.node import Node
from timeflux.core.scheduler import Scheduler
from timeflux.core.worker import Worker

BAND_NAMES = [name for name, _, _ in ref.BANDS]

APP = """
graphs:
  - id: common_workload
    rate: 0
    nodes:
      - id: source
        module: peer_timeflux
        class: Source
        params:
          data: "{{ CW_DATA }}"
      - id: filter
        module: timeflux_dsp.nodes.filters
        class: IIRFilter
        params:
          frequencies: [0.5, 40]
          order: 4
          filter_type: bandpass
          rate: 700
      - id: window
        module: timeflux.nodes.window
        class: Slide
        params:
          length: 10
          step: 1
          rate: 700
      - id: mean
        module: timeflux.nodes.apply
        class: ApplyMethod
        params:
          method: numpy.mean
          apply_mode: reduce
      - id: std
        module: timeflux.nodes.apply
        class: ApplyMethod
        params:
          method: numpy.std
          apply_mode: reduce
      - id: welch
        module: timeflux_dsp.nodes.spectral
        class: Welch
        params:
          rate: 700
          nperseg: 700
      - id: bands
        module: timeflux_dsp.nodes.spectral
        class: Bands
        params:
          bands:
            delta: [1, 3.5]
            theta: [4, 7.5]
            alpha: [8, 12.5]
            beta: [13, 29.5]
            gamma: [30, 39.5]
      - id: sink
        module: peer_timeflux
        class: Sink
    edges:
      - source: source
        target: filter
      - source: filter
        target: sink:filtered
      - source: filter
        target: window
      - source: window
        target: mean
      - source: window
        target: std
      - source: window
        target: welch
      - source: welch
        target: bands
      - source: mean
        target: sink:mean
      - source: std
        target: sink:std
      - source: bands:delta
        target: sink:delta
      - source: bands:theta
        target: sink:theta
      - source: bands:alpha
        target: sink:alpha
      - source: bands:beta
        target: sink:beta
      - source: bands:gamma
        target: sink:gamma
"""


class Source(Node):
    """Emits one 70-sample chunk per scheduler cycle (benchmark driver)."""

    def __init__(self, data):
        x = ref.load(data)
        self._chunks = ref.chunks(x)
        self._columns = [f"ch{c}" for c in range(ref.CHANNELS)]
        # Sample timestamps in ns since the epoch (only for Timeflux's DatetimeIndex convention;
        # every node here works in samples or takes its rate from its params).
        self._stamps = np.round(np.arange(ref.SAMPLES) * (1e9 / ref.RATE)).astype("datetime64[ns]")
        self._i = 0

    def update(self):
        i = self._i
        if i >= len(self._chunks):
            return
        t_in = ref.now()
        self.o.data = pd.DataFrame(self._chunks[i], columns=self._columns,
                                   index=self._stamps[i * ref.CHUNK:(i + 1) * ref.CHUNK])
        self.o.meta = {"rate": ref.RATE, "chunk": i, "t_in": t_in}
        self._i += 1


class Sink(Node):
    """Records when each chunk's outputs arrive and keeps the features (measuring point)."""

    def __init__(self):
        self.t_in = np.full(ref.N_CHUNKS, np.nan)
        self.t_done = np.full(ref.N_CHUNKS, np.nan)
        self.t_last = None
        self.windows = []

    def update(self):
        if not self.i_filtered.ready():
            return
        i = self.i_filtered.meta["chunk"]
        self.t_in[i] = self.i_filtered.meta["t_in"]
        if self.i_mean.ready():
            ports = [self.i_mean, self.i_std] + [getattr(self, "i_" + b) for b in BAND_NAMES]
            if not all(p.ready() for p in ports):
                raise RuntimeError(f"chunk {i}: a window's features arrived incomplete")
            if any(p.meta["chunk"] != i for p in ports):
                raise RuntimeError(f"chunk {i}: features of another chunk's window arrived")
            self.windows.append(np.concatenate(
                [np.asarray(p.data.values, dtype=np.float64).ravel() for p in ports]))
        t = ref.now()
        self.t_done[i] = t
        self.t_last = t
        if i == ref.N_CHUNKS - 1:
            raise WorkerInterrupt("all chunks processed")


def run_once(app_path):
    manager = Manager(app_path)  # template, YAML and schema validation, as `timeflux` does
    (graph,) = manager._graphs
    path, nodes = Worker(graph).load()  # builds the graph and instantiates the nodes
    scheduler = Scheduler(path, nodes, graph["rate"])
    try:
        scheduler.run()
    except WorkerInterrupt:
        pass
    finally:
        scheduler.terminate()
    sink = nodes["sink"]
    return sink.t_last - sink.t_in[0], sink.t_done - sink.t_in, sink.windows


def main():
    args = ref.common_args(__doc__.splitlines()[0])
    ref.keep_stdout_for_json()
    os.environ["CW_DATA"] = os.path.abspath(args.data)
    import timeflux.core.registry  # noqa: F401  (Scheduler sets Registry.cycle_start)
    timing = ref.Timing()
    with tempfile.TemporaryDirectory() as tmp:
        app_path = os.path.join(tmp, "common_workload.yaml")
        with open(app_path, "w") as f:
            f.write(APP)
        for _ in range(args.repeat):
            timing.add(*run_once(app_path))
    ref.report("timeflux", ref.versions("timeflux", "timeflux-dsp", "numpy", "scipy", "pandas"),
               timing)


if __name__ == "__main__":
    main()
