//! Where generations are kept: image files on disk (this issue) and, later, the history store.

pub mod files;

pub use files::{ImageFiles, SavedImage};
