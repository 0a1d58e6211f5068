#!/usr/bin/env python3
"""ezmsg peer of the common workload (see reference.py for the workload).

Usage: peer_ezmsg.py --data PATH [--repeat N]. Each run is one `ez.run` of this graph (all units
in one process, ezmsg's default when no `process_components` are given; messages between them go
by ezmsg's local fast path, by reference):

    Source -> ButterworthFilter ---------------------------------------------------------> Sink
                 |-> Window(10 s, 1 s) -> AggregateUnit(time, mean) ------------------------> Sink
                 |                    `-> AggregateUnit(time, std) -------------------------> Sink
                 `-> Window(1 s, 0.5 s) -> ConstantDetrend* -> LinearTransform(Hann taper)
                       -> Spectrum(power) -> Window(19 segments, 2 segments) -> AggregateUnit(seg,
                       mean) -> RangedAggregate(freq, sum) -> LinearTransform(scale) ---------> Sink

Welch is built from ezmsg-sigproc's streaming parts: 700-sample segments every 350 samples of
the filtered stream are detrended, tapered and turned into periodograms once each, and the Welch
PSD of a 10 s window is the mean of the 19 periodograms of the segments inside it (a Window over
the periodogram stream, 19 long and 2 apart). That is exactly scipy.signal.welch(win, fs=700,
nperseg=700) of each window, with each segment's periodogram computed once rather than once per
window that holds it.

Configured to match the reference (defaults that differ):
  * ButterworthFilter: coef_type="sos" (default "ba"); its initial state is already
    sosfilt_zi * x[0] per channel.
  * Window: zero_pad_until="none" (default "full" would zero-pad the first windows).
  * Spectrum: window=NONE, transform=REL_POWER, norm="forward" (defaults HAMMING, REL_DB). Its
    window functions are numpy's symmetric ones (np.hanning); scipy's welch uses the periodic
    Hann, so the taper is scipy.signal.get_window("hann", 700) applied by LinearTransform along
    "time" (with np.hanning the last-window sum is 875.858154, not 875.855645).
  * RangedAggregate bands are inclusive at both ends: [lo, hi - 0.5] on the 1 Hz grid selects
    lo <= f < hi.
  * The final LinearTransform scale turns Spectrum's |rfft(x)/N|^2 / (N / fs) into scipy's
    one-sided density (2 |rfft(w x)|^2 / (fs sum w^2)) times df: 2 N^3 df / (fs^2 sum w^2).

Custom units (ezmsg-sigproc has nothing equivalent):
  * ConstantDetrend: subtracts each segment's mean (welch's detrend='constant'). ezmsg-sigproc's
    DetrendUnit subtracts an exponentially weighted running mean instead (without any detrend the
    sum of all windows is 97098.651085, not 97097.165559).
  * Source and Sink: the benchmark's driver and measuring point.

Timed: from the Source stamping the first chunk to the Sink receiving the last output. Chunk
latency: the Source stamps each chunk (message attrs, which every ezmsg-sigproc transformer carries
over) right before it builds and publishes the message; the Sink, for each chunk, takes the
arrival of its filtered chunk and, for the 111 chunks that complete a window, of that window's
mean, std and band powers, and subtracts the stamp. The Source does not pace, so a chunk's latency
includes any time it waits behind earlier chunks in the graph. Graph startup (GraphServer, unit
setup, connecting) is outside the timed part: the Source waits 0.5 s after the start barrier.
"""

import asyncio
import os
import pickle
import socket
import tempfile
import typing

import numpy as np
import scipy.signal

import reference as ref

import ezmsg.core as ez
from ezmsg.baseproc import BaseTransformer, BaseTransformerUnit
from ezmsg.sigproc.aggregate import (
    AggregateSettings,
    AggregateUnit,
    AggregationFunction,
    RangedAggregate,
    RangedAggregateSettings,
)
from ezmsg.sigproc.butterworthfilter import ButterworthFilter, ButterworthFilterSettings
from ezmsg.sigproc.linear import LinearTransform, LinearTransformSettings
from ezmsg.sigproc.spectrum import (
    SpectralOutput,
    SpectralTransform,
    Spectrum,
    SpectrumSettings,
    WindowFunction,
)
from ezmsg.sigproc.window import Window, WindowSettings
from ezmsg.util.messages.axisarray import AxisArray, replace

SETTLE_S = 0.5
SEG_SHIFT = ref.NPERSEG // 2  # welch's default noverlap = nperseg // 2


# --- custom unit: welch's detrend='constant' (no ezmsg-sigproc equivalent) ----------------------
class ConstantDetrendSettings(ez.Settings):
    axis: str = "time"


class ConstantDetrendTransformer(BaseTransformer[ConstantDetrendSettings, AxisArray, AxisArray]):
    def _process(self, message: AxisArray) -> AxisArray:
        ax = message.get_axis_idx(self.settings.axis)
        return replace(message, data=message.data - message.data.mean(axis=ax, keepdims=True))


class ConstantDetrend(
    BaseTransformerUnit[ConstantDetrendSettings, AxisArray, AxisArray, ConstantDetrendTransformer]
):
    SETTINGS = ConstantDetrendSettings


# --- benchmark driver and measuring point ----------------------------------------------------------
class SourceSettings(ez.Settings):
    data: str


class SourceState(ez.State):
    chunks: list


class Source(ez.Unit):
    SETTINGS = SourceSettings
    STATE = SourceState
    OUTPUT_SIGNAL = ez.OutputStream(AxisArray)

    async def initialize(self) -> None:
        x = ref.load(self.SETTINGS.data)
        self.STATE.chunks = ref.chunks(x)

    @ez.publisher(OUTPUT_SIGNAL)
    async def stream(self) -> typing.AsyncGenerator:
        await asyncio.sleep(SETTLE_S)
        for i, chunk in enumerate(self.STATE.chunks):
            t_in = ref.now()
            msg = AxisArray(
                chunk,
                dims=["time", "ch"],
                axes={"time": AxisArray.TimeAxis(fs=float(ref.RATE), offset=i * ref.CHUNK / ref.RATE)},
                attrs={"chunk": i, "t_in": t_in},
                stream_dim="time",
            )
            yield self.OUTPUT_SIGNAL, msg
        raise ez.Complete


class SinkSettings(ez.Settings):
    out: str


class SinkState(ez.State):
    t_in: np.ndarray
    t_done: np.ndarray
    t_last: float
    n_filtered: int
    parts: dict


class Sink(ez.Unit):
    SETTINGS = SinkSettings
    STATE = SinkState
    FILTERED = ez.InputStream(AxisArray)
    MEAN = ez.InputStream(AxisArray)
    STD = ez.InputStream(AxisArray)
    BANDS = ez.InputStream(AxisArray)

    async def initialize(self) -> None:
        self.STATE.t_in = np.full(ref.N_CHUNKS, np.nan)
        self.STATE.t_done = np.full(ref.N_CHUNKS, -np.inf)
        self.STATE.t_last = -np.inf
        self.STATE.n_filtered = 0
        self.STATE.parts = {}

    def _arrived(self, msg: AxisArray) -> int:
        t = ref.now()
        i = msg.attrs["chunk"]
        self.STATE.t_in[i] = msg.attrs["t_in"]
        self.STATE.t_done[i] = max(self.STATE.t_done[i], t)
        self.STATE.t_last = max(self.STATE.t_last, t)
        return i

    def _feature(self, kind: str, msg: AxisArray) -> None:
        i = self._arrived(msg)
        self.STATE.parts.setdefault(i, {})[kind] = np.asarray(msg.data, dtype=np.float64)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        st = self.STATE
        if st.n_filtered < ref.N_CHUNKS or len(st.parts) < ref.N_WINDOWS:
            return
        if any(len(p) < 3 for p in st.parts.values()):
            return
        windows = [np.concatenate([p["mean"].ravel(), p["std"].ravel(), p["bands"].ravel()])
                   for _, p in sorted(st.parts.items())]
        result = {"seconds": st.t_last - st.t_in[0], "latencies": st.t_done - st.t_in,
                  "windows": windows}
        with open(self.SETTINGS.out, "wb") as f:
            pickle.dump(result, f)
        raise ez.NormalTermination

    @ez.subscriber(FILTERED)
    async def on_filtered(self, msg: AxisArray) -> None:
        self._arrived(msg)
        self.STATE.n_filtered += 1
        self._maybe_finish()

    @ez.subscriber(MEAN)
    async def on_mean(self, msg: AxisArray) -> None:
        self._feature("mean", msg)

    @ez.subscriber(STD)
    async def on_std(self, msg: AxisArray) -> None:
        self._feature("std", msg)

    @ez.subscriber(BANDS)
    async def on_bands(self, msg: AxisArray) -> None:
        self._feature("bands", msg)


def welch_scale(taper):
    """Spectrum(REL_POWER, norm='forward', window=NONE) of a tapered N-sample segment is
    |rfft(w x)|^2 / N^2 / (N / fs); scipy's one-sided density is 2 |rfft(w x)|^2 / (fs sum w^2)
    (bins 1..40 Hz, neither DC nor Nyquist); band power multiplies by df = fs / N."""
    n = len(taper)
    df = ref.RATE / n
    return 2.0 * n**3 / (ref.RATE**2 * float((taper**2).sum())) * df


def build(data, out):
    taper = scipy.signal.get_window("hann", ref.NPERSEG)  # periodic, as welch uses
    comps = {
        "SOURCE": Source(SourceSettings(data=data)),
        "FILTER": ButterworthFilter(ButterworthFilterSettings(order=4, cuton=0.5, cutoff=40.0,
                                                              coef_type="sos")),
        "WINDOW": Window(WindowSettings(newaxis="win", window_dur=ref.WINDOW / ref.RATE,
                                        window_shift=ref.HOP / ref.RATE, zero_pad_until="none")),
        "MEAN": AggregateUnit(AggregateSettings(axis="time", operation=AggregationFunction.MEAN)),
        "STD": AggregateUnit(AggregateSettings(axis="time", operation=AggregationFunction.STD)),
        "SEGMENTS": Window(WindowSettings(newaxis="seg", window_dur=ref.NPERSEG / ref.RATE,
                                          window_shift=SEG_SHIFT / ref.RATE,
                                          zero_pad_until="none")),
        "DETREND": ConstantDetrend(ConstantDetrendSettings(axis="time")),
        "TAPER": LinearTransform(LinearTransformSettings(scale=taper, axis="time")),
        "SPECTRUM": Spectrum(SpectrumSettings(axis="time", window=WindowFunction.NONE,
                                              transform=SpectralTransform.REL_POWER,
                                              output=SpectralOutput.POSITIVE, norm="forward")),
        # The periodogram stream runs at fs / SEG_SHIFT = 2 Hz: 19 segments = 9.5 s, hop 2 = 1 s.
        "WELCH_WINDOW": Window(WindowSettings(
            newaxis="win",
            window_dur=((ref.WINDOW - ref.NPERSEG) // SEG_SHIFT + 1) * SEG_SHIFT / ref.RATE,
            window_shift=ref.HOP / ref.RATE, zero_pad_until="none")),
        "WELCH_MEAN": AggregateUnit(AggregateSettings(axis="seg", operation=AggregationFunction.MEAN)),
        "BANDS": RangedAggregate(RangedAggregateSettings(
            axis="freq", bands=[(lo, hi - 0.5) for _, lo, hi in ref.BANDS],
            operation=AggregationFunction.SUM)),
        "DENSITY": LinearTransform(LinearTransformSettings(scale=welch_scale(taper))),
        "SINK": Sink(SinkSettings(out=out)),
    }
    c = comps
    conns = (
        (c["SOURCE"].OUTPUT_SIGNAL, c["FILTER"].INPUT_SIGNAL),
        (c["FILTER"].OUTPUT_SIGNAL, c["SINK"].FILTERED),
        (c["FILTER"].OUTPUT_SIGNAL, c["WINDOW"].INPUT_SIGNAL),
        (c["WINDOW"].OUTPUT_SIGNAL, c["MEAN"].INPUT_SIGNAL),
        (c["WINDOW"].OUTPUT_SIGNAL, c["STD"].INPUT_SIGNAL),
        (c["MEAN"].OUTPUT_SIGNAL, c["SINK"].MEAN),
        (c["STD"].OUTPUT_SIGNAL, c["SINK"].STD),
        (c["FILTER"].OUTPUT_SIGNAL, c["SEGMENTS"].INPUT_SIGNAL),
        (c["SEGMENTS"].OUTPUT_SIGNAL, c["DETREND"].INPUT_SIGNAL),
        (c["DETREND"].OUTPUT_SIGNAL, c["TAPER"].INPUT_SIGNAL),
        (c["TAPER"].OUTPUT_SIGNAL, c["SPECTRUM"].INPUT_SIGNAL),
        (c["SPECTRUM"].OUTPUT_SIGNAL, c["WELCH_WINDOW"].INPUT_SIGNAL),
        (c["WELCH_WINDOW"].OUTPUT_SIGNAL, c["WELCH_MEAN"].INPUT_SIGNAL),
        (c["WELCH_MEAN"].OUTPUT_SIGNAL, c["BANDS"].INPUT_SIGNAL),
        (c["BANDS"].OUTPUT_SIGNAL, c["DENSITY"].INPUT_SIGNAL),
        (c["DENSITY"].OUTPUT_SIGNAL, c["SINK"].BANDS),
    )
    return comps, conns


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(data):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.pkl")
        comps, conns = build(data, out)
        # A GraphServer of our own on a free loopback port, so that the run never joins a
        # GraphServer some other ezmsg program left on the default port.
        ez.run(components=comps, connections=conns, graph_address=("127.0.0.1", free_port()),
               auto_start=True)
        if not os.path.exists(out):
            raise SystemExit("ezmsg: the graph stopped before the sink saw every output")
        with open(out, "rb") as f:
            r = pickle.load(f)
    return r["seconds"], r["latencies"], r["windows"]


def main():
    args = ref.common_args(__doc__.splitlines()[0])
    ref.keep_stdout_for_json()
    data = os.path.abspath(args.data)
    timing = ref.Timing()
    for _ in range(args.repeat):
        timing.add(*run_once(data))
    ref.report("ezmsg", ref.versions("ezmsg", "ezmsg-sigproc", "numpy", "scipy"), timing)


if __name__ == "__main__":
    main()
