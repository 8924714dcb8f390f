//! Printing results: JSON in Hugging Face pipeline shapes, and the `info` report.

use bertq_runtime::format::{Pooling, TaskHead};
use bertq_runtime::heads::{fill_mask, json};
use bertq_runtime::tokenizer::Token;
use bertq_runtime::{Aggregation, MemorySizes, Model, Output, TaskOutput};

pub fn task_name(t: TaskHead) -> &'static str {
    match t {
        TaskHead::Embedding { .. } => "sentence embedding (BertModel)",
        TaskHead::SequenceClassification { multi_label: false } => {
            "text classification (BertForSequenceClassification)"
        }
        TaskHead::SequenceClassification { multi_label: true } => {
            "multi-label text classification (BertForSequenceClassification)"
        }
        TaskHead::TokenClassification => "token classification / NER (BertForTokenClassification)",
        TaskHead::FillMask => "fill-mask (BertForMaskedLM)",
        TaskHead::PooledClassification { .. } => {
            "text classification (sentence embedding + linear classifier)"
        }
        TaskHead::QuestionAnswering => "extractive question answering (BertForQuestionAnswering)",
    }
}

/// The task's result as one JSON value: `[{"label","score"}]` (top k), `[{"entity_group",
/// "score","word","start","end"}]`, or the embedding as an array.
/// With aggregation `none`, entities are tokens: `{"entity","score","index","word","start","end"}`.
pub fn task_json(
    model: &Model<'_>,
    text: &str,
    out: &Output<'_>,
    top_k: usize,
    aggregation: Aggregation,
) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_task(&mut s, model, text, out, top_k, aggregation);
    s
}

fn write_task(
    s: &mut String,
    model: &Model<'_>,
    text: &str,
    out: &Output<'_>,
    top_k: usize,
    aggregation: Aggregation,
) -> std::fmt::Result {
    match &out.task {
        TaskOutput::Classification { scores, ranking } => {
            s.push('[');
            for (i, &id) in ranking.iter().take(top_k.max(1)).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let label = model.labels.get(id as usize).unwrap_or("");
                json::write_label_score(s, label, scores[id as usize])?;
            }
            s.push(']');
        }
        TaskOutput::Entities(entities) => {
            s.push('[');
            for (i, e) in entities.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let word = text
                    .get(e.byte_start as usize..e.byte_end as usize)
                    .unwrap_or("");
                let name = model.entity_type(e, aggregation);
                if aggregation == Aggregation::None {
                    json::write_token_entity(s, name, e.score, e.index, word, e.start, e.end)?;
                } else {
                    json::write_entity(s, name, e.score, word, e.start, e.end)?;
                }
            }
            s.push(']');
        }
        TaskOutput::Embedding(v) => json::write_f32_array(s, v)?,
        TaskOutput::FillMask {
            top_k,
            positions,
            ids,
            scores,
        } => write_fill_mask(s, model, out.tokens, *top_k, positions, ids, scores)?,
        // `text` is the context.
        TaskOutput::Answers(answers) => json::write_answers(s, answers, text)?,
    }
    Ok(())
}

/// `--redact`: the text with every entity replaced by `[TYPE]` (token classification), else
/// the task's JSON.
pub fn redacted(
    model: &Model<'_>,
    text: &str,
    out: &Output<'_>,
    top_k: usize,
    aggregation: Aggregation,
) -> String {
    let TaskOutput::Entities(entities) = &out.task else {
        return task_json(model, text, out, top_k, aggregation);
    };
    let mut s = String::new();
    let name = |e: &bertq_runtime::heads::Entity| model.entity_type(e, aggregation);
    let _ = bertq_runtime::pii::write_redacted(&mut s, text, entities, &name);
    s
}

/// The fill-mask pipeline's shape (see [`fill_mask::write_json`], shared with the server).
fn write_fill_mask(
    s: &mut String,
    model: &Model<'_>,
    tokens: &[Token],
    top_k: usize,
    positions: &[u32],
    ids: &[u32],
    scores: &[f32],
) -> std::fmt::Result {
    let vocab = model.tokenizer.vocab();
    let settings = model.tokenizer.settings();
    fill_mask::write_json(s, vocab, settings, tokens, top_k, positions, ids, scores)
}

/// `{"input_ids": [...], "tokens": [...], "offsets": [[start, end], ...]}` (character offsets).
pub fn tokenize_json(model: &Model<'_>, tokens: &[Token]) -> String {
    let vocab = model.tokenizer.vocab();
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    let strs: Vec<&str> = tokens
        .iter()
        .map(|t| vocab.token(t.id).unwrap_or(""))
        .collect();
    let offsets: Vec<[u32; 2]> = tokens.iter().map(|t| [t.start, t.end]).collect();
    serde_json::json!({ "input_ids": ids, "tokens": strs, "offsets": offsets }).to_string()
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn info_text(model: &Model<'_>, source: &str, file_len: usize, max_seq: usize) -> String {
    let c = model.config();
    let h = &model.file.header;
    let t = &h.tokenizer;
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<18}{v}\n"));
    line("model", format!("{} ({source})", h.name));
    line("source", h.source.to_string());
    line("task", task_name(h.task).to_string());
    if let TaskHead::Embedding { pooling, normalize }
    | TaskHead::PooledClassification { pooling, normalize } = h.task
    {
        let p = match pooling {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        };
        line(
            "pooling",
            format!("{p}{}", if normalize { ", L2-normalised" } else { "" }),
        );
    }
    line(
        "encoder",
        format!(
            "{} layers x {} hidden, {} heads, FFN {}, {:?}, max {} positions",
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.intermediate_size,
            c.activation,
            c.max_position_embeddings
        ),
    );
    line(
        "parameters",
        format!("{:.1} M", model.parameter_count() as f64 / 1e6),
    );
    line(
        "tokenizer",
        format!(
            "WordPiece, {} tokens, lowercase {}, strip accents {}, CJK split {}",
            model.tokenizer.vocab().len(),
            t.lowercase,
            t.strip_accents,
            t.handle_chinese_chars
        ),
    );
    if !model.labels.is_empty() {
        let labels: Vec<&str> = model.labels.iter().collect();
        line("labels", format!("{}: {}", labels.len(), labels.join(", ")));
    }
    line("file size", mb(file_len));
    // Sized as `bertq serve` sizes a worker: windows of `seq` tokens over inputs of up to its
    // default --max-input-tokens.
    let max_input = bertq_boards::serve::DEFAULT_MAX_INPUT_TOKENS;
    for seq in [128.min(max_seq), max_seq] {
        let m = MemorySizes::for_model_input(model, seq, max_input, 1);
        line(&format!("session @ {seq}"), mb(m.bytes()));
        if seq == max_seq {
            break;
        }
    }
    line(
        "windowed input",
        format!(
            "up to {max_input} tokens in the sessions above (`bertq serve --max-input-tokens`; \
             `bertq run` defaults to 4096)"
        ),
    );
    line("kernels", bertq_runtime::kernels::select().name.to_string());
    s
}
