//! The device program's library: the server (`bertq serve`), the host client (`bertq client`),
//! board profiles and `bertq doctor`. `main.rs` is the command line around it.

pub mod client;
pub mod doctor;
pub mod profiles;
pub mod serve;

use bertq_runtime::Model;

/// The session length to use: `requested` if it is in range, else the model's maximum.
pub fn session_length(model: &Model<'_>, requested: Option<usize>) -> Result<usize, String> {
    let max = model.max_sequence_length();
    match requested {
        None => Ok(max),
        Some(n) if (2..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "--max-length {n} is out of range (2..={max} for this model)"
        )),
    }
}
