//! `http.probe`: one GET from the target host, its status compared with the one expected.
//!
//! Use it as a gate around the maintenance window of seed `003_86f8010c22e46869.txt`: after
//! `http.maintenance_on`, a probe from an address on the allow-list expects 200 and one from
//! elsewhere expects 503 (and the maintenance page); after `http.maintenance_off`, both expect
//! 200. A graceful restart takes effect a moment after the command returns, so give the step
//! `retries:` and `delay:`.
//!
//! It runs `curl` on the target host (`--interface` binds the source address, so one host can
//! probe as an allowed and as a refused client), and prints one JSON object:
//! `{"url": ..., "status": 503, "expected": 503, "contains": true}` (`contains` is `null`
//! without the `contains` argument). The step fails (exit 1) when the status differs, the body
//! lacks `contains`, or curl gets no answer; stderr says which.
//!
//! It only reads, so it is a probe and idempotent. Its check is the same request without the
//! JSON: 0 when the answer is as expected now, 1 when not.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use super::plain;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `http.probe` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeModule;

crate::params! {
    struct Params {

        url: ParamSpec::required(ParamType::String,
            "The http:// or https:// URL to GET",
        ),
        status: ParamSpec::optional(ParamType::Int, "The status code expected")
            .with_default(Value::Int(200)),
        contains: ParamSpec::optional(ParamType::String,
            "Text the body must contain (fixed string)",
        ),
        source: ParamSpec::optional(ParamType::String,
            "Local address to send from (curl --interface)",
        ),
        timeout: ParamSpec::optional(ParamType::Duration,
            "How long the request may take",
        )
        .with_default(Value::Duration(Duration::from_secs(10))),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for ProbeModule {
    fn name(&self) -> &'static str {
        "http.probe"
    }

    fn description(&self) -> &'static str {
        "GET a URL from the host and fail unless the status (and body) is as expected"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::probe(script(args, true)?),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Ok(Some(vec![Operation::Remote(Command::probe(script(
            args, false,
        )?))]))
    }
}

fn script(args: &Args, json: bool) -> Result<String, RenderError> {
    let p = Params::read(args);
    let url = p
        .url
        .get()
        .ok_or_else(|| RenderError::new(p.url.name(), "is required"))?;
    for arg in [p.url, p.contains, p.source] {
        if let Some(Value::Secret(_)) = arg.get() {
            return Err(RenderError::new(arg.name(), "cannot be a secret"));
        }
    }
    if let Some(text) = plain(Some(url))
        && !(text.starts_with("http://") || text.starts_with("https://"))
    {
        return Err(RenderError::new(
            p.url.name(),
            format!("expected an http:// or https:// URL, found `{text}`"),
        ));
    }
    let expected = p.status.int().unwrap_or(200);
    if !(100..=599).contains(&expected) {
        return Err(RenderError::new(
            p.status.name(),
            format!("expected an HTTP status from 100 to 599, found {expected}"),
        ));
    }
    if let Some(text) = plain(p.source.get())
        && (text.is_empty() || text.starts_with('-') || text.contains(char::is_whitespace))
    {
        return Err(RenderError::new(
            p.source.name(),
            format!("expected a local address or interface name, found `{text}`"),
        ));
    }
    let timeout = p.timeout.duration().unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        return Err(RenderError::new(p.timeout.name(), "must be longer than 0s"));
    }
    let url_word = quote(&url.to_string());
    let mut curl = format!(
        "curl -sS -o \"$body\" -w '%{{http_code}}' --max-time {}",
        (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(1)
    );
    if let Some(source) = p.source.get().filter(|v| **v != Value::Null) {
        curl.push_str(" --interface ");
        curl.push_str(&quote(&source.to_string()));
    }
    curl.push_str(" -- ");
    curl.push_str(&url_word);

    let contains = p.contains.get().filter(|v| **v != Value::Null);
    let mut s = format!(
        "body=$(mktemp) || exit 2\n\
         trap 'rm -f \"$body\"' EXIT\n\
         code=$({curl}) || {{ rc=$?; printf 'http.probe: GET %s got no answer (curl exit %s)\\n' \
         {url_word} \"$rc\" >&2; exit 1; }}\n\
         ok=1\n\
         [ \"$code\" = {expected} ] || {{ ok=0; printf 'http.probe: GET %s answered %s, expected \
         %s\\n' {url_word} \"$code\" {expected} >&2; }}\n"
    );
    if let Some(text) = contains {
        let text = quote(&text.to_string());
        let _ = writeln!(
            s,
            "if grep -qF -- {text} \"$body\"; then found=true; else found=false; ok=0; printf \
             'http.probe: the body of %s does not contain %s\\n' {url_word} {text} >&2; fi"
        );
    } else {
        s.push_str("found=null\n");
    }
    if json {
        let url_json = serde_json::to_string(&url.to_string()).expect("a string serializes");
        let _ = write!(
            s,
            "printf '{{\"url\":%s,\"status\":%s,\"expected\":%s,\"contains\":%s}}\\n' {} \
             \"$code\" {expected} \"$found\"\n\
             [ \"$ok\" = 1 ]",
            quote(&url_json)
        );
    } else {
        let _ = write!(
            s,
            "if [ \"$ok\" = 1 ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi"
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;
    use crate::generic::testing::{TempDir, check, probe, remote, run, run_check, s, stdout};

    #[test]
    fn renders_one_curl_and_a_json_line() {
        let cmd = remote(
            &ProbeModule,
            &[
                ("url", s("http://web1:8080/communities")),
                ("status", Value::Int(503)),
                ("contains", s("maintenance")),
                ("source", s("10.0.0.9")),
            ],
        );
        assert!(!cmd.mutating, "a probe");
        assert_eq!(
            cmd.script,
            r#"body=$(mktemp) || exit 2
trap 'rm -f "$body"' EXIT
code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 --interface 10.0.0.9 -- http://web1:8080/communities) || { rc=$?; printf 'http.probe: GET %s got no answer (curl exit %s)\n' http://web1:8080/communities "$rc" >&2; exit 1; }
ok=1
[ "$code" = 503 ] || { ok=0; printf 'http.probe: GET %s answered %s, expected %s\n' http://web1:8080/communities "$code" 503 >&2; }
if grep -qF -- maintenance "$body"; then found=true; else found=false; ok=0; printf 'http.probe: the body of %s does not contain %s\n' http://web1:8080/communities maintenance >&2; fi
printf '{"url":%s,"status":%s,"expected":%s,"contains":%s}\n' '"http://web1:8080/communities"' "$code" 503 "$found"
[ "$ok" = 1 ]"#
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        for (raw, arg) in [
            (vec![("url", s("ftp://x/"))], "url"),
            (
                vec![("url", s("http://x/")), ("status", Value::Int(99))],
                "status",
            ),
            (vec![("url", s("http://x/")), ("source", s("-x"))], "source"),
            (vec![("url", Value::Secret("http://u:p@x/".into()))], "url"),
            (
                vec![("url", s("http://x/")), ("timeout", s("0s"))],
                "timeout",
            ),
        ] {
            let err = ProbeModule
                .render(&check(&ProbeModule, &raw))
                .expect_err("refused");
            assert_eq!(err.arg, Some(arg));
        }
    }

    /// A one-request HTTP server on 127.0.0.1 answering `status` and `body`.
    fn serve_once(status: &str, body: &'static str) -> (u16, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let status = status.to_owned();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        (port, handle)
    }

    #[test]
    fn probes_a_real_server_with_real_sh_and_curl() {
        let dir = TempDir::new("http-probe");
        let (port, server) = serve_once("503 Service Unavailable", "<h1>maintenance</h1>");
        let url = format!("http://127.0.0.1:{port}/x?a=\"b\"");
        let cmd = remote(
            &ProbeModule,
            &[
                ("url", s(&url)),
                ("status", Value::Int(503)),
                ("contains", s("maintenance")),
            ],
        );
        let out = run(&cmd, dir.path());
        server.join().expect("server");
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"url": url, "status": 503, "expected": 503, "contains": true})
        );

        let (port, server) = serve_once("200 OK", "hello");
        let url = format!("http://127.0.0.1:{port}/");
        let raw = [("url", s(&url)), ("status", Value::Int(503))];
        let out = run(&remote(&ProbeModule, &raw), dir.path());
        server.join().expect("server");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("answered 200, expected 503"),
            "{out:?}"
        );
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(json["status"], 200);
        assert_eq!(json["contains"], serde_json::Value::Null);

        // The check: the same request, no output, 0 or 1.
        let (port, server) = serve_once("200 OK", "hello");
        let raw = [("url", s(&format!("http://127.0.0.1:{port}/")))];
        assert_eq!(run_check(&probe(&ProbeModule, &raw), dir.path()), 0);
        server.join().expect("server");
        let (port, server) = serve_once("200 OK", "hello");
        let raw = [
            ("url", s(&format!("http://127.0.0.1:{port}/"))),
            ("contains", s("maintenance")),
        ];
        assert_eq!(run_check(&probe(&ProbeModule, &raw), dir.path()), 1);
        server.join().expect("server");

        // Nobody listening: no answer, exit 1, with curl's reason.
        let closed = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let raw = [
            ("url", s(&format!("http://127.0.0.1:{closed}/"))),
            ("timeout", s("2s")),
        ];
        let out = run(&remote(&ProbeModule, &raw), dir.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("got no answer"));
        assert_eq!(run_check(&probe(&ProbeModule, &raw), dir.path()), 1);
    }
}
