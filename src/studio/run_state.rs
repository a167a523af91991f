//! The state of a run shown as a labelled grid (issue 14): the run, its records in run order,
//! where each goes (`runs::layout`) and the selected cell. Apart from `run_grid` (its keys and
//! geometry), so the model can hold it without the two depending on each other.

use crate::runs::layout::{self, Layout, Mark};
use crate::store::{GenerationRecord, Id, Status};

/// The run grid's state.
#[derive(Debug, Clone, PartialEq)]
pub struct RunGrid {
    pub run: Id,
    /// The record it was opened from: the selection starts on its cell.
    pub from: Option<Id>,
    /// The run's records in run order; None until they are read.
    pub records: Option<Vec<GenerationRecord>>,
    /// Where each record goes (positions in `records`).
    pub layout: Layout,
    pub page: usize,
    pub row: usize,
    pub col: usize,
}

impl RunGrid {
    pub fn new(run: Id, from: Option<Id>) -> RunGrid {
        RunGrid {
            run,
            from,
            records: None,
            layout: layout::layout(&[]),
            page: 0,
            row: 0,
            col: 0,
        }
    }

    /// What the selected cell shows.
    pub fn mark(&self, page: usize, row: usize, col: usize) -> Mark {
        let records = self.records.as_deref().unwrap_or_default();
        layout::mark(self.layout.cell(page, row, col), |i| {
            records
                .get(i)
                .is_some_and(|r| r.status == Status::Succeeded && !r.outputs.is_empty())
        })
    }

    /// The record of a cell: the one that made an image, else the first (failed) one.
    pub fn record(&self, page: usize, row: usize, col: usize) -> Option<&GenerationRecord> {
        let i = match self.mark(page, row, col) {
            Mark::Done(i) | Mark::Failed(i) => i,
            Mark::Missing => return None,
        };
        self.records.as_ref()?.get(i)
    }

    pub fn selected(&self) -> Option<&GenerationRecord> {
        self.record(self.page, self.row, self.col)
    }

    /// How many jobs the run has (as its records say).
    pub fn of(&self) -> u32 {
        self.records
            .as_ref()
            .and_then(|r| r.first())
            .and_then(|r| r.run.as_ref())
            .map_or(0, |i| i.of)
    }
}
