//! Evaluation data: JSON / JSON Lines objects, CoNLL files, or plain text lines.
//!
//! JSON (one document: an array of objects, or an object with a `sentences`, `examples` or
//! `data` array) or JSON Lines (one object per line). Each object has `text` and, by task:
//! - sequence classification: `label` (name or id);
//! - token classification: `entities` / `spans`, each `{start, end, label | entity_group |
//!   entity | type}` with character offsets (end exclusive; `B-`/`I-` prefixes are ignored),
//!   or word-level `tokens` (or `words`) with `tags` (or `ner_tags`, string tags);
//! - embeddings: optionally `embedding`, a reference vector (e.g. from sentence-transformers).
//!
//! Any other file is text: CoNLL for token classification (one token per line, its tag last,
//! blank lines between sentences, `-DOCSTART-` skipped), `label<TAB>text` lines for sequence
//! classification, one text per line for embeddings.

use crate::QuantizeError;
use serde_json::Value;
use std::path::Path;

/// A reference entity in character offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub label: String,
    pub start: usize,
    pub end: usize,
}

/// A gold label: a name or an id.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Name(String),
    Id(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    None,
    Label(Label),
    Spans(Vec<Span>),
    /// Word-level tags (`text` is the words joined by single spaces).
    Words {
        words: Vec<String>,
        tags: Vec<String>,
    },
    Embedding(Vec<f32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub gold: Gold,
}

/// The task the data is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataTask {
    SequenceClassification,
    TokenClassification,
    Embedding,
}

pub fn load(path: &Path, task: DataTask) -> Result<Vec<Example>, QuantizeError> {
    let text = std::fs::read_to_string(path).map_err(|e| QuantizeError::io(path, e))?;
    parse(&text, task).map_err(|m| QuantizeError::Invalid(format!("{}: {m}", path.display())))
}

pub fn parse(text: &str, task: DataTask) -> Result<Vec<Example>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let objects: Vec<Value> = match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Object(o)) => {
                match ["sentences", "examples", "data"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_array))
                {
                    Some(a) => a.clone(),
                    None => vec![Value::Object(o)],
                }
            }
            Ok(_) => return Err("expected JSON objects".into()),
            Err(_) => text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
                .collect::<Result<_, _>>()?,
        };
        return objects
            .iter()
            .enumerate()
            .map(|(i, o)| object(o, task).map_err(|m| format!("example {}: {m}", i + 1)))
            .collect();
    }
    Ok(match task {
        DataTask::TokenClassification => conll(text)?,
        DataTask::SequenceClassification => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match l.split_once('\t') {
                Some((label, t)) => Example {
                    text: t.to_string(),
                    gold: Gold::Label(label_of(label)),
                },
                None => Example {
                    text: l.to_string(),
                    gold: Gold::None,
                },
            })
            .collect(),
        DataTask::Embedding => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Example {
                text: l.to_string(),
                gold: Gold::None,
            })
            .collect(),
    })
}

fn label_of(s: &str) -> Label {
    match s.trim().parse::<usize>() {
        Ok(i) => Label::Id(i),
        Err(_) => Label::Name(s.trim().to_string()),
    }
}

fn strip_bio(l: &str) -> String {
    l.strip_prefix("B-")
        .or_else(|| l.strip_prefix("I-"))
        .unwrap_or(l)
        .to_string()
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("`{what}` is not an array"))?
        .iter()
        .map(|t| {
            t.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{what}` holds a non-string"))
        })
        .collect()
}

fn object(o: &Value, task: DataTask) -> Result<Example, String> {
    let words = o.get("tokens").or_else(|| o.get("words"));
    let tags = o.get("tags").or_else(|| o.get("ner_tags"));
    if let (Some(w), Some(t), DataTask::TokenClassification) = (words, tags, task) {
        let (words, tags) = (strings(w, "tokens")?, strings(t, "tags")?);
        if words.len() != tags.len() {
            return Err(format!("{} tokens but {} tags", words.len(), tags.len()));
        }
        return Ok(Example {
            text: words.join(" "),
            gold: Gold::Words { words, tags },
        });
    }
    let text = o
        .get("text")
        .and_then(Value::as_str)
        .ok_or("no `text`")?
        .to_string();
    let gold = match task {
        DataTask::SequenceClassification => match o.get("label") {
            Some(Value::String(s)) => Gold::Label(Label::Name(s.clone())),
            Some(Value::Number(n)) => Gold::Label(Label::Id(
                n.as_u64().ok_or("`label` is not a label id")? as usize,
            )),
            Some(_) => return Err("`label` is neither a name nor an id".into()),
            None => Gold::None,
        },
        DataTask::TokenClassification => match o.get("entities").or_else(|| o.get("spans")) {
            Some(v) => {
                let arr = v.as_array().ok_or("`entities` is not an array")?;
                let mut spans = Vec::new();
                for e in arr {
                    let label = ["label", "entity_group", "entity", "type"]
                        .iter()
                        .find_map(|k| e.get(*k).and_then(Value::as_str))
                        .ok_or("an entity without `label`")?;
                    let pos = |k: &str| {
                        e.get(k)
                            .and_then(Value::as_u64)
                            .map(|v| v as usize)
                            .ok_or_else(|| format!("an entity without `{k}`"))
                    };
                    let (start, end) = (pos("start")?, pos("end")?);
                    if end < start {
                        return Err(format!("entity end {end} before start {start}"));
                    }
                    spans.push(Span {
                        label: strip_bio(label),
                        start,
                        end,
                    });
                }
                Gold::Spans(spans)
            }
            None => Gold::None,
        },
        DataTask::Embedding => match o.get("embedding") {
            Some(v) => Gold::Embedding(
                v.as_array()
                    .ok_or("`embedding` is not an array")?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .map(|f| f as f32)
                            .ok_or("`embedding` holds a non-number")
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => Gold::None,
        },
    };
    Ok(Example { text, gold })
}

/// CoNLL: `token ... tag` per line, sentences separated by blank lines.
fn conll(text: &str) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    let (mut words, mut tags) = (Vec::new(), Vec::new());
    let mut flush = |words: &mut Vec<String>, tags: &mut Vec<String>| {
        if !words.is_empty() {
            out.push(Example {
                text: words.join(" "),
                gold: Gold::Words {
                    words: std::mem::take(words),
                    tags: std::mem::take(tags),
                },
            });
        }
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("-DOCSTART-") {
            flush(&mut words, &mut tags);
            continue;
        }
        let mut fields = line.split_whitespace();
        let word = fields.next().unwrap_or_default();
        let tag = fields
            .next_back()
            .ok_or_else(|| format!("line {}: `{line}` has no tag", i + 1))?;
        words.push(word.to_string());
        tags.push(tag.to_string());
    }
    flush(&mut words, &mut tags);
    Ok(out)
}

/// Character offsets of each word in `words.join(" ")`.
pub fn word_offsets(words: &[String]) -> Vec<(usize, usize)> {
    let mut at = 0;
    words
        .iter()
        .map(|w| {
            let n = w.chars().count();
            let span = (at, at + n);
            at += n + 1;
            span
        })
        .collect()
}
