//! Local files read from configuration (token files, shared credentials and config files, CA
//! bundles): regular files only, read to a cap, so a FIFO, a device (`/dev/zero`) or a huge file
//! named by mistake or by an attacker can neither block the start nor fill memory.

use std::io::Read;
use std::path::Path;

/// The most bytes read from a token file (web identity, container authorization): real ones
/// are 1-2 KiB.
pub const TOKEN_FILE_CAP: u64 = 64 * 1024;
/// The most bytes read from a shared credentials or config file.
pub const SHARED_FILE_CAP: u64 = 1024 * 1024;

/// Reads a regular file of at most `cap` bytes as UTF-8. A FIFO, a device (`/dev/zero`) or a
/// folder is refused without being opened for reading, so it can neither block nor fill memory.
pub fn read_small_file(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} KiB", cap / 1024),
        ));
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_only() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-answer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("f");
        std::fs::write(&file, "0123456789").expect("write");
        assert_eq!(read_small_file(&file, 10).expect("fits"), "0123456789");
        let err = read_small_file(&file, 9).expect_err("too big");
        assert!(err.to_string().contains("larger than"), "{err}");
        assert!(read_small_file(&dir, 100).is_err(), "a folder");
        let err = read_small_file(Path::new("/dev/zero"), 100).expect_err("a device");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::write(&file, [0xff, 0xfe]).expect("write");
        assert!(read_small_file(&file, 10).is_err(), "not UTF-8");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
