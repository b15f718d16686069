//! The sealing key at start and its rotation.
//!
//! At start the configured key must open every sealed value in the store:
//! a wrong key is refused with how many values it cannot open, and a key
//! file missing beside a store that holds sealed values is refused rather
//! than replaced by a fresh key (which would silently lose every credential).
//!
//! `prism admin rotate-key` re-seals every value under a new key in one
//! transaction. With the key in the data dir: the new key is written to
//! `secret.key.next` first (kept, and reused, if the rotation is
//! interrupted; a server started meanwhile opens with it too), then the
//! files are swapped and the old key kept as `secret.key.retired` for
//! backups taken before. With `PRISM_SECRET_KEY`: every instance runs with
//! the new key in `PRISM_SECRET_KEY` and the old one in
//! `PRISM_SECRET_KEY_PREVIOUS`, the command re-seals, then the previous
//! key is removed everywhere.

use prism_store::{sealed, Store};

use crate::config::Settings;
use crate::secrets::{read_key_file, write_private, SecretBox, KEY_FILE, NEXT_KEY_FILE, RETIRED_KEY_FILE};

/// Loads the configured key (creating the key file on a store without
/// sealed values) and checks that it opens every sealed value.
pub async fn load(settings: &Settings, store: &Store) -> anyhow::Result<SecretBox> {
    let dir = &settings.data_dir;
    let (mut key, source) = match &settings.secret_key {
        Some(k) => (SecretBox::from_base64(&k.0)?, "PRISM_SECRET_KEY".to_owned()),
        None => {
            if !SecretBox::key_file_exists(dir) {
                let held = sealed::count(store, |_| false).await?;
                if held.total > 0 {
                    anyhow::bail!(
                        "{KEY_FILE} is missing from the data dir {} but the store holds {} sealed secrets: \
                         put back the key file this store was sealed with, or set PRISM_SECRET_KEY",
                        dir.display(),
                        held.total
                    );
                }
            }
            let key = SecretBox::load_or_create(dir)?.with_interrupted_rotation(dir)?;
            (key, dir.join(KEY_FILE).display().to_string())
        }
    };
    if let Some(previous) = &settings.previous_secret_key {
        key = key.also_opening(&previous.0)?;
    }
    let count = sealed::count(store, |v| key.open(v).is_ok()).await?;
    if count.unopenable > 0 {
        anyhow::bail!(
            "{} of the {} stored secrets cannot be opened with the configured key ({source}): \
             configure the key this store was sealed with (during a rotation, the old one in PRISM_SECRET_KEY_PREVIOUS)",
            count.unopenable,
            count.total
        );
    }
    Ok(key)
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    pub resealed: usize,
    /// What the operator does next.
    pub next_step: String,
}

/// Re-seals every stored secret under the new key, all or nothing.
pub async fn rotate(settings: &Settings) -> anyhow::Result<Rotated> {
    match &settings.secret_key {
        Some(new) => {
            let previous = settings.previous_secret_key.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "PRISM_SECRET_KEY is set: set it to the new key and PRISM_SECRET_KEY_PREVIOUS to the old one \
                     (on every instance, then restart them), and run rotate-key again"
                )
            })?;
            let key = SecretBox::from_base64(&new.0)?.also_opening(&previous.0)?;
            let store = Store::open(&settings.store_url(), 2).await?;
            let result = reseal(&store, &key).await;
            store.close().await;
            Ok(Rotated {
                resealed: result?,
                next_step: "every secret is sealed under PRISM_SECRET_KEY: remove PRISM_SECRET_KEY_PREVIOUS \
                            from every instance and restart them"
                    .into(),
            })
        }
        None => rotate_key_file(settings).await,
    }
}

async fn rotate_key_file(settings: &Settings) -> anyhow::Result<Rotated> {
    let dir = &settings.data_dir;
    // A server on this data dir holds the old key in memory and would not
    // open what is re-sealed: one process at a time.
    let _lock = crate::bootstrap::claim_data_dir(settings)?;
    let current_path = dir.join(KEY_FILE);
    let next_path = dir.join(NEXT_KEY_FILE);
    let current = read_key_file(&current_path)?
        .ok_or_else(|| anyhow::anyhow!("there is no {} to rotate", current_path.display()))?;
    let next = match read_key_file(&next_path)? {
        Some(k) => k, // an interrupted rotation: finish it with the same key
        None => {
            let k = SecretBox::generate_key();
            write_private(&next_path, k.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", next_path.display()))?;
            k
        }
    };
    let mut key = SecretBox::from_base64(&next)?.also_opening(&current)?;
    if let Some(previous) = &settings.previous_secret_key {
        key = key.also_opening(&previous.0)?;
    }
    let store = Store::open(&settings.store_url(), 2).await?;
    let result = reseal(&store, &key).await;
    store.close().await;
    let resealed = result?;
    std::fs::rename(&current_path, dir.join(RETIRED_KEY_FILE))?;
    std::fs::rename(&next_path, &current_path)?;
    Ok(Rotated {
        resealed,
        next_step: format!(
            "the new key is {}; the old one is kept as {} only to open backups taken before now (delete it once they are gone)",
            current_path.display(),
            dir.join(RETIRED_KEY_FILE).display()
        ),
    })
}

async fn reseal(store: &Store, key: &SecretBox) -> anyhow::Result<usize> {
    Ok(sealed::reseal_all(store, |v| key.open(v).map(|plain| key.seal(&plain))).await?)
}
