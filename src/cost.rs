//! What a generation costs, from the usage a server reported (tokens × the catalogue's
//! prices), and where a cost figure came from. Estimates before sending are the catalogue's
//! (`catalog::estimate_cost`); this module joins the catalogue and the API's answers.

use crate::api::Usage;
use crate::catalog::ModelSpec;
use serde::{Deserialize, Serialize};

/// Where a cost figure comes from: the usage the server reported, the catalogue's estimate, or
/// nothing at all (the demo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostBasis {
    Usage,
    Estimate,
    Demo,
}

impl CostBasis {
    /// Which basis `generation::cost` used for a result with this `usage`.
    pub fn of(spec: Option<&ModelSpec>, usage: Option<&Usage>, demo: bool) -> Self {
        if demo {
            CostBasis::Demo
        } else if usage.is_some() && spec.is_some_and(|s| s.pricing.image_output_per_m.is_some()) {
            CostBasis::Usage
        } else {
            CostBasis::Estimate
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CostBasis::Usage => "usage",
            CostBasis::Estimate => "estimate",
            CostBasis::Demo => "demo",
        }
    }
}

/// Cost from the usage a server reported: tokens × the model's prices.
pub fn cost_from_usage(spec: &ModelSpec, usage: &Usage) -> Option<f64> {
    let p = &spec.pricing;
    let out = p.image_output_per_m?;
    let (text_in, image_in) = match &usage.input_tokens_details {
        Some(d) => (d.text_tokens.unwrap_or(0), d.image_tokens.unwrap_or(0)),
        None => (usage.input_tokens.unwrap_or(0), 0),
    };
    let output = usage.output_tokens.unwrap_or(0);
    Some(
        (text_in as f64 * p.text_input_per_m.unwrap_or(0.0)
            + image_in as f64 * p.image_input_per_m.unwrap_or(0.0)
            + output as f64 * out)
            / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn cost_basis_says_where_the_figure_comes_from() {
        let c = Catalog::builtin();
        let usage = Usage::default();
        let g2 = c.get("gpt-image-2");
        assert_eq!(CostBasis::of(g2, Some(&usage), false), CostBasis::Usage);
        assert_eq!(CostBasis::of(g2, None, false), CostBasis::Estimate);
        assert_eq!(CostBasis::of(g2, Some(&usage), true), CostBasis::Demo);
        // dall-e-3 has per-image prices only: a usage block cannot price it.
        let d3 = c.get("dall-e-3");
        assert_eq!(CostBasis::of(d3, Some(&usage), false), CostBasis::Estimate);
    }
}
