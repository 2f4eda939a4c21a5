//! CTranslate2 vocabulary files: the token strings a converted model maps
//! its ids through (`.json` from CTranslate2 3.0 on, `.txt` before).

use std::path::Path;

use anyhow::Context;

/// The tokens of `{name}.json` or `{name}.txt` in `dir`, in id order;
/// `None` when the model has neither.
pub fn read(dir: &Path, name: &str) -> anyhow::Result<Option<Vec<String>>> {
    for extension in ["json", "txt"] {
        let path = dir.join(format!("{name}.{extension}"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let tokens = if extension == "json" {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?
        } else {
            String::from_utf8(bytes)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .map(str::to_owned)
                .collect()
        };
        return Ok(Some(tokens));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn reads_json_before_text_and_says_when_neither_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path(), "vocabulary").expect("no error").is_none());
        std::fs::write(dir.path().join("vocabulary.txt"), "a\nb\n").expect("write");
        assert_eq!(
            read(dir.path(), "vocabulary").expect("txt"),
            Some(vec!["a".into(), "b".into()])
        );
        std::fs::write(dir.path().join("vocabulary.json"), r#"["x","<|0.00|>"]"#).expect("write");
        assert_eq!(
            read(dir.path(), "vocabulary").expect("json"),
            Some(vec!["x".into(), "<|0.00|>".into()])
        );
        std::fs::write(dir.path().join("vocabulary.json"), "{").expect("write");
        assert!(read(dir.path(), "vocabulary").is_err());
    }
}
