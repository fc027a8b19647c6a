//! Each compile error at its exact line, column and code, and all of them in one report.

use runbook::diagnostic::Code;

use crate::support::{INVENTORY, compile_str, located, runbook_with_steps};

fn errors(runbook: &str) -> Vec<(Code, usize, usize)> {
    errors_with(runbook, INVENTORY, &[])
}

fn errors_with(runbook: &str, inventory: &str, flags: &[&str]) -> Vec<(Code, usize, usize)> {
    match compile_str(runbook, inventory, flags) {
        Ok(_) => panic!("expected errors, the runbook compiled"),
        Err(ds) => located(&ds),
    }
}

#[test]
fn yaml_syntax_error_is_located() {
    let rb =
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: t, version: 1.0.0\nphases: []\n";
    let e = errors(rb);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, Code::YamlSyntax);
    assert_eq!(
        e[0].1, 4,
        "the parser notices the unclosed flow mapping on line 4: {e:?}"
    );
}

#[test]
fn duplicate_yaml_key_points_at_the_second() {
    let rb = "apiVersion: runbook/v1\nkind: Runbook\nkind: Runbook\n";
    assert_eq!(errors(rb), vec![(Code::YamlDuplicateKey, 3, 1)]);
}

#[test]
fn unsupported_api_version_names_the_value() {
    let rb = runbook_with_steps("      - {id: a, module: shell, on: alpha, with: {cmd: true}}\n")
        .replace("runbook/v1", "runbook/v9");
    assert_eq!(errors(&rb), vec![(Code::ApiVersion, 1, 13)]);
}

#[test]
fn unknown_keys_everywhere_are_all_reported() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metdata: {}
metadata:
  name: t
  version: 1.0.0
  autor: me
phases:
  - name: main
    stpes: []
    steps:
      - id: a
        module: shell
        on: alpha
        with: {cmd: 'true'}
        retry: 3
";
    assert_eq!(
        errors(rb),
        vec![
            (Code::UnknownKey, 3, 1),
            (Code::UnknownKey, 7, 3),
            (Code::UnknownKey, 10, 5),
            (Code::UnknownKey, 16, 9)
        ]
    );
}

#[test]
fn unknown_module_and_arguments() {
    let rb = runbook_with_steps(
        "      - id: a\n        module: shel\n        on: alpha\n      - id: b\n        module: shell\n        on: alpha\n        with: {cmd: 'true', chdri: /tmp}\n      - id: c\n        module: copy\n        on: alpha\n        with: {dest: /tmp/x}\n",
    );
    // Line 12: `module: shel`; 18: `chdri`; 22: copy without `content` (label on `with`).
    assert_eq!(
        errors(&rb),
        vec![
            (Code::ModuleUnknown, 13, 17),
            (Code::ModuleArgUnknown, 18, 29),
            (Code::ModuleArgMissing, 22, 15)
        ]
    );
}

#[test]
fn argument_types_are_checked() {
    let rb = runbook_with_steps(
        "      - id: a\n        module: wait_for\n        on: alpha\n        with: {path: /tmp/x, timeout: soon}\n",
    );
    assert_eq!(errors(&rb), vec![(Code::ModuleArgType, 15, 39)]);
}

/// A literal argument of the wrong type (`timeout: 5 minutes`) is reported with the other
/// errors (a bad target, an undefined variable, an unknown step), not after they are fixed.
#[test]
fn argument_type_errors_come_with_every_other_error() {
    let rb = runbook_with_steps(concat!(
        "      - id: a\n        module: wait_for\n        on: alpha\n        with: {path: /tmp/x, timeout: 5 minutes}\n",
        "      - {id: b, module: shell, on: nosuch, with: {cmd: x}}\n",
        "      - {id: c, module: shell, on: alpha, with: {cmd: \"{{ vars.nope }}\"}}\n",
        "      - {id: d, module: shell, on: alpha, needs: [zz], with: {cmd: x}}\n",
        "      - {id: e, module: wait_for, on: alpha, with: {port: [1, 2]}}\n",
    ));
    let e = errors(&rb);
    let codes: Vec<Code> = e.iter().map(|(c, _, _)| *c).collect();
    assert!(e.contains(&(Code::ModuleArgType, 15, 39)), "{e:?}");
    assert!(e.contains(&(Code::ModuleArgType, 19, 59)), "{e:?}");
    for code in [
        Code::TargetUnknown,
        Code::TemplateUndefined,
        Code::UnknownNeed,
    ] {
        assert!(codes.contains(&code), "{code:?} in {e:?}");
    }
}

#[test]
fn duplicate_ids_point_at_both() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: alpha, with: {cmd: x}}\n      - {id: a, module: shell, on: beta, with: {cmd: y}}\n",
    );
    let ds = compile_str(&rb, INVENTORY, &[]).expect_err("duplicate ids");
    assert_eq!(located(&ds), vec![(Code::DuplicateId, 13, 14)]);
    let secondary = ds[0]
        .labels
        .iter()
        .find(|l| !l.primary)
        .expect("a label on the first definition");
    let source = ds[0].source.as_ref().expect("source");
    assert_eq!(source.line_col(secondary.span.start), (12, 14));
}

#[test]
fn unknown_need_suggests_the_close_id() {
    let rb = runbook_with_steps(
        "      - {id: stop-source, module: shell, on: alpha, with: {cmd: x}}\n      - {id: b, module: shell, on: beta, needs: [stop-sourse], with: {cmd: y}}\n",
    );
    let ds = compile_str(&rb, INVENTORY, &[]).expect_err("unknown need");
    assert_eq!(located(&ds), vec![(Code::UnknownNeed, 13, 50)]);
    assert_eq!(ds[0].help.as_deref(), Some("did you mean `stop-source`?"));
}

#[test]
fn undefined_variables_in_templates_are_located_inside_the_string() {
    let rb = runbook_with_steps(
        "      - id: a\n        module: shell\n        on: alpha\n        with:\n          cmd: \"echo {{ params.nope }} {{ vars.instance }} {{ vars.absent }}\"\n",
    );
    // Column of `params.nope` inside the double-quoted scalar, and of `vars.absent`.
    assert_eq!(
        errors(&rb),
        vec![
            (Code::TemplateUndefined, 16, 25),
            (Code::TemplateUndefined, 16, 63)
        ]
    );
}

#[test]
fn variable_missing_on_some_hosts_names_them() {
    let rb = runbook_with_steps(
        "      - id: a\n        module: shell\n        on: lab\n        with: {cmd: \"echo {{ vars.instance }}\"}\n",
    );
    let ds = compile_str(&rb, INVENTORY, &[]).expect_err("gamma has no instance");
    assert_eq!(located(&ds), vec![(Code::TemplateUndefined, 15, 30)]);
    assert!(ds[0].message.contains("`gamma`"), "{}", ds[0].message);
}

#[test]
fn output_of_a_step_that_is_not_upstream() {
    let rb = runbook_with_steps(
        "      - id: a\n        module: shell\n        on: alpha\n        with: {cmd: \"echo {{ later.stdout }}\"}\n      - id: b\n        module: shell\n        on: alpha\n        register: later\n        with: {cmd: x}\n",
    );
    assert_eq!(errors(&rb), vec![(Code::TemplateNotUpstream, 15, 30)]);
}

#[test]
fn output_from_a_parallel_host_branch_is_not_upstream() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: p
    order: per_host
    steps:
      - {id: a, module: shell, on: alpha, register: ra, with: {cmd: x}}
      - {id: b, module: shell, on: beta, with: {cmd: \"echo {{ ra.stdout }}\"}}
";
    assert_eq!(errors(rb), vec![(Code::TemplateNotUpstream, 9, 63)]);
}

#[test]
fn template_syntax_error_points_into_the_template() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: alpha, with: {cmd: \"echo {{ x + }}\"}}\n",
    );
    let e = errors(&rb);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0, e[0].1), (Code::TemplateSyntax, 12));
    assert!(e[0].2 > 55, "inside the string, not at its start: {e:?}");
}

#[test]
fn empty_unknown_and_ambiguous_targets() {
    let inventory = format!("{INVENTORY}  beta:\n    hosts: [beta]\n");
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: nowhere, with: {cmd: x}}\n      - {id: b, module: shell, on: 'site_a & replicating', with: {cmd: x}}\n      - {id: c, module: shell, on: beta, with: {cmd: x}}\n      - {id: d, module: shell, on: 'role:primary', with: {cmd: x}}\n",
    );
    assert_eq!(
        errors_with(&rb, &inventory, &[]),
        vec![
            (Code::TargetUnknown, 12, 36),
            (Code::TargetEmpty, 13, 36),
            (Code::TargetAmbiguous, 14, 36),
            (Code::RoleUndeclared, 15, 42),
        ]
    );
}

#[test]
fn role_count_violation_points_at_the_count() {
    let inventory = INVENTORY.replace("roles: [replicating]", "roles: [originating]");
    let rb = runbook_with_steps("      - {id: a, module: shell, on: alpha, with: {cmd: x}}\n");
    // originating: exactly 1, but alpha and beta have it; replicating: exactly 1, none has it.
    assert_eq!(
        errors_with(&rb, &inventory, &[]),
        vec![(Code::RoleCount, 7, 16), (Code::RoleCount, 8, 16)]
    );
}

#[test]
fn cycle_is_reported_as_its_full_path() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: alpha, needs: [c], with: {cmd: x}}\n      - {id: b, module: shell, on: alpha, with: {cmd: x}}\n      - {id: c, module: shell, on: alpha, with: {cmd: x}}\n",
    );
    let ds = compile_str(&rb, INVENTORY, &[]).expect_err("cycle");
    assert_eq!(located(&ds), vec![(Code::Cycle, 12, 51)]);
    assert_eq!(ds[0].message, "dependency cycle: `a` → `b` → `c` → `a`");
    // One label per edge: a→b (order), b→c (order), c→a (needs).
    assert_eq!(ds[0].labels.len(), 3);
}

#[test]
fn cycle_through_phases() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: one
    steps:
      - {id: a, module: shell, on: alpha, needs: [b], with: {cmd: x}}
  - name: two
    steps:
      - {id: b, module: shell, on: alpha, with: {cmd: x}}
";
    let ds = compile_str(rb, INVENTORY, &[]).expect_err("cycle");
    assert_eq!(located(&ds), vec![(Code::Cycle, 7, 51)]);
    assert!(
        ds[0].message.contains("(end of phase `one`)"),
        "{}",
        ds[0].message
    );
}

#[test]
fn parameters_from_the_command_line_are_typed() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  port: {type: int, default: 4000}
  token: {type: secret}
  mode: {type: string, choices: [active, passive], required: true}
steps:
  - {id: a, module: shell, on: alpha, with: {cmd: \"echo {{ params.port }}\"}}
";
    let ds = compile_str(
        rb,
        INVENTORY,
        &["port=eighty", "token=hunter2", "mdoe=active"],
    )
    .expect_err("bad params");
    let mut codes: Vec<Code> = ds.iter().map(|d| d.code).collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            Code::ParamUnknown,
            Code::ParamInvalid,
            Code::ParamMissing,
            Code::ParamSecretInArgv
        ],
        "{ds:#?}"
    );
    assert!(
        ds.iter().all(|d| !d.message.contains("hunter2")),
        "a secret never appears in a diagnostic"
    );
    let missing = ds
        .iter()
        .find(|d| d.code == Code::ParamMissing)
        .expect("missing");
    assert_eq!(missing.location().map(|l| (l.1, l.2)), Some((7, 3)));
    assert!(compile_str(rb, INVENTORY, &["port=4001", "mode=passive"]).is_ok());
}

#[test]
fn secret_parameters_cannot_reach_a_command_line() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  token: {type: secret}
steps:
  - {id: a, module: shell, on: alpha, with: {cmd: \"login {{ params.token }}\"}}
";
    assert_eq!(errors(rb), vec![(Code::ParamSecretInTemplate, 7, 61)]);
}

#[test]
fn item_outside_a_loop_and_bad_register_names() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: alpha, register: params, with: {cmd: \"echo {{ item }}\"}}\n",
    );
    assert_eq!(
        errors(&rb),
        vec![
            (Code::RegisterConflict, 12, 53),
            (Code::TemplateUndefined, 12, 82)
        ]
    );
}

#[test]
fn all_errors_of_all_kinds_come_in_one_report() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shel, on: alpha}\n      - {id: a, module: shell, on: nowhere, with: {cmd: \"{{ params.x }}\"}}\n      - {id: c, module: shell, on: alpha, needs: [zz], with: {cmd: x}}\n",
    );
    let codes: Vec<Code> = errors(&rb).into_iter().map(|e| e.0).collect();
    for code in [
        Code::ModuleUnknown,
        Code::DuplicateId,
        Code::TargetUnknown,
        Code::TemplateUndefined,
        Code::UnknownNeed,
    ] {
        assert!(codes.contains(&code), "{code:?} missing from {codes:?}");
    }
}

#[test]
fn interpolation_inside_shell_quotes_is_refused() {
    let rb = runbook_with_steps(
        "      - {id: a, module: shell, on: alpha, with: {cmd: \"echo '{{ vars.instance }}'\"}}\n",
    );
    assert_eq!(errors(&rb), vec![(Code::TemplateQuoted, 12, 62)]);
}

#[test]
fn empty_values_and_choices_of_any_type() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  label: {type: string, default: x}
  port: {type: int, default: 4000, choices: ['4000', '4001']}
steps:
  - {id: a, module: shell, on: alpha, with: {cmd: \"echo {{ params.label }} {{ params.port }}\"}}
";
    let plan =
        compile_str(rb, INVENTORY, &["label=", "port=4001"]).expect("an empty string is a value");
    let (_, action) = plan.actions().next().expect("one action");
    assert_eq!(action.operations[0].to_string(), "echo '' 4001");
    let ds = compile_str(rb, INVENTORY, &["port=4002"]).expect_err("not a choice");
    assert_eq!(ds[0].code, Code::ParamInvalid);
}
