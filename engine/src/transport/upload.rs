//! File transfer over the host's existing master connection (SFTP subsystem), atomically: the
//! content goes to a temporary file beside the destination, is synced to disk, gets its mode,
//! and is renamed over the destination (`posix-rename`, atomic, when the server offers it).
//! A reader of the destination sees the old file or the new one, never half of it.

use std::path::Path;

use openssh_sftp_client::{Sftp, SftpOptions};

use super::exec::TransportError;

/// Writes `content` to `dest` on the host with `mode` (e.g. 0o644).
pub async fn upload(
    host: &str,
    sftp: &Sftp,
    dest: &Path,
    content: &[u8],
    mode: u32,
) -> Result<(), TransportError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TransportError::Unreachable {
        host: host.to_owned(),
        message: format!("sftp: cannot {what} {}: {e}", dest.display()),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| fail("write to", &"not a file path"))?;
    let tmp = dest.with_file_name(format!(
        ".{}.runbook-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = sftp
        .options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .await
        .map_err(|e| fail("create the temporary file for", &e))?;
    for chunk in content.chunks(1 << 16) {
        file.write_all(chunk).await.map_err(|e| fail("write", &e))?;
    }
    file.sync_all().await.map_err(|e| fail("sync", &e))?;
    file.set_permissions(openssh_sftp_client::metadata::Permissions::from(mode_bits(
        mode,
    )))
    .await
    .map_err(|e| fail("set the mode of", &e))?;
    file.close().await.map_err(|e| fail("close", &e))?;
    let mut fs = sftp.fs();
    if let Err(e) = fs.rename(&tmp, dest).await {
        let _ = fs.remove_file(&tmp).await;
        return Err(fail("rename into place", &e));
    }
    Ok(())
}

/// SFTP connections ride on the host's master connection.
pub async fn open(
    host: &str,
    session: std::sync::Arc<openssh::Session>,
) -> Result<Sftp, TransportError> {
    Sftp::from_clonable_session(session, SftpOptions::default())
        .await
        .map_err(|e| TransportError::Unreachable {
            host: host.to_owned(),
            message: format!("cannot start sftp: {e}"),
        })
}

fn mode_bits(mode: u32) -> u16 {
    u16::try_from(mode & 0o7777).expect("masked to 12 bits")
}
