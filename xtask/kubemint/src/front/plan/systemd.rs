//! systemd unit syntax: quoting a command line argument for `ExecStart=`, and laying out a
//! command with one flag per line.

use crate::front::profile::Flag;

/// Quotes one argument so systemd's `ExecStart=` parser gives back exactly `arg`:
/// `%` becomes `%%` (specifiers), `$` becomes `$$` (variable expansion), and an argument with
/// whitespace, quotes or backslashes is double-quoted with C-style escapes.
///
/// Panics never; `arg` must not contain a newline or NUL (profiles reject those).
pub fn quote_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if !needs_quotes {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 2);
    out.push('"');
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `binary` and its flags as the value of `ExecStart=`: one `--name=value` per line, joined
/// by line continuations.
pub fn exec_start(binary: &str, flags: &[Flag]) -> String {
    let mut out = quote_arg(binary);
    for flag in flags {
        out.push_str(" \\\n  ");
        out.push_str(&quote_arg(&format!("--{}={}", flag.name, flag.value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_arg("--v=2"), "--v=2");
        assert_eq!(quote_arg("--a=50%"), "--a=50%%");
        assert_eq!(quote_arg("--a=$HOME"), "--a=$$HOME");
        assert_eq!(quote_arg("--a=b c"), "\"--a=b c\"");
        assert_eq!(quote_arg("--a=\"x\""), "\"--a=\\\"x\\\"\"");
        assert_eq!(quote_arg("--a=x\\y"), "\"--a=x\\\\y\"");
        assert_eq!(quote_arg(""), "\"\"");
    }

    #[test]
    fn one_flag_per_line() {
        let flags = [
            Flag {
                name: "v".into(),
                value: "2".into(),
            },
            Flag {
                name: "requestheader-allowed-names".into(),
                value: "aggregator".into(),
            },
        ];
        assert_eq!(
            exec_start("/opt/bin/kube-apiserver", &flags),
            "/opt/bin/kube-apiserver \\\n  --v=2 \\\n  --requestheader-allowed-names=aggregator"
        );
    }
}
