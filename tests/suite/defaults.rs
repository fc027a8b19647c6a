//! `defaults:` (docs/runbook-format.md, "Defaults"): a runbook written with defaults compiles to
//! the same plan as the runbook written out, its blocks' defaults included; a wrong default is
//! reported at the default through the CLI.

use runbook::plan::render_json;

use crate::support::{INVENTORY, compile_str, run};

const HEAD: &str = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: t, version: 1.0.0}\nroles: {originating: 1, replicating: 1}\n";

/// The plan's JSON without the header that names and hashes the runbook's text.
fn plan_json(runbook: &str) -> serde_json::Value {
    let plan = compile_str(runbook, INVENTORY, &[]).unwrap_or_else(|d| panic!("{d:?}"));
    let mut v: serde_json::Value = serde_json::from_str(&render_json(&plan)).expect("json");
    v.as_object_mut().expect("an object").remove("runbook");
    v
}

#[test]
fn a_runbook_with_defaults_plans_exactly_as_the_runbook_written_out() {
    let with_defaults = format!(
        "{HEAD}defaults:
  with: {{gtm: {{dir: /data/gtm, instance: '{{{{ vars.instance }}}}', region: '*'}}}}
  env: {{shell: {{GTM_DIR: /data/gtm, gtm_dist: /opt/gtm}}}}
  estimate: {{gtm: 5s, assert: 1s}}
phases:
  - name: check
    steps:
      - {{id: role, module: gtm.role, on: originating}}
      - {{id: sh, module: shell, on: replicating, env: {{gtm_dist: /opt/new}}, with: {{cmd: 'echo $GTM_DIR'}}}}
  - name: journal
    defaults: {{with: {{gtm.journal: {{noprevjnlfile: true}}}}, estimate: {{gtm: 7s}}}}
    steps:
      - {{id: cut, module: gtm.journal, on: originating, with: {{dir: /other}}}}
      - {{id: ok, module: assert, with: {{that: ['1 == 1']}}}}
"
    );
    let written_out = format!(
        "{HEAD}phases:
  - name: check
    steps:
      - {{id: role, module: gtm.role, on: originating, with: {{dir: /data/gtm, instance: '{{{{ vars.instance }}}}'}}, estimate: 5s}}
      - {{id: sh, module: shell, on: replicating, env: {{GTM_DIR: /data/gtm, gtm_dist: /opt/new}}, with: {{cmd: 'echo $GTM_DIR'}}}}
  - name: journal
    steps:
      - {{id: cut, module: gtm.journal, on: originating, with: {{noprevjnlfile: true, dir: /other, instance: '{{{{ vars.instance }}}}', region: '*'}}, estimate: 7s}}
      - {{id: ok, module: assert, with: {{that: ['1 == 1']}}, estimate: 1s}}
"
    );
    assert_eq!(plan_json(&with_defaults), plan_json(&written_out));
}

#[test]
fn a_default_for_a_parameter_no_module_of_the_family_has_is_reported_at_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rb.yaml");
    let text = format!(
        "{HEAD}defaults:\n  with: {{gtm: {{instanse: A}}}}\nsteps:\n  - {{id: role, module: gtm.role, on: originating, with: {{dir: /d, instance: A}}}}\n"
    );
    fs_err::write(&path, text).expect("write");
    let inv = dir.path().join("inv.yaml");
    fs_err::write(&inv, INVENTORY).expect("write");
    let out = run(&[
        "validate",
        path.to_str().expect("utf-8"),
        "-i",
        inv.to_str().expect("utf-8"),
    ]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 2, "{stderr}");
    assert!(
        stderr.contains("runbook::defaults::unknown_parameter"),
        "{stderr}"
    );
    assert!(stderr.contains("rb.yaml:6:16"), "{stderr}");
    assert!(stderr.contains("did you mean `instance`?"), "{stderr}");
}
