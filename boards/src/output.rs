//! Printing results: JSON in Hugging Face pipeline shapes, and the `info` report.

use bertq_runtime::format::{Pooling, TaskHead};
use bertq_runtime::heads::json;
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

/// The task's result as one JSON value, as [`json::write_output`] writes it (shared with the C
/// library, `capi/`): `[{"label","score"}]` (top k), `[{"entity_group","score","word","start",
/// "end"}]`, or the embedding as an array.
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
    let _ = json::write_output(&mut s, model, text, out, top_k, aggregation);
    s
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
    // Names and labels come from the file: escape anything a terminal would interpret.
    use bertq_boards::printable;
    line(
        "model",
        format!("{} ({})", printable(h.name), printable(source)),
    );
    line("source", printable(h.source).into_owned());
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
        line(
            "labels",
            format!("{}: {}", labels.len(), printable(&labels.join(", "))),
        );
    }
    line("file size", mb(file_len));
    // Sized as `bertq serve` sizes a worker: windows of `seq` tokens over inputs of up to its
    // default --max-input-tokens.
    let max_input = bertq_boards::serve::DEFAULT_MAX_INPUT_TOKENS;
    for seq in [128.min(max_seq), max_seq] {
        let m = MemorySizes::checked(model, seq, max_input, 1);
        let size = m.map_or_else(|e| e.to_string(), |m| mb(m.bytes()));
        line(&format!("session @ {seq}"), size);
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
