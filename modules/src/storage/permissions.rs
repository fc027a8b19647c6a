//! `storage.permissions`: mode, owner and group of a path, optionally of everything below it.
//!
//! Seed `000_fc9617c117eaba83.txt`, section 3.10 step 2 ("set UNIX permissions on the IRIS.DAT
//! file as described in the UNIX Users, Groups and Permissions section") and section 3.2 step 2
//! (the same for the folders on the shared drive).
//!
//! The check and the apply share one query: `find` lists the entries whose mode, owner or
//! group differ (`-maxdepth 0` unless `recursive`; symbolic links below the path are left
//! alone, as `chmod -R` does). Nothing listed: `runbook: unchanged`. Otherwise `chown`/`chgrp`
//! then `chmod` (in that order: `chown` clears set-id bits), and one JSON object
//! `{"path": ..., "fixed": N}` with the number of entries that differed.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{json_word, mode, path, preamble};
use crate::arg::Arg;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{
    CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError, UNCHANGED,
};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `storage.permissions` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct PermissionsModule;

crate::params! {
    struct Params {

        path: ParamSpec::required(ParamType::Path, "The file or directory"),
        mode: ParamSpec::optional(ParamType::String, "Octal mode (`0640`)"),
        owner: ParamSpec::optional(ParamType::String, "User name or uid"),
        group: ParamSpec::optional(ParamType::String, "Group name or gid"),
        recursive: ParamSpec::optional(ParamType::Bool,
            "Also everything below a directory",
        )
        .with_default(Value::Bool(false)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for PermissionsModule {
    fn name(&self) -> &'static str {
        "storage.permissions"
    }

    fn description(&self) -> &'static str {
        "Set the mode, owner and group of a path (optionally recursively)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(script(args, false)?),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Ok(Some(vec![Operation::Remote(Command::probe(script(
            args, true,
        )?))]))
    }
}

/// A user or group name, or a numeric id.
fn principal(arg: Arg<'_>) -> Result<Option<String>, RenderError> {
    let name = arg.name();
    match arg.get() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(v))
            if !v.is_empty()
                && !v.starts_with('-')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c)) =>
        {
            Ok(Some(v.clone()))
        }
        Some(other) => Err(RenderError::new(
            name,
            format!("expected a name or a numeric id, found `{other}`"),
        )),
    }
}

fn script(args: &Args, check_only: bool) -> Result<String, RenderError> {
    let a = Params::read(args);
    let p = path(a.path)?;
    let mode = mode(a.mode)?;
    let owner = principal(a.owner)?;
    let group = principal(a.group)?;
    if mode.is_none() && owner.is_none() && group.is_none() {
        return Err(RenderError {
            arg: None,
            message: "give at least one of `mode`, `owner` and `group`".into(),
        });
    }
    let recursive = a.recursive.bool().unwrap_or(false);
    let mut s = preamble("storage.permissions");
    let _ = writeln!(s, "p={p}");
    let _ = writeln!(s, "[ -e \"$p\" ] || fail \"$p: no such file or directory\"");
    // Unknown names fail here rather than inside `find` (which would only say "not found").
    if let Some(o) = &owner
        && !o.bytes().all(|b| b.is_ascii_digit())
    {
        let _ = writeln!(
            s,
            "id -u {} >/dev/null 2>&1 || fail {}",
            quote(o),
            quote(&format!("no such user: {o}"))
        );
    }
    if let Some(g) = &group
        && !g.bytes().all(|b| b.is_ascii_digit())
    {
        let _ = writeln!(
            s,
            "getent group {} >/dev/null 2>&1 || fail {}",
            quote(g),
            quote(&format!("no such group: {g}"))
        );
    }
    let mut tests = Vec::new();
    if let Some(m) = &mode {
        tests.push(format!("! -perm {m}"));
    }
    if let Some(o) = &owner {
        tests.push(format!("! -user {}", quote(o)));
    }
    if let Some(g) = &group {
        tests.push(format!("! -group {}", quote(g)));
    }
    let depth = if recursive { "" } else { " -maxdepth 0" };
    let _ = writeln!(
        s,
        "n=$(find -H \"$p\"{depth} ! -type l \\( {} \\) -print | wc -l) || exit 2",
        tests.join(" -o ")
    );
    if check_only {
        let _ = write!(
            s,
            "if [ \"$n\" -eq 0 ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi"
        );
        return Ok(s);
    }
    let _ = writeln!(
        s,
        "if [ \"$n\" -eq 0 ]; then printf '%s\\n' {}; exit 0; fi",
        quote(UNCHANGED)
    );
    let r = if recursive { "-R -H " } else { "" };
    match (&owner, &group) {
        (Some(o), Some(g)) => {
            let _ = writeln!(
                s,
                "chown {r}-- {} \"$p\" || exit 2",
                quote(&format!("{o}:{g}"))
            );
        }
        (Some(o), None) => {
            let _ = writeln!(s, "chown {r}-- {} \"$p\" || exit 2", quote(o));
        }
        (None, Some(g)) => {
            let _ = writeln!(s, "chgrp {r}-- {} \"$p\" || exit 2", quote(g));
        }
        (None, None) => {}
    }
    if let Some(m) = &mode {
        if recursive {
            // Not `chmod -R`: it would follow nothing, but would try symbolic links below.
            let _ = writeln!(
                s,
                "find -H \"$p\" ! -type l -exec chmod {m} -- {{}} + || exit 2"
            );
        } else {
            let _ = writeln!(s, "chmod {m} -- \"$p\" || exit 2");
        }
    }
    let _ = write!(
        s,
        "printf '{{\"path\":%s,\"fixed\":%s}}\\n' {} \"$n\"",
        json_word(a.path)
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::storage::testing::{
        TempDir, check, probe, remote, run, run_check, s, stderr, stdout, syntax_ok,
    };

    fn mode_of(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn renders_find_then_chown_and_chmod() {
        let cmd = remote(
            &PermissionsModule,
            &[
                ("path", s("/usr/irissys/mgr/hssys/IRIS.DAT")),
                ("mode", s("0660")),
                ("owner", s("irisusr")),
                ("group", s("irisusr")),
            ],
        );
        assert!(cmd.mutating);
        let body = cmd.script.split_once("p=").expect("p=").1;
        assert_eq!(
            body,
            "/usr/irissys/mgr/hssys/IRIS.DAT
[ -e \"$p\" ] || fail \"$p: no such file or directory\"
id -u irisusr >/dev/null 2>&1 || fail 'no such user: irisusr'
getent group irisusr >/dev/null 2>&1 || fail 'no such group: irisusr'
n=$(find -H \"$p\" -maxdepth 0 ! -type l \\( ! -perm 0660 -o ! -user irisusr -o ! -group irisusr \\) -print | wc -l) || exit 2
if [ \"$n\" -eq 0 ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi
chown -- irisusr:irisusr \"$p\" || exit 2
chmod 0660 -- \"$p\" || exit 2
printf '{\"path\":%s,\"fixed\":%s}\\n' '\"/usr/irissys/mgr/hssys/IRIS.DAT\"' \"$n\""
        );
        syntax_ok(&cmd.script);
    }

    #[test]
    fn refuses_bad_arguments() {
        let err = |raw: &[(&str, Value)]| {
            PermissionsModule
                .render(&check(&PermissionsModule, raw))
                .expect_err("refused")
        };
        assert_eq!(err(&[("path", s("/x"))]).arg, None);
        assert_eq!(
            err(&[("path", s("/x")), ("mode", s("u+rw"))]).arg,
            Some("mode")
        );
        assert_eq!(
            err(&[("path", s("/x")), ("mode", s("0999"))]).arg,
            Some("mode")
        );
        assert_eq!(
            err(&[("path", s("/x")), ("owner", s("a b"))]).arg,
            Some("owner")
        );
        assert_eq!(
            err(&[("path", s("/x")), ("group", s("-x"))]).arg,
            Some("group")
        );
    }

    #[test]
    fn check_apply_check_recursively_with_real_sh() {
        let dir = TempDir::new("perm");
        let root = dir.join("csp");
        std::fs::create_dir_all(root.join("app")).expect("mkdir");
        std::fs::write(root.join("app/a.csp"), "x").expect("write");
        std::os::unix::fs::symlink("a.csp", root.join("app/link")).expect("link");
        let raw = [
            ("path", s(&dir.str("csp"))),
            ("mode", s("0750")),
            ("recursive", Value::Bool(true)),
        ];
        let (chk, apply) = (
            probe(&PermissionsModule, &raw),
            remote(&PermissionsModule, &raw),
        );
        assert_eq!(run_check(&chk, dir.path()), 1);
        let out = run(&apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(json["fixed"], 3, "csp, app and a.csp");
        assert_eq!(mode_of(&root.join("app/a.csp")), 0o750);
        assert_eq!(run_check(&chk, dir.path()), 0);
        assert_eq!(stdout(&run(&apply, dir.path())), "runbook: unchanged\n");

        // Not recursive: only the path itself.
        std::fs::set_permissions(root.join("app/a.csp"), PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let top = [("path", s(&dir.str("csp"))), ("mode", s("750"))];
        assert_eq!(run_check(&probe(&PermissionsModule, &top), dir.path()), 0);

        let missing = [("path", s(&dir.str("nope"))), ("mode", s("750"))];
        let out = run(&probe(&PermissionsModule, &missing), dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("storage.permissions: "),
            "{}",
            stderr(&out)
        );
        let nobody = [
            ("path", s(&dir.str("csp"))),
            ("owner", s("no-such-user-rb")),
        ];
        let out = run(&remote(&PermissionsModule, &nobody), dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no such user: no-such-user-rb"));
    }

    #[test]
    fn owner_by_id_is_compared() {
        let dir = TempDir::new("perm-owner");
        std::fs::write(dir.join("f"), "x").expect("write");
        let uid = std::fs::metadata(dir.join("f")).expect("stat");
        let uid = std::os::unix::fs::MetadataExt::uid(&uid).to_string();
        let raw = [("path", s(&dir.str("f"))), ("owner", s(&uid))];
        assert_eq!(run_check(&probe(&PermissionsModule, &raw), dir.path()), 0);
        let other = (uid.parse::<u32>().expect("uid") + 1).to_string();
        let raw = [("path", s(&dir.str("f"))), ("owner", s(&other))];
        assert_eq!(run_check(&probe(&PermissionsModule, &raw), dir.path()), 1);
    }
}
