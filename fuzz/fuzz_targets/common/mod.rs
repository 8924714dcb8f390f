//! What the model targets share: the mode byte and a table CRC-32.

use bertq_runtime::format::PREAMBLE_LEN;
use bertq_runtime::ModelBytes;

/// The model bytes for `data`: its first byte is a mode, odd = rewrite the file length and
/// CRC-32 after mutation, so that mutations reach the header, the tensor table and the tensors
/// (as a damaged file with a valid checksum would); even = the bytes as they are.
pub fn model_bytes(data: &[u8]) -> Option<ModelBytes> {
    let (&mode, rest) = data.split_first()?;
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= PREAMBLE_LEN {
        let len = bytes.len() as u64;
        bytes[16..24].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&bytes[PREAMBLE_LEN..]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    Some(ModelBytes::copy_from(&bytes))
}

/// CRC-32 (IEEE), a byte at a time from a table.
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        core::array::from_fn(|i| {
            (0..8).fold(i as u32, |c, _| {
                (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg())
            })
        })
    });
    !data.iter().fold(!0u32, |crc, &b| {
        (crc >> 8) ^ table[((crc ^ b as u32) & 0xff) as usize]
    })
}
