//! easel: a terminal studio for AI image generation.
//!
//! The library holds everything; `src/main.rs` only hands the command line over. See
//! docs/architecture.md for how the pieces fit.

pub mod api;
pub mod backend;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod generation;
pub mod queue;
pub mod sanitize;
pub mod store;
pub mod studio;
pub mod secret;
