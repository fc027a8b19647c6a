//! The shared shell helpers travel to each host once per run with the wrapper
//! (`engine/src/transport/wrapper_helpers.rs`), not inlined in every command: the prod
//! switchover's argv, measured against the inlined form in the same run. That the GT.M commands
//! still work with their helpers sourced is proven over real sshd and real GT.M by the GT.M
//! runbook tests (`runbooks_gtm*`).

use runbook::compile::{self, Overrides};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::transport::wrapper::{WRAPPER, record};
use runbook::transport::wrapper_helpers;
use runbook_modules::{Operation, Registry};

use crate::support::root;

#[test]
fn the_prod_switchover_names_its_helpers_instead_of_sending_them_in_every_argv() {
    let path = root().join("runbooks/gtm/switchover.yaml");
    let text = fs_err::read_to_string(&path).expect("the runbook");
    let parsed = parse_runbook(&path.display().to_string(), text);
    let runbook = parsed.runbook.expect("parses");
    let inventory_path = root().join("inventory/gtm-prod.yaml");
    let inventory = Inventory::parse(
        &inventory_path.display().to_string(),
        fs_err::read_to_string(&inventory_path).expect("the inventory"),
    )
    .expect("inventory");
    let plan = compile::compile(compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &Registry::builtin(),
        overrides: &Overrides::default(),
        history: None,
    })
    .expect("compiles");
    let (mut commands, mut with_helpers) = (0, 0);
    let (mut named, mut inlined) = (0usize, 0usize);
    let (mut scripts, mut scripts_inlined) = (0usize, 0usize);
    for (_, action) in plan.actions() {
        for (i, op) in action.operations.iter().enumerate() {
            let Operation::Remote(cmd) = op else { continue };
            commands += 1;
            let key = record(&format!(
                "20261203T120000Z-0123abcd/{}/1001.{i}",
                plan.action_id(action)
            ));
            let base = WRAPPER.len() + key.len() + cmd.script.len();
            named += base + wrapper_helpers::argument(&cmd.helpers).len();
            inlined += base + cmd.inlined().len() - cmd.script.len();
            scripts += cmd.script.len();
            scripts_inlined += cmd.inlined().len();
            if plan.steps[action.step].module.starts_with("gtm.") {
                with_helpers += 1;
                assert_eq!(cmd.helpers.len(), 1, "{}", plan.action_id(action));
            }
            assert!(
                !cmd.script.contains("rb_run() {"),
                "{} inlines its helpers:\n{}",
                plan.action_id(action),
                cmd.script
            );
        }
    }
    eprintln!(
        "prod switchover: {commands} commands ({with_helpers} with the GT.M helpers): scripts {scripts} bytes ({scripts_inlined} with the helpers inlined), argv with the wrapper {named} bytes ({inlined} inlined)"
    );
    assert!(with_helpers > 20, "{with_helpers}");
    assert!(
        scripts * 2 < scripts_inlined,
        "{scripts} bytes of scripts, {scripts_inlined} inlined"
    );
    assert!(named < inlined, "{named} bytes named, {inlined} inlined");
    // The plan shows each library once, with the hash the hosts name it by.
    let helpers = wrapper_helpers::of_plan(&plan);
    assert_eq!(helpers.len(), 1);
    assert_eq!(helpers[0].0.name, "gtm");
    assert_eq!(
        helpers[0].1,
        runbook::journal::fingerprint(helpers[0].0.text.as_bytes())
    );
}
