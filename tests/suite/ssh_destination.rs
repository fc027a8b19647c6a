//! The ssh destination is never read as an option: `--` comes before it on the master's command
//! line, whatever the address says (the inventory refuses such addresses too; this test goes
//! around the inventory to check the second wall on its own).

use runbook::transport::{Endpoint, Exec, Runner, TransportError, Transports};

use crate::apply::Rig;

#[test]
fn an_option_like_address_reaches_ssh_as_a_host_name_only() {
    let rig = Rig::new(1);
    let inventory = runbook::inventory::Inventory::load(&rig.inventory()).expect("lab inventory");
    let marker = rig.dir.path().join("pwned");
    let mut endpoint = Endpoint::from_host(&inventory.hosts[0]);
    endpoint.address = format!("-oProxyCommand=touch {}", marker.display());
    let transports = Transports::new(vec![endpoint]).expect("transports");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(async {
        transports
            .run(
                0,
                Exec {
                    key: "t/x@a".into(),
                    script: "true".into(),
                    ..Exec::default()
                },
            )
            .await
    });
    match result {
        Err(TransportError::Unreachable { message, .. }) => {
            // ssh itself names it a bad host name: it was the destination, not an option.
            assert!(message.contains("hostname"), "{message}");
        }
        other => panic!("expected an unreachable host, got {other:?}"),
    }
    assert!(!marker.exists(), "the address was read as an ssh option");
}
