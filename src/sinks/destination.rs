//! Where a file sink writes, compared by what it is rather than how it is spelled.
//!
//! `out/x.jsonl` and `./out/../out/x.jsonl` are one file, so are a symlink and its target or two
//! hard links, and `-`, `/dev/stdout` and `/proc/self/fd/1` are all standard output. Two sinks
//! writing to one place would clobber each other (and the run's summary would count rows that are
//! not in the file), so validation refuses them, and the run checks again, on the files as they
//! are, before opening anything for writing.
//!
//! ```
//! use heloflow::sinks::destination::Destination;
//! let a = Destination::parse("out/x.jsonl");
//! let b = Destination::parse("./out/../out/x.jsonl");
//! assert!(a.same_place(&b));
//! assert!(Destination::parse("/dev/stdout").same_place(&Destination::parse("-")));
//! ```

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A place a sink writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The process's standard output.
    Stdout,
    /// A file, by its absolute path as written (`.` and `..` kept: after a symlinked directory,
    /// `..` is that directory's real parent, which only the file system knows).
    File(PathBuf),
}

/// Paths that name standard output itself (Linux).
const STDOUT_PATHS: [&str; 4] = ["-", "/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"];

/// Whether standard output was closed when the process started (see [`note_stdout_at_start`]).
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

/// Records whether standard output is closed (`heloflow run p.toml >&-`). The binary calls this
/// before Rust's runtime starts, because the runtime then opens a closed standard output on
/// `/dev/null`, where every write succeeds and a run would claim rows nobody can read.
pub fn note_stdout_at_start() {
    // SAFETY: F_GETFD only queries descriptor 1; -1 means it is not open.
    let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// Whether standard output was closed when the process started.
pub fn stdout_closed_at_start() -> bool {
    STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)
}

/// A file as the file system knows it: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    fn of(metadata: &Metadata) -> FileId {
        FileId {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    /// What standard output is open on, when it is open.
    fn of_stdout() -> Option<FileId> {
        // SAFETY: fstat writes only into the zeroed struct it is given.
        let mut status: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on any descriptor number is defined; a closed one returns -1.
        let result = unsafe { libc::fstat(libc::STDOUT_FILENO, &mut status) };
        (result == 0).then_some(FileId {
            device: status.st_dev,
            inode: status.st_ino,
        })
    }
}

impl Destination {
    /// The destination a sink's `path` names (`-` and the standard-output device paths are
    /// standard output; a relative path is taken from the working directory).
    pub fn parse(path: &str) -> Destination {
        if STDOUT_PATHS.contains(&path) {
            return Destination::Stdout;
        }
        let path = Path::new(path);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|dir| dir.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        };
        if STDOUT_PATHS
            .iter()
            .any(|p| Path::new(p) == normalise(&absolute))
        {
            Destination::Stdout
        } else {
            Destination::File(absolute)
        }
    }

    /// Whether this is standard output.
    pub fn is_stdout(&self) -> bool {
        *self == Destination::Stdout
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            Destination::Stdout => "standard output".to_string(),
            Destination::File(path) => normalise(path).display().to_string(),
        }
    }

    /// Whether writing to both would write to one place: the same path once every symlink of
    /// the existing part is resolved (the rest normalised), or, for existing files, the same
    /// device and inode (hard links; standard output redirected onto a file).
    pub fn same_place(&self, other: &Destination) -> bool {
        if self == other {
            return true;
        }
        if let (Destination::File(a), Destination::File(b)) = (self, other) {
            if resolved(a) == resolved(b) {
                return true;
            }
        }
        match (self.file_id(), other.file_id()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The file it is, if it exists (for standard output: the file it is open on).
    fn file_id(&self) -> Option<FileId> {
        match self {
            Destination::Stdout => FileId::of_stdout(),
            // Resolved, because a missing directory followed by `..` (`new/../x`) stops the
            // kernel from finding the file until the sink creates that directory.
            Destination::File(path) => std::fs::metadata(path)
                .or_else(|_| std::fs::metadata(resolved(path)))
                .ok()
                .map(|m| FileId::of(&m)),
        }
    }
}

/// `.` and `..` removed without touching the file system (`/..` stays `/`).
fn normalise(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match normal.components().next_back() {
                Some(Component::Normal(_)) => {
                    normal.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => normal.push(component),
            },
            other => normal.push(other),
        }
    }
    normal
}

/// Where `path` leads once the directories a sink creates exist, walked component by component
/// as the kernel does: an existing name is made canonical (its symlinks followed), so a later `..`
/// goes to its real parent; a name that does not exist yet will be a plain directory or the file,
/// so it is appended as written.
fn resolved(path: &Path) -> PathBuf {
    let mut at = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                at.pop();
            }
            other => {
                at.push(other);
                if let Ok(canonical) = at.canonicalize() {
                    at = canonical;
                }
            }
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn spellings_of_standard_output_are_standard_output() {
        for path in [
            "-",
            "/dev/stdout",
            "/proc/self/fd/1",
            "/dev/fd/1",
            "/dev/./stdout",
        ] {
            assert!(Destination::parse(path).is_stdout(), "{path}");
        }
        assert!(!Destination::parse("/dev/stderr").is_stdout());
        assert!(!Destination::parse("stdout").is_stdout());
    }

    #[test]
    fn dots_and_dot_dots_are_the_same_place() {
        let a = Destination::parse("out/x.jsonl");
        let b = Destination::parse("./out/../out/x.jsonl");
        assert!(a.same_place(&b));
        assert_eq!(a.describe(), b.describe());
        assert!(!a.same_place(&Destination::parse("out/y.jsonl")));
        assert_eq!(normalise(Path::new("/..")), PathBuf::from("/"));
        assert_eq!(normalise(Path::new("../../a/..")), PathBuf::from("../.."));
    }

    #[test]
    fn dot_dot_after_a_symlinked_directory_is_its_real_parent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deep/er")).unwrap();
        symlink(dir.path().join("deep/er"), dir.path().join("link")).unwrap();
        let through = Destination::parse(dir.path().join("link/../x").to_str().unwrap());
        let real = Destination::parse(dir.path().join("deep/x").to_str().unwrap());
        let lexical = Destination::parse(dir.path().join("x").to_str().unwrap());
        assert!(through.same_place(&real));
        assert!(!through.same_place(&lexical));
    }

    #[test]
    fn symlinks_and_hard_links_are_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let linked_dir = dir.path().join("linked");
        symlink(&real, &linked_dir).unwrap();
        let target = real.join("x.jsonl");
        let through_link = Destination::parse(linked_dir.join("x.jsonl").to_str().unwrap());
        let direct = Destination::parse(target.to_str().unwrap());
        // The file does not exist yet: its directory's symlink is resolved.
        assert!(through_link.same_place(&direct));
        std::fs::write(&target, "").unwrap();
        let file_link = dir.path().join("alias.jsonl");
        symlink(&target, &file_link).unwrap();
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&target, &hard).unwrap();
        for other in [&file_link, &hard] {
            assert!(Destination::parse(other.to_str().unwrap()).same_place(&direct));
        }
        let elsewhere = Destination::parse(dir.path().join("other.jsonl").to_str().unwrap());
        assert!(!elsewhere.same_place(&direct));
    }

    /// A small tree: directories `a/b` and `c`, the file `a/x` with a hard link `c/h`, and
    /// symlinks `l -> a/b`, `m -> c` (directories) and `f -> a/x` (a file).
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("c")).unwrap();
        std::fs::write(root.join("a/x"), "").unwrap();
        std::fs::hard_link(root.join("a/x"), root.join("c/h")).unwrap();
        symlink(root.join("a/b"), root.join("l")).unwrap();
        symlink(root.join("c"), root.join("m")).unwrap();
        symlink(root.join("a/x"), root.join("f")).unwrap();
        dir
    }

    /// Directory steps and a file name, never climbing above the tree (symlinks only go deeper).
    fn spelling() -> impl Strategy<Value = String> {
        let step = prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just("l"),
            Just("m"),
            Just("new"),
            Just("."),
            Just(".."),
        ];
        let name = prop_oneof![Just("x"), Just("y"), Just("f"), Just("h")];
        (proptest::collection::vec(step, 0..6), name).prop_filter_map(
            "climbs above the tree",
            |(steps, name)| {
                let mut depth = 0i32;
                for step in &steps {
                    depth += match *step {
                        ".." => -1,
                        "." => 0,
                        _ => 1,
                    };
                    if depth < 0 {
                        return None;
                    }
                }
                let mut parts = steps;
                parts.push(name);
                Some(parts.join("/"))
            },
        )
    }

    /// Opens `path` for writing as a sink does (parent directories created); its file's identity.
    fn open_as_sink(path: &Path) -> Option<FileId> {
        std::fs::create_dir_all(path.parent()?).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        file.metadata().ok().map(|m| FileId::of(&m))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the spelling (`.`, `..`, symlinked directories and files, hard links, files
        /// that do not exist yet), two paths are "the same place" exactly when the kernel opens
        /// them as one file.
        #[test]
        fn the_same_place_exactly_when_the_kernel_opens_one_file(
            first in spelling(),
            second in spelling(),
        ) {
            let dir = tree();
            let a = dir.path().join(&first);
            let b = dir.path().join(&second);
            let predicted = Destination::parse(a.to_str().unwrap())
                .same_place(&Destination::parse(b.to_str().unwrap()));
            let opened = open_as_sink(&a).zip(open_as_sink(&b));
            prop_assume!(opened.is_some(), "a path the kernel cannot open");
            let (id_a, id_b) = opened.unwrap();
            prop_assert_eq!(predicted, id_a == id_b, "{} vs {}", first, second);
            // Once both exist, they compare the same way.
            let after = Destination::parse(a.to_str().unwrap())
                .same_place(&Destination::parse(b.to_str().unwrap()));
            prop_assert_eq!(after, id_a == id_b, "{} vs {} (existing)", first, second);
        }
    }
}
