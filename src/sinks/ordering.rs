//! Deterministic row order for sinks.
//!
//! Batches reach a sink in an order that depends on thread timing and the number of workers. A sink
//! buffers them and, once the input frontier guarantees that no earlier sample can still arrive,
//! releases rows sorted by (event time, input position, subject, arrival within that stream). The
//! result is byte-identical across runs and worker counts.
//!
//! Each input may have its own frontier ([`OrderedRows::release`]): a file sink passes every input
//! the least of them (one order across inputs), a sink whose inputs leave by separate channels
//! (LSL outlets) passes each input its own, so no input waits for a slower one.

use std::io;

use super::{Row, RowValues, SinkWriter};
use crate::stream::{Batch, Nanos, StreamSchema, Values};

struct Pending {
    input: usize,
    sequence: u64,
    batch: Batch,
    cursor: usize,
}

/// Buffered batches of one sink, released in deterministic order.
#[derive(Default)]
pub struct OrderedRows {
    pending: Vec<Pending>,
    sequence: u64,
}

impl OrderedRows {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers a batch that arrived on input `input`.
    pub fn push(&mut self, input: usize, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        self.sequence += 1;
        self.pending.push(Pending {
            input,
            sequence: self.sequence,
            batch,
            cursor: 0,
        });
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every buffered row (the destination went away) and returns how many there were.
    pub fn discard(&mut self) -> usize {
        let rows = self
            .pending
            .iter()
            .map(|p| p.batch.timestamps.len() - p.cursor)
            .sum();
        self.pending.clear();
        rows
    }

    /// How many buffered rows of each input `i` have event time below `frontiers[i]`: what
    /// [`OrderedRows::release`] would write, per input.
    pub fn ready(&self, frontiers: &[Nanos]) -> Vec<usize> {
        let mut ready = vec![0; frontiers.len()];
        for pending in &self.pending {
            let times = &pending.batch.timestamps[pending.cursor..];
            if let Some(count) = ready.get_mut(pending.input) {
                *count += times.partition_point(|&t| t < frontiers[pending.input]);
            }
        }
        ready
    }

    /// Writes every buffered row of each input `i` with event time below `frontiers[i]`, in order;
    /// returns how many.
    ///
    /// `schemas[input]` is the schema of input `input`.
    pub fn release(
        &mut self,
        frontiers: &[Nanos],
        schemas: &[StreamSchema],
        writer: &mut dyn SinkWriter,
    ) -> io::Result<usize> {
        let mut order: Vec<(Nanos, usize, &str, u64, usize, usize)> = Vec::new();
        for (slot, pending) in self.pending.iter().enumerate() {
            let frontier = frontiers[pending.input];
            let times = &pending.batch.timestamps[pending.cursor..];
            let ready = times.partition_point(|&t| t < frontier);
            for offset in 0..ready {
                let row = pending.cursor + offset;
                order.push((
                    pending.batch.timestamps[row],
                    pending.input,
                    pending.batch.subject.as_str(),
                    pending.sequence,
                    row,
                    slot,
                ));
            }
        }
        order.sort_unstable();
        for &(time, input, subject, _, row, slot) in &order {
            let batch = &self.pending[slot].batch;
            let width = batch.channel_count();
            let values = match &batch.values {
                Values::Numeric(v) => RowValues::Numeric(&v[row * width..(row + 1) * width]),
                Values::Text(v) => RowValues::Text(&v[row * width..(row + 1) * width]),
            };
            writer.write_row(&Row {
                time,
                schema: &schemas[input],
                subject,
                values,
            })?;
        }
        let released = order.len();
        drop(order);
        for pending in &mut self.pending {
            let frontier = frontiers[pending.input];
            let times = &pending.batch.timestamps[pending.cursor..];
            pending.cursor += times.partition_point(|&t| t < frontier);
        }
        self.pending.retain(|p| p.cursor < p.batch.timestamps.len());
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Channel, ChannelFormat, Modality, Rate};

    struct Collect(Vec<(Nanos, String, f64)>);

    impl SinkWriter for Collect {
        fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
            let RowValues::Numeric(v) = row.values else {
                unreachable!()
            };
            self.0.push((
                row.time,
                format!("{}/{}", row.schema.name, row.subject),
                v[0],
            ));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn schema(name: &str) -> StreamSchema {
        StreamSchema {
            name: name.into(),
            modality: Modality::Features,
            channels: vec![Channel::new("x", "", "")],
            format: ChannelFormat::Double64,
            rate: Rate::Irregular,
            subjects: vec![],
        }
    }

    fn batch(subject: &str, times: &[Nanos]) -> Batch {
        Batch {
            stream: 0,
            subject: subject.into(),
            timestamps: times.to_vec(),
            values: Values::Numeric(times.iter().map(|&t| t as f64).collect()),
        }
    }

    #[test]
    fn release_order_does_not_depend_on_arrival_order() {
        let schemas = [schema("a"), schema("b")];
        let run = |arrivals: Vec<(usize, Batch)>| {
            let mut rows = OrderedRows::new();
            let mut out = Collect(Vec::new());
            for (input, batch) in arrivals {
                rows.push(input, batch);
            }
            rows.release(&[5, 5], &schemas, &mut out).unwrap();
            rows.release(&[Nanos::MAX; 2], &schemas, &mut out).unwrap();
            assert!(rows.is_empty());
            out.0
        };
        let first = run(vec![
            (0, batch("S2", &[1, 4, 6])),
            (1, batch("S1", &[1, 2])),
            (0, batch("S1", &[1, 7])),
        ]);
        let second = run(vec![
            (0, batch("S1", &[1, 7])),
            (0, batch("S2", &[1, 4, 6])),
            (1, batch("S1", &[1, 2])),
        ]);
        assert_eq!(first, second);
        let names: Vec<_> = first.iter().map(|(t, n, _)| format!("{t}:{n}")).collect();
        assert_eq!(
            names,
            ["1:a/S1", "1:a/S2", "1:b/S1", "2:b/S1", "4:a/S2", "6:a/S2", "7:a/S1"]
        );
    }

    #[test]
    fn each_input_is_released_up_to_its_own_frontier() {
        let schemas = [schema("fast"), schema("slow")];
        let mut rows = OrderedRows::new();
        let mut out = Collect(Vec::new());
        rows.push(0, batch("S1", &[1, 3, 5, 7]));
        rows.push(1, batch("S1", &[1, 3, 5]));
        rows.push(0, batch("S2", &[2, 6]));
        // The slow input's frontier is at 2: its rows from 3 on wait, the fast input's do not.
        assert_eq!(rows.ready(&[6, 2]), vec![4, 1]);
        assert_eq!(rows.release(&[6, 2], &schemas, &mut out).unwrap(), 5);
        let names: Vec<_> = out.0.iter().map(|(t, n, _)| format!("{t}:{n}")).collect();
        assert_eq!(
            names,
            [
                "1:fast/S1",
                "1:slow/S1",
                "2:fast/S2",
                "3:fast/S1",
                "5:fast/S1"
            ]
        );
        out.0.clear();
        assert_eq!(rows.release(&[6, 6], &schemas, &mut out).unwrap(), 2);
        let names: Vec<_> = out.0.iter().map(|(t, n, _)| format!("{t}:{n}")).collect();
        assert_eq!(names, ["3:slow/S1", "5:slow/S1"]);
        out.0.clear();
        rows.release(&[Nanos::MAX; 2], &schemas, &mut out).unwrap();
        let names: Vec<_> = out.0.iter().map(|(t, n, _)| format!("{t}:{n}")).collect();
        assert_eq!(names, ["6:fast/S2", "7:fast/S1"]);
        assert!(rows.is_empty());
    }
}
