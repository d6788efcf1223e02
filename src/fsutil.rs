//! Files that are either wholly written or not there at all.
//!
//! Output goes to a temporary file in the destination's directory, is flushed to disk, and is
//! renamed over the destination (atomic on POSIX file systems); the directory is flushed too.
//! A crash, a full disk or a write error leaves the previous file, or none, never half of one.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An I/O failure and the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// A file being written; it appears at its path only on [`AtomicFile::commit`].
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile, FileError> {
        let dir = parent(path);
        // tempfile creates 0600 files; models and reports are read by other users (a server
        // running as its own user), so give them the usual 0644 (less the umask).
        let file = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)
            .map_err(at(dir))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(self) -> Result<(), FileError> {
        let path = self.path;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| at(&path)(e.into_error()))?;
        file.as_file().sync_all().map_err(at(&path))?;
        file.persist(&path).map_err(|e| at(&path)(e.error))?;
        sync_dir(parent(&path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(at(path))?;
    file.commit()
}

/// Flushes a directory's entries (a rename is durable only once its directory is).
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("CURRENT");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "readable by group and others: {mode:o}"
        );
    }

    #[test]
    fn uncommitted_file_never_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half a file").unwrap();
        }
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
