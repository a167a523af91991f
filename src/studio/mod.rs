//! The studio: the interactive terminal interface.
//!
//! Elm-style: terminal events, scheduler events and store results become [`msg::Msg`]s; one pure
//! [`update::update`] changes the [`model::Model`] and returns [`msg::Effect`]s; the
//! [`runtime`] hands effects to the scheduler, the store and the preview worker; [`view::view`]
//! draws the model, one file per pane. See docs/architecture.md.

pub mod compare;
pub mod gallery;
pub mod help;
pub mod input;
pub mod keymap;
pub mod layout;
pub mod lineage;
pub mod mask;
pub mod model;
pub mod msg;
pub mod notify;
pub mod params;
pub mod preview;
pub mod run_grid;
pub mod run_state;
pub mod runs;
pub mod runtime;
pub mod state;
pub mod strip;
pub mod update;
pub mod view;
pub mod viewer;
