//! Load generator for `bertq serve` (used by scripts/bench_serve.sh).
//!
//! - `serve_bench unix SOCKET CLIENTS REQUESTS`: CLIENTS concurrent connections, each sending
//!   REQUESTS inferences one after another; prints throughput and latency percentiles as JSON.
//! - `serve_bench pty BERTQ BAUD REQUESTS`: starts `BERTQ serve --serial` on a new pseudo-terminal
//!   at BAUD and measures request round trips over it.

use bertq_boards::client::{Client, Stream};
use bertq_protocol::InferOptions;
use std::time::{Duration, Instant};

const TEXT: &str = "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.";

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: serve_bench unix SOCKET CLIENTS REQUESTS | pty BERTQ BAUD REQUESTS";
    match args.get(1).map(String::as_str) {
        Some("unix") if args.len() == 5 => {
            let sock = std::path::PathBuf::from(&args[2]);
            let clients: usize = args[3].parse().expect(usage);
            let requests: usize = args[4].parse().expect(usage);
            // Warm the connection path once.
            let mut c = Client::connect_unix(&sock, Duration::from_secs(60)).unwrap();
            c.infer(TEXT, InferOptions::default()).unwrap().unwrap();
            let start = Instant::now();
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    let sock = sock.clone();
                    std::thread::spawn(move || {
                        let mut c = Client::connect_unix(&sock, Duration::from_secs(60)).unwrap();
                        let mut lat = Vec::with_capacity(requests);
                        let mut busy = 0;
                        for _ in 0..requests {
                            let t = Instant::now();
                            match c.infer(TEXT, InferOptions::default()).unwrap() {
                                Ok(_) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                                Err(_) => busy += 1,
                            }
                        }
                        (lat, busy)
                    })
                })
                .collect();
            let mut all = Vec::new();
            let mut busy = 0;
            for h in handles {
                let (l, b) = h.join().unwrap();
                all.extend(l);
                busy += b;
            }
            let secs = start.elapsed().as_secs_f64();
            all.sort_by(f64::total_cmp);
            println!(
                "{}",
                serde_json::json!({
                    "transport": "unix", "clients": clients, "requests": clients * requests,
                    "errors": busy, "seconds": secs,
                    "throughput_rps": all.len() as f64 / secs,
                    "p50_ms": pct(&all, 0.5), "p99_ms": pct(&all, 0.99),
                })
            );
        }
        Some("pty") if args.len() == 5 => {
            let bertq = &args[2];
            let baud: u32 = args[3].parse().expect(usage);
            let requests: usize = args[4].parse().expect(usage);
            let p = nix::pty::openpty(None, None).expect("openpty");
            let path = nix::unistd::ttyname(&p.slave).unwrap();
            let mut server = std::process::Command::new(bertq)
                .args([
                    "serve",
                    "--workers",
                    "1",
                    "--baud",
                    &baud.to_string(),
                    "--serial",
                ])
                .arg(&path)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let master = std::fs::File::from(p.master);
            bertq_boards::serve::serial::make_raw(&master, baud).ok();
            let mut c = Client::new(Stream::Serial(master), Duration::from_secs(10), 0).unwrap();
            // Wait for the server (it warms up first).
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Ok(_)) = c.infer(TEXT, InferOptions::default()) {
                    break;
                }
                assert!(Instant::now() < deadline, "the server did not answer");
            }
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                c.infer(TEXT, InferOptions::default()).unwrap().unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let _ = server.kill();
            let _ = server.wait();
            drop(p.slave);
            lat.sort_by(f64::total_cmp);
            // Bytes on the wire, both ways, for a real UART at this baud (10 bits a byte, 8N1).
            let (req, reply) = (c.last_request_bytes, c.last_reply_bytes);
            let wire_ms = (req + reply) as f64 * 10.0 / baud as f64 * 1e3;
            println!(
                "{}",
                serde_json::json!({
                    "transport": "pty", "baud": baud, "requests": requests,
                    "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99),
                    "request_bytes": req, "reply_bytes": reply,
                    "uart_wire_ms": wire_ms,
                })
            );
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
