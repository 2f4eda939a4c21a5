//! From the paths on the command line to the audio files to transcribe:
//! files as named, folders searched recursively, glob patterns expanded
//! here (so that a quoted `'calls/**/*.mp3'` works as well as the shell's
//! own expansion), each file with the path its outputs mirror under
//! `--out`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Extensions of the containers voxq-api accepts (WAV, MP3, FLAC, Ogg
/// Vorbis): what a folder or a pattern contributes. A file named on its
/// own is sent whatever its name, and the API judges its bytes.
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "mp3", "flac", "ogg", "oga"];

/// A file to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub path: PathBuf,
    /// Its path below the folder or pattern it was found through (its
    /// file name for a file named on its own): where `--out` puts its
    /// outputs.
    pub relative: PathBuf,
}

/// What the paths named: the files; a message for each path that named
/// nothing or could not be read (failures); and for each that named only
/// files that are not audio or were already named (worth a word only).
#[derive(Debug, Default)]
pub struct Found {
    pub inputs: Vec<Input>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub fn discover(args: &[String], include_hidden: bool) -> Found {
    let mut found = Found::default();
    let mut seen = HashSet::new();
    for arg in args {
        let mut named = Found::default();
        let path = Path::new(arg);
        if path.is_dir() {
            walk(path, path, include_hidden, &mut named);
        } else if path.exists() {
            let relative = path.file_name().map(PathBuf::from).unwrap_or_default();
            named.inputs.push(Input {
                path: path.to_owned(),
                relative,
            });
        } else if is_pattern(arg) {
            expand(arg, include_hidden, &mut named);
        } else {
            found
                .problems
                .push(format!("{arg}: no such file or folder"));
            continue;
        }
        if named.inputs.is_empty() && named.problems.is_empty() {
            found.notes.push(format!(
                "{arg}: no audio files ({})",
                AUDIO_EXTENSIONS.join(", ")
            ));
        }
        found.problems.append(&mut named.problems);
        // The same file named twice (a folder and a pattern inside it) is
        // transcribed once.
        for input in named.inputs {
            let key = std::fs::canonicalize(&input.path).unwrap_or_else(|_| input.path.clone());
            if seen.insert(key) {
                found.inputs.push(input);
            }
        }
    }
    found
}

fn is_pattern(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}

pub fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('.'))
}

/// Audio files below `dir`, in name order; symbolic links are followed
/// (walkdir stops at a loop and says so).
fn walk(dir: &Path, base: &Path, include_hidden: bool, found: &mut Found) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0 || include_hidden || !is_hidden(entry.file_name())
        });
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() && is_audio(entry.path()) => {
                let relative = entry
                    .path()
                    .strip_prefix(base)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| entry.file_name().into());
                found.inputs.push(Input {
                    path: entry.into_path(),
                    relative,
                });
            }
            Ok(_) => {}
            Err(e) => found.problems.push(format!("{}: {e}", dir.display())),
        }
    }
}

/// A pattern's matches: audio files, and the audio files of matching
/// folders. Outputs mirror paths below the pattern's first component
/// holding a wildcard.
fn expand(pattern: &str, include_hidden: bool, found: &mut Found) {
    let base = literal_prefix(pattern);
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: !include_hidden,
    };
    let matches = match glob::glob_with(pattern, options) {
        Ok(matches) => matches,
        Err(e) => {
            found.problems.push(format!("{pattern}: {e}"));
            return;
        }
    };
    for entry in matches {
        match entry {
            Ok(path) if path.is_dir() => walk(&path, &base, include_hidden, found),
            Ok(path) if path.is_file() && is_audio(&path) => {
                let relative = path
                    .strip_prefix(&base)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| path.file_name().map(PathBuf::from).unwrap_or_default());
                found.inputs.push(Input { path, relative });
            }
            Ok(_) => {}
            Err(e) => found.problems.push(format!("{pattern}: {e}")),
        }
    }
}

/// The folders of `pattern` before its first wildcard: `calls/2024/*.wav`
/// → `calls/2024`.
fn literal_prefix(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    for component in Path::new(pattern).components() {
        if let Component::Normal(part) = component {
            if part.to_str().is_some_and(is_pattern) {
                break;
            }
        }
        base.push(component);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(path, b"x").expect("write");
    }

    #[test]
    fn folders_give_their_audio_recursively_and_patterns_mirror_below_their_literal_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for name in [
            "a.wav",
            "notes.txt",
            "sub/b.MP3",
            ".hidden/c.flac",
            "sub/.d.ogg",
        ] {
            touch(&root.join(name));
        }
        let arg = root.display().to_string();
        let found = discover(std::slice::from_ref(&arg), false);
        let relatives: Vec<_> = found.inputs.iter().map(|i| i.relative.clone()).collect();
        assert_eq!(
            relatives,
            vec![PathBuf::from("a.wav"), PathBuf::from("sub/b.MP3")]
        );
        assert!(found.problems.is_empty(), "{:?}", found.problems);

        let pattern = format!("{}/**/*.MP3", root.display());
        let found = discover(&[pattern, arg.clone()], false);
        let relatives: Vec<_> = found.inputs.iter().map(|i| i.relative.clone()).collect();
        // b.MP3 through the pattern first, and not again through the folder.
        assert_eq!(
            relatives,
            vec![PathBuf::from("sub/b.MP3"), PathBuf::from("a.wav")]
        );

        let found = discover(&[format!("{}/nothing-*.wav", root.display())], false);
        assert!(found.inputs.is_empty() && found.problems.is_empty());
        assert_eq!(found.notes.len(), 1);
        let found = discover(&[format!("{}/missing.wav", root.display())], false);
        assert_eq!(found.problems.len(), 1);
    }

    #[test]
    fn the_literal_prefix_stops_at_the_first_wildcard() {
        assert_eq!(
            literal_prefix("calls/2024/*.wav"),
            PathBuf::from("calls/2024")
        );
        assert_eq!(literal_prefix("/x/**/a?.mp3"), PathBuf::from("/x"));
        assert_eq!(literal_prefix("*.wav"), PathBuf::new());
    }
}
