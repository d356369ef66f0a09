//! `--config FILE` (or `TOUCHSTONE_CONFIG`): settings in a file, one `NAME=value` a line
//! with the names of the environment variables the flags read (`TOUCHSTONE_LISTEN`,
//! `TOUCHSTONE_KEYS_FILE`, ...; also `RUST_LOG` and `OTEL_*`), `#` comments. Precedence,
//! one rule for every setting: a flag, else the environment, else the file, else the
//! default. The file fills in only the variables the environment does not set, before the
//! flags are parsed.

use std::path::Path;

/// The file named by `--config` / `--config=` in `args`, else by `TOUCHSTONE_CONFIG`.
pub fn named(args: &[String]) -> Option<String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().cloned();
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.to_owned());
        }
    }
    std::env::var("TOUCHSTONE_CONFIG").ok().filter(|path| !path.is_empty())
}

/// The settings of the file: `(name, value)` in file order; an error names the line.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut settings = Vec::new();
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{number}", path.display());
        let (name, value) = line.split_once('=').ok_or_else(|| format!("{at}: expected NAME=value, found {line:?}"))?;
        let name = name.trim();
        if !(name.starts_with("TOUCHSTONE_") || name.starts_with("OTEL_") || name == "RUST_LOG") || name == "TOUCHSTONE_CONFIG" {
            return Err(format!("{at}: {name:?} is no setting (names are the environment variables of `touchstone --help`: TOUCHSTONE_*, RUST_LOG, OTEL_*)"));
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        settings.push((name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

/// Reads the file and sets each of its variables the environment does not set already.
/// Runs first in `main`, before any thread exists (setting variables is only sound then).
pub fn load(path: &str) -> Result<(), String> {
    let path = Path::new(path);
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read the config file {}: {err}", path.display()))?;
    for (name, value) in parse(path, &text)? {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread starts.
            unsafe { std::env::set_var(&name, &value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_line_numbers_for_what_is_wrong() {
        let text = "# comment\nTOUCHSTONE_LISTEN = 0.0.0.0:50051\n\nRUST_LOG=\"info,touchstone=debug\"\n";
        let parsed = parse(Path::new("t.env"), text).unwrap();
        assert_eq!(parsed, [("TOUCHSTONE_LISTEN".to_owned(), "0.0.0.0:50051".to_owned()), ("RUST_LOG".to_owned(), "info,touchstone=debug".to_owned())]);
        assert_eq!(parse(Path::new("t.env"), "TOUCHSTONE_LISTEN\n").unwrap_err(), "t.env:1: expected NAME=value, found \"TOUCHSTONE_LISTEN\"");
        assert!(parse(Path::new("t.env"), "# ok\nPATH=/bin\n").unwrap_err().starts_with("t.env:2: \"PATH\" is no setting"));
    }

    #[test]
    fn the_file_is_named_by_the_flag_first() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(named(&args(&["touchstone", "dev", "--config", "a.env"])), Some("a.env".to_owned()));
        assert_eq!(named(&args(&["touchstone", "--config=b.env", "dev"])), Some("b.env".to_owned()));
    }
}
