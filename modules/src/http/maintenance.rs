//! `http.maintenance_on` and `http.maintenance_off`: close an Apache httpd to everyone but an
//! allow-list, with a maintenance page, and open it again.
//!
//! Seed `003_86f8010c22e46869.txt`, step 1 ("temporarily disable access ... only at the IBM HTTP
//! Server": an ErrorDocument pointing at a maintenance page, a `<Location />` that lets only the
//! listed addresses through, a restart) and step 7 ("re-enable the HTTP server ... by removing
//! the Location and ErrorDocument statements that you added in step 1").
//!
//! The seed's statements are Apache 2.2 access control (`Order Deny,Allow`, `Allow from`),
//! answering refused clients with 403 and a 403 ErrorDocument. `maintenance_on` writes the
//! Apache 2.4 equivalent that answers refused clients with `503 Service Unavailable`, the status
//! meant for maintenance (caches and monitors do not take it for a permanent refusal), and the
//! maintenance page as its body:
//!
//! ```apache
//! # BEGIN runbook maintenance
//! # Added by runbook (http.maintenance_on); http.maintenance_off removes it.
//! ErrorDocument 503 /upgrading.htm
//! <If "%{REQUEST_URI} != '/upgrading.htm' && ! -R '10.0.0.5' && ! -R '10.1.0.0/16'">
//!     Redirect 503
//! </If>
//! # END runbook maintenance
//! ```
//!
//! `-R` is the address test of Apache's expression parser (core, no module needed), `Redirect
//! 503` comes from `mod_alias`. The page itself is requested by the ErrorDocument's internal
//! redirect, which the first condition lets through.
//!
//! Both modules edit the file the same way: the file without any old block (plus the new block
//! for `on`) is written to a temporary file beside it with the same mode and owner and renamed
//! over it; then `CTL [-d ROOT] -f CONF -t` tests the whole configuration and `CTL [-d ROOT] -f
//! CONF -k graceful` restarts the server gracefully (starting it if it is not running). If the
//! test or the restart fails, the original content is written back and the step fails quoting
//! httpd's message: the file is never left with an edit the server refused.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::plain;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{
    CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError, UNCHANGED,
};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The first line of the block the modules manage.
pub const BEGIN: &str = "# BEGIN runbook maintenance";
/// The last line of the block the modules manage.
pub const END: &str = "# END runbook maintenance";

/// The exit status of a check that could not answer.
const CHECK_FAILED: i32 = 2;

/// awk: print the managed block, markers included.
const AWK_EXTRACT: &str = "$0 == \"# BEGIN runbook maintenance\" { f = 1 } f { print } \
                           $0 == \"# END runbook maintenance\" { f = 0 }";
/// awk: print the file without the managed block.
const AWK_STRIP: &str = "$0 == \"# BEGIN runbook maintenance\" { f = 1; next } \
                         $0 == \"# END runbook maintenance\" { f = 0; next } !f";

/// The `http.maintenance_on` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaintenanceOnModule;

/// The `http.maintenance_off` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaintenanceOffModule;

crate::params! {
    struct ServerParams {

        config: ParamSpec::required(ParamType::Path,
            "The configuration file that gets the maintenance block (httpd.conf)",
        ),
        ctl: ParamSpec::optional(ParamType::String,
            "The control program: apachectl, apache2ctl, or the httpd binary itself",
        )
        .with_default(Value::Str("apachectl".into())),
        server_root: ParamSpec::optional(ParamType::Path,
            "The instance's ServerRoot, passed as `-d`",
        ),
        server_config: ParamSpec::optional(ParamType::Path,
            "The main configuration file, passed as `-f` (default: `config`)",
        ),
    }
}

fn server_params() -> Vec<ParamSpec> {
    ServerParams::specs()
}

crate::params! {
    struct OnParams {
        allow: ParamSpec::required(ParamType::List(Box::new(ParamType::String)),
        "Addresses or networks (10.0.0.5, 10.1.0.0/16, fd00::/8) that still get through",
    ),
        error_page: ParamSpec::optional(ParamType::String,
            "URL path of the maintenance page served with the 503",
        )
        .with_default(Value::Str("/upgrading.htm".into())),
    }
}

static ON_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    let mut params = server_params();
    params.extend(OnParams::specs());
    params
});

static OFF_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(server_params);

impl Module for MaintenanceOnModule {
    fn name(&self) -> &'static str {
        "http.maintenance_on"
    }

    fn description(&self) -> &'static str {
        "Answer 503 with a maintenance page to all but an allow-list (Apache httpd), test, restart"
    }

    fn params(&self) -> &[ParamSpec] {
        &ON_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let server = Server::new(self.name(), args)?;
        let block = block(args)?;
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(server.apply(Some(&block))),
        ))])
    }

    /// 0 when the file holds exactly the block these arguments give, 1 when it holds none or
    /// another one, 2 when the file cannot be read or its markers are unbalanced.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let server = Server::new(self.name(), args)?;
        let block = block(args)?;
        Ok(Some(vec![Operation::Remote(Command::probe(
            server.check(Some(&block)),
        ))]))
    }
}

impl Module for MaintenanceOffModule {
    fn name(&self) -> &'static str {
        "http.maintenance_off"
    }

    fn description(&self) -> &'static str {
        "Remove the maintenance block of http.maintenance_on (Apache httpd), test, restart"
    }

    fn params(&self) -> &[ParamSpec] {
        &OFF_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let server = Server::new(self.name(), args)?;
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(server.apply(None)),
        ))])
    }

    /// 0 when the file has no maintenance block, 1 when it has one, 2 when the file cannot be
    /// read or its markers are unbalanced.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let server = Server::new(self.name(), args)?;
        Ok(Some(vec![Operation::Remote(Command::probe(
            server.check(None),
        ))]))
    }
}

/// The maintenance block for these arguments, markers included, without a final newline.
fn block(args: &Args) -> Result<String, RenderError> {
    let p = OnParams::read(args);
    let page = p
        .error_page
        .get()
        .cloned()
        .unwrap_or(Value::Str("/upgrading.htm".into()));
    if let Some(page) = plain(Some(&page))
        && (!page.starts_with('/')
            || page
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\')))
    {
        return Err(RenderError::new(
            p.error_page.name(),
            format!(
                "expected a URL path such as /upgrading.htm (no blanks, quotes or backslashes), \
                 found `{page}`"
            ),
        ));
    }
    let allow = p.allow.list().unwrap_or_default();
    if allow.is_empty() {
        return Err(RenderError::new(
            p.allow.name(),
            "list at least one address: yours and every application server's (seed step 1.2)",
        ));
    }
    let mut condition = format!("%{{REQUEST_URI}} != '{page}'");
    for item in allow {
        if let Some(text) = plain(Some(item))
            && (text.is_empty()
                || !text
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/')))
        {
            return Err(RenderError::new(
                p.allow.name(),
                format!(
                    "expected an IP address or network (10.0.0.5, 10.1.0.0/16), found `{text}`"
                ),
            ));
        }
        let _ = write!(condition, " && ! -R '{item}'");
    }
    Ok(format!(
        "{BEGIN}\n# Added by runbook (http.maintenance_on); http.maintenance_off removes it.\n\
         ErrorDocument 503 {page}\n<If \"{condition}\">\n    Redirect 503\n</If>\n{END}"
    ))
}

/// What both modules know about the server: the file to edit and how to test and restart.
struct Server {
    module: &'static str,
    /// The quoted `config`.
    config: String,
    /// The quoted words `CTL [-d ROOT] -f CONF`.
    ctl: String,
}

impl Server {
    fn new(module: &'static str, args: &Args) -> Result<Self, RenderError> {
        let p = ServerParams::read(args);
        let config = p
            .config
            .get()
            .ok_or_else(|| RenderError::new(p.config.name(), "is required"))?;
        let ctl = p
            .ctl
            .get()
            .cloned()
            .unwrap_or(Value::Str("apachectl".into()));
        if let Some(text) = plain(Some(&ctl))
            && (text.is_empty() || text.starts_with('-') || text.contains(char::is_whitespace))
        {
            return Err(RenderError::new(
                p.ctl.name(),
                format!("expected one program name or path, found `{text}`"),
            ));
        }
        for arg in [p.config, p.server_root, p.server_config] {
            if let Some(Value::Secret(_)) = arg.get() {
                return Err(RenderError::new(arg.name(), "cannot be a secret"));
            }
        }
        if let Some(Value::Secret(_)) = p.ctl.get() {
            return Err(RenderError::new(p.ctl.name(), "cannot be a secret"));
        }
        let mut words = vec![word(&ctl)];
        if let Some(root) = p.server_root.get().filter(|v| **v != Value::Null) {
            words.push("-d".into());
            words.push(word(root));
        }
        words.push("-f".into());
        words.push(word(
            p.server_config
                .get()
                .filter(|v| **v != Value::Null)
                .unwrap_or(config),
        ));
        Ok(Self {
            module,
            config: word(config),
            ctl: words.join(" "),
        })
    }

    /// The lines both the check and the apply start with: the file, resolved and read, and its
    /// markers counted. A problem exits with `status`.
    fn preamble(&self, block: Option<&str>, status: i32) -> String {
        let m = quote(self.module);
        let mut s = format!(
            "conf={conf}\nbegin={begin}\nend={end}\n",
            conf = self.config,
            begin = quote(BEGIN),
            end = quote(END),
        );
        if let Some(block) = block {
            let _ = writeln!(s, "block={}", quote(block));
        }
        let _ = write!(
            s,
            "real=$(readlink -f -- \"$conf\") && [ -f \"$real\" ] && [ -r \"$real\" ] || \
             {{ printf '%s: %s is not a readable file\\n' {m} \"$conf\" >&2; exit {status}; }}\n\
             nb=$(grep -cxF -- \"$begin\" \"$real\"); ne=$(grep -cxF -- \"$end\" \"$real\")\n\
             if [ \"$nb\" != \"$ne\" ] || [ \"$nb\" -gt 1 ]; then printf '%s: %s has %s BEGIN and \
             %s END lines of a runbook maintenance block; fix it by hand\\n' {m} \"$conf\" \"$nb\" \
             \"$ne\" >&2; exit {status}; fi\n"
        );
        s
    }

    /// The read-only probe.
    fn check(&self, block: Option<&str>) -> String {
        let mut s = self.preamble(block, CHECK_FAILED);
        if block.is_some() {
            let _ = write!(
                s,
                "current=$(awk {} \"$real\")\n\
                 if [ \"$current\" = \"$block\" ]; then exit {CHECK_IN_STATE}; else exit \
                 {CHECK_WOULD_CHANGE}; fi",
                quote(AWK_EXTRACT)
            );
        } else {
            let _ = write!(
                s,
                "if [ \"$nb\" = 0 ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi"
            );
        }
        s
    }

    /// The edit, the configuration test, the graceful restart, and the rollback.
    fn apply(&self, block: Option<&str>) -> String {
        let m = quote(self.module);
        let unchanged = quote(UNCHANGED);
        let mut s = self.preamble(block, 1);
        let (done, write_new, did) = if block.is_some() {
            let _ = writeln!(s, "current=$(awk {} \"$real\")", quote(AWK_EXTRACT));
            (
                "[ \"$current\" = \"$block\" ]",
                format!(
                    "{{ awk {} \"$real\" && printf '%s\\n' \"$block\"; }} > \"$new\" || exit 1",
                    quote(AWK_STRIP)
                ),
                "the maintenance block is in place",
            )
        } else {
            (
                "[ \"$nb\" = 0 ]",
                format!("awk {} \"$real\" > \"$new\" || exit 1", quote(AWK_STRIP)),
                "the maintenance block is removed",
            )
        };
        let already = if block.is_some() {
            "the maintenance block is already in %s"
        } else {
            "%s has no maintenance block"
        };
        let ctl = &self.ctl;
        let _ = write!(
            s,
            "if {done}; then printf '%s\\n' {unchanged}; printf '%s: {already}\\n' {m} \"$conf\" \
             >&2; exit 0; fi\n\
             new=$(mktemp \"$(dirname -- \"$real\")/.runbook-maintenance.XXXXXX\") || exit 1\n\
             old=$(mktemp) || {{ rm -f \"$new\"; exit 1; }}\n\
             trap 'rm -f \"$new\" \"$old\"' EXIT\n\
             trap 'exit 1' HUP INT TERM\n\
             cp -p -- \"$real\" \"$old\" && cp -p -- \"$real\" \"$new\" || exit 1\n\
             {write_new}\n\
             mv -f -- \"$new\" \"$real\" || exit 1\n\
             if ! out=$({ctl} -t 2>&1); then cat -- \"$old\" > \"$real\"; printf '%s: the \
             configuration test failed, %s is back as it was: %s\\n' {m} \"$conf\" \"$out\" >&2; \
             exit 1; fi\n\
             if ! out=$({ctl} -k graceful 2>&1); then cat -- \"$old\" > \"$real\"; printf '%s: the \
             graceful restart failed, %s is back as it was: %s\\n' {m} \"$conf\" \"$out\" >&2; \
             exit 1; fi\n\
             printf '%s: {did} in %s; configuration test passed; graceful restart sent\\n' {m} \
             \"$conf\" >&2"
        );
        s
    }
}

/// One argument value as one shell word (deferred values as their quoted placeholder).
fn word(value: &Value) -> String {
    match value {
        Value::Str(s) if s.starts_with('-') => quote(&format!("./{s}")),
        Value::Str(s) => quote(s),
        other => quote(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::generic::testing::{
        TempDir, check, hostile, list, probe, remote, run, run_check, s, stderr, stdout,
    };

    fn on_args(conf: &str, ctl: &str) -> Vec<(&'static str, Value)> {
        vec![
            ("config", s(conf)),
            ("ctl", s(ctl)),
            ("allow", list(&["127.0.0.1", "10.1.0.0/16"])),
        ]
    }

    #[test]
    fn the_block_is_apache_2_4_with_a_503_and_the_allow_list() {
        let args = check(&MaintenanceOnModule, &on_args("/x", "apachectl"));
        assert_eq!(
            block(&args).expect("renders"),
            "# BEGIN runbook maintenance\n\
             # Added by runbook (http.maintenance_on); http.maintenance_off removes it.\n\
             ErrorDocument 503 /upgrading.htm\n\
             <If \"%{REQUEST_URI} != '/upgrading.htm' && ! -R '127.0.0.1' && ! -R '10.1.0.0/16'\">\n    \
             Redirect 503\n\
             </If>\n\
             # END runbook maintenance"
        );
    }

    #[test]
    fn renders_the_edit_test_restart_and_rollback() {
        let cmd = remote(
            &MaintenanceOnModule,
            &[
                ("config", s("/opt/IBM/HTTPServer/conf/httpd.conf")),
                ("ctl", s("/opt/IBM/HTTPServer/bin/apachectl")),
                ("server_root", s("/opt/IBM/HTTPServer")),
                ("allow", list(&["10.0.0.5"])),
            ],
        );
        assert!(cmd.mutating && cmd.env.is_empty() && cmd.stdin.is_none());
        assert_eq!(
            cmd.script,
            r##"conf=/opt/IBM/HTTPServer/conf/httpd.conf
begin='# BEGIN runbook maintenance'
end='# END runbook maintenance'
block='# BEGIN runbook maintenance
# Added by runbook (http.maintenance_on); http.maintenance_off removes it.
ErrorDocument 503 /upgrading.htm
<If "%{REQUEST_URI} != '"'/upgrading.htm' && "'! -R '"'10.0.0.5'\">
    Redirect 503
</If>
# END runbook maintenance"
real=$(readlink -f -- "$conf") && [ -f "$real" ] && [ -r "$real" ] || { printf '%s: %s is not a readable file\n' http.maintenance_on "$conf" >&2; exit 1; }
nb=$(grep -cxF -- "$begin" "$real"); ne=$(grep -cxF -- "$end" "$real")
if [ "$nb" != "$ne" ] || [ "$nb" -gt 1 ]; then printf '%s: %s has %s BEGIN and %s END lines of a runbook maintenance block; fix it by hand\n' http.maintenance_on "$conf" "$nb" "$ne" >&2; exit 1; fi
current=$(awk '$0 == "# BEGIN runbook maintenance" { f = 1 } f { print } $0 == "# END runbook maintenance" { f = 0 }' "$real")
if [ "$current" = "$block" ]; then printf '%s\n' 'runbook: unchanged'; printf '%s: the maintenance block is already in %s\n' http.maintenance_on "$conf" >&2; exit 0; fi
new=$(mktemp "$(dirname -- "$real")/.runbook-maintenance.XXXXXX") || exit 1
old=$(mktemp) || { rm -f "$new"; exit 1; }
trap 'rm -f "$new" "$old"' EXIT
trap 'exit 1' HUP INT TERM
cp -p -- "$real" "$old" && cp -p -- "$real" "$new" || exit 1
{ awk '$0 == "# BEGIN runbook maintenance" { f = 1; next } $0 == "# END runbook maintenance" { f = 0; next } !f' "$real" && printf '%s\n' "$block"; } > "$new" || exit 1
mv -f -- "$new" "$real" || exit 1
if ! out=$(/opt/IBM/HTTPServer/bin/apachectl -d /opt/IBM/HTTPServer -f /opt/IBM/HTTPServer/conf/httpd.conf -t 2>&1); then cat -- "$old" > "$real"; printf '%s: the configuration test failed, %s is back as it was: %s\n' http.maintenance_on "$conf" "$out" >&2; exit 1; fi
if ! out=$(/opt/IBM/HTTPServer/bin/apachectl -d /opt/IBM/HTTPServer -f /opt/IBM/HTTPServer/conf/httpd.conf -k graceful 2>&1); then cat -- "$old" > "$real"; printf '%s: the graceful restart failed, %s is back as it was: %s\n' http.maintenance_on "$conf" "$out" >&2; exit 1; fi
printf '%s: the maintenance block is in place in %s; configuration test passed; graceful restart sent\n' http.maintenance_on "$conf" >&2"##
        );
    }

    #[test]
    fn off_uses_server_config_for_the_test() {
        let cmd = remote(
            &MaintenanceOffModule,
            &[
                ("config", s("/etc/apache2/conf-enabled/maint.conf")),
                ("ctl", s("apache2ctl")),
                ("server_config", s("/etc/apache2/apache2.conf")),
            ],
        );
        assert!(!cmd.script.contains("block="));
        assert!(cmd.script.contains(
            "if [ \"$nb\" = 0 ]; then printf '%s\\n' 'runbook: unchanged'; printf '%s: %s has no maintenance block\\n' http.maintenance_off \"$conf\" >&2; exit 0; fi\n"
        ));
        assert!(
            cmd.script
                .contains("out=$(apache2ctl -f /etc/apache2/apache2.conf -t 2>&1)")
        );
        assert!(
            cmd.script
                .contains("out=$(apache2ctl -f /etc/apache2/apache2.conf -k graceful 2>&1)")
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        let bad = |raw: Vec<(&'static str, Value)>| {
            MaintenanceOnModule
                .render(&check(&MaintenanceOnModule, &raw))
                .expect_err("refused")
                .arg
        };
        let mut raw = on_args("/x", "apachectl");
        raw[2].1 = list(&[]);
        assert_eq!(bad(raw), Some("allow"));
        for item in ["10.0.0.1 or", "host.example.com", "1.2.3.4'", ""] {
            let mut raw = on_args("/x", "apachectl");
            raw[2].1 = list(&["127.0.0.1", item]);
            assert_eq!(bad(raw), Some("allow"), "{item}");
        }
        for page in ["upgrading.htm", "/a b.htm", "/it's.htm", "/x\"y"] {
            let mut raw = on_args("/x", "apachectl");
            raw.push(("error_page", s(page)));
            assert_eq!(bad(raw), Some("error_page"), "{page}");
        }
        for ctl in ["", "-x", "apachectl -k"] {
            assert_eq!(bad(on_args("/x", ctl)), Some("ctl"), "{ctl}");
        }
        let args = check(
            &MaintenanceOffModule,
            &[("config", s("/x")), ("ctl", Value::Secret("x".into()))],
        );
        assert_eq!(
            MaintenanceOffModule.render(&args).expect_err("secret").arg,
            Some("ctl")
        );
    }

    #[test]
    fn deferred_values_render_as_placeholders() {
        let raw = [
            ("config", s("/x")),
            (
                "allow",
                Value::List(vec![Value::Deferred("ops.values.addr".into())]),
            ),
        ];
        let cmd = remote(&MaintenanceOnModule, &raw);
        let block = &cmd.script[cmd.script.find("block=").expect("block")..];
        let words = shlex::split(
            block
                .lines()
                .take(7)
                .collect::<Vec<_>>()
                .join("\n")
                .trim_start_matches("block="),
        )
        .expect("one word");
        assert!(
            words[0].contains("! -R '<ops.values.addr>'"),
            "{}",
            words[0]
        );
    }

    /// A fake control program: records its arguments, fails `-t` when the file holds `BROKEN`
    /// and fails `-k graceful` when `fail-restart` exists next to it.
    fn fake_ctl(dir: &TempDir) -> String {
        let path = dir.join("ctl");
        std::fs::write(
            &path,
            "#!/bin/sh\n\
             here=$(dirname \"$0\")\n\
             echo \"$*\" >> \"$here/ctl.log\"\n\
             for a; do conf=$a; [ \"$a\" = -t ] && break; [ \"$a\" = -k ] && break; prev=$a; done\n\
             conf=$prev\n\
             case \"$*\" in\n\
             *' -t') if grep -q BROKEN \"$conf\"; then echo 'AH00526: Syntax error on line 3' >&2; \
             echo \"Action '$*' failed.\"; exit 1; fi; echo 'Syntax OK' >&2 ;;\n\
             *'-k graceful') [ -e \"$here/fail-restart\" ] && { echo 'AH00058: no pid file' >&2; \
             exit 1; } ;;\n\
             esac\n\
             exit 0\n",
        )
        .expect("write fake ctl");
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).expect("chmod");
        path.to_str().expect("utf-8").to_owned()
    }

    const ORIGINAL: &str = "ServerRoot /srv\nListen 80\n";

    #[test]
    fn on_then_off_with_real_sh_round_trips_the_file() {
        let dir = TempDir::new("http-maint");
        let conf = dir.str("httpd.conf");
        std::fs::write(&conf, ORIGINAL).expect("write");
        std::fs::set_permissions(&conf, PermissionsExt::from_mode(0o640)).expect("chmod");
        let ctl = fake_ctl(&dir);
        let on = on_args(&conf, &ctl);
        let off = [("config", s(&conf)), ("ctl", s(&ctl))];
        let (on_check, on_apply) = (
            probe(&MaintenanceOnModule, &on),
            remote(&MaintenanceOnModule, &on),
        );
        let (off_check, off_apply) = (
            probe(&MaintenanceOffModule, &off),
            remote(&MaintenanceOffModule, &off),
        );

        assert_eq!(run_check(&on_check, dir.path()), CHECK_WOULD_CHANGE);
        assert_eq!(run_check(&off_check, dir.path()), CHECK_IN_STATE);
        let out = run(&on_apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        let text = std::fs::read_to_string(&conf).expect("read");
        assert!(text.starts_with(ORIGINAL) && text.ends_with(&format!("{END}\n")));
        let mode = std::fs::metadata(&conf).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "the mode is kept");
        assert_eq!(
            std::fs::read_to_string(dir.join("ctl.log")).expect("log"),
            format!("-f {conf} -t\n-f {conf} -k graceful\n")
        );
        assert_eq!(run_check(&on_check, dir.path()), CHECK_IN_STATE);
        assert_eq!(run_check(&off_check, dir.path()), CHECK_WOULD_CHANGE);

        // Again: nothing to do, no test, no restart.
        let out = run(&on_apply, dir.path());
        assert_eq!(stdout(&out), format!("{UNCHANGED}\n"));
        assert_eq!(
            std::fs::read_to_string(dir.join("ctl.log"))
                .expect("log")
                .lines()
                .count(),
            2
        );

        // Another allow-list replaces the block, it does not add a second one.
        let mut other = on.clone();
        other[2].1 = list(&["192.0.2.1"]);
        assert_eq!(
            run_check(&probe(&MaintenanceOnModule, &other), dir.path()),
            1
        );
        assert!(
            run(&remote(&MaintenanceOnModule, &other), dir.path())
                .status
                .success()
        );
        let text = std::fs::read_to_string(&conf).expect("read");
        assert_eq!(text.matches(BEGIN).count(), 1);
        assert!(text.contains("192.0.2.1") && !text.contains("10.1.0.0/16"));

        let out = run(&off_apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        assert_eq!(std::fs::read_to_string(&conf).expect("read"), ORIGINAL);
        assert_eq!(run_check(&off_check, dir.path()), CHECK_IN_STATE);
        assert_eq!(
            stdout(&run(&off_apply, dir.path())),
            format!("{UNCHANGED}\n")
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".runbook"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_config_test_or_restart_puts_the_file_back() {
        let dir = TempDir::new("http-maint-rollback");
        let conf = dir.str("httpd.conf");
        let broken = "ServerRoot /srv\nBROKEN directive\n";
        std::fs::write(&conf, broken).expect("write");
        let ctl = fake_ctl(&dir);
        let out = run(
            &remote(&MaintenanceOnModule, &on_args(&conf, &ctl)),
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "");
        assert!(
            stderr(&out).contains("http.maintenance_on: the configuration test failed")
                && stderr(&out).contains("AH00526: Syntax error on line 3"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_to_string(&conf).expect("read"), broken);

        std::fs::write(&conf, ORIGINAL).expect("write");
        std::fs::write(dir.join("fail-restart"), "").expect("write");
        let out = run(
            &remote(&MaintenanceOnModule, &on_args(&conf, &ctl)),
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("graceful restart failed") && stderr(&out).contains("AH00058"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_to_string(&conf).expect("read"), ORIGINAL);
    }

    #[test]
    fn unbalanced_markers_are_refused_and_unreadable_files_fail_the_check() {
        let dir = TempDir::new("http-maint-unbalanced");
        let conf = dir.str("httpd.conf");
        std::fs::write(&conf, format!("{ORIGINAL}{BEGIN}\nErrorDocument 503 /x\n")).expect("w");
        let ctl = fake_ctl(&dir);
        let on = on_args(&conf, &ctl);
        for module in [&MaintenanceOnModule as &dyn Module, &MaintenanceOffModule] {
            let raw: Vec<_> = on
                .iter()
                .filter(|(k, _)| module.params().iter().any(|p| p.name == *k))
                .cloned()
                .collect();
            assert_eq!(run_check(&probe(module, &raw), dir.path()), CHECK_FAILED);
            let out = run(&remote(module, &raw), dir.path());
            assert_eq!(out.status.code(), Some(1));
            assert!(stderr(&out).contains("fix it by hand"), "{}", stderr(&out));
        }
        let missing = on_args(&dir.str("nope.conf"), &ctl);
        assert_eq!(
            run_check(&probe(&MaintenanceOnModule, &missing), dir.path()),
            CHECK_FAILED
        );
        assert!(!dir.join("ctl.log").exists(), "nothing was tested");
    }

    #[test]
    fn hostile_paths_stay_inert() {
        let dir = TempDir::new("http-maint-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            for arg in ["config", "server_root", "server_config"] {
                let mut raw = on_args(&dir.str("httpd.conf"), "true");
                match arg {
                    "config" => raw[0].1 = s(&value),
                    _ => raw.push((arg, s(&value))),
                }
                let _ = run(&remote(&MaintenanceOnModule, &raw), dir.path());
                let _ = run(&probe(&MaintenanceOnModule, &raw), dir.path());
                assert!(!marker.exists(), "escaped quoting via {arg}: {value:?}");
            }
        }
    }
}
