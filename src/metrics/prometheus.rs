//! Prometheus text exposition (format 0.0.4): counters, gauges and latency summaries.
//!
//! Names and label names are checked against the format's grammar; label values and help
//! text are escaped, so whatever a caller passes, the output parses.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::latency::Summary;
use crate::error::{Code, Error, Result};

/// The type line of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One line of a counter or gauge family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A counter or gauge family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// A summary family of latencies: each sample becomes `name{labels,quantile="…"}` lines
/// (in seconds) plus `name_sum` and `name_count`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryFamily {
    pub name: String,
    pub help: String,
    pub samples: Vec<(Vec<(String, String)>, Summary)>,
}

/// Renders the families, counters and gauges first, in the order given.
pub fn render(families: &[Family], summaries: &[SummaryFamily]) -> Result<String> {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for f in families {
        header(&mut out, &mut seen, &f.name, &f.help, kind_str(f.kind))?;
        for s in &f.samples {
            line(&mut out, &f.name, &s.labels, None, s.value)?;
        }
    }
    for f in summaries {
        header(&mut out, &mut seen, &f.name, &f.help, "summary")?;
        let sum = format!("{}_sum", f.name);
        let count = format!("{}_count", f.name);
        for (labels, s) in &f.samples {
            for (q, v) in [("0.5", s.p50_ms), ("0.95", s.p95_ms), ("0.99", s.p99_ms)] {
                // As the Prometheus clients do: a quantile of no observations is NaN.
                let v = if s.count == 0 { f64::NAN } else { v / 1e3 };
                line(&mut out, &f.name, labels, Some(q), v)?;
            }
            line(&mut out, &sum, labels, None, s.sum_ms / 1e3)?;
            line(&mut out, &count, labels, None, s.count as f64)?;
        }
    }
    Ok(out)
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    }
}

fn header(
    out: &mut String,
    seen: &mut HashSet<String>,
    name: &str,
    help: &str,
    kind: &str,
) -> Result<()> {
    check_name(name, true)?;
    if !seen.insert(name.to_string()) {
        return Err(invalid(format!("metric family `{name}` appears twice")));
    }
    let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Ok(())
}

fn line(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    quantile: Option<&str>,
    value: f64,
) -> Result<()> {
    out.push_str(name);
    if !labels.is_empty() || quantile.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels {
            check_name(k, false)?;
            if k == "quantile" && quantile.is_some() {
                return Err(invalid(
                    "label `quantile` is reserved in a summary".to_string(),
                ));
            }
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape(v, true));
        }
        if let Some(q) = quantile {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "quantile=\"{q}\"");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    out.push('\n');
    Ok(())
}

/// Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names: the same without `:`, not `__…`.
fn check_name(name: &str, metric: bool) -> Result<()> {
    let ok_char = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) => ok_char(c, true) && chars.all(|c| ok_char(c, false)),
        None => false,
    };
    if !valid || (!metric && name.starts_with("__")) {
        let what = if metric { "metric" } else { "label" };
        return Err(invalid(format!(
            "`{name}` is not a valid Prometheus {what} name"
        )));
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::new(Code::InvalidArgument, message)
}

/// Help text escapes `\` and newlines; label values also escape `"`.
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_counters_gauges_and_summaries() {
        let fams = vec![
            Family {
                name: "x_hits_total".into(),
                help: "Hits.\nPer tier \\ kind".into(),
                kind: Kind::Counter,
                samples: vec![
                    Sample {
                        labels: labels(&[("tier", "l1")]),
                        value: 3.0,
                    },
                    Sample {
                        labels: labels(&[("tier", "l\"2\n")]),
                        value: 0.5,
                    },
                ],
            },
            Family {
                name: "x_bytes".into(),
                help: "B".into(),
                kind: Kind::Gauge,
                samples: vec![Sample {
                    labels: vec![],
                    value: f64::NAN,
                }],
            },
        ];
        let sums = vec![SummaryFamily {
            name: "x_latency_seconds".into(),
            help: "Latency.".into(),
            samples: vec![(
                labels(&[("tier", "l1")]),
                Summary {
                    count: 4,
                    sum_ms: 2.0,
                    mean_ms: 0.5,
                    p50_ms: 0.5,
                    p95_ms: 1.0,
                    p99_ms: 1.5,
                    max_ms: 2.0,
                },
            )],
        }];
        let text = render(&fams, &sums).unwrap();
        let expected = "\
# HELP x_hits_total Hits.\\nPer tier \\\\ kind
# TYPE x_hits_total counter
x_hits_total{tier=\"l1\"} 3
x_hits_total{tier=\"l\\\"2\\n\"} 0.5
# HELP x_bytes B
# TYPE x_bytes gauge
x_bytes NaN
# HELP x_latency_seconds Latency.
# TYPE x_latency_seconds summary
x_latency_seconds{tier=\"l1\",quantile=\"0.5\"} 0.0005
x_latency_seconds{tier=\"l1\",quantile=\"0.95\"} 0.001
x_latency_seconds{tier=\"l1\",quantile=\"0.99\"} 0.0015
x_latency_seconds_sum{tier=\"l1\"} 0.002
x_latency_seconds_count{tier=\"l1\"} 4
";
        assert_eq!(text, expected);
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        let fam = |name: &str, label: &str| Family {
            name: name.into(),
            help: String::new(),
            kind: Kind::Gauge,
            samples: vec![Sample {
                labels: labels(&[(label, "v")]),
                value: 1.0,
            }],
        };
        assert!(render(&[fam("ok:name_1", "tier")], &[]).is_ok());
        for (n, l) in [
            ("1bad", "tier"),
            ("", "tier"),
            ("a-b", "tier"),
            ("ok", "a:b"),
            ("ok", "__x"),
        ] {
            let e = render(&[fam(n, l)], &[]).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{n} {l}");
        }
        let e = render(&[fam("a", "t"), fam("a", "t")], &[]).unwrap_err();
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn empty_summary_has_nan_quantiles() {
        let sums = vec![SummaryFamily {
            name: "s".into(),
            help: String::new(),
            samples: vec![(vec![], Summary::default())],
        }];
        let text = render(&[], &sums).unwrap();
        assert!(text.contains("s{quantile=\"0.5\"} NaN\n"), "{text}");
        assert!(text.contains("s_count 0\n"), "{text}");
    }

    #[test]
    fn infinities() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(1e21), "1000000000000000000000");
        assert_eq!(number(-0.25), "-0.25");
    }
}
