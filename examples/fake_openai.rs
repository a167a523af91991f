//! The test suite's fake OpenAI Images server as a program, for benchmarks and manual tries:
//! prints its base URL, then serves until standard input closes.
//!
//! cargo run --release --example fake_openai [-- EVENT_DELAY_MS [LATENCY_MS]]
//!
//! Answers like the real API (streams when asked, pictures at the requested size), with
//! EVENT_DELAY_MS between streamed events and LATENCY_MS before each answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/fake_server.rs"]
#[allow(dead_code)]
mod fake_server;

use std::io::Read;
use std::time::Duration;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let event_delay = Duration::from_millis(args.first().copied().unwrap_or(0));
    let latency = Duration::from_millis(args.get(1).copied().unwrap_or(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = fake_server::FakeServer::start().await;
        server.set_real_sizes(true);
        server.set_latency(latency, latency);
        server.set_default(fake_server::Reply::auto().with_event_delay(event_delay));
        println!("{}", server.base_url());
        // Serve until the parent closes our standard input.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        eprintln!("fake_openai: {} requests served", server.request_count());
    });
}
