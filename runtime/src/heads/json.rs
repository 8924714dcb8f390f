//! Allocation-free JSON output in Hugging Face pipeline shapes, written to any `fmt::Write`.

use super::Aggregation;
use crate::model::Model;
use crate::session::{Output, TaskOutput};
use core::fmt::{self, Write};

/// Writes `s` as a JSON string literal.
pub fn write_str<W: Write>(w: &mut W, s: &str) -> fmt::Result {
    w.write_char('"')?;
    write_str_content(w, s)?;
    w.write_char('"')
}

/// The inside of a JSON string literal for `s` (escaped, without the quotes), so that one
/// string can be written in pieces.
pub fn write_str_content<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                write!(w, "\\u{:04x}", c as u32)?
            }
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

/// Writes a float as a JSON number (`null` for NaN or infinity, which JSON cannot express).
pub fn write_f32<W: Write>(w: &mut W, x: f32) -> fmt::Result {
    if x.is_finite() {
        write!(w, "{x}")
    } else {
        w.write_str("null")
    }
}

/// `{"label": ..., "score": ...}`
pub fn write_label_score<W: Write>(w: &mut W, label: &str, score: f32) -> fmt::Result {
    w.write_str("{\"label\":")?;
    write_str(w, label)?;
    w.write_str(",\"score\":")?;
    write_f32(w, score)?;
    w.write_char('}')
}

/// `{"entity_group": ..., "score": ..., "word": ..., "start": ..., "end": ...}`
pub fn write_entity<W: Write>(
    w: &mut W,
    group: &str,
    score: f32,
    word: &str,
    start: u32,
    end: u32,
) -> fmt::Result {
    w.write_str("{\"entity_group\":")?;
    write_str(w, group)?;
    w.write_str(",\"score\":")?;
    write_f32(w, score)?;
    w.write_str(",\"word\":")?;
    write_str(w, word)?;
    write!(w, ",\"start\":{start},\"end\":{end}}}")
}

/// The question-answering pipeline's `{"score": ..., "start": ..., "end": ..., "answer": ...}`.
pub fn write_answer<W: Write>(
    w: &mut W,
    score: f32,
    start: u32,
    end: u32,
    answer: &str,
) -> fmt::Result {
    w.write_str("{\"score\":")?;
    write_f32(w, score)?;
    write!(w, ",\"start\":{start},\"end\":{end},\"answer\":")?;
    write_str(w, answer)?;
    w.write_char('}')
}

/// Question-answering answers (`context` is the text they point into) as the pipeline returns
/// them: one answer as an object, otherwise a list.
pub fn write_answers<W: Write>(w: &mut W, answers: &[super::Entity], context: &str) -> fmt::Result {
    let one = answers.len() == 1;
    if !one {
        w.write_char('[')?;
    }
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        let text = context
            .get(a.byte_start as usize..a.byte_end as usize)
            .unwrap_or("");
        write_answer(w, a.score, a.start, a.end, text)?;
    }
    if !one {
        w.write_char(']')?;
    }
    Ok(())
}

/// `{"entity": ..., "score": ..., "index": ..., "word": ..., "start": ..., "end": ...}`
/// (aggregation `none`: one token).
pub fn write_token_entity<W: Write>(
    w: &mut W,
    tag: &str,
    score: f32,
    index: u32,
    word: &str,
    start: u32,
    end: u32,
) -> fmt::Result {
    w.write_str("{\"entity\":")?;
    write_str(w, tag)?;
    w.write_str(",\"score\":")?;
    write_f32(w, score)?;
    write!(w, ",\"index\":{index},\"word\":")?;
    write_str(w, word)?;
    write!(w, ",\"start\":{start},\"end\":{end}}}")
}

/// `[x, y, ...]`
pub fn write_f32_array<W: Write>(w: &mut W, xs: &[f32]) -> fmt::Result {
    w.write_char('[')?;
    for (i, &x) in xs.iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        write_f32(w, x)?;
    }
    w.write_char(']')
}

/// The task's result as one JSON value, exactly as `bertq run` prints it (the line without its
/// newline): `[{"label","score"}]` (the best `top_k`, at least 1), `[{"entity_group","score",
/// "word","start","end"}]` (with aggregation `none`, tokens: `{"entity","score","index","word",
/// "start","end"}`), the embedding as an array, the fill-mask pipeline's candidates, or
/// question-answering answers (`text` is then the context). `text` is the text the output was
/// computed from (words are cut from it). Shared by `bertq run` and the C library.
pub fn write_output<W: Write>(
    w: &mut W,
    model: &Model<'_>,
    text: &str,
    out: &Output<'_>,
    top_k: usize,
    aggregation: Aggregation,
) -> fmt::Result {
    match &out.task {
        TaskOutput::Classification { scores, ranking } => {
            w.write_char('[')?;
            for (i, &id) in ranking.iter().take(top_k.max(1)).enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                let label = model.labels.get(id as usize).unwrap_or("");
                let score = scores.get(id as usize).copied().unwrap_or(f32::NAN);
                write_label_score(w, label, score)?;
            }
            w.write_char(']')
        }
        TaskOutput::Entities(entities) => {
            w.write_char('[')?;
            for (i, e) in entities.iter().enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                let word = text
                    .get(e.byte_start as usize..e.byte_end as usize)
                    .unwrap_or("");
                // The full tag with `none`; else the group, a recognizer's type or a PII
                // profile's name (`Model::entity_type`).
                let name = model.entity_type(e, aggregation);
                if aggregation == Aggregation::None {
                    write_token_entity(w, name, e.score, e.index, word, e.start, e.end)?;
                } else {
                    write_entity(w, name, e.score, word, e.start, e.end)?;
                }
            }
            w.write_char(']')
        }
        TaskOutput::Embedding(v) => write_f32_array(w, v),
        TaskOutput::FillMask {
            top_k,
            positions,
            ids,
            scores,
        } => super::fill_mask::write_json(
            w,
            model.tokenizer.vocab(),
            model.tokenizer.settings(),
            out.tokens,
            *top_k,
            positions,
            ids,
            scores,
        ),
        TaskOutput::Answers(answers) => write_answers(w, answers, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf<const N: usize>(heapless::String<N>);
    impl<const N: usize> Write for Buf<N> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push_str(s).map_err(|_| fmt::Error)
        }
    }

    #[test]
    fn escapes_strings() {
        let mut b = Buf::<64>(heapless::String::new());
        write_str(&mut b, "a\"b\\c\n\u{1}é").unwrap();
        assert_eq!(b.0.as_str(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn non_finite_is_null() {
        let mut b = Buf::<64>(heapless::String::new());
        write_f32_array(&mut b, &[1.5, f32::NAN, f32::INFINITY]).unwrap();
        assert_eq!(b.0.as_str(), "[1.5,null,null]");
    }
}
