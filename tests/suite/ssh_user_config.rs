//! The user's `~/.ssh/config` decides wherever the inventory says nothing: a host known only by
//! its alias (`Host gtm-a` with `HostName`, `Port`, `User`) is reached where the config says,
//! and a refused host key shows the fingerprint of the host the alias names.

use std::fmt::Write as _;
use std::process::Command;

use crate::apply::Rig;

#[test]
fn port_and_user_from_the_users_ssh_config_win_where_the_inventory_says_nothing() {
    let rig = Rig::new(2);
    let home = rig.dir.path().join("home");
    fs_err::create_dir_all(home.join(".ssh")).expect("mkdir");
    let empty_known_hosts = home.join(".ssh/empty_known_hosts");
    fs_err::write(&empty_known_hosts, "").expect("write");
    let mut config = String::new();
    for (alias, host, known) in [
        ("gtm-a", &rig.lab.hosts()[0], rig.lab.known_hosts_path()),
        // b's key is not known: refused, with the fingerprint of the host the alias names.
        ("gtm-b", &rig.lab.hosts()[1], empty_known_hosts),
    ] {
        let _ = writeln!(
            config,
            "Host {alias}\n  HostName {}\n  Port {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}",
            host.address,
            host.port,
            rig.lab.identity_path().display(),
            known.display()
        );
    }
    fs_err::write(home.join(".ssh/config"), config).expect("write");
    // No address, port, user or ssh option: only the aliases.
    let inventory = rig.dir.path().join("aliases.yaml");
    fs_err::write(
        &inventory,
        "kind: Inventory\nhosts:\n  gtm-a: {}\n  gtm-b: {}\n",
    )
    .expect("write");
    let rb = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: aliases, version: 1.0.0}\nsteps:\n  - {id: where, module: shell, on: all, with: {cmd: \"echo $SSH_CONNECTION > $RUNBOOK_HOST_ROOT/../where; id -un\"}}\n";
    let file = rig.dir.path().join("aliases-rb.yaml");
    fs_err::write(&file, rb).expect("write");
    let home_text = home.display().to_string();
    let run = rig.apply_file_env(&file, &inventory, &[], &[("HOME", home_text.as_str())]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.status("where@gtm-a"),
        "changed",
        "reached on the config's Port: {}",
        run.message("where@gtm-a")
    );
    let port = rig.lab.hosts()[0].port.to_string();
    let seen = fs_err::read_to_string(rig.root("a").join("../where")).expect("where");
    assert!(
        seen.split_whitespace().nth(3) == Some(port.as_str()),
        "connected to the config's port {port}: {seen}"
    );
    assert_eq!(run.status("where@gtm-b"), "unreachable");
    let message = run.message("where@gtm-b");
    // The fingerprint b really presents, from the lab's known_hosts.
    let known = fs_err::read_to_string(rig.lab.known_hosts_path()).expect("known_hosts");
    let b_line = known.lines().nth(1).expect("b's key");
    let scratch = rig.dir.path().join("b.key");
    fs_err::write(&scratch, format!("{b_line}\n")).expect("write");
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&scratch)
        .output()
        .expect("ssh-keygen");
    let expected = String::from_utf8_lossy(&out.stdout);
    let sha = expected
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .expect("a fingerprint");
    assert!(
        message.contains(sha),
        "the alias's host key fingerprint {sha} in: {message}"
    );
}
