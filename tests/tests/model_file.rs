//! Every way a model file can be wrong is a typed error, never a panic: truncation at every
//! section boundary, flipped bytes, wrong magic or version, and (with a valid checksum)
//! corrupted headers, missing tensors and inconsistent shapes.

use bertq_quantize::WeightPrecision;
use bertq_runtime::format::{LoadError, ModelFile, PREAMBLE_LEN};
use bertq_runtime::{Model, ModelBytes, Session};
use bertq_tests::convert;
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};

fn small_model() -> Vec<u8> {
    let config = RandomConfig {
        num_hidden_layers: 2,
        hidden_size: 64,
        num_attention_heads: 2,
        intermediate_size: 128,
        vocab_size: 300,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(
        dir.path(),
        &config,
        3,
        Some(RandomHead::TokenClassification { labels: 5 }),
    );
    convert(dir.path(), WeightPrecision::Int8).to_vec()
}

fn load(bytes: &[u8]) -> Result<(), LoadError> {
    let aligned = ModelBytes::copy_from(bytes);
    let model = Model::load(&aligned)?;
    // A model that loads must also run without panicking.
    if let Ok(mut session) = Session::with_owned_memory(&model, 16) {
        for text in ["hello world", "tok7 tok8 [MASK]", ""] {
            let _ = session.run(text);
        }
    }
    Ok(())
}

/// Rewrites the checksum so that corruption reaches the deeper validation.
fn fix_checksum(bytes: &mut [u8]) {
    let crc = crc32(&bytes[PREAMBLE_LEN..]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[test]
fn the_intact_file_loads() {
    load(&small_model()).unwrap();
}

#[test]
fn truncation_at_every_section_boundary_is_an_error() {
    let bytes = small_model();
    let aligned = ModelBytes::copy_from(&bytes);
    let file = ModelFile::parse(&aligned).unwrap();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut cuts = vec![
        0,
        1,
        7,
        8,
        12,
        16,
        24,
        28,
        31,
        32,
        PREAMBLE_LEN + header_len / 2,
        PREAMBLE_LEN + header_len,
    ];
    for e in file.entries() {
        cuts.push(e.offset as usize);
        cuts.push((e.offset + e.len / 2) as usize);
        cuts.push((e.offset + e.len) as usize - 1);
    }
    cuts.retain(|&c| c < bytes.len());
    assert!(cuts.len() > 100);
    for cut in cuts {
        let err = load(&bytes[..cut]).expect_err("a truncated file must not load");
        assert!(
            matches!(
                err,
                LoadError::TooShort { .. } | LoadError::Truncated { .. } | LoadError::BadMagic
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn flipped_bytes_are_detected_by_the_checksum() {
    let bytes = small_model();
    let step = (bytes.len() / 2000).max(1);
    let mut positions: Vec<usize> = (PREAMBLE_LEN..bytes.len()).step_by(step).collect();
    positions.extend(PREAMBLE_LEN..PREAMBLE_LEN + 256);
    for pos in positions {
        let mut corrupt = bytes.clone();
        corrupt[pos] ^= 0x10;
        let err = load(&corrupt).expect_err("a flipped byte must be detected");
        assert!(
            matches!(err, LoadError::ChecksumMismatch { .. }),
            "byte {pos}: {err}"
        );
    }
}

#[test]
fn wrong_magic_and_version_are_named() {
    let bytes = small_model();
    let mut m = bytes.clone();
    m[0] = b'X';
    assert_eq!(load(&m), Err(LoadError::BadMagic));
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        load(&v),
        Err(LoadError::UnsupportedVersion { found: 2, .. })
    ));
    let msg = load(&v).unwrap_err().to_string();
    assert!(msg.contains("version 2"), "{msg}");
}

/// Corruption behind a valid checksum: every byte of the header and tensor table flipped in
/// turn, and random garbage, must give an error or a model that runs, never a panic.
#[test]
fn corrupted_headers_with_valid_checksums_never_panic() {
    let bytes = small_model();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut errors = 0;
    for pos in PREAMBLE_LEN..PREAMBLE_LEN + header_len {
        for flip in [0x01u8, 0x80] {
            let mut corrupt = bytes.clone();
            corrupt[pos] ^= flip;
            fix_checksum(&mut corrupt);
            errors += usize::from(load(&corrupt).is_err());
        }
    }
    println!("{errors} of {} header corruptions rejected", 2 * header_len);
    assert!(
        errors > header_len,
        "most header corruptions must be rejected"
    );
    // Garbage header lengths.
    for len in [0u32, 1, 5, u32::MAX, (bytes.len() as u32).wrapping_mul(3)] {
        let mut corrupt = bytes.clone();
        corrupt[12..16].copy_from_slice(&len.to_le_bytes());
        fix_checksum(&mut corrupt);
        assert!(load(&corrupt).is_err(), "header length {len}");
    }
}

#[test]
fn missing_tensors_and_wrong_shapes_are_named() {
    use bertq_runtime::format::{names, HeaderInfo, ModelWriter};
    let bytes = small_model();
    let aligned = ModelBytes::copy_from(&bytes);
    let file = ModelFile::parse(&aligned).unwrap();
    let info = HeaderInfo {
        name: "x".into(),
        source: "test".into(),
        config: file.header.config,
        tokenizer: file.header.tokenizer,
        task: file.header.task,
    };
    let rebuild = |skip: &str, reshape: Option<&str>| {
        let mut w = ModelWriter::new();
        for e in file.entries() {
            if e.name == skip {
                continue;
            }
            let t = file.tensor(e.name).unwrap();
            let mut shape: Vec<usize> = e.shape.iter().map(|&d| d as usize).collect();
            if reshape == Some(e.name) {
                // Same bytes, transposed shape.
                shape.reverse();
            }
            use bertq_runtime::format::{DType, Layout};
            match (e.dtype, e.layout) {
                (DType::I8, Layout::RowMajor) => w.add_i8(e.name, &shape, t.i8s().unwrap()),
                (DType::I8, layout) => {
                    w.add_i8_packed(e.name, layout, shape[0], shape[1], t.i8s().unwrap())
                }
                (DType::F32, _) => w.add_f32(e.name, &shape, t.f32s().unwrap()),
                (DType::U8, _) => w.add_u8(e.name, &shape, t.u8s().unwrap()),
                (DType::U32, _) => w.add_u32(e.name, &shape, t.u32s().unwrap()),
                (DType::I32, _) => w.add_i32(e.name, &shape, t.i32s().unwrap()),
                (DType::F16, _) => w.add_f16_bits(e.name, &shape, t.f16_bits().unwrap()),
            }
        }
        w.to_bytes(&info)
    };
    // Rebuilding everything gives a loadable file (the writer round-trips).
    load(&rebuild("", None)).unwrap();
    let name = "encoder.layer.1.intermediate.dense.weight";
    match load(&rebuild(name, None)) {
        Err(LoadError::MissingTensor { name: n }) => assert_eq!(n.as_str(), name),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let table = "embeddings.word_embeddings.weight";
    match load(&rebuild("", Some(table))) {
        Err(LoadError::WrongTensor { name: n, .. }) => assert_eq!(n.as_str(), table),
        other => panic!("expected WrongTensor, got {other:?}"),
    }
    assert!(matches!(
        load(&rebuild(names::VOCAB_INDEX, None)),
        Err(LoadError::MissingTensor { .. })
    ));
}

/// The x86 VNNI kernels correct their unsigned activations with the stored row sums: a file
/// whose checksum is valid but whose sums (or weights) disagree must not load, or it would
/// answer differently on x86 than on ARM.
#[test]
fn weights_that_disagree_with_their_row_sums_are_named() {
    let bytes = small_model();
    let aligned = ModelBytes::copy_from(&bytes);
    let file = ModelFile::parse(&aligned).unwrap();
    let sums = file
        .entries()
        .find(|e| e.name.ends_with(".row_sums"))
        .expect("the quantizer stores row sums for packed weights");
    let weight_name = sums.name.replace(".row_sums", ".weight");
    let weight = file
        .entries()
        .find(|e| e.name == weight_name.as_str())
        .unwrap();
    let (sums_at, weight_at) = (sums.offset as usize, weight.offset as usize);

    // A row sum off by one.
    let mut corrupt = bytes.clone();
    corrupt[sums_at] = corrupt[sums_at].wrapping_add(1);
    fix_checksum(&mut corrupt);
    let err = load(&corrupt).expect_err("a wrong row sum must not load");
    assert!(
        matches!(&err, LoadError::WrongTensor { name, .. } if name.as_str() == sums.name),
        "{err}"
    );
    // A weight changed under its row sum.
    let mut corrupt = bytes.clone();
    corrupt[weight_at] = corrupt[weight_at].wrapping_add(1);
    fix_checksum(&mut corrupt);
    let err = load(&corrupt).expect_err("a changed weight must not load");
    assert!(
        matches!(&err, LoadError::WrongTensor { name, .. } if name.as_str() == sums.name),
        "{err}"
    );
}
