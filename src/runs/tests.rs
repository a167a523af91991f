use super::*;
use proptest::prelude::*;

fn spec(prompt: &str) -> RunSpec {
    RunSpec {
        prompts: vec![("the prompt".into(), prompt.into())],
        repeat: 1,
        ..Default::default()
    }
}

fn no_wildcards() -> Wildcards {
    Wildcards::new("/nonexistent/easel-test-wildcards")
}

fn prompts(e: &Expansion) -> Vec<&str> {
    e.jobs.iter().map(|j| j.prompt.as_str()).collect()
}

#[test]
fn all_combinations_first_choice_slowest() {
    let e = expand(&spec("{a|b} {x|y|z}"), &mut no_wildcards()).unwrap();
    assert_eq!(prompts(&e), ["a x", "a y", "a z", "b x", "b y", "b z"]);
    assert_eq!(e.combinations, 6);
    assert_eq!(e.jobs[4].values.alternatives[0].value, "b");
    assert_eq!(e.jobs[4].values.alternatives[1].value, "y");
    assert_eq!(e.jobs[4].values.alternatives[1].column, 7);
}

#[test]
fn nested_alternatives_add_up_and_record_outer_then_inner() {
    let e = expand(&spec("{red|{dark|light} blue} car"), &mut no_wildcards()).unwrap();
    assert_eq!(prompts(&e), ["red car", "dark blue car", "light blue car"]);
    let v = &e.jobs[2].values;
    assert_eq!(v.alternatives.len(), 2);
    assert_eq!(
        (v.alternatives[0].value.as_str(), v.alternatives[0].column),
        ("light blue", 1)
    );
    assert_eq!(
        (v.alternatives[1].value.as_str(), v.alternatives[1].column),
        ("light", 6)
    );
}

#[test]
fn axes_vary_inside_a_prompt_and_repeats_innermost() {
    let mut s = spec("{cat|dog}");
    s.axes = vec![
        parse_axis("size=1024x1024,1536x1024").unwrap(),
        parse_axis("quality=low,high").unwrap(),
    ];
    s.repeat = 2;
    let e = expand(&s, &mut no_wildcards()).unwrap();
    assert_eq!(e.jobs.len(), 2 * 2 * 2 * 2);
    let j = &e.jobs[3];
    assert_eq!(j.prompt, "cat");
    assert_eq!(j.values.repeat, 2);
    assert_eq!(
        j.values.axes,
        vec![
            AxisValue {
                name: "size".into(),
                value: "1024x1024".into()
            },
            AxisValue {
                name: "quality".into(),
                value: "high".into()
            },
        ]
    );
    let last = &e.jobs[15].values;
    assert_eq!(last.axes[0].value, "1536x1024");
    assert_eq!(last.combination, 7);
    // The record a later change stores with the job: JSON both ways.
    let json = serde_json::to_string(last).unwrap();
    assert_eq!(serde_json::from_str::<JobValues>(&json).unwrap(), *last);
}

#[test]
fn wildcards_come_from_the_folder_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("animal.txt"), "# pets\ncat\n\ndog\n").unwrap();
    let mut w = Wildcards::new(dir.path());
    let e = expand(&spec("a __animal__ on {a mat|the moon}"), &mut w).unwrap();
    assert_eq!(
        prompts(&e),
        [
            "a cat on a mat",
            "a cat on the moon",
            "a dog on a mat",
            "a dog on the moon"
        ]
    );
    assert_eq!(
        e.jobs[2].values.wildcards,
        vec![WildcardValue {
            name: "animal".into(),
            column: 3,
            value: "dog".into()
        }]
    );
}

#[test]
fn several_prompts_in_order_with_their_index() {
    let mut s = spec("");
    s.prompts = prompts_from_text("p.txt", "one {a|b}\n\n  \ntwo\n");
    assert_eq!(s.prompts[1].0, "p.txt line 4");
    let e = expand(&s, &mut no_wildcards()).unwrap();
    assert_eq!(prompts(&e), ["one a", "one b", "two"]);
    assert_eq!(e.jobs[2].values.prompt_index, 2);
    assert_eq!(e.jobs[2].values.template, "two");
}

#[test]
fn pick_is_reproducible_with_a_seed_and_distinct() {
    let mut s = spec("{a|b|c|d|e|f|g|h} {1|2|3|4|5|6|7|8} {x|y|z}");
    s.pick = Some(10);
    s.seed = Some(42);
    let one = expand(&s, &mut no_wildcards()).unwrap();
    let two = expand(&s, &mut no_wildcards()).unwrap();
    assert_eq!(prompts(&one), prompts(&two));
    assert_eq!(one.jobs.len(), 10);
    assert_eq!(one.seed, Some(42));
    let mut distinct = prompts(&one);
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "sorted and distinct");
    s.seed = Some(43);
    let three = expand(&s, &mut no_wildcards()).unwrap();
    assert_ne!(prompts(&one), prompts(&three));
    // Picking from a huge run lists only what it picks.
    let mut huge = spec(&"{a|b|c|d|e|f|g|h|i|j}".repeat(30));
    huge.pick = Some(3);
    huge.seed = Some(1);
    assert_eq!(expand(&huge, &mut no_wildcards()).unwrap().jobs.len(), 3);
    // More than there are: all of them, no seed used.
    let mut few = spec("{a|b}");
    few.pick = Some(5);
    let e = expand(&few, &mut no_wildcards()).unwrap();
    assert_eq!((e.jobs.len(), e.seed), (2, None));
}

#[test]
fn large_runs_need_allow_large() {
    // 10 × 10 × 11 = 1100 jobs.
    let mut s = spec("{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}");
    s.repeat = 11;
    let e = expand(&s, &mut no_wildcards()).unwrap_err();
    assert!(e.message.contains("1100 jobs, over 1000"), "{e}");
    assert!(e.hint.contains("--allow-large"), "{e:?}");
    s.allow_large = true;
    assert_eq!(expand(&s, &mut no_wildcards()).unwrap().jobs.len(), 1100);
    // Exactly 1000 is fine.
    s.allow_large = false;
    s.repeat = 10;
    assert_eq!(expand(&s, &mut no_wildcards()).unwrap().jobs.len(), 1000);
    // Past counting, even with allow_large.
    let mut s = spec(&"{a|b}".repeat(200));
    s.allow_large = true;
    assert!(expand(&s, &mut no_wildcards()).is_err());
}

#[test]
fn error_table_with_origin_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), "# none yet\n\n").unwrap();
    // (prompt, column, start of the message)
    let table: &[(&str, usize, &str)] = &[
        ("a {b|c", 3, "unclosed brace"),
        ("a {b|{c|d}", 3, "unclosed brace"),
        ("a b}", 4, "this '}' closes no '{'"),
        ("x {}", 3, "empty alternative list"),
        ("{a|b} __nope__", 7, "unknown wildcard __nope__"),
        ("__empty__", 1, "wildcard __empty__ has no values"),
    ];
    for (prompt, column, message) in table {
        let e = expand(&spec(prompt), &mut Wildcards::new(dir.path())).unwrap_err();
        assert_eq!(e.column, Some(*column), "{prompt}: {e}");
        assert!(e.message.starts_with(message), "{prompt}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("the prompt, column {column}: {message}")),
            "{e}"
        );
        assert!(!e.hint.is_empty());
    }
    // Axes: (argument, column, start of the message)
    let table: &[(&str, usize, &str)] = &[
        ("size", 1, "expected NAME=VALUE"),
        ("colour=red", 1, "unknown axis"),
        ("size=", 6, "empty value list"),
        ("quality=low,,high", 13, "empty value in the list"),
        ("n=1, x", 6, "n takes a whole number"),
    ];
    for (arg, column, message) in table {
        let e = parse_axis(arg).unwrap_err();
        assert_eq!(e.column, Some(*column), "{arg}: {e}");
        assert!(e.message.starts_with(message), "{arg}: {e}");
        assert_eq!(e.origin, format!("--axis {arg:?}"));
    }
    let mut s = spec("a");
    s.axes = vec![parse_axis("size=a").unwrap(), parse_axis("size=b").unwrap()];
    assert!(
        expand(&s, &mut no_wildcards())
            .unwrap_err()
            .message
            .contains("given twice")
    );
}

/// A flat template: literal words and `{…}` groups of `k` distinct options.
fn flat_template() -> impl Strategy<Value = (String, u128)> {
    let part = prop_oneof![
        "[a-z ]{0,5}".prop_map(|t| (t, 1u128)),
        (1usize..5).prop_map(|k| {
            let options: Vec<String> = (0..k).map(|i| format!("o{i}")).collect();
            (format!("{{{}}}", options.join("|")), k as u128)
        }),
    ];
    prop::collection::vec(part, 0..6).prop_map(|parts| {
        let count = parts.iter().map(|(_, c)| c).product();
        (parts.into_iter().map(|(t, _)| t).collect(), count)
    })
}

proptest! {
    #[test]
    fn the_count_is_the_product_of_the_choices(
        (template, choices) in flat_template(),
        axes in prop::collection::vec(1usize..4, 0..3),
        repeat in 1u32..4,
    ) {
        let mut s = spec(&template);
        s.repeat = repeat;
        s.allow_large = true;
        s.axes = axes
            .iter()
            .zip(["size", "quality", "style"])
            .map(|(k, name)| Axis { name: name.into(), values: (0..*k).map(|i| format!("v{i}")).collect() })
            .collect();
        let axis_product: u128 = axes.iter().map(|k| *k as u128).product();
        let e = expand(&s, &mut no_wildcards()).unwrap();
        prop_assert_eq!(e.combinations as u128, choices * axis_product);
        prop_assert_eq!(e.jobs.len() as u128, choices * axis_product * u128::from(repeat));
        // Every combination is different (the options are distinct).
        let mut keys: Vec<(String, Vec<AxisValue>)> =
            e.jobs.iter().filter(|j| j.values.repeat == 1).map(|j| (j.prompt.clone(), j.values.axes.clone())).collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| format!("{:?}", a.1).cmp(&format!("{:?}", b.1))));
        keys.dedup();
        prop_assert_eq!(keys.len() as u128, choices * axis_product);
    }

    #[test]
    fn escaped_text_round_trips(text in "[a-z{}|_\\\\ é]{0,30}") {
        let e = expand(&spec(&parse::escape(&text)), &mut no_wildcards()).unwrap();
        prop_assert_eq!(e.jobs.len(), 1);
        prop_assert_eq!(&e.jobs[0].prompt, &text);
    }

    #[test]
    fn escaped_options_round_trip(options in prop::collection::vec("[a-z{}|_\\\\]{0,8}", 1..5)) {
        // `{}` alone is the empty alternative list, refused on purpose.
        prop_assume!(options != [""]);
        let escaped: Vec<String> = options.iter().map(|o| parse::escape(o)).collect();
        let e = expand(&spec(&format!("{{{}}}", escaped.join("|"))), &mut no_wildcards()).unwrap();
        let got: Vec<String> = e.jobs.iter().map(|j| j.prompt.clone()).collect();
        prop_assert_eq!(got, options);
    }

    #[test]
    fn parsing_never_panics(text in "[a-z{}|_\\\\]{0,40}") {
        let _ = expand(&spec(&text), &mut no_wildcards());
    }
}
