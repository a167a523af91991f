//! Pictures printed by the commands: the code lives in [`crate::picture`], shared with the
//! studio's full view (which must not depend on `cli`).

pub use crate::picture::*;
