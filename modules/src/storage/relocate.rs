//! `storage.relocate`: move a directory to a shared drive and leave a symbolic link behind.
//!
//! Seed `000_fc9617c117eaba83.txt`, section 3.2 / 4.11 ("To move the content to the shared
//! drive"): copy `<install-dir>/csp/` and `<install-dir>/hscommunity-content/` from instance A
//! to the shared drive, delete them on both instances, and create symbolic links to the
//! folders on the shared drive (`ln -s /mydrive/csp csp`).
//!
//! Every state between "not started" and "done" is a state the apply can finish from, so it is
//! safe to run again after an interruption:
//!
//! | `path` | `target` | what the apply does |
//! | --- | --- | --- |
//! | a link to `target` | a directory | nothing: `runbook: unchanged` |
//! | a directory | absent or empty | copies it (`cp -a` to `target.runbook-tmp`, manifests compared, renamed), then as below |
//! | a directory | the same content (manifest) | removes `path`, links it |
//! | a directory | other content | fails, unless `discard_local: true` (instance B in the seed: its own copy is dropped) |
//! | absent | a directory | links it |
//! | absent | absent | fails: nothing to relocate |
//! | a link elsewhere, or not a directory | | fails |
//!
//! The link is made beside `path` and renamed over it, so `path` is missing only between the
//! removal of the old directory and that rename. The last line is
//! `{"path": ..., "target": ..., "copied": true|false}`. The check: 0 when `path` is a symbolic
//! link to `target` and `target` is a directory.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{json_word, path, preamble};
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{
    CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError, UNCHANGED,
};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `storage.relocate` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelocateModule;

crate::params! {
    struct Params {

        path: ParamSpec::required(ParamType::Path,
            "The directory to move (it becomes a symbolic link)",
        ),
        target: ParamSpec::required(ParamType::Path,
            "Its new place, an absolute path on the shared drive",
        ),
        discard_local: ParamSpec::optional(ParamType::Bool,
            "When `target` already holds other content, drop `path` instead of failing",
        )
        .with_default(Value::Bool(false)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for RelocateModule {
    fn name(&self) -> &'static str {
        "storage.relocate"
    }

    fn description(&self) -> &'static str {
        "Move a directory to a shared drive and leave a symbolic link in its place"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(apply(args)?),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let (p, t) = words(args)?;
        Ok(Some(vec![Operation::Remote(Command::probe(format!(
            "p={p}\nt={t}\n\
             if [ -L \"$p\" ] && [ \"$(readlink -- \"$p\")\" = \"$t\" ] && [ -d \"$t\" ]; then exit {CHECK_IN_STATE}; fi\n\
             exit {CHECK_WOULD_CHANGE}"
        )))]))
    }
}

fn words(args: &Args) -> Result<(String, String), RenderError> {
    let p = Params::read(args);
    let target = p.target.get().map(ToString::to_string).unwrap_or_default();
    if let Some(Value::Str(t)) = p.target.get()
        && (!t.starts_with('/') || t.trim_end_matches('/').is_empty())
    {
        return Err(RenderError::new(
            p.target.name(),
            format!("expected an absolute path below `/`, found `{target}`"),
        ));
    }
    if let Some(Value::Str(p)) = p.path.get()
        && p.trim_end_matches('/').is_empty()
    {
        return Err(RenderError::new("path", "cannot be `/`"));
    }
    Ok((path(p.path)?, path(p.target)?))
}

fn apply(args: &Args) -> Result<String, RenderError> {
    let a = Params::read(args);
    let (p, t) = words(args)?;
    let discard = u8::from(a.discard_local.bool().unwrap_or(false));
    let mut s = preamble("storage.relocate");
    let _ = write!(
        s,
        "p={p}\nt={t}\ncopied=false\n\
         nonempty() {{ [ -d \"$1\" ] && [ -n \"$(ls -A -- \"$1\")\" ]; }}\n\
         if [ -L \"$p\" ]; then\n  \
           [ \"$(readlink -- \"$p\")\" = \"$t\" ] || fail \"$p is a symbolic link to $(readlink -- \"$p\"), not to $t\"\n  \
           [ -d \"$t\" ] || fail \"$p links to $t, which is not a directory\"\n  \
           printf '%s\\n' {unchanged}; exit 0\n\
         fi\n\
         [ ! -e \"$p\" ] || [ -d \"$p\" ] || fail \"$p is not a directory\"\n\
         [ ! -e \"$t\" ] || [ -d \"$t\" ] || fail \"$t exists and is not a directory\"\n\
         if [ -d \"$p\" ]; then\n  \
           if nonempty \"$t\"; then\n    \
             if [ \"$(manifest \"$p\")\" = \"$(manifest \"$t\")\" ]; then\n      \
               echo \"runbook: $t already holds the same content as $p\" >&2\n    \
             elif [ {discard} = 1 ]; then\n      \
               echo \"runbook: $t holds other content; dropping $p (discard_local)\" >&2\n    \
             else\n      \
               fail \"$t already holds other content; refusing to overwrite it (discard_local: true keeps $t and drops $p)\"\n    \
             fi\n  \
           else\n    \
             [ ! -d \"$t\" ] || rmdir -- \"$t\" || exit 2\n    \
             mkdir -p -- \"$(dirname -- \"$t\")\" || exit 2\n    \
             rm -rf -- \"$t.runbook-tmp\"\n    \
             cp -a -- \"$p\" \"$t.runbook-tmp\" || {{ rm -rf -- \"$t.runbook-tmp\"; fail \"cannot copy $p to $t\"; }}\n    \
             [ \"$(manifest \"$p\")\" = \"$(manifest \"$t.runbook-tmp\")\" ] || {{ rm -rf -- \"$t.runbook-tmp\"; fail \"the copy of $p differs from it; nothing was changed\"; }}\n    \
             mv -T -- \"$t.runbook-tmp\" \"$t\" || exit 2\n    \
             copied=true\n  \
           fi\n  \
           rm -f -- \"$p.runbook-link\"\n  \
           ln -s -- \"$t\" \"$p.runbook-link\" || exit 2\n  \
           rm -rf -- \"$p\" || fail \"cannot remove $p\"\n  \
           mv -T -- \"$p.runbook-link\" \"$p\" || exit 2\n\
         else\n  \
           [ -d \"$t\" ] || fail \"neither $p nor $t exists: nothing to relocate\"\n  \
           rm -f -- \"$p.runbook-link\"\n  \
           ln -s -- \"$t\" \"$p\" || exit 2\n\
         fi\n\
         printf '{{\"path\":%s,\"target\":%s,\"copied\":%s}}\\n' {} {} \"$copied\"",
        json_word(a.path),
        json_word(a.target),
        unchanged = quote(UNCHANGED),
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{
        TempDir, check, probe, remote, run, run_check, s, stderr, stdout, syntax_ok,
    };

    fn raw(dir: &TempDir, discard: bool) -> Vec<(&'static str, Value)> {
        vec![
            ("path", s(&dir.str("install/csp"))),
            ("target", s(&dir.str("mydrive/csp"))),
            ("discard_local", Value::Bool(discard)),
        ]
    }

    fn tree(dir: &std::path::Path, content: &str) {
        std::fs::create_dir_all(dir.join("hscommlib/USER")).expect("mkdir");
        std::fs::write(dir.join("hscommlib/USER/index.csp"), content).expect("write");
    }

    #[test]
    fn check_and_refusals() {
        let cmd = probe(
            &RelocateModule,
            &[("path", s("/i/csp")), ("target", s("/mydrive/csp"))],
        );
        assert_eq!(
            cmd.script,
            "p=/i/csp\nt=/mydrive/csp\nif [ -L \"$p\" ] && [ \"$(readlink -- \"$p\")\" = \"$t\" ] && [ -d \"$t\" ]; then exit 0; fi\nexit 1"
        );
        let err = RelocateModule
            .render(&check(
                &RelocateModule,
                &[("path", s("/i/csp")), ("target", s("rel"))],
            ))
            .expect_err("relative");
        assert_eq!(err.arg, Some("target"));
        syntax_ok(
            &remote(
                &RelocateModule,
                &[("path", s("/i/csp")), ("target", s("/m/c"))],
            )
            .script,
        );
    }

    #[test]
    fn moves_links_and_is_idempotent_from_every_half_done_state() {
        let dir = TempDir::new("relocate");
        tree(&dir.join("install/csp"), "hello");
        let args = raw(&dir, false);
        let (chk, apply) = (
            probe(&RelocateModule, &args),
            remote(&RelocateModule, &args),
        );
        assert_eq!(run_check(&chk, dir.path()), 1);
        let out = run(&apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(json["copied"], true);
        assert_eq!(
            std::fs::read_link(dir.join("install/csp")).expect("a link"),
            dir.join("mydrive/csp")
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("install/csp/hscommlib/USER/index.csp"))
                .expect("via link"),
            "hello"
        );
        assert_eq!(run_check(&chk, dir.path()), 0);
        assert_eq!(stdout(&run(&apply, dir.path())), "runbook: unchanged\n");

        // Half done: the link is gone (the target is there).
        std::fs::remove_file(dir.join("install/csp")).expect("rm link");
        assert_eq!(run_check(&chk, dir.path()), 1);
        let out = run(&apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("\"copied\":false"));
        assert_eq!(run_check(&chk, dir.path()), 0);

        // Half done: copied, the old directory still there (same content).
        std::fs::remove_file(dir.join("install/csp")).expect("rm link");
        tree(&dir.join("install/csp"), "hello");
        let out = run(&apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(run_check(&chk, dir.path()), 0);
        assert!(!dir.join("install/csp.runbook-link").exists());
    }

    #[test]
    fn refuses_to_overwrite_other_content_unless_told() {
        let dir = TempDir::new("relocate-conflict");
        tree(&dir.join("install/csp"), "mine");
        tree(&dir.join("mydrive/csp"), "shared");
        let out = run(&remote(&RelocateModule, &raw(&dir, false)), dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("already holds other content"),
            "{}",
            stderr(&out)
        );
        assert!(dir.join("install/csp").is_dir() && !dir.join("install/csp").is_symlink());

        let out = run(&remote(&RelocateModule, &raw(&dir, true)), dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(dir.join("install/csp/hscommlib/USER/index.csp"))
                .expect("via link"),
            "shared"
        );

        let empty = TempDir::new("relocate-nothing");
        let out = run(&remote(&RelocateModule, &raw(&empty, false)), empty.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("nothing to relocate"));
    }
}
