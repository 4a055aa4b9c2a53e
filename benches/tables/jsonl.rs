//! Reading the tools' files: whole JSON documents and JSON-lines files, each line one
//! typed record.

use std::path::Path;

use serde::de::DeserializeOwned;

/// The text of `path`, or an error naming it.
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `path` parsed as one `T`.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not the JSON expected here: {e}", path.display()))
}

/// Every non-blank line of `path` as a `T`. A line that is not one is reported on stderr
/// with its number and skipped: one broken run must not void the tables of a long pass.
pub(crate) fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, String> {
    Ok(parse_lines(&read_text(path)?, &path.display().to_string()))
}

/// [`read_lines`] on text already read; `name` is what the warnings call it.
pub(crate) fn parse_lines<T: DeserializeOwned>(text: &str, name: &str) -> Vec<T> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(record) => out.push(record),
            Err(e) => eprintln!("ztick-tables: {name}:{}: skipped: {e}", n + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Line {
        a: u64,
    }

    #[test]
    fn bad_and_blank_lines_are_skipped() {
        let got: Vec<Line> = parse_lines("{\"a\":1}\n\n  \nnot json\n{\"b\":2}\n{\"a\":3}\n", "test");
        assert_eq!(got, [Line { a: 1 }, Line { a: 3 }]);
    }
}
