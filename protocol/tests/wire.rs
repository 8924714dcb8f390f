//! Frames end to end: encoding, the accumulator, decoding, and what every kind of damage gives.

use bertq_protocol::*;

fn sample_request(id: u32, text: &str) -> Request<'_> {
    Request {
        id,
        body: RequestBody::Infer(InferRequest {
            text,
            options: InferOptions {
                top_k: 3,
                aggregation: Aggregation::Simple,
                truncate: false,
            },
        }),
    }
}

fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    let n = encode_frame(msg, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Splits a byte stream into messages with an accumulator fed in `chunk`-byte pieces.
fn split(stream: &[u8], chunk: usize, cap: usize) -> Vec<Result<Vec<u8>, String>> {
    let mut acc = Accumulator::new(vec![0u8; cap]);
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (item, r) = acc.feed(rest);
            rest = r;
            match item {
                Some(Item::Frame(f)) => out.push(Ok(f.to_vec())),
                Some(other) => out.push(Err(format!("{other:?}"))),
                None => {}
            }
        }
    }
    out
}

#[test]
fn frame_layout_is_as_documented() {
    let req = Request {
        id: 5,
        body: RequestBody::Health,
    };
    let frame = encode(&req);
    // Independent construction: marker, version, postcard (id varint 5, variant 2), CRC-32 LE,
    // COBS-encoded by the reference `cobs` crate, between two delimiters.
    let mut payload = vec![0u8, VERSION, 5, 2];
    let crc = crc32fast::hash(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let mut expected = vec![0u8];
    expected.extend(cobs::encode_vec(&payload));
    expected.push(0);
    assert_eq!(frame, expected);
    assert_eq!(frame[1], FRAME_START);
    assert!(frame.len() <= max_encoded_len(2));
}

#[test]
fn requests_and_replies_round_trip() {
    let texts = ["", "héllo wörld", &"x\u{0}y".repeat(200), "🙂 emoji"];
    for (i, text) in texts.iter().enumerate() {
        let req = sample_request(i as u32 + 1, text);
        let mut frame = encode(&req);
        let n = frame.len();
        let inner = &mut frame[1..n - 1];
        let msg = decode_frame(inner).unwrap();
        assert_eq!(decode_request(msg).unwrap(), req);
    }

    let entities = [
        Entity {
            entity_group: "GIVEN_NAME",
            score: 0.984_149_6,
            word: "Maria",
            start: 8,
            end: 13,
            index: 0,
        },
        Entity {
            entity_group: "EMAIL",
            score: 0.5,
            word: "m@x.org",
            start: 30,
            end: 37,
            index: 9,
        },
    ];
    // `Map` (as the device builds replies) and `Slice` encode identically.
    let get = |i: usize| entities[i];
    let reply = Response {
        id: 9,
        body: ResponseBody::Infer(InferReply {
            tokens: 12,
            total_tokens: 40,
            truncated: true,
            result: TaskResult::Entities(Seq::Map { len: 2, get: &get }),
        }),
    };
    let frame = encode(&reply);
    let same = encode(&Response {
        id: 9,
        body: ResponseBody::Infer(InferReply {
            tokens: 12,
            total_tokens: 40,
            truncated: true,
            result: TaskResult::Entities(Seq::Slice(&entities)),
        }),
    });
    assert_eq!(frame, same);
    let mut frame = frame;
    let n = frame.len();
    let msg = decode_frame(&mut frame[1..n - 1]).unwrap();
    let decoded = decode_response(msg).unwrap();
    assert_eq!(decoded, reply);
    let ResponseBody::Infer(r) = decoded.body else {
        panic!("not an infer reply")
    };
    let TaskResult::Entities(Seq::Owned(v)) = r.result else {
        panic!("not entities")
    };
    assert_eq!(v, entities);

    let labels = ["O", "B-X"];
    let codes = [ErrorCount {
        code: ErrorCode::Busy,
        count: 3,
    }];
    let buckets = [0u64; HISTOGRAM_BUCKETS];
    for body in [
        ResponseBody::Info(InfoReply {
            model: "m",
            task: Task::SequenceClassification { multi_label: true },
            labels: Seq::Slice(&labels),
            max_sequence_length: 128,
            kernels: "neon",
            version: "0.1.0",
            protocol_version: VERSION,
            workers: 2,
            queue_capacity: 8,
            max_frame: 16384,
            device: None,
        }),
        ResponseBody::Info(InfoReply {
            model: "",
            task: Task::Unavailable,
            labels: Seq::Slice(&[]),
            max_sequence_length: 128,
            kernels: "dotprod",
            version: "0.1.0",
            protocol_version: VERSION,
            workers: 1,
            queue_capacity: 0,
            max_frame: 16384,
            device: Some(DeviceInfo {
                board: "virt",
                ram_bytes: 30 << 20,
                arena_bytes: 8 << 20,
                arena_used: 0,
                arena_max_seq: 128,
                model_source: "0x04000000",
                model_error: Some("the file's CRC-32 does not match"),
                cores: 1,
            }),
        }),
        ResponseBody::Health(HealthReply {
            ok: true,
            uptime_ms: 5,
            queue_depth: 1,
            in_flight: 2,
        }),
        ResponseBody::Metrics(MetricsReply {
            uptime_ms: 1,
            requests: 10,
            inferences: 7,
            errors: Seq::Slice(&codes),
            latency_p50_us: 100,
            latency_p90_us: 200,
            latency_p99_us: 300,
            latency_buckets: Seq::Slice(&buckets),
            queue_depth: 0,
            queue_capacity: 8,
            max_queue_depth: 3,
            in_flight: 0,
            connections: 4,
            connections_rejected: 0,
        }),
        ResponseBody::Error(ErrorReply {
            code: ErrorCode::TextTooLong,
            message: "too long",
        }),
        ResponseBody::Infer(InferReply {
            tokens: 2,
            total_tokens: 2,
            truncated: false,
            result: TaskResult::Embedding(Seq::Slice(&[0.25, -1.0, f32::MIN_POSITIVE])),
        }),
    ] {
        let reply = Response { id: 77, body };
        let mut frame = encode(&reply);
        let n = frame.len();
        let msg = decode_frame(&mut frame[1..n - 1]).unwrap();
        // (Compared through Debug: the decoded reply borrows the frame.)
        assert_eq!(
            format!("{:?}", decode_response(msg).unwrap()),
            format!("{reply:?}")
        );
    }
}

#[test]
fn encode_fails_cleanly_when_the_buffer_is_small() {
    let req = sample_request(1, "some text that needs room");
    let full = encode(&req).len();
    for cap in 0..full {
        let mut out = vec![0u8; cap];
        assert!(encode_frame(&req, &mut out).is_err(), "cap {cap}");
    }
    let mut out = vec![0u8; full];
    assert_eq!(encode_frame(&req, &mut out).unwrap(), full);
}

#[test]
fn every_single_bit_flip_is_detected() {
    let req = sample_request(42, "Call 555-867-5309 now");
    let frame = encode(&req);
    for byte in 0..frame.len() {
        for bit in 0..8 {
            let mut damaged = frame.clone();
            damaged[byte] ^= 1 << bit;
            for mut f in split(&damaged, 7, 256).into_iter().flatten() {
                {
                    // A flip inside the frame must never decode to a request. (A flip of the
                    // leading delimiter leaves the frame itself intact.)
                    match decode_frame(&mut f) {
                        Ok(msg) => assert!(
                            byte == 0 && decode_request(msg) == Ok(req.clone()),
                            "flip {byte}.{bit} decoded: {:?}",
                            decode_request(msg)
                        ),
                        Err(e) => assert!(matches!(
                            e.code(),
                            ErrorCode::CrcMismatch | ErrorCode::BadFrame
                        )),
                    }
                }
            }
        }
    }
}

#[test]
fn garbage_and_dropped_bytes_lose_only_the_damaged_frame() {
    let frames: Vec<Vec<u8>> = (1..=20)
        .map(|i| encode(&sample_request(i, &"abc ".repeat(i as usize))))
        .collect();
    let mut stream = Vec::new();
    let mut damaged = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        match i % 4 {
            0 => stream.extend_from_slice(f),
            1 => {
                // Garbage (without delimiters) before the frame.
                stream.extend_from_slice(b"\xde\xad{\x01\xbe\xef");
                stream.extend_from_slice(f);
            }
            2 => {
                // A dropped byte in the middle.
                let mut g = f.clone();
                g.remove(f.len() / 2);
                stream.extend_from_slice(&g);
                damaged.push(i as u32 + 1);
            }
            _ => {
                stream.extend_from_slice(f);
                stream.extend_from_slice(b"\n\r  ");
            }
        }
    }
    for chunk in [1, 2, 5, 64, stream.len()] {
        let mut ids = Vec::new();
        for mut f in split(&stream, chunk, 1024).into_iter().flatten() {
            {
                if let Ok(msg) = decode_frame(&mut f) {
                    let req = decode_request(msg).unwrap();
                    let RequestBody::Infer(inf) = &req.body else {
                        panic!()
                    };
                    assert_eq!(inf.text, "abc ".repeat(req.id as usize));
                    ids.push(req.id);
                }
            }
        }
        let expected: Vec<u32> = (1..=20).filter(|i| !damaged.contains(i)).collect();
        assert_eq!(ids, expected, "chunk {chunk}");
    }
}

#[test]
fn bad_payloads_get_precise_codes() {
    // A frame around arbitrary message bytes.
    fn frame_of(message: &[u8], version: u8) -> Vec<u8> {
        let mut payload = vec![0u8, version];
        payload.extend_from_slice(message);
        let crc = crc32fast::hash(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        cobs::encode_vec(&payload)
    }
    // Unknown message type 9 with id 300 (varint 0xac 0x02).
    let mut f = frame_of(&[0xac, 0x02, 9], VERSION);
    let e = decode_request(decode_frame(&mut f).unwrap()).unwrap_err();
    assert_eq!((e.code, e.id), (ErrorCode::UnknownMessage, 300));
    // Infer with invalid UTF-8 text.
    let mut f = frame_of(&[7, 0, 2, 0xff, 0xfe, 1, 0, 1], VERSION);
    let e = decode_request(decode_frame(&mut f).unwrap()).unwrap_err();
    assert_eq!((e.code, e.id), (ErrorCode::InvalidUtf8, 7));
    // Truncated message.
    let mut f = frame_of(&[7, 0, 20, b'a'], VERSION);
    let e = decode_request(decode_frame(&mut f).unwrap()).unwrap_err();
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, 7));
    // Trailing bytes.
    let mut f = frame_of(&[8, 1, 99], VERSION);
    let e = decode_request(decode_frame(&mut f).unwrap()).unwrap_err();
    assert_eq!((e.code, e.id), (ErrorCode::BadRequest, 8));
    // Another version, a missing marker, too short, not COBS.
    let mut f = frame_of(&[8, 1], VERSION + 1);
    assert_eq!(decode_frame(&mut f), Err(FrameError::Version(VERSION + 1)));
    let mut payload = vec![5u8, VERSION, 8, 1];
    let crc = crc32fast::hash(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let mut f = cobs::encode_vec(&payload);
    assert_eq!(decode_frame(&mut f), Err(FrameError::Marker));
    assert_eq!(decode_frame(&mut [1, 1, 1]), Err(FrameError::TooShort));
    assert_eq!(decode_frame(&mut [0x09, 1, 2]), Err(FrameError::Cobs));
    assert_eq!(decode_frame(&mut []), Err(FrameError::Cobs));
}

#[test]
fn random_frames_never_panic() {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let good = encode(&sample_request(3, "hello there"));
    for _ in 0..20000 {
        let mut f = good[1..good.len() - 1].to_vec();
        // Mutate a few bytes, sometimes truncate.
        for _ in 0..(next() % 4) {
            let i = next() as usize % f.len();
            f[i] = next() as u8;
        }
        if next() % 3 == 0 {
            f.truncate(next() as usize % (f.len() + 1));
        }
        if let Ok(msg) = decode_frame(&mut f) {
            let _ = decode_request(msg);
            let _ = decode_response(msg);
        }
        // Also arbitrary bytes as a message, with a valid frame around them.
        let len = next() as usize % 24;
        let msg: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_request(&msg);
        let _ = decode_response(&msg);
    }
}

/// The requests and results added for long inputs, question answering and fill-mask round-trip;
/// `Text::Written` strings are formatted into the frame and decode as plain strings.
#[test]
fn stride_answer_and_fill_mask_messages_round_trip() {
    let requests = [
        RequestBody::InferStride(StrideRequest {
            text: "a long text",
            options: InferOptions::default(),
            stride: 128,
        }),
        RequestBody::Answer(AnswerRequest {
            question: "Où vit Zoë ?",
            context: "Zoë vit à Zürich.",
            options: AnswerOptions {
                top_k: 3,
                doc_stride: Some(64),
                max_answer_len: 10,
                handle_impossible_answer: true,
            },
        }),
    ];
    for (i, body) in requests.into_iter().enumerate() {
        let req = Request {
            id: 10 + i as u32,
            body,
        };
        let mut frame = encode(&req);
        let n = frame.len();
        let message = decode_frame(&mut frame[1..n - 1]).unwrap();
        assert_eq!(decode_request(message).unwrap(), req);
    }
    // Discriminants are appended: the old ones keep their numbers.
    let mut frame = encode(&Request {
        id: 1,
        body: RequestBody::Answer(AnswerRequest {
            question: "q",
            context: "c",
            options: AnswerOptions::default(),
        }),
    });
    let n = frame.len();
    let message = decode_frame(&mut frame[1..n - 1]).unwrap();
    assert_eq!(&message[..2], &[1, 5]);

    let answers = [Answer {
        score: 0.5,
        start: 10,
        end: 16,
        answer: "Zürich",
    }];
    let write = |i: usize, f: &mut core::fmt::Formatter<'_>| write!(f, "token {i} \"é\"");
    let get = |i: usize| MaskCandidate {
        mask: (i / 2) as u16,
        score: 0.25,
        token: i as u32,
        token_str: Text::Written {
            write: &write,
            index: i,
        },
        sequence: Text::Str("the sequence"),
    };
    for result in [
        TaskResult::Answers(Seq::Slice(&answers)),
        TaskResult::FillMask(Seq::Map { len: 4, get: &get }),
    ] {
        let reply = Response {
            id: 3,
            body: ResponseBody::Infer(InferReply {
                tokens: 9,
                total_tokens: 9,
                truncated: false,
                result,
            }),
        };
        let mut frame = encode(&reply);
        let n = frame.len();
        let message = decode_frame(&mut frame[1..n - 1]).unwrap();
        let back = decode_response(message).unwrap();
        let ResponseBody::Infer(i) = back.body else {
            panic!("an inference")
        };
        match i.result {
            TaskResult::Answers(a) => assert_eq!(a.iter().collect::<Vec<_>>(), answers),
            TaskResult::FillMask(c) => {
                let c: Vec<_> = c.iter().collect();
                assert_eq!(c.len(), 4);
                assert_eq!(c[3].mask, 1);
                assert_eq!(c[3].token_str, Text::Str("token 3 \"é\""));
                assert_eq!(c[3].sequence, Text::Str("the sequence"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn entity_requests_and_redacted_replies_round_trip() {
    let req = Request {
        id: 4,
        body: RequestBody::InferEntities(EntityRequest {
            text: "Maria, 10.0.0.1",
            options: InferOptions {
                aggregation: Aggregation::Pii,
                ..InferOptions::default()
            },
            stride: Some(16),
            entities: EntityOptions {
                threshold: Some(0.75),
                redact: true,
            },
        }),
    };
    let mut frame = encode(&req);
    let n = frame.len();
    let message = decode_frame(&mut frame[1..n - 1]).unwrap();
    // Appended after the eight earlier requests (the last, `Auth`): discriminant 8.
    assert_eq!(&message[..2], &[4, 8]);
    assert_eq!(decode_request(message).unwrap(), req);
    // Aggregations keep their numbers; the new ones follow.
    let names: Vec<&str> = Aggregation::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(
        names,
        ["simple", "none", "first", "average", "max", "span", "pii", "compat", "default"]
    );
    let write = |_: usize, f: &mut core::fmt::Formatter<'_>| write!(f, "[GIVEN_NAME], é");
    let reply = Response {
        id: 4,
        body: ResponseBody::Infer(InferReply {
            tokens: 7,
            total_tokens: 7,
            truncated: false,
            result: TaskResult::Redacted(Text::Written {
                write: &write,
                index: 0,
            }),
        }),
    };
    let mut frame = encode(&reply);
    let n = frame.len();
    let message = decode_frame(&mut frame[1..n - 1]).unwrap();
    let ResponseBody::Infer(i) = decode_response(message).unwrap().body else {
        panic!("an inference")
    };
    assert_eq!(i.result, TaskResult::Redacted(Text::Str("[GIVEN_NAME], é")));
}
