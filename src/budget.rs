//! Budgets (`[budget]`): whether what is about to be queued would pass the daily or monthly
//! budget, or is above the studio's confirmation threshold. Pure: the spend so far comes from
//! history (`store::Spend`), the estimate from the catalogue.

use crate::config::Budget;
use crate::store::SpendLine;

/// What has been spent so far, for the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub today: SpendLine,
    pub month: SpendLine,
}

/// A budget the estimate would pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    /// "daily" or "monthly".
    pub which: &'static str,
    pub limit: f64,
    /// Spent in that day or month so far.
    pub spent: SpendLine,
    pub estimate: f64,
}

impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = if self.which == "daily" {
            "today"
        } else {
            "this month"
        };
        write!(
            f,
            "the {} budget is ${:.2}: {} spent {when} + ≈ ${:.3} estimated = ${:.3}",
            self.which,
            self.limit,
            self.spent.label(),
            self.estimate,
            self.spent.usd + self.estimate
        )
    }
}

/// The budgets `estimate` (dollars, > 0) would pass on top of what was spent. A free request
/// (the demo) passes nothing.
pub fn over(budget: &Budget, spent: &Spent, estimate: f64) -> Vec<Over> {
    if !(estimate.is_finite() && estimate > 0.0) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (which, limit, line) in [
        ("daily", budget.daily_usd, spent.today),
        ("monthly", budget.monthly_usd, spent.month),
    ] {
        if let Some(limit) = limit
            && line.usd + estimate > limit + 1e-9
        {
            out.push(Over {
                which,
                limit,
                spent: line,
                estimate,
            });
        }
    }
    out
}

/// Whether the studio should ask before queueing something estimated at `estimate`.
pub fn needs_confirmation(budget: &Budget, estimate: f64) -> bool {
    budget
        .confirm_above_usd
        .is_some_and(|t| estimate.is_finite() && estimate > 0.0 && estimate > t)
}

/// Whether any budget is set (spend is then worth showing against it).
pub fn has_limits(budget: &Budget) -> bool {
    budget.daily_usd.is_some() || budget.monthly_usd.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(usd: f64) -> SpendLine {
        SpendLine {
            usd,
            from_usage_usd: usd,
            estimated_usd: 0.0,
            jobs: 1,
        }
    }

    #[test]
    fn a_budget_is_passed_only_by_what_would_cost_more_than_is_left() {
        let b = Budget {
            daily_usd: Some(1.0),
            monthly_usd: Some(10.0),
            confirm_above_usd: Some(0.5),
        };
        let spent = Spent {
            today: line(0.8),
            month: line(9.5),
        };
        assert!(over(&b, &spent, 0.2).is_empty());
        let o = over(&b, &spent, 0.3);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].which, "daily");
        assert!(o[0].to_string().contains("$0.80 spent today"), "{}", o[0]);
        assert_eq!(over(&b, &spent, 0.6).len(), 2);
        // Free work passes even a spent budget.
        let broke = Spent {
            today: line(5.0),
            month: line(50.0),
        };
        assert!(over(&b, &broke, 0.0).is_empty());
        assert!(over(&Budget::default(), &broke, 100.0).is_empty());
        assert!(needs_confirmation(&b, 0.51));
        assert!(!needs_confirmation(&b, 0.5));
        assert!(!needs_confirmation(&b, 0.0));
        assert!(needs_confirmation(&Budget::default(), 1.5));
    }
}
