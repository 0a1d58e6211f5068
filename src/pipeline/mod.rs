//! Pipeline files: loading, validation and the validated plan the runtime executes.
//!
//! A pipeline file (TOML) has named `[sources.*]`, `[operators.*]` and `[sinks.*]` tables. Operators
//! and sinks name their `inputs`: a source stream as `source.stream`, an operator by its name. Loading
//! checks everything the runtime relies on (kinds, options, inputs, cycles, port types and rates) and
//! reports each problem with file, line and column, the offending text and what would be valid.
//!
//! ```
//! let text = r#"
//! [sources.sim]
//! kind = "simulator"
//! streams = ["eeg"]
//! duration_s = 2
//!
//! [operators.bands]
//! kind = "band_power"
//! inputs = ["sim.eeg"]
//!
//! [sinks.out]
//! kind = "jsonl"
//! inputs = ["bands"]
//! "#;
//! let pipeline = heloflow::pipeline::parse("example.toml", text).unwrap();
//! assert_eq!(pipeline.operators[0].name, "bands");
//! ```

pub mod graph;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::document::{suggest_or_list, ComponentTable, Document, Node};
use crate::config::options::Options;
use crate::config::source_text::SourceText;
use crate::config::{PortError, PortSite};
use crate::operators::{OperatorConfig, OPERATOR_KINDS};
use crate::server::config::ServerConfig;
use crate::sinks::{Destination, SinkConfig, SINK_KINDS};
use crate::sources::{SourceConfig, SOURCE_KINDS};
use crate::stream::StreamSchema;

/// Index of a stream in [`Pipeline::streams`].
pub type StreamId = u32;

/// A validated pipeline, ready to run.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// `[pipeline] name`, or the file stem.
    pub name: String,
    /// `[pipeline] description`.
    pub description: String,
    /// The pipeline file's full text, as parsed (recordings keep it as provenance).
    pub text: String,
    /// The file it was read from, when it was (no sink may overwrite it).
    pub file: Option<PathBuf>,
    /// Schemas of every stream, indexed by [`StreamId`].
    pub streams: Vec<StreamSchema>,
    /// Sources in file order.
    pub sources: Vec<SourceNode>,
    /// Operators in dependency order (each after all of its inputs).
    pub operators: Vec<OperatorNode>,
    /// Sinks in file order.
    pub sinks: Vec<SinkNode>,
    /// The live server, when the file has a `[server]` section.
    pub server: Option<ServerConfig>,
}

/// A source and the streams it produces.
#[derive(Clone, Debug)]
pub struct SourceNode {
    /// Name in the pipeline file.
    pub name: String,
    /// Its options.
    pub config: SourceConfig,
    /// Ids of its output streams, in output order.
    pub outputs: Vec<StreamId>,
}

/// An operator with its resolved inputs and output.
#[derive(Clone, Debug)]
pub struct OperatorNode {
    /// Name in the pipeline file (also the name of its output stream).
    pub name: String,
    /// Its options.
    pub config: OperatorConfig,
    /// Ids of its input streams, in the order written.
    pub inputs: Vec<StreamId>,
    /// Id of its output stream.
    pub output: StreamId,
}

/// A sink with its resolved inputs.
#[derive(Clone, Debug)]
pub struct SinkNode {
    /// Name in the pipeline file.
    pub name: String,
    /// Its options.
    pub config: SinkConfig,
    /// Ids of its input streams, in the order written.
    pub inputs: Vec<StreamId>,
}

/// Why a pipeline file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(String),
    /// The file has problems; each is located in the file.
    Invalid(Diagnostics),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(message) => f.write_str(message),
            LoadError::Invalid(diagnostics) => diagnostics.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads and validates a pipeline file (refusing sinks that would overwrite it).
pub fn load(path: &Path) -> Result<Pipeline, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::Io(format!("cannot read pipeline file {}: {e}", path.display())))?;
    validate(&path.display().to_string(), &text, Some(path)).map_err(LoadError::Invalid)
}

/// Validates a pipeline file's text; `path` is only used in messages and as the default name.
pub fn parse(path: &str, text: &str) -> Result<Pipeline, Diagnostics> {
    validate(path, text, None)
}

/// Validates `text`, read from the file `file` when it was (named `path` in messages).
fn validate(path: &str, text: &str, file: Option<&Path>) -> Result<Pipeline, Diagnostics> {
    let source = SourceText::new(path, text);
    let document = Document::parse(&source).map_err(Diagnostics)?;
    let mut checker = Checker {
        source: &source,
        pipeline_file: file.and_then(|f| f.to_str()).map(Destination::parse),
        errors: Vec::new(),
    };
    let mut pipeline = checker.check(&document);
    if checker.errors.is_empty() {
        pipeline.text = text.to_string();
        pipeline.file = file.map(Path::to_path_buf);
        Ok(pipeline)
    } else {
        let mut errors = checker.errors;
        errors.sort_by_key(|d| (d.line, d.column));
        errors.dedup();
        Err(Diagnostics(errors))
    }
}

/// A component's table split into the parts the graph checks need.
struct Component<'t> {
    section: &'static str,
    table: &'t ComponentTable,
    kind: Option<Spanned<String>>,
    inputs: Vec<Spanned<String>>,
    inputs_span: Option<Range<usize>>,
    option_spans: BTreeMap<String, Range<usize>>,
}

impl Component<'_> {
    fn name(&self) -> &str {
        self.table.name.get_ref()
    }

    fn path(&self) -> String {
        format!("{}.{}", self.section, self.name())
    }
}

struct Checker<'s> {
    source: &'s SourceText,
    /// The pipeline file itself, when it was read from one (no sink may overwrite it).
    pipeline_file: Option<Destination>,
    errors: Vec<Diagnostic>,
}

impl<'s> Checker<'s> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.source, span, message).with_help(help));
    }

    fn check(&mut self, document: &Document) -> Pipeline {
        let (name, description) = self.header(document);
        let sources = self.components("sources", &document.sources);
        let operators = self.components("operators", &document.operators);
        let sinks = self.components("sinks", &document.sinks);
        self.check_names(&sources, &operators, &sinks);
        if document.sources.is_empty() {
            self.error(
                0..0,
                "the pipeline has no sources",
                "add one, for example:\n  [sources.sim]\n  kind = \"simulator\"",
            );
        }
        if document.sinks.is_empty() {
            self.error(
                0..0,
                "the pipeline has no sinks, so nothing would be output",
                "add one, for example:\n  [sinks.out]\n  kind = \"jsonl\"\n  inputs = [\"...\"]",
            );
        }

        let mut pipeline = Pipeline {
            name,
            description,
            text: String::new(),
            file: None,
            streams: Vec::new(),
            sources: Vec::new(),
            operators: Vec::new(),
            sinks: Vec::new(),
            server: self.server(document),
        };
        let mut by_name: BTreeMap<String, StreamId> = BTreeMap::new();
        let mut multi_output: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Sources whose options are wrong: inputs naming their streams are not reported again.
        let mut failed_sources: Vec<String> = Vec::new();

        for component in &sources {
            if let Some(span) = &component.inputs_span {
                self.error(
                    span.clone(),
                    format!(
                        "sources take no inputs, but `{}` has `inputs`",
                        component.path()
                    ),
                    "remove `inputs`; sources produce streams that operators and sinks name",
                );
            }
            let Some(config) = self.parse_options(component, SOURCE_KINDS, SourceConfig::parse)
            else {
                failed_sources.push(component.name().to_string());
                continue;
            };
            let mut outputs = Vec::new();
            let mut names = Vec::new();
            for schema in config.component().outputs(component.name()) {
                let id = pipeline.streams.len() as StreamId;
                if by_name.insert(schema.name.clone(), id).is_some() {
                    self.error(
                        component.table.name.span(),
                        format!(
                            "`{}` would produce two streams named `{}`",
                            component.path(),
                            schema.name
                        ),
                        "give each stream of the source its own name",
                    );
                }
                names.push(schema.name.clone());
                outputs.push(id);
                pipeline.streams.push(schema);
            }
            multi_output.insert(component.name().to_string(), names);
            pipeline.sources.push(SourceNode {
                name: component.name().to_string(),
                config,
                outputs,
            });
        }

        let operator_configs: Vec<Option<OperatorConfig>> = operators
            .iter()
            .map(|c| {
                self.require_inputs(c);
                self.parse_options(c, OPERATOR_KINDS, OperatorConfig::parse)
            })
            .collect();
        let sink_configs: Vec<Option<SinkConfig>> = sinks
            .iter()
            .map(|c| {
                self.require_inputs(c);
                self.parse_options(c, SINK_KINDS, SinkConfig::parse)
            })
            .collect();

        let operator_index: BTreeMap<&str, usize> = operators
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name(), i))
            .collect();
        let sink_names: Vec<&str> = sinks.iter().map(|c| c.name()).collect();
        let mut valid_inputs: Vec<String> = by_name.keys().cloned().collect();
        valid_inputs.extend(operators.iter().map(|c| c.name().to_string()));

        // Resolve every input to a source stream or an operator; remember operator dependencies.
        let mut resolved: Vec<Vec<Option<Input>>> = Vec::new();
        for component in operators.iter().chain(sinks.iter()) {
            let mut inputs = Vec::new();
            for input in &component.inputs {
                let text = input.get_ref().as_str();
                let found = if let Some(&id) = by_name.get(text) {
                    Some(Input::Stream(id))
                } else if let Some(&index) = operator_index.get(text) {
                    Some(Input::Operator(index))
                } else {
                    let source = text.split('.').next().unwrap_or(text);
                    if !failed_sources.iter().any(|f| f == source) {
                        self.unknown_input(input, &valid_inputs, &multi_output, &sink_names);
                    }
                    None
                };
                if found.is_some()
                    && component
                        .inputs
                        .iter()
                        .take_while(|other| other.span() != input.span())
                        .any(|other| other.get_ref() == text)
                {
                    self.error(
                        input.span(),
                        format!("`{}` lists the input \"{text}\" twice", component.path()),
                        "list each input once",
                    );
                }
                inputs.push(found);
            }
            resolved.push(inputs);
        }

        let order = self.topological_order(&operators, &resolved[..operators.len()]);

        // Compute output schemas in dependency order; skip operators whose inputs failed.
        let mut operator_outputs: Vec<Option<StreamId>> = vec![None; operators.len()];
        for index in order {
            let component = &operators[index];
            let Some(config) = &operator_configs[index] else {
                continue;
            };
            let Some(input_ids) = input_ids(&resolved[index], &operator_outputs) else {
                continue;
            };
            let schemas: Vec<&StreamSchema> = input_ids
                .iter()
                .map(|&id| &pipeline.streams[id as usize])
                .collect();
            let schema = config
                .component()
                .output_schema(component.name(), &schemas)
                .and_then(|schema| match config.component().window() {
                    Some(window) => window.check_memory(&schemas).map(|()| schema),
                    None => Ok(schema),
                });
            match schema {
                Ok(schema) => {
                    let id = pipeline.streams.len() as StreamId;
                    pipeline.streams.push(schema);
                    operator_outputs[index] = Some(id);
                    pipeline.operators.push(OperatorNode {
                        name: component.name().to_string(),
                        config: config.clone(),
                        inputs: input_ids,
                        output: id,
                    });
                }
                Err(error) => self.port_error(component, error),
            }
        }

        self.check_offline_only(&operators, &pipeline);

        // Each file sink's destination, the sink's path in the file and the path as written.
        let mut destinations_in_use: Vec<(Destination, String, String)> = Vec::new();
        for (offset, component) in sinks.iter().enumerate() {
            let Some(config) = &sink_configs[offset] else {
                continue;
            };
            let Some(input_ids) = input_ids(&resolved[operators.len() + offset], &operator_outputs)
            else {
                continue;
            };
            let schemas: Vec<&StreamSchema> = input_ids
                .iter()
                .map(|&id| &pipeline.streams[id as usize])
                .collect();
            if let Err(error) = config.component().check_inputs(&schemas) {
                self.port_error(component, error);
                continue;
            }
            if let Some(target) = config.component().destination() {
                let destination = Destination::parse(target);
                let span = component
                    .option_spans
                    .get("path")
                    .cloned()
                    .unwrap_or_else(|| component.table.name.span());
                let shown = match &destination {
                    Destination::Stdout => "standard output".to_string(),
                    Destination::File(_) => target.to_string(),
                };
                if self
                    .pipeline_file
                    .as_ref()
                    .is_some_and(|file| destination.same_place(file))
                {
                    self.error(
                        span.clone(),
                        format!(
                            "`{}` would overwrite the pipeline file itself ({shown})",
                            component.path()
                        ),
                        "write the output to another file",
                    );
                } else if let Some((previous, previous_path)) = destinations_in_use
                    .iter()
                    .find(|(d, _, _)| d.same_place(&destination))
                    .map(|(_, name, path)| (name.clone(), path.clone()))
                {
                    let spelled = if previous_path == target || destination.is_stdout() {
                        String::new()
                    } else {
                        format!(" (as {previous_path:?})")
                    };
                    self.error(
                        span,
                        format!(
                            "`{}` writes to {shown}, which `{previous}` already writes to{spelled}",
                            component.path()
                        ),
                        "give each sink its own `path`",
                    );
                }
                destinations_in_use.push((destination, component.path(), target.to_string()));
            }
            pipeline.sinks.push(SinkNode {
                name: component.name().to_string(),
                config: config.clone(),
                inputs: input_ids,
            });
        }
        pipeline
    }

    /// Rejects operators that need a finished recording downstream of a live source.
    fn check_offline_only(&mut self, components: &[Component], pipeline: &Pipeline) {
        for node in &pipeline.operators {
            let Some(key) = node.config.component().offline_only() else {
                continue;
            };
            let mut live = Vec::new();
            let mut stack = node.inputs.clone();
            let mut seen = Vec::new();
            while let Some(id) = stack.pop() {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id);
                if let Some(source) = pipeline.sources.iter().find(|s| s.outputs.contains(&id)) {
                    if source.config.component().is_live() && !live.contains(&source.name) {
                        live.push(source.name.clone());
                    }
                } else if let Some(op) = pipeline.operators.iter().find(|o| o.output == id) {
                    stack.extend(op.inputs.iter().copied());
                }
            }
            let Some(component) = components.iter().find(|c| c.name() == node.name) else {
                continue;
            };
            if !live.is_empty() {
                let span = component
                    .option_spans
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| component.table.name.span());
                self.error(
                    span,
                    format!(
                        "in `{}`: `{key}` needs the whole recording, but it is fed by the real-time source `{}`",
                        component.path(),
                        live.join("`, `")
                    ),
                    "use it for offline replay only (realtime = false), or filter causally (remove zero_phase)",
                );
            }
        }
    }

    fn header(&mut self, document: &Document) -> (String, String) {
        let stem = Path::new(&self.source.path)
            .file_stem()
            .map_or("pipeline".to_string(), |s| s.to_string_lossy().into_owned());
        let mut options = Options::new(self.source, "pipeline", 0..0, &document.header);
        let name = options.string("name").map_or(stem, Spanned::into_inner);
        let description = options
            .string("description")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        if let Err(errors) = options.finish() {
            self.errors.extend(errors);
        }
        (name, description)
    }

    fn server(&mut self, document: &Document) -> Option<ServerConfig> {
        let (span, entries) = document.server.as_ref()?;
        let mut options = Options::new(self.source, "server", span.clone(), entries);
        let config = ServerConfig::parse(&mut options);
        if let Err(errors) = options.finish() {
            self.errors.extend(errors);
        }
        Some(config)
    }

    fn components<'t>(
        &mut self,
        section: &'static str,
        tables: &'t [ComponentTable],
    ) -> Vec<Component<'t>> {
        tables
            .iter()
            .map(|table| {
                let mut component = Component {
                    section,
                    table,
                    kind: None,
                    inputs: Vec::new(),
                    inputs_span: None,
                    option_spans: BTreeMap::new(),
                };
                for (key, value) in &table.entries {
                    component
                        .option_spans
                        .insert(key.get_ref().clone(), value.span());
                    match (key.get_ref().as_str(), value.get_ref()) {
                        ("kind", Node::Str(kind)) => {
                            component.kind = Some(Spanned::new(value.span(), kind.clone()))
                        }
                        ("kind", other) => self.error(
                            value.span(),
                            format!("`{}.kind` must be a string, found {}", component.path(), other.describe()),
                            format!("write kind = \"...\"; {}", kinds_help(section)),
                        ),
                        ("inputs", node) => {
                            component.inputs_span = Some(value.span());
                            match node {
                                Node::Array(items) => {
                                    for item in items {
                                        match item.get_ref() {
                                            Node::Str(s) => component
                                                .inputs
                                                .push(Spanned::new(item.span(), s.clone())),
                                            other => self.error(
                                                item.span(),
                                                format!("inputs are stream names, found {}", other.describe()),
                                                "write inputs = [\"source.stream\", \"operator\"]",
                                            ),
                                        }
                                    }
                                }
                                Node::Str(s) => self.error(
                                    value.span(),
                                    format!("`{}.inputs` must be a list, found a single string", component.path()),
                                    format!("write inputs = [\"{s}\"]"),
                                ),
                                other => self.error(
                                    value.span(),
                                    format!("`{}.inputs` must be a list of stream names, found {}", component.path(), other.describe()),
                                    "write inputs = [\"source.stream\", \"operator\"]",
                                ),
                            }
                        }
                        _ => {}
                    }
                }
                let valid_name = !table.name.get_ref().is_empty()
                    && table
                        .name
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid_name {
                    self.error(
                        table.name.span(),
                        format!(
                            "invalid component name \"{}\"",
                            crate::display::escaped(table.name.get_ref())
                        ),
                        "use letters, digits, `_` and `-` only (dots separate a source from its stream)",
                    );
                }
                component
            })
            .collect()
    }

    fn check_names(&mut self, sources: &[Component], operators: &[Component], sinks: &[Component]) {
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        for component in sources.iter().chain(operators).chain(sinks) {
            if let Some(previous) = seen.get(component.name()) {
                let message = format!(
                    "the name `{}` is used twice: `{previous}` and `{}`",
                    component.name(),
                    component.path()
                );
                self.error(
                    component.table.name.span(),
                    message,
                    "names must be unique across sources, operators and sinks",
                );
            } else {
                seen.insert(component.name(), component.path());
            }
        }
    }

    fn require_inputs(&mut self, component: &Component) {
        if component.inputs_span.is_none() {
            self.error(
                component.table.name.span(),
                format!("`{}` has no `inputs`", component.path()),
                "add inputs = [\"source.stream\"] naming the streams it consumes",
            );
        } else if component.inputs.is_empty() && !self.has_error_inside(&component.inputs_span) {
            self.error(
                component.inputs_span.clone().unwrap_or(0..0),
                format!("`{}.inputs` is empty", component.path()),
                "name at least one stream, e.g. inputs = [\"sim.eeg\"]",
            );
        }
    }

    fn has_error_inside(&self, span: &Option<Range<usize>>) -> bool {
        let Some(span) = span else { return false };
        let (line, _) = self.source.line_col(span.start);
        self.errors.iter().any(|d| d.line == line)
    }

    fn parse_options<T>(
        &mut self,
        component: &Component,
        kinds: impl AsRef<[&'static str]>,
        parse: impl FnOnce(&str, &mut Options) -> Option<T>,
    ) -> Option<T> {
        let kinds = kinds.as_ref();
        let Some(kind) = &component.kind else {
            if !component.option_spans.contains_key("kind") {
                self.error(
                    component.table.name.span(),
                    format!("`{}` has no `kind`", component.path()),
                    format!("add kind = \"...\"; {}", kinds_help(component.section)),
                );
            }
            return None;
        };
        if !kinds.contains(&kind.get_ref().as_str()) {
            let singular = component.section.trim_end_matches('s');
            self.error(
                kind.span(),
                format!("unknown {singular} kind \"{}\"", kind.get_ref()),
                suggest_or_list(kind.get_ref(), kinds),
            );
            return None;
        }
        let entries: Vec<_> = component
            .table
            .entries
            .iter()
            .filter(|(key, _)| key.get_ref() != "kind" && key.get_ref() != "inputs")
            .cloned()
            .collect();
        let mut options = Options::new(
            self.source,
            component.path(),
            component.table.name.span(),
            &entries,
        );
        let config = parse(kind.get_ref(), &mut options);
        match options.finish() {
            Ok(()) => config,
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    fn unknown_input(
        &mut self,
        input: &Spanned<String>,
        valid: &[String],
        multi_output: &BTreeMap<String, Vec<String>>,
        sink_names: &[&str],
    ) {
        let text = input.get_ref();
        let valid_refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        let (message, help) = if let Some(streams) = multi_output.get(text.as_str()) {
            (
                format!("`{text}` is a source with several streams; name one of them"),
                format!("one of: {}", streams.join(", ")),
            )
        } else if sink_names.contains(&text.as_str()) {
            (
                format!("`{text}` is a sink; sinks have no output to use as an input"),
                suggest_or_list(text, &valid_refs),
            )
        } else {
            (
                format!("unknown input \"{text}\": no source stream or operator has that name"),
                suggest_or_list(text, &valid_refs),
            )
        };
        self.error(input.span(), message, help);
    }

    /// Orders operators so that each comes after its operator inputs; reports cycles.
    fn topological_order(
        &mut self,
        operators: &[Component],
        resolved: &[Vec<Option<Input>>],
    ) -> Vec<usize> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut marks = vec![Mark::New; operators.len()];
        let mut order = Vec::new();
        for root in 0..operators.len() {
            if marks[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (operator, next input to visit).
            let mut stack = vec![(root, 0usize)];
            marks[root] = Mark::Active;
            while let Some((node, next)) = stack.pop() {
                let inputs = &resolved[node];
                if next < inputs.len() {
                    stack.push((node, next + 1));
                    if let Some(Input::Operator(dep)) = inputs[next] {
                        match marks[dep] {
                            Mark::New => {
                                marks[dep] = Mark::Active;
                                stack.push((dep, 0));
                            }
                            Mark::Active => {
                                let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                                let mut cycle: Vec<&str> = stack[start..]
                                    .iter()
                                    .map(|(n, _)| operators[*n].name())
                                    .collect();
                                cycle.push(operators[dep].name());
                                let span = operators[node].inputs[next].span();
                                self.error(
                                    span,
                                    format!("cycle between operators: {}", cycle.join(" -> ")),
                                    "a pipeline must flow one way, from sources through operators to sinks",
                                );
                            }
                            Mark::Done => {}
                        }
                    }
                } else {
                    marks[node] = Mark::Done;
                    order.push(node);
                }
            }
        }
        order
    }

    fn port_error(&mut self, component: &Component, error: PortError) {
        let span = match &error.site {
            PortSite::Input(index) => component.inputs.get(*index).map(|i| i.span()),
            PortSite::Inputs => component.inputs_span.clone(),
            PortSite::Option(key) => component.option_spans.get(*key).cloned(),
        }
        .or_else(|| component.kind.as_ref().map(|k| k.span()))
        .unwrap_or_else(|| component.table.name.span());
        self.error(
            span,
            format!("in `{}`: {}", component.path(), error.message),
            error.help,
        );
    }
}

/// A resolved input: a stream known now, or the output of an operator computed later.
#[derive(Clone, Copy)]
enum Input {
    Stream(StreamId),
    Operator(usize),
}

/// Stream ids of resolved inputs, or `None` if any input is unresolved or its operator failed.
fn input_ids(
    inputs: &[Option<Input>],
    operator_outputs: &[Option<StreamId>],
) -> Option<Vec<StreamId>> {
    if inputs.is_empty() {
        return None;
    }
    inputs
        .iter()
        .map(|input| match input {
            Some(Input::Stream(id)) => Some(*id),
            Some(Input::Operator(index)) => operator_outputs[*index],
            None => None,
        })
        .collect()
}

fn kinds_help(section: &str) -> String {
    let kinds: &[&str] = match section {
        "sources" => SOURCE_KINDS,
        "operators" => OPERATOR_KINDS,
        _ => SINK_KINDS,
    };
    format!(
        "valid: {}",
        kinds
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
