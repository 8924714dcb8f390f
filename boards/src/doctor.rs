//! `bertq doctor`: what this machine is and whether a model fits it: detected CPU features, the
//! kernel table chosen, the board (from the device tree) and its profile, memory available and
//! what a server with N workers would take.

use crate::profiles::{self, Profile};
use bertq_runtime::kernels::Kernels;
use bertq_runtime::{MemorySizes, Model};
use std::fmt::Write as _;

#[derive(clap::Args, Debug, Clone)]
pub struct DoctorArgs {
    /// Check against a board profile (see --list-boards) instead of the detected one.
    #[arg(long)]
    pub board: Option<String>,
    /// List the board profiles.
    #[arg(long)]
    pub list_boards: bool,
    /// Print one field of a board's profile and exit (for scripts): target-cpu, uart, workers,
    /// kernels.
    #[arg(long, value_name = "FIELD", requires = "board")]
    pub print: Option<String>,
    /// Workers the server would run (default: the profile's recommendation).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Session length to check (default: the model's maximum).
    #[arg(long)]
    pub max_length: Option<usize>,
}

/// CPU features the kernels use: `(name, detected)`.
pub fn cpu_features() -> Vec<(&'static str, bool)> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        v.push(("avx2", std::arch::is_x86_feature_detected!("avx2")));
        v.push(("fma", std::arch::is_x86_feature_detected!("fma")));
        v.push(("avx512f", std::arch::is_x86_feature_detected!("avx512f")));
        v.push(("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")));
        v.push((
            "avx512vnni",
            std::arch::is_x86_feature_detected!("avx512vnni"),
        ));
        // AMX also needs the kernel's permission; the table is only usable when both hold.
        v.push(("amx-int8", bertq_runtime::kernels::by_name("amx").is_some()));
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.push(("neon", std::arch::is_aarch64_feature_detected!("neon")));
        v.push((
            "dotprod",
            std::arch::is_aarch64_feature_detected!("dotprod"),
        ));
        v.push(("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")));
        v.push(("fp16", std::arch::is_aarch64_feature_detected!("fp16")));
        v.push(("sve", std::arch::is_aarch64_feature_detected!("sve")));
    }
    v
}

/// `MemAvailable` and `MemTotal` from `/proc/meminfo`, in bytes.
pub fn memory() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("MemAvailable:")?, field("MemTotal:")?))
}

fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let get = |key: &str| {
        info.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    get("model name")
        .or_else(|| get("CPU part").map(|p| format!("ARM CPU part {p}")))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn mb(b: u64) -> String {
    if b >= 10_000_000_000 {
        format!("{:.1} GB", b as f64 / 1e9)
    } else {
        format!("{:.1} MB", b as f64 / 1e6)
    }
}

/// The board profiles as a table.
pub fn list_boards() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:<34} {:<11} {:<9} {:<14} {:>7}  RAM",
        "id", "cores", "target-cpu", "kernels", "uart", "workers"
    );
    for p in profiles::PROFILES {
        let ram: Vec<String> = p
            .ram_mb
            .iter()
            .map(|m| {
                if *m >= 1024 {
                    format!("{}G", m / 1024)
                } else {
                    format!("{m}M")
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "{:<12} {:<34} {:<11} {:<9} {:<14} {:>7}  {}",
            p.id,
            p.cores,
            p.target_cpu,
            p.kernels.split(' ').next().unwrap_or(""),
            p.uart,
            p.workers,
            ram.join("/")
        );
    }
    s
}

/// One field of a profile, for scripts.
pub fn profile_field(p: &Profile, field: &str) -> Result<String, String> {
    Ok(match field {
        "target-cpu" => p.target_cpu.to_string(),
        "uart" => p.uart.to_string(),
        "workers" => p.workers.to_string(),
        "kernels" => p.kernels.to_string(),
        "name" => p.name.to_string(),
        other => {
            return Err(format!(
                "--print {other}: expected target-cpu, uart, workers, kernels or name"
            ))
        }
    })
}

/// The report.
pub fn report(
    model: &Model<'_>,
    source: &str,
    file_len: usize,
    args: &DoctorArgs,
    kernels: &Kernels,
) -> Result<String, String> {
    let kernels_in_use = kernels.name;
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<14}{v}");
    };
    let dt = profiles::device_tree_model();
    let detected = dt.as_deref().and_then(profiles::match_device_tree);
    let profile = match &args.board {
        Some(id) => Some(
            profiles::by_id(id)
                .ok_or_else(|| format!("--board {id}: unknown (see bertq doctor --list-boards)"))?,
        ),
        None => detected,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    line(
        "cpu",
        format!("{} ({}, {cores} cores)", cpu_name(), std::env::consts::ARCH),
    );
    let feats = cpu_features();
    line(
        "features",
        feats
            .iter()
            .map(|(n, ok)| format!("{n} {}", if *ok { "yes" } else { "no" }))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let best = bertq_runtime::kernels::best().name;
    let available: Vec<&str> = bertq_runtime::kernels::ALL_NAMES
        .iter()
        .copied()
        .filter(|n| bertq_runtime::kernels::by_name(n).is_some())
        .collect();
    let forced = std::env::var(bertq_runtime::kernels::OVERRIDE_ENV).ok();
    line(
        "kernels",
        format!(
            "{kernels_in_use} in use (best for this CPU: {best}; {}={}); available: {}",
            bertq_runtime::kernels::OVERRIDE_ENV,
            forced.as_deref().unwrap_or("unset"),
            available.join(", ")
        ),
    );
    line(
        "board",
        match (&dt, detected) {
            (Some(m), Some(p)) => format!("{m} (profile {})", p.id),
            (Some(m), None) => format!("{m} (no profile matches: generic)"),
            (None, _) => "no device tree (not an embedded board?)".to_string(),
        },
    );
    let mut problems = Vec::new();
    if let Some(p) = profile {
        line(
            "profile",
            format!(
                "{} — {}: {}, kernels {}, UART {}, {} workers recommended",
                p.id, p.name, p.cores, p.kernels, p.uart, p.workers
            ),
        );
        // On the board itself, its features must be there.
        if detected == Some(p) {
            for f in p.features {
                if let Some((_, false)) = feats.iter().find(|(n, _)| n == f) {
                    problems.push(format!(
                        "the {} profile expects {f}, which this CPU does not report",
                        p.id
                    ));
                }
            }
        }
    }
    let max_seq = crate::session_length(model, args.max_length)?;
    // As `bertq serve` sizes its workers (windowed inputs up to its default limit).
    let max_input = crate::serve::DEFAULT_MAX_INPUT_TOKENS;
    let session = MemorySizes::checked(model, max_seq, max_input, 1)
        .map_err(|e| e.to_string())?
        .bytes() as u64;
    let workers = args
        .workers
        .or(profile.map(|p| p.workers as usize))
        .unwrap_or(2)
        .max(1) as u64;
    // `bertq serve` converts the weights to the table's own layout when it has one.
    let repack = model
        .repack_plan(kernels)
        .filter(|_| crate::repack_enabled());
    let need = profiles::server_bytes(file_len as u64, session, workers)
        .saturating_add(repack.map_or(0, |(_, len)| len as u64));
    line(
        "model",
        format!(
            "{} ({source}): file {} (mapped once, shared), session @ {max_seq} tokens {} per worker",
            crate::printable(model.name()),
            mb(file_len as u64),
            mb(session)
        ),
    );
    if let Some((layout, len)) = repack {
        line(
            "weights",
            format!(
                "converted at load to {layout:?} for the {} kernels: {} besides the file \
                 ({}=0 keeps the file's layout)",
                kernels.name,
                mb(len as u64),
                crate::REPACK_ENV
            ),
        );
    }
    line(
        "server needs",
        format!(
            "{}: {workers} workers x {} + the file{}",
            mb(need),
            mb(session),
            if repack.is_some() {
                " + the converted weights"
            } else {
                ""
            }
        ),
    );
    match memory() {
        Some((avail, total)) => {
            let fits = need <= avail;
            line(
                "memory",
                format!(
                    "{} available of {} — {}",
                    mb(avail),
                    mb(total),
                    if fits { "fits" } else { "DOES NOT FIT" }
                ),
            );
            if !fits {
                problems.push(format!(
                    "the server needs {} but only {} is available: use fewer --workers or a \
                     smaller --max-length",
                    mb(need),
                    mb(avail)
                ));
            }
        }
        None => line("memory", "unknown (no /proc/meminfo)".to_string()),
    }
    if let Some(p) = profile {
        for &ram in p.ram_mb {
            let budget = (ram as f64 * 1024.0 * 1024.0 * profiles::RAM_BUDGET) as u64;
            let verdict = if need <= budget { "fits" } else { "too big" };
            let shapes: Vec<String> = profiles::SHAPES
                .iter()
                .map(|sh| {
                    let n = profiles::server_bytes(
                        sh.file_bytes(),
                        sh.session_bytes(max_seq as u64),
                        p.workers as u64,
                    );
                    format!("{} {}", sh.name, if n <= budget { "yes" } else { "no" })
                })
                .collect();
            line(
                &format!("  {} MB", ram),
                format!(
                    "this model: {verdict}; at {max_seq} tokens x {} workers: {}",
                    p.workers,
                    shapes.join(", ")
                ),
            );
        }
    }
    if problems.is_empty() {
        line("verdict", "ok".to_string());
    } else {
        for p in &problems {
            line("problem", p.clone());
        }
    }
    Ok(s)
}
