//! easel: a terminal studio for AI image generation.
//!
//! The library holds everything; `src/main.rs` only hands the command line over. See
//! docs/architecture.md for how the pieces fit.

// `ApiError` carries everything a server said (message, type, param, code, status, request id):
// results are large on the rare failure path, which is not worth a box on every call.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod backend;
pub mod budget;
pub mod catalog;
pub mod cli;
pub mod colour;
pub mod config;
pub mod cost;
pub mod generation;
pub mod picture;
pub mod plan;
pub mod queue;
pub mod runs;
pub mod sanitize;
pub mod secret;
pub mod service;
pub mod setup;
pub mod store;
pub mod studio;
pub mod symbols;
pub mod termcaps;
pub mod thumbs;
