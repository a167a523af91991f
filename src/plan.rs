//! A run's requests, built and checked before anything is queued: the part of planning a run
//! that `easel generate` and the studio share (issue 14). Pure: how each job's parameters are
//! made, and any check that reads files, are the caller's.

use crate::api::request::{self, CheckedRequest};
use crate::api::{GenerationParams, ProviderRules};
use crate::catalog::Catalog;
use crate::runs::{Job, JobValues};
use crate::sanitize;

/// One request of a run, built and checked.
#[derive(Debug, Clone)]
pub struct Planned {
    pub values: JobValues,
    pub params: GenerationParams,
    pub checked: CheckedRequest,
}

/// Why a run cannot be queued: which job and what is wrong with it (without a "not sent" or
/// "not queued" in front: the caller says which), and what to do when there is more to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub message: String,
    pub hint: Option<String>,
}

/// Where the requests go, as far as checking them is concerned.
pub struct Target<'a> {
    pub catalog: &'a Catalog,
    pub rules: &'a ProviderRules,
    /// OpenAI itself: its shutdown dates are warned about (a compatible server may still serve
    /// those names).
    pub openai: bool,
    pub today: chrono::NaiveDate,
}

/// "job 3 of 8 (size=1024x1024, quality=low): a red fox": which job, for messages.
pub fn job_label(k: usize, of: usize, values: &JobValues, prompt: &str) -> String {
    let mut parts: Vec<String> = values
        .axes
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect();
    if values.repeat > 1 {
        parts.push(format!("repeat {}", values.repeat));
    }
    let which = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    format!(
        "job {k} of {of}{which}: {}",
        sanitize::truncate(&sanitize::line(prompt), 60)
    )
}

/// Build every job's request with `params_of` and check it against the catalogue and the
/// provider, then with `extra` (the CLI reads the input pictures there). The first problem
/// stops it: a run is queued whole or not at all.
pub fn plan(
    jobs: &[Job],
    target: &Target<'_>,
    params_of: &mut dyn FnMut(&Job) -> GenerationParams,
    extra: &mut dyn FnMut(&CheckedRequest) -> Result<(), String>,
) -> Result<Vec<Planned>, PlanError> {
    let of = jobs.len();
    let which = |k: usize, job: &Job, what: String| {
        if of > 1 {
            format!(
                "{}: {what} (nothing of the run was queued)",
                job_label(k + 1, of, &job.values, &job.prompt)
            )
        } else {
            what
        }
    };
    let mut planned = Vec::with_capacity(of);
    for (k, job) in jobs.iter().enumerate() {
        let params = params_of(job);
        let mut checked = match request::check(&params, target.catalog, target.rules) {
            Ok(c) => c,
            Err(e) => {
                // The catalogue helps only when the refusal is about what this model takes (the
                // message then names it), not for an empty prompt or a range any model has.
                let about_model = e.message.contains(params.model.trim());
                return Err(PlanError {
                    message: which(k, job, e.to_string()),
                    hint: about_model.then(|| {
                        format!(
                            "`easel models` lists what {} and the other models accept",
                            params.model
                        )
                    }),
                });
            }
        };
        if let Err(e) = extra(&checked) {
            return Err(PlanError {
                message: which(k, job, e),
                hint: None,
            });
        }
        if target.openai
            && let Some(w) = target
                .catalog
                .get(&params.model)
                .and_then(|spec| spec.openai_shutdown_warning(target.today))
        {
            checked.warnings.push(w);
        }
        planned.push(Planned {
            values: job.values.clone(),
            params,
            checked,
        });
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn jobs(prompts: &[&str]) -> Vec<Job> {
        let spec = crate::runs::RunSpec {
            prompts: prompts
                .iter()
                .map(|p| ("the prompt".to_string(), p.to_string()))
                .collect(),
            repeat: 1,
            ..Default::default()
        };
        crate::runs::expand_with(&spec, &mut |_| Ok(Default::default()))
            .unwrap()
            .jobs
    }

    #[test]
    fn a_bad_job_names_itself_and_nothing_is_planned() {
        let catalog = Catalog::builtin();
        let rules = ProviderRules::default();
        let target = Target {
            catalog: &catalog,
            rules: &rules,
            openai: false,
            today: chrono::NaiveDate::default(),
        };
        let all = jobs(&["a {cat|dog}"]);
        let out = plan(
            &all,
            &target,
            &mut |j| GenerationParams {
                prompt: j.prompt.clone(),
                // The second job asks for more images than any model makes.
                n: if j.prompt.contains("dog") { 99 } else { 1 },
                ..GenerationParams::default()
            },
            &mut |_| Ok(()),
        );
        let e = out.unwrap_err();
        assert!(e.message.starts_with("job 2 of 2: a dog: "), "{e:?}");
        assert!(e.message.ends_with("(nothing of the run was queued)"));
        let ok = plan(
            &all,
            &target,
            &mut |j| GenerationParams {
                prompt: j.prompt.clone(),
                ..GenerationParams::default()
            },
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].params.prompt, "a dog");
    }
}
