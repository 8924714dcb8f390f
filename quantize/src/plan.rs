//! Precision planning before conversion: static activation scales from calibration, and the
//! sensitivity analysis that picks the Linear layers `--keep-float N` keeps in floating point.

use crate::calibrate::{self, Observer};
use crate::report::data::DataTask;
use crate::report::sensitivity::{self, Sensitivity};
use crate::{ConvertOptions, Input, QuantizeError, WeightPrecision};
use bertq_runtime::format::TaskHead;
use bertq_runtime::{Model, ModelBytes};

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Static activation scales chosen by this observer (else dynamic per-row quantization).
    pub observer: Option<Observer>,
    /// Keep the N most sensitive Linear layers in floating point.
    pub keep_float: usize,
    /// Keep the fewest most sensitive Linears such that the single-layer hidden-state errors of
    /// those left in int8 sum to at most this (combined with `keep_float`: the larger set).
    pub error_budget: Option<f64>,
    /// Run the sensitivity analysis even without `keep_float` (for its per-layer error table).
    pub sensitivity: bool,
    /// The calibration set.
    pub texts: Vec<String>,
    pub texts_name: String,
    pub progress: bool,
}

/// What the precision decisions were based on.
#[derive(Debug, Clone)]
pub struct Plan {
    pub observer: Option<Observer>,
    pub sensitivity: Option<Sensitivity>,
    pub texts: usize,
    pub texts_name: String,
}

/// The evaluation data task of a model's head (`None` for fill-mask and question answering).
pub fn data_task(task: TaskHead) -> Option<DataTask> {
    match task {
        TaskHead::Embedding { .. } => Some(DataTask::Embedding),
        TaskHead::SequenceClassification { .. } | TaskHead::PooledClassification { .. } => {
            Some(DataTask::SequenceClassification)
        }
        TaskHead::TokenClassification => Some(DataTask::TokenClassification),
        TaskHead::FillMask | TaskHead::QuestionAnswering => None,
    }
}

fn invalid(s: impl Into<String>) -> QuantizeError {
    QuantizeError::Invalid(s.into())
}

/// Calibrates (if `p.observer`) and ranks the Linear layers (if `p.keep_float > 0` or
/// `p.sensitivity`) on `p.texts`; fills `opts.input_scales` and extends `opts.keep_float` with
/// the `p.keep_float` most sensitive layers.
pub fn plan_precision(
    input: &Input,
    p: &PlanOptions,
    opts: &mut ConvertOptions,
) -> Result<Plan, QuantizeError> {
    let mut plan = Plan {
        observer: p.observer,
        sensitivity: None,
        texts: p.texts.len(),
        texts_name: p.texts_name.clone(),
    };
    if let Some(Observer::Percentile(q)) = p.observer {
        if !(q > 0.0 && q <= 100.0) {
            return Err(invalid(format!("percentile {q} is not in (0, 100]")));
        }
    }
    if let Some(b) = p.error_budget {
        if !(b >= 0.0 && b.is_finite()) {
            return Err(invalid(format!(
                "error budget {b} is not a finite number >= 0"
            )));
        }
    }
    let want_sensitivity = p.keep_float > 0 || p.sensitivity || p.error_budget.is_some();
    if opts.precision != WeightPrecision::Int8 {
        if p.observer.is_some()
            || p.keep_float > 0
            || p.error_budget.is_some()
            || !opts.keep_float.is_empty()
        {
            return Err(invalid(
                "static activations and --keep-float apply to int8 models only",
            ));
        }
        return Ok(plan);
    }
    if p.observer.is_none() && !want_sensitivity {
        return Ok(plan);
    }
    let task = data_task(input.spec.task);
    if want_sensitivity && task.is_none() {
        return Err(invalid(
            "the sensitivity analysis needs a task with an output metric (not fill-mask); \
             name layers with --keep-float-layer instead",
        ));
    }
    if p.texts.is_empty() {
        return Err(invalid("no calibration texts"));
    }
    let ref_opts = ConvertOptions {
        precision: WeightPrecision::F32,
        ..Default::default()
    };
    let ref_bytes = ModelBytes::copy_from(&input.convert(&ref_opts)?.bytes);
    let reference = Model::load(&ref_bytes).map_err(|e| invalid(e.to_string()))?;
    if let Some(o) = p.observer {
        opts.input_scales =
            calibrate::calibrate(&reference, &p.texts, o, 512, p.progress).map_err(invalid)?;
    }
    if let (true, Some(task)) = (want_sensitivity, task) {
        let int8_opts = ConvertOptions {
            keep_float: Vec::new(),
            ..opts.clone()
        };
        let int8_bytes = ModelBytes::copy_from(&input.convert(&int8_opts)?.bytes);
        let int8 = Model::load(&int8_bytes).map_err(|e| invalid(e.to_string()))?;
        let sens = sensitivity::analyze(&reference, &int8, &p.texts, task, 512, p.progress)
            .map_err(invalid)?;
        let n = match p.error_budget {
            Some(budget) => p.keep_float.max(sens.keep_for_budget(budget)),
            None => p.keep_float,
        };
        for name in sens.most_sensitive(n) {
            if !opts.keep_float.contains(&name) {
                opts.keep_float.push(name);
            }
        }
        plan.sensitivity = Some(sens);
    }
    Ok(plan)
}
