//! Reads Prometheus text exposition (format 0.0.4) back into samples: what `heloflow top` shows.
//!
//! Accepts what any exporter writes: `# HELP`/`# TYPE` lines (other comments are skipped), samples
//! with or without labels, escaped label values (`\\`, `\"`, `\n`), `+Inf`/`-Inf`/`NaN` values,
//! optional timestamps, and blank lines. A malformed line is an error naming its line number.

use std::collections::BTreeMap;

use super::histogram::quantile_of_cumulative;

/// One sample line: metric name, labels in the order written, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's name (for histograms `_bucket`, `_sum`, `_count` included).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, when present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether every `(key, value)` of `wanted` is among its labels.
    pub fn has(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A parsed exposition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in text order.
    pub samples: Vec<Sample>,
    /// `# TYPE` of each family named.
    pub types: BTreeMap<String, String>,
}

/// A histogram read back: cumulative buckets, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedHistogram {
    /// `(le, cumulative count)`, ascending; the last is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: u64,
}

impl ParsedHistogram {
    /// The `q` quantile estimated from the buckets.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_of_cumulative(&self.buckets, q)
    }

    /// The mean observation.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

impl Exposition {
    /// Parses `text`; the error names the first malformed line.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = |message: String| format!("line {}: {message}: {line:?}", index + 1);
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if words.next() == Some("TYPE") {
                    let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                        return Err(at("a TYPE line needs a name and a type".into()));
                    };
                    exposition.types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            exposition.samples.push(parse_sample(line).map_err(at)?);
        }
        Ok(exposition)
    }

    /// The samples named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the first sample named `name` with all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.named(name).find(|s| s.has(labels)).map(|s| s.value)
    }

    /// The sum over every sample named `name` with all of `labels`.
    pub fn total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.named(name)
            .filter(|s| s.has(labels))
            .map(|s| s.value)
            .sum()
    }

    /// The histogram `name` of the series with all of `labels` (`None` without its `_count`).
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<ParsedHistogram> {
        let count = self.value(&format!("{name}_count"), labels)?;
        let sum = self.value(&format!("{name}_sum"), labels).unwrap_or(0.0);
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, u64)> = self
            .named(&bucket)
            .filter(|s| s.has(labels))
            .filter_map(|s| Some((parse_value(s.label("le")?).ok()?, s.value as u64)))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(ParsedHistogram {
            buckets,
            sum,
            count: count as u64,
        })
    }

    /// The distinct values of label `key` among samples named `name`, in first-seen order.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for sample in self.named(name) {
            if let Some(value) = sample.label(key) {
                if !values.iter().any(|v| v == value) {
                    values.push(value.to_string());
                }
            }
        }
        values
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("`{name}` is not a metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("a sample needs a value")?)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("`{timestamp}` is not a timestamp"))?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the value".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

/// Parses `key="value",...}`, returning the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(tail) = text.strip_prefix('}') {
            return Ok((labels, tail));
        }
        let eq = text.find('=').ok_or("a label needs `=`")?;
        let key = text[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{key}` is not a label name"));
        }
        text = text[eq + 1..].trim_start();
        let mut chars = text.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label `{key}` needs a quoted value"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or(format!("label `{key}`'s value is not closed"))?;
        labels.push((key.to_string(), value));
        text = text[end..].trim_start();
        if let Some(tail) = text.strip_prefix(',') {
            text = tail;
        } else if !text.starts_with('}') {
            return Err("labels need `,` between them and `}` after them".into());
        }
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_escapes_and_histograms_are_read() {
        let text = "# HELP x_total Help with \\\\ and \\n.\n# TYPE x_total counter\n\
                    x_total{stream=\"a \\\"b\\\" \\\\ c\\nd\",sink=\"out\"} 12\n\
                    plain 1.5e-3 1700000000000\n\
                    # TYPE h histogram\n\
                    h_bucket{op=\"m\",le=\"0.5\"} 1\nh_bucket{op=\"m\",le=\"1\"} 3\n\
                    h_bucket{op=\"m\",le=\"+Inf\"} 4\nh_sum{op=\"m\"} 3.5\nh_count{op=\"m\"} 4\n\
                    nan NaN\n";
        let e = Exposition::parse(text).unwrap();
        assert_eq!(e.types["x_total"], "counter");
        let x = e.named("x_total").next().unwrap();
        assert_eq!(x.label("stream"), Some("a \"b\" \\ c\nd"));
        assert_eq!(e.value("x_total", &[("sink", "out")]), Some(12.0));
        assert_eq!(e.value("plain", &[]), Some(1.5e-3));
        let h = e.histogram("h", &[("op", "m")]).unwrap();
        assert_eq!(h.count, 4);
        assert_eq!(h.buckets, vec![(0.5, 1), (1.0, 3), (f64::INFINITY, 4)]);
        assert_eq!(h.quantile(0.5), Some(0.75));
        assert!(e.value("nan", &[]).unwrap().is_nan());
    }

    #[test]
    fn malformed_lines_are_located() {
        let err = Exposition::parse("ok 1\nbad{a=\"x} 2\n").unwrap_err();
        assert!(
            err.starts_with("line 2: label `a`'s value is not closed"),
            "{err}"
        );
        let err = Exposition::parse("# TYPE\n").unwrap_err();
        assert!(err.starts_with("line 1: a TYPE line"), "{err}");
        let err = Exposition::parse("x one\n").unwrap_err();
        assert!(err.contains("`one` is not a number"), "{err}");
        let err = Exposition::parse("9x 1\n").unwrap_err();
        assert!(err.contains("not a metric name"), "{err}");
    }
}
