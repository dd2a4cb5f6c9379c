//! `keyward encrypt` / `keyward decrypt`: client-side envelope encryption of files and streams
//! (docs/envelope-format.md). Only the data key travels to and from the server.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use keyward_client::envelope;

use crate::cli::{DecryptArgs, EncryptArgs};

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn open_input(path: &Path) -> Result<Box<dyn Read>, String> {
    if is_std(path) {
        return Ok(Box::new(BufReader::new(std::io::stdin().lock())));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(256 * 1024, file)))
}

/// Writes to `path` all or nothing: a temporary file beside it (mode 0600), renamed over it
/// only when `write` succeeds. `-` streams to standard output.
fn write_output(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<(), String>) -> Result<(), String> {
    if is_std(path) {
        let mut out = BufWriter::new(std::io::stdout().lock());
        write(&mut out)?;
        return out.flush().map_err(|e| e.to_string());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
    {
        let mut out = BufWriter::with_capacity(256 * 1024, temp.as_file());
        write(&mut out)?;
        out.flush().map_err(|e| e.to_string())?;
    }
    temp.as_file().sync_all().map_err(|e| e.to_string())?;
    temp.persist(path).map_err(|e| format!("`{}`: {}", path.display(), e.error))?;
    Ok(())
}

/// `keyward encrypt`: a new data key from the server, then the input sealed locally.
pub fn encrypt(args: &EncryptArgs) -> Result<(), String> {
    let context: BTreeMap<String, String> = args.context.iter().cloned().collect();
    let client = crate::profile::client(&args.remote)?;
    let data_key = runtime()?
        .block_on(client.generate_data_key(&args.key, &context))
        .map_err(|e| format!("GenerateDataKey on `{}`: {e}", args.key))?;
    let input = open_input(&args.input)?;
    write_output(&args.output, |out| {
        envelope::seal(
            &data_key.plaintext,
            &data_key.ciphertext_blob,
            &context,
            envelope::DEFAULT_FRAME_SIZE,
            input,
            out,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
}

/// `keyward decrypt`: the data key from the server (Decrypt of the header's blob, under the
/// header's context), then the frames opened locally; OUT appears only if all verified.
pub fn decrypt(args: &DecryptArgs) -> Result<(), String> {
    let mut input = open_input(&args.input)?;
    let name = args.input.display();
    let header = envelope::read_header(&mut input).map_err(|e| format!("`{name}`: {e}"))?;
    let client = crate::profile::client(&args.remote)?;
    let data_key = runtime()?
        .block_on(client.decrypt(&header.data_key_blob, &header.context))
        .map_err(|e| format!("`{name}`: decrypting its data key: {e}"))?;
    write_output(&args.output, |out| {
        envelope::open(&header, &data_key, input, out).map(|_| ()).map_err(|e| format!("`{name}`: {e}"))
    })
}
