//! Shared test support: `mod support;` from an integration test or benchmark.

#[allow(dead_code)]
pub mod fake_server;

#[allow(dead_code)]
pub mod sandbox;
