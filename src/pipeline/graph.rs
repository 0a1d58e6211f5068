//! The pipeline as a Graphviz DOT graph (`heloflow graph FILE`).
//!
//! Sources are boxes, operators ellipses and sinks folders; each edge is a stream, labelled with its
//! name, channel count and rate.

use std::fmt::Write;

use super::{Pipeline, StreamId};

/// Renders the validated pipeline as DOT.
pub fn to_dot(pipeline: &Pipeline) -> String {
    let mut dot = String::new();
    let quote = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    };
    let _ = writeln!(dot, "digraph {} {{", quote(&pipeline.name));
    let _ = writeln!(dot, "  rankdir=LR;");
    let _ = writeln!(dot, "  node [fontname=\"Helvetica\"];");
    let mut producer: Vec<String> = vec![String::new(); pipeline.streams.len()];
    for source in &pipeline.sources {
        let node = format!("source:{}", source.name);
        let label = format!("{}\n{}", source.name, source.config.kind());
        let _ = writeln!(
            dot,
            "  {} [shape=box, label={}];",
            quote(&node),
            quote(&label)
        );
        for &id in &source.outputs {
            producer[id as usize] = node.clone();
        }
    }
    for operator in &pipeline.operators {
        let node = format!("operator:{}", operator.name);
        let label = format!("{}\n{}", operator.name, operator.config.kind());
        let _ = writeln!(
            dot,
            "  {} [shape=ellipse, label={}];",
            quote(&node),
            quote(&label)
        );
        producer[operator.output as usize] = node;
    }
    for sink in &pipeline.sinks {
        let node = format!("sink:{}", sink.name);
        let label = format!(
            "{}\n{} {}",
            sink.name,
            sink.config.kind(),
            sink.config.component().destination().unwrap_or_default()
        );
        let _ = writeln!(
            dot,
            "  {} [shape=folder, label={}];",
            quote(&node),
            quote(&label)
        );
    }
    let edge = |dot: &mut String, id: StreamId, to: &str| {
        let schema = &pipeline.streams[id as usize];
        let label = format!(
            "{}\n{} ch, {}",
            schema.name,
            schema.channel_count(),
            schema.rate
        );
        let _ = writeln!(
            dot,
            "  {} -> {} [label={}];",
            quote(&producer[id as usize]),
            quote(to),
            quote(&label)
        );
    };
    for operator in &pipeline.operators {
        for &id in &operator.inputs {
            edge(&mut dot, id, &format!("operator:{}", operator.name));
        }
    }
    for sink in &pipeline.sinks {
        for &id in &sink.inputs {
            edge(&mut dot, id, &format!("sink:{}", sink.name));
        }
    }
    dot.push_str("}\n");
    dot
}
